#!/usr/bin/env bash
# fetch-deps.sh: download every crate of Cargo.lock on this host into deploy/cargo-home, so that
# `docker build -f deploy/Dockerfile.*` compiles without any network access from the builder
# (the Dockerfiles use deploy/cargo-home when it exists, else they run `cargo fetch` themselves).
#
# Use it where the build containers cannot reach the crate registry but this host's cargo can (a proxy
# that only the host is configured for, a TLS-inspecting egress whose CA only the host trusts,
# an air-gapped builder). deploy/cargo-home is git-ignored; remove it to go back to online builds.
#
# Usage (from anywhere in the source tree): deploy/fetch-deps.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
command -v cargo >/dev/null 2>&1 || { echo "fetch-deps.sh: cargo is not installed" >&2; exit 1; }
cd "$root"
CARGO_HOME="$root/deploy/cargo-home" cargo fetch --locked
# Only the downloaded archives and the index cache are needed; the unpacked sources are not.
rm -rf "$root/deploy/cargo-home/registry/src"
du -sh "$root/deploy/cargo-home/registry" | sed 's/^/fetch-deps.sh: /'
