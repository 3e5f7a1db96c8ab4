#!/usr/bin/env bash
# make-base-image.sh: build the two base images the Dockerfiles need, without a container registry.
#
#   local/debian:bookworm-slim  a minimal Debian bookworm made by debootstrap (runtime base)
#   local/rust:bookworm         that base + C build tools + a Rust toolchain (builder base)
#
# Then build the project's images with:
#   docker build --build-arg RUST_IMAGE=local/rust:bookworm \
#                --build-arg BASE_IMAGE=local/debian:bookworm-slim \
#                -f deploy/Dockerfile --target node -t mpc-node:0.1.0 .
#
# Usage: deploy/make-base-image.sh [base|rust|all]   (default: all)
#
# Environment (all optional):
#   BASE_TAG        tag of the Debian image            (default local/debian:bookworm-slim)
#   RUST_TAG        tag of the builder image           (default local/rust:bookworm)
#   SUITE           Debian suite                       (default bookworm)
#   DEBIAN_MIRROR   mirror for debootstrap and apt     (default: debootstrap's default mirror)
#   WORK_DIR        scratch folder (rootfs, contexts)  (default /var/tmp/mpc-base-image)
#   RUST_SOURCE     host | rustup                      (default host)
#       host:   copy the host's toolchain (`rustc --print sysroot`, without share/doc) into the
#               image. Works on machines that cannot download a toolchain.
#       rustup: download rustup-init from RUSTUP_INIT_URL (required: the Rust project's
#               rustup-init for x86_64-unknown-linux-gnu) inside the image and install
#               RUST_VERSION (needs that download to be reachable).
#   RUST_TOOLCHAIN_DIR  toolchain to copy in host mode (default: `rustc --print sysroot`)
#   RUST_VERSION    toolchain for rustup mode          (default 1.90.0)
#   BUILD_NETWORK   --network for `docker build`       (default: docker's bridge; set host where
#                   the bridge cannot reach the Debian mirror)
#
# Needs: root (debootstrap), docker, and debootstrap (installed with apt-get if missing).
set -euo pipefail

BASE_TAG=${BASE_TAG:-local/debian:bookworm-slim}
RUST_TAG=${RUST_TAG:-local/rust:bookworm}
SUITE=${SUITE:-bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-}
RUSTUP_INIT_URL=${RUSTUP_INIT_URL:-}
WORK_DIR=${WORK_DIR:-/var/tmp/mpc-base-image}
RUST_SOURCE=${RUST_SOURCE:-host}
RUST_VERSION=${RUST_VERSION:-1.90.0}
BUILD_NETWORK=${BUILD_NETWORK:-default}

die() { printf 'make-base-image.sh: %s\n' "$*" >&2; exit 1; }
say() { printf '==> %s\n' "$*"; }
warn() { printf 'make-base-image.sh: warning: %s\n' "$*" >&2; }

need_docker() {
    command -v docker >/dev/null 2>&1 || die "docker is not installed"
    docker info >/dev/null 2>&1 || die "cannot talk to the Docker daemon (is it running? are you in the docker group?)"
}

