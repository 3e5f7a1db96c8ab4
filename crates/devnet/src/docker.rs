//! `mpc-devnet --docker TAG`: the same devnet with every component in a container of its image
//! (`mpc-node:TAG`, `mpc-platform:TAG`, `mpc-callback-demo:TAG`, deploy/Dockerfile) instead of a
//! child process of this binary.
//!
//! A [`Spec`] (`mpc-devnet platform start --config …`) becomes `docker run --rm --name … IMAGE
//! start --config …`: the multi-call subcommand picks the image, the rest are the component's own
//! arguments. The containers share the host's network namespace (`--network host`), so the
//! rendered configs, the dev CA's server certificate (127.0.0.1) and the ports in `devnet.json`
//! are used unchanged, and the devnet's directory is mounted at its own absolute path, so every
//! path in them resolves. Each container runs as the owner of that directory with a read-only
//! root filesystem, no capabilities and `no-new-privileges`, without the images' health checks
//! (they assume the /data layout; the devnet checks each component itself). The `docker run` client is the
//! managed child: SIGTERM reaches the container through it (docker's signal proxy) and docker's
//! init (`--init`: a component as PID 1 would ignore signals it has no handler for), and
//! [`crate::process::Managed`] kills or removes the container by name when the client cannot.
//!
//! Images are never pulled: [`Images::ensure_present`] refuses a missing one before anything
//! starts, and every `docker run` has `--pull never`.
//!
//! With separate networks ([`Networks`], `mpc-devnet --docker TAG --docker-networks`) the
//! containers leave the host's network: each node is alone on an internal network of its own
//! (no route out), which the platform joins under the name `platform` (and node a's the
//! callback demo under the name `callback`); the platform and the callback demo also sit on a
//! front network that publishes their ports on 127.0.0.1 only. A node reaches the platform
//! and nothing else, as on a host of its own; `docker network disconnect` cuts it off.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use crate::process::Spec;

/// Why a component cannot run in a container.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The spec is not one of the multi-call components.
    #[error("{name}: no image for the multi-call subcommand {sub:?}")]
    NoImage {
        /// The component.
        name: String,
        /// Its first argument.
        sub: String,
    },
    /// An image is not on this host (it is never pulled).
    #[error(
        "image {image} is not on this host ({detail}); build it with deploy/build-images.sh (images are never pulled)"
    )]
    Missing {
        /// The image.
        image: String,
        /// What docker said.
        detail: String,
    },
    /// A docker command failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// What docker said.
        detail: String,
    },
    /// The devnet directory cannot be read.
    #[error("devnet directory {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The images of the three components (pinned tags, never `latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// `mpc-node:TAG`.
    pub node: String,
    /// `mpc-platform:TAG`.
    pub platform: String,
    /// `mpc-callback-demo:TAG`.
    pub callback: String,
}

impl Images {
    /// The images `mpc-node:TAG`, `mpc-platform:TAG`, `mpc-callback-demo:TAG`.
    pub fn tagged(tag: &str) -> Self {
        Self {
            node: format!("mpc-node:{tag}"),
            platform: format!("mpc-platform:{tag}"),
            callback: format!("mpc-callback-demo:{tag}"),
        }
    }

    /// `(component, image)` for the platform, the callback demo and the nodes of `parties`
    /// (the components' names in [`crate::Cluster::container`]).
    pub fn by_component<'a>(
        &self,
        parties: impl IntoIterator<Item = &'a String>,
    ) -> Vec<(String, String)> {
        let mut v = vec![
            ("platform".to_owned(), self.platform.clone()),
            ("callback".to_owned(), self.callback.clone()),
        ];
        v.extend(
            parties
                .into_iter()
                .map(|p| (format!("node-{p}"), self.node.clone())),
        );
        v
    }

    /// Fails unless all three images are on this host (`docker image inspect`), naming the
    /// first that is not: the devnet never pulls.
    pub fn ensure_present(&self) -> Result<(), DockerError> {
        for image in [&self.platform, &self.node, &self.callback] {
            let out = std::process::Command::new("docker")
                .args(["image", "inspect", "--format", "{{.Id}}"])
                .arg(image)
                .stdin(std::process::Stdio::null())
                .output();
            let detail = match out {
                Ok(o) if o.status.success() => continue,
                Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
                Err(e) => format!("cannot run docker: {e}"),
            };
            return Err(DockerError::Missing {
                image: image.clone(),
                detail,
            });
        }
        Ok(())
    }

    fn for_subcommand(&self, sub: &str) -> Option<&str> {
        match sub {
            "node" => Some(&self.node),
            "platform" => Some(&self.platform),
            "callback-demo" => Some(&self.callback),
            _ => None,
        }
    }
}

