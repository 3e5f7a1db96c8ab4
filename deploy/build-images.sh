#!/usr/bin/env bash
# build-images.sh: the images mpc-node, mpc-platform and mpc-callback-demo from binaries that
# are built already (no Rust compilation, no crate registry: CI builds them from the test
# build's binaries).
#
#   deploy/build-images.sh --from-target target/debug            # all three
#   deploy/build-images.sh --from-target target/release node     # only mpc-node
#
# For each image: `docker build --target <image>-base` of deploy/Dockerfile (the runtime: base
# image, ca-certificates + curl, user mpc, HEALTHCHECK, entrypoint; an empty context and no
# per-revision build argument, so it is cached after the first build; tagged
# local/mpc-runtime:<image>), then one layer with the binary copied in (debug information
# stripped when `objcopy` is there: a debug build's binary is mostly that) and the version and
# revision labels, then a `--version` run of the image that must print that version. Tags: NAME:VERSION and NAME:VERSION-REV (REV = the first 12
# digits of the git revision), VERSION being the version the binary prints. The images carry the
# OCI labels org.opencontainers.image.version / .revision.
#
# Options:
#   --from-target DIR  folder holding mpc-node, mpc-platform, mpc-callback-demo (required). A
#                      binary that is missing there is taken from DIR/mpc-devnet, the multi-call
#                      binary (`mpc-devnet platform ...` runs the platform's own command line):
#                      the image then holds mpc-devnet in /usr/local/lib/mpc and a two-line
#                      /usr/local/bin/mpc-platform that execs it. (`cargo test --workspace`
#                      builds no mpc-platform binary: the crate has no integration test.)
#   --base IMAGE       runtime base (default: $BASE_IMAGE, else local/debian:bookworm-slim when
#                      that exists, else debian:bookworm-slim)
#   --revision REV     git revision for the label (default: `git rev-parse HEAD`, "-dirty"
#                      appended when tracked files differ from it)
#   --revision-tag-only  tag NAME:VERSION-REV only (leaves NAME:VERSION as it is; CI)
#   IMAGE...           node, platform, callback-demo (default: all three)
# Prints one line per image: "built NAME:TAG (IMAGE-ID)". Ends with "images: TAG..." on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

die() { printf 'build-images.sh: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

from=
base=${BASE_IMAGE:-}
revision=${REVISION:-}
version_tag=1
images=()
while [ "$#" -gt 0 ]; do
    case $1 in
    --from-target) [ "$#" -ge 2 ] || die "--from-target needs a folder"; from=$2; shift 2 ;;
    --base) [ "$#" -ge 2 ] || die "--base needs an image"; base=$2; shift 2 ;;
    --revision) [ "$#" -ge 2 ] || die "--revision needs a value"; revision=$2; shift 2 ;;
    --revision-tag-only) version_tag=0; shift ;;
    -h | --help) usage; exit 0 ;;
    node | platform | callback-demo) images+=("$1"); shift ;;
    *) die "unknown argument '$1' (--help)" ;;
    esac
done
[ -n "$from" ] || die "--from-target DIR is required (the folder of the built binaries, e.g. target/debug)"
[ -d "$from" ] || die "$from is not a folder"
[ "${#images[@]}" -gt 0 ] || images=(node platform callback-demo)

command -v docker >/dev/null 2>&1 || die "docker is not installed"
docker info >/dev/null 2>&1 || die "cannot talk to the Docker daemon"
if [ -z "$base" ]; then
    if docker image inspect local/debian:bookworm-slim >/dev/null 2>&1; then
        base=local/debian:bookworm-slim
    else
        base=debian:bookworm-slim
    fi
fi
# The classic builder where the docker CLI has no buildx (BuildKit needs it).
if [ -z "${DOCKER_BUILDKIT:-}" ] && ! docker buildx version >/dev/null 2>&1; then
    export DOCKER_BUILDKIT=0
