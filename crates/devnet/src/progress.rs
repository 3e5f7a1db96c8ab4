//! Progress on stderr: one line per phase with a spinner and elapsed seconds while it runs (on a
//! terminal), and a final `ok`/`FAILED` line with its duration.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running phase; call [`Phase::done`] or [`Phase::fail`] (dropping it counts as done).
#[derive(Debug)]
pub struct Phase {
    title: String,
    start: Instant,
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<String>>,
    spinner: Option<std::thread::JoinHandle<()>>,
    finished: bool,
}

/// Whether progress lines are printed at all (the tests' harness turns them off).
static QUIET: AtomicBool = AtomicBool::new(false);

/// Turns progress output off (`true`) or on.
pub fn set_quiet(q: bool) {
    QUIET.store(q, Ordering::Relaxed);
}

impl Phase {
    /// Starts a phase titled `title`.
    pub fn start(title: impl Into<String>) -> Self {
        let title = title.into();
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(String::new()));
        let quiet = QUIET.load(Ordering::Relaxed);
        let spinner = if !quiet && std::io::stderr().is_terminal() {
            let stop = stop.clone();
            let title = title.clone();
            let status = status.clone();
            let start = Instant::now();
            Some(std::thread::spawn(move || {
                const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let st = status.lock().map(|s| s.clone()).unwrap_or_default();
                    let mut e = std::io::stderr().lock();
                    let _ = write!(
                        e,
                        "\r  {} {title} ({}s){}{st}\x1b[K",
                        FRAMES[i % FRAMES.len()],
                        start.elapsed().as_secs(),
                        if st.is_empty() { "" } else { ": " },
                    );
                    let _ = e.flush();
                    drop(e);
                    i += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
            }))
        } else {
            if !quiet {
                eprintln!("  .. {title}");
            }
            None
        };
        Self {
            title,
            start: Instant::now(),
            stop,
            status,
            spinner,
            finished: false,
        }
    }

    /// Sets the status shown after the title while the phase runs (on a terminal), e.g. the
    /// state of each key.
    pub fn set_status(&self, status: &str) {
        if let Ok(mut s) = self.status.lock() {
            status.clone_into(&mut s);
        }
    }

    /// Seconds since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn finish(&mut self, status: &str, detail: &str) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.spinner.take() {
            let _ = h.join();
            eprint!("\r\x1b[K");
        }
        if !QUIET.load(Ordering::Relaxed) {
            let secs = self.start.elapsed().as_secs_f64();
            if detail.is_empty() {
                eprintln!("  {status} {} ({secs:.1}s)", self.title);
            } else {
                eprintln!("  {status} {} ({secs:.1}s): {detail}", self.title);
            }
        }
    }

    /// The phase succeeded.
    pub fn done(mut self, detail: &str) {
        self.finish("ok", detail);
    }

    /// The phase failed.
    pub fn fail(mut self, detail: &str) {
        self.finish("FAILED", detail);
    }
}

impl Drop for Phase {
    // Every successful path calls `done`; a phase dropped without it ended on an error (`?`).
    fn drop(&mut self) {
        self.finish("FAILED", "");
    }
}

/// A note line (warnings, hints) in the progress output.
pub fn note(text: &str) {
    if !QUIET.load(Ordering::Relaxed) {
        eprintln!("  {text}");
    }
}
