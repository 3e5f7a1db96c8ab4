//! The files of a devnet directory (docs/platform.md, "Devnet"):
//!
//! ```text
//! DIR/devnet.json                  ports and ids, reused by the next start
//! DIR/ca.crt ca.key                dev CA (ca.key 0600)
//! DIR/tls/server.crt server.key    server certificate for 127.0.0.1 / localhost
//! DIR/platform/platform.toml platform.db audit.log logs/
//! DIR/platform/audit-coordinator-1.log …   with --scale: one audit log per coordinator process
//! DIR/platform/task-signing.key (0600) task-signing.pub.pem   the coordinator's task key
//! DIR/platform/logs/coordinator-1.out proxy-1.out …   with --scale: one log per process
//! DIR/postgres/data server.log     with --scale: the platform's PostgreSQL (kept between starts)
//! DIR/node-a/config.toml asset.db audit.log password (0600) logs/     … node-b, node-c
//! DIR/callback/policy.toml server.key server.pub.pem node-a.pub.pem data/ logs/
//! DIR/api/admin.key api-user.key (hex PKCS#8 DER, 0600) api-user.pub
//! DIR/test-primes.json             only with --test-primes
//! DIR/report.json                  default --report target of the tests
//! ```

use std::path::{Path, PathBuf};

/// Paths inside one devnet directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The directory.
    pub dir: PathBuf,
}

impl Layout {
    /// The layout of `dir` (made absolute against the current directory).
    pub fn new(dir: &Path) -> Self {
        let dir = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|c| c.join(dir))
                .unwrap_or_else(|_| dir.to_path_buf())
        };
        Self { dir }
    }
    /// `devnet.json`.
    pub fn state(&self) -> PathBuf {
        self.dir.join("devnet.json")
    }
    /// `ca.crt`.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    /// `ca.key`.
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    /// `tls/`.
    pub fn tls_dir(&self) -> PathBuf {
        self.dir.join("tls")
    }
    /// `tls/server.crt`.
    pub fn server_cert(&self) -> PathBuf {
        self.tls_dir().join("server.crt")
    }
    /// `tls/server.key`.
    pub fn server_key(&self) -> PathBuf {
        self.tls_dir().join("server.key")
    }
    /// `platform/`.
    pub fn platform_dir(&self) -> PathBuf {
        self.dir.join("platform")
    }
    /// `platform/platform.toml`.
    pub fn platform_config(&self) -> PathBuf {
        self.platform_dir().join("platform.toml")
    }
    /// `platform/task-signing.key` (PEM PKCS#8, 0600): signs every task.
    pub fn platform_task_key(&self) -> PathBuf {
        self.platform_dir().join("task-signing.key")
    }
    /// `platform/task-signing.pub.pem`: the public key every node pins.
    pub fn platform_task_pub(&self) -> PathBuf {
        self.platform_dir().join("task-signing.pub.pem")
    }
    /// `node-<party>/`.
    pub fn node_dir(&self, party: &str) -> PathBuf {
        self.dir.join(format!("node-{party}"))
    }
    /// `node-<party>/config.toml`.
    pub fn node_config(&self, party: &str) -> PathBuf {
        self.node_dir(party).join("config.toml")
    }
    /// `node-<party>/password` (0600).
    pub fn node_password(&self, party: &str) -> PathBuf {
        self.node_dir(party).join("password")
    }
    /// `callback/`.
    pub fn callback_dir(&self) -> PathBuf {
        self.dir.join("callback")
    }
    /// `callback/policy.toml`.
    pub fn callback_policy(&self) -> PathBuf {
        self.callback_dir().join("policy.toml")
    }
    /// `callback/server.key` (PEM PKCS#8, 0600).
    pub fn callback_key(&self) -> PathBuf {
        self.callback_dir().join("server.key")
    }
    /// `callback/server.pub.pem`.
    pub fn callback_pub(&self) -> PathBuf {
        self.callback_dir().join("server.pub.pem")
    }
    /// `callback/node-<party>.pub.pem`: the public key of the node the server guards.
    pub fn callback_node_pub(&self, party: &str) -> PathBuf {
        self.callback_dir().join(format!("node-{party}.pub.pem"))
    }
    /// `api/`.
    pub fn api_dir(&self) -> PathBuf {
        self.dir.join("api")
    }
    /// `api/admin.key`.
    pub fn admin_key(&self) -> PathBuf {
        self.api_dir().join("admin.key")
    }
    /// `api/api-user.key`.
    pub fn api_user_key(&self) -> PathBuf {
        self.api_dir().join("api-user.key")
    }
    /// `api/api-user.pub` (the `BIZ-API-KEY`, hex DER SPKI).
    pub fn api_user_pub(&self) -> PathBuf {
        self.api_dir().join("api-user.pub")
    }
    /// `postgres/`: the data of a scaled devnet's PostgreSQL (kept between starts).
    pub fn postgres_dir(&self) -> PathBuf {
        self.dir.join("postgres")
    }
    /// `test-primes.json`.
    pub fn test_primes(&self) -> PathBuf {
        self.dir.join("test-primes.json")
    }
    /// `report.json`.
    pub fn report(&self) -> PathBuf {
        self.dir.join("report.json")
    }
    /// `<dir>/logs/<name>.out`: a process's stdout and stderr.
    pub fn process_log(dir: &Path, name: &str) -> PathBuf {
        dir.join("logs").join(format!("{name}.out"))
    }
}
