//! A private NATS server: Debian's `nats-server` listening on 127.0.0.1 at a free port, with a
//! config file of its own in a fresh directory (no authentication: loopback only; a maximum
//! payload large enough for the platform's biggest delivery). For tests and the devnet.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The maximum message payload the private server accepts (the platform's largest bus message
/// is a 2 MiB task frame plus a little framing).
pub const MAX_PAYLOAD: usize = 4 * 1024 * 1024;

/// Why a private NATS server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The server binary is not installed.
    #[error(
        "nats-server not found (looked in PATH, /usr/bin and /usr/sbin): install Debian's \
         `nats-server` package (`./dev.sh setup test` does)"
    )]
    NotInstalled,
    /// A file system step failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The server did not accept clients in time (or exited).
    #[error("nats-server at 127.0.0.1:{port} did not answer within {secs} s; its log: {log}")]
    NotReady {
        /// The port.
        port: u16,
        /// Seconds waited.
        secs: u64,
        /// The end of the server log.
        log: String,
    },
    /// The monitoring page did not hold the counters.
    #[error("nats-server's /varz on 127.0.0.1:{port}: {reason}")]
    Monitor {
        /// The monitoring port.
        port: u16,
        /// What was wrong.
        reason: String,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> NatsError + 'a {
    move |source| NatsError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// A running private NATS server; stopped and its directory removed on drop.
#[derive(Debug)]
pub struct NatsServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    monitor_port: u16,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server on a free loopback port with a config file in a new directory under the
    /// system's temporary directory.
    pub fn start() -> Result<Self, NatsError> {
        Self::start_on(0)
    }

    /// [`NatsServer::start`] on 127.0.0.1:`port` (0: a free port).
    pub fn start_on(port: u16) -> Result<Self, NatsError> {
        let bin = find_binary().ok_or(NatsError::NotInstalled)?;
        let mut id = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
        let dir = std::env::temp_dir().join(format!("mpc-nats-{}", hex::encode(id)));
        fs::create_dir(&dir).map_err(io("create", &dir))?;
        let mut server = NatsServer {
            bin,
            dir,
            port: 0,
            monitor_port: 0,
            child: None,
        };
        // From here on, drop removes the directory whatever fails.
        server.port = if port != 0 {
            port
        } else {
            TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(io("bind a free port on", Path::new("127.0.0.1")))?
                .port()
        };
        // The monitoring endpoint (/varz: message counters), on loopback.
        server.monitor_port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(io("bind a free port on", Path::new("127.0.0.1")))?
            .port();
        let config = server.dir.join("nats.conf");
        fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor}\nmax_payload: {MAX_PAYLOAD}\nlog_file: {log:?}\n",
                port = server.port,
                monitor = server.monitor_port,
                log = server.log_file().display().to_string(),
            ),
        )
        .map_err(io("write", &config))?;
        server.spawn()?;
        tracing::info!(port = server.port, dir = %server.dir.display(), "private nats-server started");
        Ok(server)
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("nats.log")
    }

    fn spawn(&mut self) -> Result<(), NatsError> {
        let config = self.dir.join("nats.conf");
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io("run", &self.bin))?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(20))
    }

    /// Ready when a client connection gets the server's `INFO` line.
    fn wait_ready(&mut self, limit: Duration) -> Result<(), NatsError> {
        let start = Instant::now();
        // Bounded: at most `limit`, polling every 50 ms.
        while start.elapsed() < limit {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                break;
            }
            if let Ok(s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let mut line = String::new();
                if BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("INFO ") {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(NatsError::NotReady {
            port: self.port,
            secs: limit.as_secs(),
            log: self.log_tail(),
        })
    }

    fn log_tail(&self) -> String {
        crate::tail(&fs::read(self.log_file()).unwrap_or_default())
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Messages the server received from and sent to clients since it started (`in_msgs`,
    /// `out_msgs` of its `/varz` monitoring page).
    pub fn message_counts(&self) -> Result<(u64, u64), NatsError> {
        let mut s = TcpStream::connect(("127.0.0.1", self.monitor_port))
            .map_err(io("connect to the monitoring port of", &self.dir))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        std::io::Write::write_all(
            &mut s,
            b"GET /varz HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .map_err(io("query /varz of", &self.dir))?;
        let mut body = String::new();
        std::io::Read::read_to_string(&mut s, &mut body).map_err(io("read /varz of", &self.dir))?;
        let field = |name: &str| -> Option<u64> {
            let at = body.find(&format!("\"{name}\":"))? + name.len() + 3;
            let digits: String = body[at..]
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        };
        match (field("in_msgs"), field("out_msgs")) {
            (Some(i), Some(o)) => Ok((i, o)),
            _ => Err(NatsError::Monitor {
                port: self.monitor_port,
                reason: "no in_msgs/out_msgs in the page".into(),
            }),
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s) and waits for it.
    pub fn stop(&mut self) {
        crate::stop_child(&mut self.child, "-TERM", Duration::from_secs(10));
    }

    /// Stops and starts the server on the same port (a bus restart, as a fault). Messages in
    /// flight are lost: core NATS keeps nothing.
    pub fn restart(&mut self) -> Result<(), NatsError> {
        self.stop();
        self.spawn()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A client gets `INFO` with the configured payload limit and `PONG` to `PING`; after a
    /// restart on the same port, again; the directory is gone after drop.
    #[test]
    fn starts_answers_restarts_and_cleans_up() {
        let mut s = NatsServer::start().unwrap();
        let ping = |port: u16| {
            let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut info = String::new();
            reader.read_line(&mut info).unwrap();
            assert!(
                info.contains(&format!("\"max_payload\":{MAX_PAYLOAD}")),
                "{info}"
            );
            (&stream)
                .write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
                .unwrap();
            let mut pong = String::new();
            reader.read_line(&mut pong).unwrap();
            assert_eq!(pong, "PONG\r\n");
        };
        ping(s.port());
        let (in_msgs, out_msgs) = s.message_counts().unwrap();
        assert_eq!((in_msgs, out_msgs), (0, 0), "no client published yet");
        let port = s.port();
        s.restart().unwrap();
        assert_eq!(s.port(), port);
        ping(port);
        let dir = s.dir.clone();
        drop(s);
        assert!(!dir.exists());
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