fi
if [ -z "$revision" ]; then
    revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null) || die "no git revision: give --revision"
    if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
        revision=$revision-dirty
    fi
fi
case $revision in *[!0-9A-Za-z._-]*) die "'$revision' is not a revision" ;; esac

ctx=$(mktemp -d "${TMPDIR:-/tmp}/build-images.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/empty"
tags=()
for image in "${images[@]}"; do
    bin=mpc-$image
    sub=${image}
    if [ -x "$from/$bin" ]; then
        run=("$from/$bin")
        src=$from/$bin
    elif [ -x "$from/mpc-devnet" ]; then
        run=("$from/mpc-devnet" "$sub")
        src=$from/mpc-devnet
    else
        die "$from/$bin is not an executable, nor is $from/mpc-devnet (build one: cargo build --locked -p $bin)"
    fi
    # The version the binary itself reports ("mpc-node 0.1.0").
    version=$("${run[@]}" --version | awk '{ print $2; exit }')
    case $version in '' | *[!0-9A-Za-z.+-]*) die "$from/$bin --version printed no version" ;; esac

    # The same for every revision (labels come with the binary below), so cached; tagged so
    # that removing the images (CI does) keeps it.
    runtime=local/mpc-runtime:$image
    docker build -q -f "$here/Dockerfile" --target "$image-base" --build-arg "BASE_IMAGE=$base" \
        -t "$runtime" "$ctx/empty" >/dev/null \
        || die "building the runtime of $bin (target $image-base on $base) failed"

    # The context: the files at their places under root/, added in one COPY layer.
    rm -rf "${ctx:?}/bin"
    if [ "$src" = "$from/$bin" ]; then
        dest=$ctx/bin/root/usr/local/bin/$bin
    else
        dest=$ctx/bin/root/usr/local/lib/mpc/mpc-devnet
        mkdir -p "$ctx/bin/root/usr/local/bin"
        printf '#!/bin/sh\n# %s: the multi-call binary mpc-devnet runs its command line\nexec /usr/local/lib/mpc/mpc-devnet %s "$@"\n' \
            "$bin" "$sub" >"$ctx/bin/root/usr/local/bin/$bin"
        chmod 0755 "$ctx/bin/root/usr/local/bin/$bin"
    fi
    mkdir -p "${dest%/*}"
    if command -v objcopy >/dev/null 2>&1; then
        objcopy --strip-debug "$src" "$dest"
    else
        cp "$src" "$dest"
    fi
    chmod 0755 "$dest"
    printf 'FROM %s\nCOPY root/ /\n' "$runtime" >"$ctx/bin/Dockerfile"
    tag=$bin:$version
    revtag=$bin:$version-${revision:0:12}
    case $revision in *-dirty) revtag=$revtag-dirty ;; esac
    tagargs=(-t "$revtag")
    [ "$version_tag" = 0 ] || tagargs+=(-t "$tag")
    docker build -q "${tagargs[@]}" \
        --label "org.opencontainers.image.version=$version" \
        --label "org.opencontainers.image.revision=$revision" "$ctx/bin" >/dev/null \
        || die "adding $bin to its image failed"
    # The binary runs in the image (libraries, architecture) and is the version it is labelled.
    got=$(docker run --rm --network none --read-only "$revtag" --version 2>&1) \
        || die "$revtag: '$bin --version' fails in the image: $got"
    [ "$got" = "$bin $version" ] || die "$revtag: '$bin --version' says '$got', not '$bin $version'"
    echo "built $revtag$([ "$version_tag" = 0 ] || echo " = $tag") ($(docker image inspect -f '{{.Id}}' "$revtag" | cut -c1-19), $(docker image inspect -f '{{.Size}}' "$revtag" | awk '{ printf "%d MB", $1 / 1000000 }'))"
    tags+=("$revtag")
done
echo "images: ${tags[*]}"
