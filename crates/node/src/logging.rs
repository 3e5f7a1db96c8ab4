//! Logging as `[log.stdout]` / `[log.file]` say: human lines on standard output, JSON lines in
//! the file (created with mode 0600, its directory created if missing).
//!
//! Levels use the guide's (logrus) numbering: 0 Panic and 1 Fatal map to `ERROR` (Rust has no
//! separate levels for them), 2 Error, 3 Warn, 4 Info, 5 Debug, 6 Trace. Our own crates log at the
//! configured level; dependencies (HTTP stack) at most at `INFO`.
//!
//! Nothing in this crate logs a password, share, key or request body: handlers log the event and
//! its outcome only ("unseal failed: wrong password (3 failures, next attempt in 2s)").

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::Config;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log file or its directory could not be created.
    #[error("{file}: [log.file] path: cannot open {path}: {source}")]
    File {
        /// The config file.
        file: String,
        /// The log file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A global subscriber was already installed.
    #[error("logging was already initialised")]
    AlreadySet,
}

/// The tracing level of a guide level (0..=6; larger values are treated as 6).
pub fn level_filter(level: u8) -> LevelFilter {
    match level {
        0..=2 => LevelFilter::ERROR,
        3 => LevelFilter::WARN,
        4 => LevelFilter::INFO,
        5 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

fn targets(level: u8) -> Targets {
    let ours = level_filter(level);
    Targets::new()
        .with_default(ours.min(LevelFilter::INFO))
        .with_target("mpc_node", ours)
        .with_target("mpc_keystore", ours)
        .with_target("mpc_wire", ours)
}

/// Opens (appends to) a log file with mode 0600, creating its directory.
fn open_log_file(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Installs the global subscriber for `cfg`. Call once, from the binary.
pub fn init(cfg: &Config) -> Result<(), LogError> {
    let stdout = cfg.log.stdout.enable.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stdout)
            .with_ansi(false)
            .with_target(false)
            .with_filter(targets(cfg.log.stdout.level))
    });
    let file = if cfg.log.file.enable {
        let f = open_log_file(&cfg.log.file.path).map_err(|source| LogError::File {
            file: cfg.file_name.clone(),
            path: cfg.log.file.path.display().to_string(),
            source,
        })?;
        Some(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(Mutex::new(f))
                .with_ansi(false)
                .with_filter(targets(cfg.log.file.level)),
        )
    } else {
        None
    };
    tracing_subscriber::registry()
        .with(stdout)
        .with(file)
        .try_init()
        .map_err(|_| LogError::AlreadySet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guide_levels_map_to_tracing_levels() {
        assert_eq!(level_filter(0), LevelFilter::ERROR);
        assert_eq!(level_filter(1), LevelFilter::ERROR);
        assert_eq!(level_filter(2), LevelFilter::ERROR);
        assert_eq!(level_filter(3), LevelFilter::WARN);
        assert_eq!(level_filter(4), LevelFilter::INFO);
        assert_eq!(level_filter(5), LevelFilter::DEBUG);
        assert_eq!(level_filter(6), LevelFilter::TRACE);
    }

    #[test]
    fn log_file_is_private_and_its_directory_created() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("logs/sub/node.log");
        open_log_file(&p).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
