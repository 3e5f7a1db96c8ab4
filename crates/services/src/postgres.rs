//! A private PostgreSQL server: `initdb` into a fresh directory, `postgres` listening on
//! 127.0.0.1 at a free port (and a Unix socket in the same directory), trust authentication for
//! the superuser `postgres` over loopback only. Durability settings are relaxed (`fsync=off`):
//! this is for tests and the devnet, never for data that matters.
//!
//! PostgreSQL refuses to run as root. When this process is root, the data directory is given to
//! the `postgres` system user (which Debian's package creates) and the server runs as that user.

use std::fs;

use crate::tail;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a private PostgreSQL could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The server binaries are not installed.
    #[error(
        "PostgreSQL server binaries not found (looked for initdb/postgres/psql in \
         /usr/lib/postgresql/*/bin and PATH): install Debian's `postgresql` package \
         (`./dev.sh setup test` does)"
    )]
    NotInstalled,
    /// Running as root, but there is no `postgres` user to run the server as.
    #[error(
        "this process runs as root and PostgreSQL refuses root; no `postgres` user in /etc/passwd \
         to run it as (Debian's `postgresql` package creates one)"
    )]
    NoServiceUser,
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
    /// A PostgreSQL program failed.
    #[error("{program} failed ({status}): {output}")]
    Program {
        /// Which program.
        program: String,
        /// Its exit status.
        status: String,
        /// The end of its output.
        output: String,
    },
    /// The server did not accept connections in time.
    #[error("PostgreSQL at 127.0.0.1:{port} did not answer within {secs} s; its log: {log}")]
    NotReady {
        /// The port.
        port: u16,
        /// Seconds waited.
        secs: u64,
        /// The end of the server log.
        log: String,
    },
    /// A database name that is not a plain identifier.
    #[error("database name {0:?}: use lowercase letters, digits and '_' only")]
    BadName(String),
}

/// Where the PostgreSQL programs are.
#[derive(Debug, Clone)]
struct Binaries {
    initdb: PathBuf,
    postgres: PathBuf,
    psql: PathBuf,
}

impl Binaries {
    fn find() -> Result<Self, PostgresError> {
        // Debian: /usr/lib/postgresql/<major>/bin; the newest major wins.
        let mut dirs: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse::<u32>().ok()?;
                Some((major, e.path().join("bin")))
            })
            .collect();
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path).map(|p| (0, p)));
        }
        // Newest Debian major first, then PATH in order (a stable sort).
        dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
        for (_, dir) in dirs {
            let b = Binaries {
                initdb: dir.join("initdb"),
                postgres: dir.join("postgres"),
                psql: dir.join("psql"),
            };
            if b.initdb.is_file() && b.postgres.is_file() {
                let psql = if b.psql.is_file() {
                    b.psql
                } else {
                    PathBuf::from("/usr/bin/psql")
                };
                if psql.is_file() {
                    return Ok(Binaries { psql, ..b });
                }
            }
        }
        Err(PostgresError::NotInstalled)
    }
}

/// The user the server runs as: `None` for this process's own user.
fn service_user() -> Result<Option<(u32, u32)>, PostgresError> {
    let me = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1);
    if me != 0 {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").map_err(|source| PostgresError::Io {
        what: "read",
        path: "/etc/passwd".into(),
        source,
    })?;
    passwd
        .lines()
        .find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() > 3 && f[0] == "postgres")
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
        .map(Some)
        .ok_or(PostgresError::NoServiceUser)
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> PostgresError + 'a {
    move |source| PostgresError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// A running private PostgreSQL server; stopped on drop, and its directory removed unless it
/// was started with [`Postgres::start_kept`].
#[derive(Debug)]
pub struct Postgres {
    bins: Binaries,
    user: Option<(u32, u32)>,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    kept: bool,
}

