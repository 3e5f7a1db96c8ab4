//! A network namespace of the test's own, joined to the host by a veth pair: a node started in
//! it ([`NetNs::wrap`]) reaches the host, and so the platform, only over that link, which
//! [`NetNs::cut`] takes down and [`NetNs::restore`] brings back — a real network cut, not a
//! mock. The link's addresses are a free /30 in 10.200.0.0/13, used by nothing else on the
//! host. Deleted on drop (the veth pair goes with it).
//!
//! Needs root (CAP_NET_ADMIN) and iproute2's `ip`.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::process::Spec;

/// Why the namespace could not be made or changed.
#[derive(Debug, thiserror::Error)]
pub enum NetNsError {
    /// `ip` failed.
    #[error("`{command}` failed: {stderr}{hint}")]
    Ip {
        /// The command line.
        command: String,
        /// Its error output.
        stderr: String,
        /// What usually causes it.
        hint: &'static str,
    },
    /// No free /30 found.
    #[error("no free /30 in 10.200.0.0/13 for the link")]
    NoSubnet,
}

/// A network namespace with one veth link to the host.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    host_if: String,
    host_ip: Ipv4Addr,
    ns_ip: Ipv4Addr,
}

fn ip(args: &[&str]) -> Result<String, NetNsError> {
    let command = format!("ip {}", args.join(" "));
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NetNsError::Ip {
            command: command.clone(),
            stderr: e.to_string(),
            hint: " (install iproute2)",
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        let hint = if stderr.contains("Operation not permitted") || stderr.contains("permission") {
            " (network namespaces need root, CAP_NET_ADMIN: run as root)"
        } else {
            ""
        };
        return Err(NetNsError::Ip {
            command,
            stderr,
            hint,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl NetNs {
    /// Creates the namespace (`mpcdev-<random>`), the veth pair, their addresses, and brings
    /// the link and the namespace's loopback up.
    pub fn create() -> Result<Self, NetNsError> {
        let mut r = [0u8; 4];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut r);
        let tag = hex::encode(&r[..3]);
        // Addresses in use on the host: the link's /30 must not overlap any.
        let used = ip(&["-4", "-o", "addr", "show"])?;
        let (host_ip, ns_ip) = (0..64u16)
            .map(|i| {
                let x = u16::from_be_bytes([r[2], r[3]]).wrapping_add(i.wrapping_mul(7919));
                // 10.200.0.0/13: second octet 200..207.
                let b = 200 + (x >> 13) as u8 % 8;
                let c = (x >> 5) as u8;
                let d = ((x & 0x1f) as u8) * 4;
                (
                    Ipv4Addr::new(10, b, c, d + 1),
                    Ipv4Addr::new(10, b, c, d + 2),
                )
            })
            .find(|(h, _)| {
                let o = h.octets();
                !used.contains(&format!("inet {}.{}.{}.", o[0], o[1], o[2]))
            })
            .ok_or(NetNsError::NoSubnet)?;
        let ns = NetNs {
            name: format!("mpcdev-{tag}"),
            host_if: format!("mpv{tag}h"),
            host_ip,
            ns_ip,
        };
        let ns_if = format!("mpv{tag}n");
        ip(&["netns", "add", &ns.name])?;
        // From here on, drop deletes what was made.
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns_if,
        ])?;
        ip(&["link", "set", &ns_if, "netns", &ns.name])?;
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &ns.host_if])?;
        ip(&["link", "set", &ns.host_if, "up"])?;
        ip(&[
            "-n",
            &ns.name,
            "addr",
            "add",
            &format!("{ns_ip}/30"),
            "dev",
            &ns_if,
        ])?;
        ip(&["-n", &ns.name, "link", "set", &ns_if, "up"])?;
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        tracing::info!(netns = %ns.name, host = %host_ip, inside = %ns_ip, "network namespace created");
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host's end of the link (what a process inside reaches the host at).
    pub fn host_ip(&self) -> Ipv4Addr {
        self.host_ip
    }

    /// The namespace's end of the link (what the host reaches a process inside at).
    pub fn ns_ip(&self) -> Ipv4Addr {
        self.ns_ip
    }

    /// `spec` run inside the namespace (`ip netns exec NAME EXE ARGS…`, which execs in place:
    /// the process id is the program's).
    pub fn wrap(&self, spec: Spec) -> Spec {
        let mut args: Vec<std::ffi::OsString> = vec![
            "netns".into(),
            "exec".into(),
            self.name.clone().into(),
            spec.exe.clone().into_os_string(),
        ];
        args.extend(spec.args);
        Spec {
            exe: "ip".into(),
            args,
            ..spec
        }
    }

    /// Takes the link down: nothing crosses until [`NetNs::restore`] (connections stall; no
    /// reset is sent).
    pub fn cut(&self) -> Result<(), NetNsError> {
        ip(&["link", "set", &self.host_if, "down"]).map(|_| ())
    }

    /// Brings the link up again.
    pub fn restore(&self) -> Result<(), NetNsError> {
        ip(&["link", "set", &self.host_if, "up"]).map(|_| ())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root, like the scale tests that use it (CI runs as root).
    #[test]
    fn a_namespace_reaches_the_host_until_cut() {
        let ns = NetNs::create().unwrap();
        let host = std::net::TcpListener::bind((ns.host_ip(), 0)).unwrap();
        let port = host.local_addr().unwrap().port();
        let probe = |timeout: &str| {
            Command::new("ip")
                .args(["netns", "exec", ns.name(), "timeout", timeout, "bash", "-c"])
                .arg(format!("echo > /dev/tcp/{}/{port}", ns.host_ip()))
                .status()
                .unwrap()
                .success()
        };
        assert!(probe("5"), "the namespace does not reach the host");
        ns.cut().unwrap();
        assert!(!probe("2"), "the cut link still carries");
        ns.restore().unwrap();
        assert!(probe("5"), "the restored link does not carry");
        let name = ns.name().to_owned();
        drop(ns);
        assert!(!ip(&["netns", "list"]).unwrap().contains(&name));
    }
}
