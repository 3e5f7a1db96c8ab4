#!/usr/bin/env bash
# test-fresh-machine.sh: README's commands on a fresh machine, in a container.
#
# The container is a minimal Debian made by debootstrap (deploy/make-base-image.sh base: the
# essential packages and apt; no compiler, no m4, no openssl) with nothing of the host but the
# Rust toolchain, the crate registry (containers here cannot reach crates.io) and this
# repository, each mounted at the same path as on the host. In it:
#
#   1. as a user without root and without sudo, `./dev.sh setup` refuses, naming what is missing
#      and why it cannot install it;
#   2. as root, `./dev.sh setup devnet` (the set-up of README's first command) installs what is
#      missing, and with only that set-up the whole workspace builds as README's test command
#      builds it: `cargo test --workspace --locked --no-run` (every binary, mpc-devnet among
#      them, and every test binary);
#   3. `./dev.sh setup test` adds what the tests need, and `./dev.sh check test` then passes;
#   4. the built devnet runs once on the container's own loopback, as README's first command
#      does: `mpc-devnet --once` (DKLs23 ECDSA, the platform's default: no Paillier primes and
#      no test primes; keys, every algorithm and sign_type, each signature verified).
#
# The build goes to the repository's own target/ at the host's path with the host's toolchain
# path, so a later `cargo test --workspace --locked` on the host (.ci/run) reuses it instead of
# compiling the workspace a second time. (README's first command builds with --release; the
# profile changes optimisation flags, not what the build needs from the system.)
#
# Usage: deploy/test-fresh-machine.sh
# Environment (optional):
#   BASE_TAG           the minbase image (default local/debian:bookworm-slim; made when missing)
#   FRESH_NETWORK      docker network for the container (default: bridge). apt-get needs a
#                      Debian mirror from inside the container; set `host` where the bridge
#                      cannot reach one
#   FRESH_SKIP_RUN=1   skip step 4
# Needs: docker, root (to make the base image), rustc/cargo on the host with the crates fetched
# (`cargo fetch --locked`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
BASE_TAG=${BASE_TAG:-local/debian:bookworm-slim}
FRESH_NETWORK=${FRESH_NETWORK:-bridge}

die() { printf 'test-fresh-machine.sh: %s\n' "$*" >&2; exit 1; }
say() { printf '==> %s\n' "$*"; }

command -v docker >/dev/null 2>&1 || die "docker is not installed"
docker info >/dev/null 2>&1 || die "cannot talk to the Docker daemon"
sysroot=$(rustc --print sysroot) || die "no rustc on this host"
[ -x "$sysroot/bin/cargo" ] || die "$sysroot/bin/cargo missing: the toolchain must have cargo"
cargo_home=${CARGO_HOME:-$HOME/.cargo}
[ -d "$cargo_home/registry" ] || die "$cargo_home/registry missing: run 'cargo fetch --locked' first"
(cd "$repo" && cargo fetch --locked >/dev/null) || die "cargo fetch --locked failed on the host"

if ! docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
    say "making $BASE_TAG (debootstrap; a few minutes)"
    BASE_TAG=$BASE_TAG "$here/make-base-image.sh" base
fi

name=mpc-fresh-machine-$$
cleanup() { docker rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT

# Toolchain (read-only), registry and repository at the host's paths, and the host's cargo
# config if there is one (it can change build settings, which must match for the reuse); nothing
# else of the host.
cargo_config=()
for f in "$cargo_home/config.toml" "$cargo_home/config"; do
    if [ -f "$f" ]; then cargo_config+=(-v "$f:$f:ro"); fi
done
# .ci/run lints while it builds (clippy-driver as the workspace's rustc wrapper): pass that on, so
# the build here is the one its test step reuses.
lint_env=()
for v in RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS; do
    if [ -n "${!v:-}" ]; then lint_env+=(-e "$v=${!v}"); fi
done
say "container from $BASE_TAG with the host's toolchain ($("$sysroot/bin/rustc" --version))"
docker run -d --name "$name" --network "$FRESH_NETWORK" \
    -v "$sysroot:$sysroot:ro" \
    -v "$cargo_home/registry:$cargo_home/registry" \
    -v "$repo:$repo" ${cargo_config[@]+"${cargo_config[@]}"} \
    -e PATH="$sysroot/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    -e CARGO_HOME="$cargo_home" -e CARGO_NET_OFFLINE=true -e CARGO_TERM_COLOR=never \
    ${lint_env[@]+"${lint_env[@]}"} \
    "$BASE_TAG" sleep infinity >/dev/null
in_container() { docker exec "$@"; }

say "the machine has no C compiler, no m4, no openssl:"
in_container "$name" sh -c 'for c in cc make m4 openssl; do if command -v $c >/dev/null; then echo "  $c: present"; else echo "  $c: missing"; fi; done'
if in_container "$name" sh -c 'command -v cc || command -v m4' >/dev/null; then
    die "$BASE_TAG already has cc or m4: it does not stand for a fresh machine"
fi

say "1. without root or sudo, ./dev.sh setup refuses and says why"
in_container "$name" useradd -m newcomer
# The toolchain is mounted under the container's /root (the host's paths): let the user reach it.
in_container "$name" chmod 755 /root
set +e
out=$(in_container -u newcomer -w "$repo" "$name" ./dev.sh setup 2>&1)
rc=$?
set -e
printf '%s\n' "$out" | sed 's/^/    /'
[ "$rc" -eq 1 ] || die "step 1: expected exit status 1, got $rc"
grep -q "installing needs root, and sudo is not installed" <<<"$out" || die "step 1: no clear reason"
grep -q "m4 (package m4): GMP's configure" <<<"$out" || die "step 1: m4 not named"

say "2. ./dev.sh setup devnet, then the workspace builds (the longest step)"
start=$(date +%s)
in_container -w "$repo" "$name" ./dev.sh setup devnet
in_container -w "$repo" "$name" cargo test --workspace --locked --no-run
say "   built in $(($(date +%s) - start)) s"

say "3. ./dev.sh setup test, then ./dev.sh check test"
in_container -w "$repo" "$name" ./dev.sh setup test
in_container -w "$repo" "$name" ./dev.sh check test

if [ "${FRESH_SKIP_RUN:-}" != 1 ]; then
    say "4. the devnet, once, on the container's loopback"
    in_container -w "$repo" "$name" timeout 900 target/debug/mpc-devnet --once --dir /tmp/devnet \
        | tail -n 14
fi
say "fresh machine: ok"