impl Postgres {
    /// `initdb` a fresh cluster in a new directory under the system's temporary directory and
    /// starts it on a free loopback port.
    pub fn start() -> Result<Self, PostgresError> {
        let bins = Binaries::find()?;
        let user = service_user()?;
        let mut id = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
        let dir = std::env::temp_dir().join(format!("mpc-postgres-{}", hex::encode(id)));
        fs::create_dir(&dir).map_err(io("create", &dir))?;
        let mut pg = Postgres {
            bins,
            user,
            dir,
            port: 0,
            child: None,
            kept: false,
        };
        // From here on, drop removes the directory whatever fails.
        pg.initdb()?;
        pg.port = free_port().map_err(io("bind a free port on", Path::new("127.0.0.1")))?;
        pg.spawn()?;
        tracing::info!(port = pg.port, dir = %pg.dir.display(), "private PostgreSQL started");
        Ok(pg)
    }

    /// Starts a server whose data lives in `dir` and outlives it (the devnet's database): the
    /// first start creates `dir` and runs `initdb`, later starts reuse the data. Listens on
    /// 127.0.0.1:`port` (0: a free port). Drop stops the server and keeps `dir`.
    ///
    /// When this process is root the server runs as the `postgres` user, which must be able to
    /// reach `dir`: every directory above it needs search permission for others
    /// ([`Postgres::reachable_by_service_user`] tells beforehand).
    pub fn start_kept(dir: &Path, port: u16) -> Result<Self, PostgresError> {
        let bins = Binaries::find()?;
        let user = service_user()?;
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(io("create", dir))?;
        }
        let dir = dir.canonicalize().map_err(io("resolve", dir))?;
        let mut pg = Postgres {
            bins,
            user,
            dir,
            port,
            child: None,
            kept: true,
        };
        if !pg.data_dir().join("PG_VERSION").is_file() {
            pg.initdb()?;
        }
        if pg.port == 0 {
            pg.port = free_port().map_err(io("bind a free port on", Path::new("127.0.0.1")))?;
        }
        pg.spawn()?;
        tracing::info!(port = pg.port, dir = %pg.dir.display(), "PostgreSQL started on kept data");
        Ok(pg)
    }

    /// Whether a server started by this process could use `dir`: true unless this process is
    /// root and some directory above `dir` denies others the search permission (the server
    /// then runs as `postgres` and could not enter it).
    pub fn reachable_by_service_user(dir: &Path) -> bool {
        if !matches!(service_user(), Ok(Some(_))) {
            return true;
        }
        let mut d = match dir.canonicalize() {
            Ok(d) => d,
            Err(_) => match dir.parent().and_then(|p| p.canonicalize().ok()) {
                Some(p) => p.join("x"),
                None => return false,
            },
        };
        while let Some(parent) = d.parent() {
            match fs::metadata(parent) {
                Ok(m) if m.permissions().mode() & 0o001 != 0 => {}
                _ => return false,
            }
            d = parent.to_path_buf();
        }
        true
    }

    /// The directory holding the data, the socket and `server.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the data directory (0700, owned by the service user) and runs `initdb` in it.
    fn initdb(&mut self) -> Result<(), PostgresError> {
        let data = self.data_dir();
        fs::create_dir(&data).map_err(io("create", &data))?;
        for d in [&self.dir, &data] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o700)).map_err(io("chmod", d))?;
            if let Some((uid, gid)) = self.user {
                std::os::unix::fs::chown(d, Some(uid), Some(gid)).map_err(io("chown", d))?;
            }
        }
        let pg = &*self;
        let out = pg
            .command(&pg.bins.initdb)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-N",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .output()
            .map_err(io("run", &pg.bins.initdb))?;
        if !out.status.success() {
            return Err(PostgresError::Program {
                program: "initdb".into(),
                status: out.status.to_string(),
                output: tail(&[out.stdout, out.stderr].concat()),
            });
        }
        Ok(())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.stdin(Stdio::null()).env("LC_ALL", "C");
        if let Some((uid, gid)) = self.user {
            c.uid(uid).gid(gid).current_dir(&self.dir);
        }
        c
    }

    fn spawn(&mut self) -> Result<(), PostgresError> {
        let log_path = self.log_file();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io("open", &log_path))?;
        if let Some((uid, gid)) = self.user {
            std::os::unix::fs::chown(&log_path, Some(uid), Some(gid))
                .map_err(io("chown", &log_path))?;
        }
        let err = log.try_clone().map_err(io("open", &log_path))?;
        let child = self
            .command(&self.bins.postgres)
            .arg("-D")
            .arg(self.data_dir())
            .arg("-k")
            .arg(&self.dir)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=200"])
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(io("run", &self.bins.postgres))?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(30))
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), PostgresError> {
        let start = Instant::now();
        // Bounded: at most `limit`, polling every 50 ms.
        while start.elapsed() < limit {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(PostgresError::Program {
                    program: "postgres".into(),
                    status: status.to_string(),
                    output: self.log_tail(),
                });
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() && self.psql("SELECT 1").is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(PostgresError::NotReady {
            port: self.port,
            secs: limit.as_secs(),
            log: self.log_tail(),
        })
    }

    fn log_tail(&self) -> String {
        tail(&fs::read(self.log_file()).unwrap_or_default())
    }

    /// Runs one SQL command as the superuser on database `postgres`.
    pub fn psql(&self, sql: &str) -> Result<String, PostgresError> {
        self.psql_on("postgres", sql)
    }

    /// Runs one SQL command as the superuser on `database`; the rows as `psql -At` prints them
    /// (fields separated by `|`).
    pub fn psql_on(&self, database: &str, sql: &str) -> Result<String, PostgresError> {
        let out = self
            .command(&self.bins.psql)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", database, "-X", "-q", "-A", "-t"])
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .map_err(io("run", &self.bins.psql))?;
        if !out.status.success() {
            return Err(PostgresError::Program {
                program: "psql".into(),
                status: out.status.to_string(),
                output: tail(&out.stderr),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A connection URL for `database` as the superuser (trust authentication on loopback).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, PostgresError> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(PostgresError::BadName(name.into()));
        }
        self.psql(&format!("CREATE DATABASE {name}"))?;
        Ok(self.url(name))
    }

    /// Stops the server (fast shutdown: open sessions are ended) and waits for it.
    pub fn stop(&mut self) {
        // SIGINT is PostgreSQL's "fast shutdown".
        crate::stop_child(&mut self.child, "-INT", Duration::from_secs(20));
    }

    /// Stops and starts the server on the same port and data (a database restart, as a fault).
    pub fn restart(&mut self) -> Result<(), PostgresError> {
        self.stop();
        self.spawn()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        if !self.kept {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_restarts_and_cleans_up() {
        let mut pg = Postgres::start().expect("start a private PostgreSQL");
        let dir = pg.dir.clone();
        let url = pg.create_database("t_one").unwrap();
        assert!(url.ends_with("/t_one"), "{url}");
        assert_eq!(pg.psql("SELECT 40 + 2").unwrap(), "42");
        assert!(matches!(
            pg.create_database("bad; DROP"),
            Err(PostgresError::BadName(_))
        ));
        pg.psql("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)")
            .unwrap();
        pg.restart().unwrap();
        assert_eq!(pg.psql("SELECT v FROM kept").unwrap(), "7");
        drop(pg);
        assert!(!dir.exists(), "the data directory is removed on drop");
    }

    /// A kept directory survives drop and is reused, data and all, by the next start.
    #[test]
    fn a_kept_directory_keeps_its_data_across_starts() {
        let mut id = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
        let parent = std::env::temp_dir().join(format!("mpc-kept-test-{}", hex::encode(id)));
        fs::create_dir(&parent).unwrap();
        // The service user (when root) must reach it.
        fs::set_permissions(&parent, fs::Permissions::from_mode(0o711)).unwrap();
        let dir = parent.join("db");
        assert!(Postgres::reachable_by_service_user(&dir));
        let pg = Postgres::start_kept(&dir, 0).unwrap();
        pg.psql("CREATE TABLE kept (v int); INSERT INTO kept VALUES (9)")
            .unwrap();
        let port = pg.port();
        drop(pg);
        assert!(dir.join("data").join("PG_VERSION").is_file());
        let pg = Postgres::start_kept(&dir, port).unwrap();
        assert_eq!(pg.port(), port);
        assert_eq!(pg.psql("SELECT v FROM kept").unwrap(), "9");
        drop(pg);
        fs::remove_dir_all(&parent).unwrap();
    }
}