/// Where a container runs: the host's network, or one of the devnet's own networks (with
/// aliases, and ports published on 127.0.0.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// `--network host`.
    Host,
    /// `--network NAME --network-alias …`, `--publish 127.0.0.1:P:P` for each port.
    Network {
        /// The network.
        name: String,
        /// Names the container answers to there.
        aliases: Vec<String>,
        /// Ports published on 127.0.0.1 (same number inside).
        publish: Vec<u16>,
    },
}

/// The devnet's own Docker networks (`--docker-networks`): a front network and one internal
/// network per node. Removed on drop (after the containers on them stopped).
#[derive(Debug)]
pub struct Networks {
    prefix: String,
    parties: Vec<String>,
}

fn docker_cmd(args: &[&str]) -> Result<String, DockerError> {
    let out = std::process::Command::new("docker")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| DockerError::Command {
            command: format!("docker {}", args.join(" ")),
            detail: format!("cannot run docker: {e}"),
        })?;
    if !out.status.success() {
        return Err(DockerError::Command {
            command: format!("docker {}", args.join(" ")),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl Networks {
    /// Creates `mpc-devnet-<pid>-front` and `mpc-devnet-<pid>-net-<party>` (internal) for
    /// each party.
    pub fn create(parties: &[String]) -> Result<Self, DockerError> {
        let nets = Networks {
            prefix: format!("mpc-devnet-{}", std::process::id()),
            parties: parties.to_vec(),
        };
        // From here on, drop removes what exists.
        docker_cmd(&["network", "create", &nets.front()])?;
        for p in parties {
            docker_cmd(&["network", "create", "--internal", &nets.of_node(p)])?;
        }
        Ok(nets)
    }

    /// The front network (the platform, the callback demo; ports published on 127.0.0.1).
    pub fn front(&self) -> String {
        format!("{}-front", self.prefix)
    }

    /// Node `party`'s network (internal: no route out).
    pub fn of_node(&self, party: &str) -> String {
        format!("{}-net-{party}", self.prefix)
    }

    /// The parties with a network.
    pub fn parties(&self) -> &[String] {
        &self.parties
    }
}

impl Drop for Networks {
    fn drop(&mut self) {
        let mut left: Vec<String> = self.parties.iter().map(|p| self.of_node(p)).collect();
        left.push(self.front());
        // A stopped container leaves its networks when docker has removed it (`--rm`), a
        // moment later: bounded retries, 10 s in all.
        for _ in 0..40 {
            left.retain(|n| {
                let r = docker_cmd(&["network", "rm", n]);
                matches!(&r, Err(DockerError::Command { detail, .. }) if !detail.contains("No such network") && !detail.contains("not found"))
            });
            if left.is_empty() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        tracing::warn!(networks = %left.join(" "), "docker networks left behind (containers still on them)");
    }
}

/// Joins a running container to `network` under `alias` (`docker network connect`).
pub fn connect(network: &str, container: &str, alias: &str) -> Result<(), DockerError> {
    docker_cmd(&["network", "connect", "--alias", alias, network, container]).map(|_| ())
}

/// Takes a container off `network` (`docker network disconnect`): a cut cable.
pub fn disconnect(network: &str, container: &str) -> Result<(), DockerError> {
    docker_cmd(&["network", "disconnect", network, container]).map(|_| ())
}

/// Whether the container exists (created, running or stopped).
pub fn exists(container: &str) -> bool {
    docker_cmd(&["container", "inspect", "--format", "{{.Id}}", container]).is_ok()
}

/// The container's address on `network`.
pub fn address_on(container: &str, network: &str) -> Result<std::net::IpAddr, DockerError> {
    let format = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
    let out = docker_cmd(&["container", "inspect", "--format", &format, container])?;
    out.parse().map_err(|_| DockerError::Command {
        command: format!("docker inspect {container}"),
        detail: format!("no address on {network}: {out:?}"),
    })
}

/// The networks a container is on.
pub fn networks_of(container: &str) -> Result<Vec<String>, DockerError> {
    let out = docker_cmd(&[
        "container",
        "inspect",
        "--format",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        container,
    ])?;
    Ok(out.split_whitespace().map(str::to_owned).collect())
}

/// The container name of `spec` in the devnet of this process: unique per devnet run, so two
/// devnets on one host never touch each other's containers.
pub fn container_name(spec: &Spec) -> String {
    format!("mpc-devnet-{}-{}", std::process::id(), spec.name)
}

/// `spec` as a `docker run` of its component's image on the host's network; returns it with
/// the container's name. `root` is the devnet directory (absolute), mounted at the same path.
pub fn wrap(spec: &Spec, images: &Images, root: &Path) -> Result<(Spec, String), DockerError> {
    wrap_on(spec, images, root, &Placement::Host)
}

/// [`wrap`] on the network `placement` names.
pub fn wrap_on(
    spec: &Spec,
    images: &Images,
    root: &Path,
    placement: &Placement,
) -> Result<(Spec, String), DockerError> {
    let sub = spec
        .args
        .first()
        .and_then(|a| a.to_str())
        .unwrap_or_default();
    let image = images
        .for_subcommand(sub)
        .ok_or_else(|| DockerError::NoImage {
            name: spec.name.clone(),
            sub: sub.to_owned(),
        })?;
    let meta = std::fs::metadata(root).map_err(|source| DockerError::Dir {
        path: root.display().to_string(),
        source,
    })?;
    let name = container_name(spec);
    let mut volume = root.as_os_str().to_owned();
    volume.push(":");
    volume.push(root.as_os_str());
    let mut args: Vec<OsString> = [
        "run",
        "--rm",
        "--pull",
        "never",
        "--init",
        "--name",
        &name,
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--no-healthcheck",
        "--user",
        &format!("{}:{}", meta.uid(), meta.gid()),
        "--workdir",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(spec.cwd.clone().into_os_string());
    match placement {
        Placement::Host => args.extend(["--network".into(), "host".into()]),
        Placement::Network {
            name,
            aliases,
            publish,
        } => {
            args.extend(["--network".into(), name.into()]);
            for a in aliases {
                args.extend(["--network-alias".into(), a.into()]);
            }
            for p in publish {
                args.extend(["--publish".into(), format!("127.0.0.1:{p}:{p}").into()]);
            }
        }
    }
    args.push("--volume".into());
    args.push(volume);
    for (k, v) in &spec.env {
        let mut kv = OsString::from(k);
        kv.push("=");
        kv.push(v);
        args.push("--env".into());
        args.push(kv);
    }
    args.push(image.into());
    args.extend(spec.args.iter().skip(1).cloned());
    Ok((
        Spec {
            name: spec.name.clone(),
            exe: "docker".into(),
            args,
            cwd: spec.cwd.clone(),
            env: Vec::new(),
            log: spec.log.clone(),
        },
        name,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(sub: &str, dir: &Path) -> Spec {
        Spec {
            name: "node-a".into(),
            exe: "/x/mpc-devnet".into(),
            args: vec![
                sub.into(),
                "start".into(),
                "--config".into(),
                dir.join("node-a/config.toml").into_os_string(),
            ],
            cwd: dir.join("node-a"),
            env: vec![("K".into(), "v w".into())],
            log: dir.join("node-a/node.log"),
        }
    }

    #[test]
    fn a_node_becomes_a_docker_run_of_its_image() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (s, name) = wrap(&spec("node", root), &Images::tagged("0.1.0"), root).unwrap();
        assert_eq!(name, format!("mpc-devnet-{}-node-a", std::process::id()));
        assert_eq!(s.exe, Path::new("docker"));
        let args: Vec<String> = s
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let meta = std::fs::metadata(root).unwrap();
        let r = root.display();
        let want: Vec<String> = vec![
            "run".into(),
            "--rm".into(),
            "--pull".into(),
            "never".into(),
            "--init".into(),
            "--name".into(),
            name.clone(),
            "--read-only".into(),
            "--cap-drop".into(),
            "ALL".into(),
            "--security-opt".into(),
            "no-new-privileges".into(),
            "--no-healthcheck".into(),
            "--user".into(),
            format!("{}:{}", meta.uid(), meta.gid()),
            "--workdir".into(),
            format!("{r}/node-a"),
            "--network".into(),
            "host".into(),
            "--volume".into(),
            format!("{r}:{r}"),
            "--env".into(),
            "K=v w".into(),
            "mpc-node:0.1.0".into(),
            "start".into(),
            "--config".into(),
            format!("{r}/node-a/config.toml"),
        ];
        assert_eq!(args, want);
        assert!(s.env.is_empty());
        assert_eq!(s.log, root.join("node-a/node.log"));
    }

    #[test]
    fn on_a_network_of_its_own_with_aliases_and_loopback_ports() {
        let dir = tempfile::tempdir().unwrap();
        let placement = Placement::Network {
            name: "n1".into(),
            aliases: vec!["platform".into()],
            publish: vec![8443],
        };
        let (s, _) = wrap_on(
            &spec("platform", dir.path()),
            &Images::tagged("1"),
            dir.path(),
            &placement,
        )
        .unwrap();
        let args: Vec<String> = s
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(
            joined.contains("--network n1 --network-alias platform --publish 127.0.0.1:8443:8443"),
            "{joined}"
        );
        assert!(!joined.contains("host"), "{joined}");
    }

    #[test]
    fn each_component_gets_its_image_and_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let images = Images::tagged("1.2.3");
        for (sub, image) in [
            ("platform", "mpc-platform:1.2.3"),
            ("callback-demo", "mpc-callback-demo:1.2.3"),
        ] {
            let (s, _) = wrap(&spec(sub, dir.path()), &images, dir.path()).unwrap();
            assert!(s.args.iter().any(|a| a == image), "{sub}: {:?}", s.args);
        }
        let err = wrap(&spec("frobnicate", dir.path()), &images, dir.path()).unwrap_err();
        assert!(err.to_string().contains("\"frobnicate\""), "{err}");
    }
}
