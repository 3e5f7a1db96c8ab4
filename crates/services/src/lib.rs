//! Private instances of the platform's external engines, started from the system's packages
//! (Debian's `postgresql` and `nats-server`), on loopback, in a directory of their own, stopped and removed on drop.
//!
//! Tests use them to run the real engine (never a mock), and the devnet will use them to run a
//! scaled platform on one machine. Nothing here is a server of ours: this crate only finds the
//! installed binaries, gives them a data directory and a free port, waits until they answer, and
//! stops them.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod nats;
pub mod postgres;

pub use nats::{NatsError, NatsServer};
pub use postgres::{Postgres, PostgresError};

use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The last 2000 characters of a program's output or log, trimmed.
fn tail(text: &[u8]) -> String {
    let s = String::from_utf8_lossy(text);
    let s = s.trim();
    let start = s.len().saturating_sub(2000);
    let start = (start..s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    s[start..].to_owned()
}

/// Sends `signal` (`kill` syntax, e.g. `-TERM`) to the child, waits up to `grace` for it to
/// exit, then kills it; the slot is empty after.
fn stop_child(child: &mut Option<Child>, signal: &str, grace: Duration) {
    if let Some(mut c) = child.take() {
        let _ = Command::new("kill")
            .args([signal, &c.id().to_string()])
            .status();
        let start = Instant::now();
        // Bounded: at most `grace`, polling every 20 ms.
        while start.elapsed() < grace {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}
