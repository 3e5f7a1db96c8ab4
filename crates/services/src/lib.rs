//! Private instances of the platform's external engines, started from the system's packages
//! (Debian's `postgresql` and `nats-server`), on loopback, in a directory of their own, stopped and removed on drop.
//!
//! Tests use them to run the real engine (never a mock), and the devnet will use them to run a
//! scaled platform on one machine. Nothing here is a server of ours: this crate only finds the
//! installed binaries, gives them a data directory and a free port, waits until they answer, and
//! stops them.

pub mod nats;
pub mod postgres;

pub use nats::{NatsError, NatsServer};
pub use postgres::{Postgres, PostgresError};