make_base() {
    [ "$(id -u)" -eq 0 ] || die "debootstrap needs root: run as root (or with sudo)"
    if ! command -v debootstrap >/dev/null 2>&1; then
        say "installing debootstrap"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    fi
    local rootfs="$WORK_DIR/rootfs-$SUITE"
    rm -rf "$rootfs"
    mkdir -p "$rootfs"
    say "debootstrap --variant=minbase $SUITE into $rootfs${DEBIAN_MIRROR:+ (from $DEBIAN_MIRROR)}"
    # Without DEBIAN_MIRROR, debootstrap uses its own default mirror.
    local -a mirror_arg=()
    [ -z "$DEBIAN_MIRROR" ] || mirror_arg=("$DEBIAN_MIRROR")
    debootstrap --variant=minbase "$SUITE" "$rootfs" ${mirror_arg[@]+"${mirror_arg[@]}"} \
        >"$WORK_DIR/debootstrap.log" 2>&1 \
        || { tail -n 20 "$WORK_DIR/debootstrap.log" >&2; die "debootstrap failed (log: $WORK_DIR/debootstrap.log)"; }

    # The same sources as the official image: main + updates + security, on the mirror that
    # debootstrap used (its security archive is the sibling "-security" path of a ".../debian").
    local mirror
    mirror=$(awk '$1 == "deb" { print $2; exit }' "$rootfs/etc/apt/sources.list")
    [ -n "$mirror" ] || die "cannot read the mirror from $rootfs/etc/apt/sources.list"
    {
        echo "deb $mirror $SUITE main"
        echo "deb $mirror $SUITE-updates main"
        case $mirror in
        */debian | */debian/) echo "deb ${mirror%/}-security $SUITE-security main" ;;
        *) warn "no security archive known for the mirror $mirror: add one to /etc/apt/sources.list of the image" ;;
        esac
    } >"$rootfs/etc/apt/sources.list"
    # Slim like debian:*-slim: no docs/man/locales from later installs, no apt caches.
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
    echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
    rm -rf "${rootfs:?}"/var/lib/apt/lists/* "${rootfs:?}"/var/cache/apt/* "${rootfs:?}"/usr/share/doc/* \
        "${rootfs:?}"/usr/share/man/* "${rootfs:?}"/usr/share/info/* "${rootfs:?}"/var/log/*.log \
        "${rootfs:?}"/tmp/* "${rootfs:?}"/dev/*
    : >"$rootfs/etc/machine-id"

    say "docker import -> $BASE_TAG"
    tar --numeric-owner -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        --message "debootstrap --variant=minbase $SUITE ($DEBIAN_MIRROR)" \
        - "$BASE_TAG" >/dev/null
    rm -rf "$rootfs"
    docker image ls "$BASE_TAG"
}

make_rust() {
    docker image inspect "$BASE_TAG" >/dev/null 2>&1 || die "$BASE_TAG does not exist: run '$0 base' first"
    local ctx="$WORK_DIR/rust-context"
    rm -rf "$ctx"
    mkdir -p "$ctx"
    local toolchain_step
    case "$RUST_SOURCE" in
    host)
        local sysroot=${RUST_TOOLCHAIN_DIR:-}
        if [ -z "$sysroot" ]; then
            command -v rustc >/dev/null 2>&1 || die "no rustc on this host: set RUST_TOOLCHAIN_DIR or RUST_SOURCE=rustup"
            sysroot=$(rustc --print sysroot)
        fi
        if [ ! -x "$sysroot/bin/rustc" ] || [ ! -x "$sysroot/bin/cargo" ]; then
            die "$sysroot is not a toolchain with bin/rustc and bin/cargo"
        fi
        say "copying the host toolchain $sysroot ($("$sysroot/bin/rustc" --version)) without share/doc"
        mkdir -p "$ctx/toolchain"
        tar -C "$sysroot" -c --exclude=./share/doc --exclude=./share/zsh . | tar -C "$ctx/toolchain" -x
        # shellcheck disable=SC2016 # "$b" is for the Dockerfile's shell, not this one
        toolchain_step='COPY toolchain/ /usr/local/rustup/toolchains/host/
RUN mkdir -p /usr/local/cargo/bin \
 && for b in /usr/local/rustup/toolchains/host/bin/*; do ln -s "$b" /usr/local/cargo/bin/; done \
 && rustc --version && cargo --version'
        ;;
    rustup)
        [ -n "$RUSTUP_INIT_URL" ] || die "RUST_SOURCE=rustup needs RUSTUP_INIT_URL: the URL of the Rust project's rustup-init for x86_64-unknown-linux-gnu"
        say "the image will download rustup-init and install Rust $RUST_VERSION"
        toolchain_step="RUN curl --proto '=https' --tlsv1.2 -sSf -o /tmp/rustup-init '$RUSTUP_INIT_URL' \\
 && chmod +x /tmp/rustup-init \\
 && /tmp/rustup-init -y --no-modify-path --profile minimal --default-toolchain $RUST_VERSION \\
 && rm /tmp/rustup-init && rustc --version && cargo --version"
        ;;
    *) die "RUST_SOURCE must be host or rustup, not '$RUST_SOURCE'" ;;
    esac

    cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $BASE_TAG
# What the official rust:*-bookworm image offers a build: a C toolchain, m4 (bundled GMP),
# pkg-config, git, curl, CA certificates.
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      build-essential m4 pkg-config git curl ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup \\
    CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
$toolchain_step
DOCKERFILE
    say "docker build -> $RUST_TAG (context $ctx)"
    DOCKER_BUILDKIT=0 docker build --network "$BUILD_NETWORK" -t "$RUST_TAG" "$ctx"
    rm -rf "$ctx"
    docker image ls "$RUST_TAG"
}

main() {
    local what=${1:-all}
    need_docker
    mkdir -p "$WORK_DIR"
    case "$what" in
    base) make_base ;;
    rust) make_rust ;;
    all) make_base; make_rust ;;
    -h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
    *) die "unknown target '$what' (base, rust, all)" ;;
    esac
}

main "$@"
