//! Human lines on standard output, JSON lines in `[log] file` (mode 0600) when set.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;

use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::PlatformConfig;

/// Installs the global subscriber. Our crates log at the configured level, dependencies at
/// most at `INFO`.
pub fn init(cfg: &PlatformConfig) -> Result<(), String> {
    let level = LevelFilter::from_level(cfg.log_level().unwrap_or(tracing::Level::INFO));
    let targets = Targets::new()
        .with_default(level.min(LevelFilter::INFO))
        .with_target("mpc_platform", level)
        .with_target("mpc_proxy", level)
        .with_target("mpc_coordinator", level)
        .with_target("mpc_bus", level);
    let stdout = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_filter(targets.clone());
    let file = if cfg.log.file.as_os_str().is_empty() {
        None
    } else {
        if let Some(dir) = cfg.log.file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("[log] file: cannot create {}: {e}", dir.display()))?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&cfg.log.file)
            .map_err(|e| format!("[log] file: cannot open {}: {e}", cfg.log.file.display()))?;
        Some(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(Mutex::new(f))
                .with_filter(targets),
        )
    };
    tracing_subscriber::registry()
        .with(stdout)
        .with(file)
        .try_init()
        .map_err(|_| "logging was already initialised".to_owned())
}
