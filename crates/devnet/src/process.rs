//! Child processes: one component each (`mpc-devnet node start …` etc.), stdout and stderr
//! appended to a log file, stopped with SIGTERM then SIGKILL after a bound, and always on drop
//! (so a test that panics or a devnet that errors leaves nothing running).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::fsutil::{self, FsError};

/// Why a process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Log file.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// spawn failed.
    #[error("cannot start {name} ({exe}): {source}")]
    Spawn {
        /// Which component.
        name: String,
        /// The executable.
        exe: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Name for messages (`platform`, `node-a`, `callback`).
    pub name: String,
    /// The executable (the mpc-devnet binary).
    pub exe: PathBuf,
    /// Arguments (the multi-call subcommand first).
    pub args: Vec<OsString>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Extra environment.
    pub env: Vec<(String, OsString)>,
    /// Log file (appended).
    pub log: PathBuf,
}

/// A running component; stopped when dropped.
#[derive(Debug)]
pub struct Managed {
    spec: Spec,
    child: Option<Child>,
    /// The container when the child is a `docker run` client ([`crate::docker`]): killed or
    /// removed by name, since killing the client leaves the container running.
    container: Option<String>,
    /// Bound on the SIGTERM grace period.
    pub grace: Duration,
}

impl Managed {
    /// Starts `spec`.
    pub fn spawn(spec: Spec) -> Result<Self, ProcessError> {
        if let Some(dir) = spec.log.parent() {
            fsutil::create_dir(dir)?;
        }
        let open = |p: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|source| FsError {
                    what: "open log",
                    path: p.display().to_string(),
                    source,
                })
        };
        let out = open(&spec.log)?;
        let err = open(&spec.log)?;
        let mut cmd = Command::new(&spec.exe);
        cmd.args(&spec.args)
            .current_dir(&spec.cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().map_err(|source| ProcessError::Spawn {
            name: spec.name.clone(),
            exe: spec.exe.display().to_string(),
            source,
        })?;
        tracing::debug!(name = %spec.name, pid = child.id(), "started");
        Ok(Self {
            spec,
            child: Some(child),
            container: None,
            grace: Duration::from_secs(10),
        })
    }

    /// Starts `spec`, a `docker run --name container …` ([`crate::docker::wrap`]).
    pub fn spawn_container(spec: Spec, container: String) -> Result<Self, ProcessError> {
        let mut m = Self::spawn(spec)?;
        m.container = Some(container);
        Ok(m)
    }

    /// `docker kill|rm -f` of the container, if this is one.
    fn docker(&self, verb: &[&str]) {
        if let Some(name) = &self.container {
            let _ = Command::new("docker")
                .args(verb)
                .arg(name)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// What it runs.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The container's name when this runs in one ([`Managed::spawn_container`]).
    pub fn container(&self) -> Option<&str> {
        self.container.as_deref()
    }

    /// Process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Some(status)` once it exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(st))) => Some(st),
            Some(Ok(None)) => None,
            Some(Err(_)) | None => None,
        }
    }

    /// The last `n` lines of its log (for error messages).
    pub fn log_tail(&self, n: usize) -> String {
        log_tail(&self.spec.log, n)
    }

    /// SIGTERM, wait up to [`Managed::grace`], then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            self.await_container_removed();
            return;
        }
        // std has no portable SIGTERM; `kill(1)` keeps this crate free of unsafe and libc.
        let termed = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if termed {
            let end = Instant::now() + self.grace;
            while Instant::now() < end {
                if let Ok(Some(_)) = child.try_wait() {
                    tracing::debug!(name = %self.spec.name, "stopped");
                    self.await_container_removed();
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            tracing::warn!(name = %self.spec.name, "did not stop after SIGTERM; killing it");
        }
        self.docker(&["rm", "-f"]);
        let _ = child.kill();
        let _ = child.wait();
        self.await_container_removed();
    }

    /// SIGKILL at once (a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A container: SIGKILL its process (`docker kill`); the client then exits by itself.
            self.docker(&["kill"]);
            let _ = child.kill();
            let _ = child.wait();
            self.await_container_removed();
        }
    }

    /// A container (`--rm`) is removed by docker shortly after it exits: waits (bounded) until
    /// its name is free, so that the component can be started again under it.
    fn await_container_removed(&self) {
        let Some(name) = &self.container else {
            return;
        };
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            let exists = Command::new("docker")
                .args(["container", "inspect", "--format", "{{.Id}}"])
                .arg(name)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !exists {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        tracing::warn!(container = %name, "container still exists 20 s after it was killed");
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `n` lines of a file (empty if unreadable).
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
