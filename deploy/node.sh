#!/usr/bin/env bash
# node.sh: manage one mpc-node (the MPC co-signer node) from the directory that holds its
# config.toml, like the guide's node.sh. Run `./node.sh help` for the commands.
#
# Two modes:
#   docker (default)      the node runs in a container of NODE_IMAGE; this directory is mounted
#                         at /data (= /tmp/mpc-node, the guide's in-container path) and the local
#                         API is published on 127.0.0.1:PORT only.
#   NODE_SH_MODE=native   the node runs as a background process of the mpc-node binary
#                         (MPC_NODE_BIN); for hosts without Docker and for tests.
#
# Passwords are never handled by this script: init, unseal, reset and cmreset run the node's own
# CLI (`mpc-node init|unseal|reset|cmreset`), which prompts without echo on a terminal and reads
# one password (or share) per line from standard input otherwise.
# Run by `sh node.sh`: go on in bash (arrays, pipefail, /dev/tcp).
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

PROG=${0##*/}
NODE_SH_MODE=${NODE_SH_MODE:-docker}
NODE_DIR=${NODE_DIR:-$PWD}
NODE_CONFIG=${NODE_CONFIG:-config.toml}
# The release this node.sh belongs to: the image it runs unless NODE_IMAGE says otherwise. Never
# an implicit "latest": an image reference must pin a version tag or a digest.
NODE_SH_VERSION=0.1.0
NODE_IMAGE=${NODE_IMAGE:-mpc-node:$NODE_SH_VERSION}
NODE_NAME=${NODE_NAME:-mpc-node}
NODE_PORT=${NODE_PORT:-}
NODE_SH_USER=${NODE_SH_USER:-}
NODE_SH_TIMEOUT=${NODE_SH_TIMEOUT:-30}
MPC_NODE_BIN=${MPC_NODE_BIN:-mpc-node}
DEFAULT_NAME=mpc-node
DEFAULT_PORT=10080
# Where NODE_DIR appears inside the container (the image links /tmp/mpc-node to it).
CTR_DIR=/data
LABEL=io.mpc-cosigner.node

die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit 1
}
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }

usage() {
    cat <<EOF
Usage: $PROG COMMAND [NAME [PORT]]

Manages the mpc-node whose config.toml is in the current directory (NODE_DIR).

Commands:
  start    start (or restart) the node; it comes up sealed. Prints the instance name and the
           local API address (127.0.0.1:$DEFAULT_PORT by default)
  init     first run: set the node password (asked twice, no echo; t > 1: one share per call
           of the node) and create the node key; prints the node id and public key
  unseal   unlock the key store with the password after every start
  info     node id, callback public key and state (uninitialized, sealed, unsealed)
  reset    password change, step 1: enter the current password
  cmreset  password change, step 2: enter the new password (twice)
  stop     stop the node (and remove its container)
  status   is the node running, and its info
  check    check the environment (Docker, permissions, image, port) and config.toml
  logs     the node's output (docker mode: docker logs --tail 200)
  help     this text

NAME names another instance (default $DEFAULT_NAME), PORT its local API port on 127.0.0.1
(default $DEFAULT_PORT for $DEFAULT_NAME, else the first free port from 10081). One directory
holds one node: give every instance its own directory with its own config.toml.

Without a terminal, init/unseal/reset/cmreset read the password(s) from standard input, one
per line, e.g. for automation:  printf '%s\\n' "\$PW" | $PROG unseal

Environment:
  NODE_SH_MODE   docker (default) or native
  NODE_DIR       the node's directory (default: the current directory)
  NODE_CONFIG    config file name in NODE_DIR (default config.toml)
  NODE_IMAGE     docker: image to run, pinned: NAME:VERSION or NAME@sha256:DIGEST (default
                 mpc-node:$NODE_SH_VERSION); never pulled by node.sh, never "latest"
  NODE_NAME      default instance name (default $DEFAULT_NAME)
  NODE_PORT      default local API port on 127.0.0.1
  NODE_SH_USER   docker: uid:gid the node runs as (default: the owner of NODE_DIR)
  NODE_SH_TIMEOUT seconds to wait for the node to answer after start / to stop (default 30)
  MPC_NODE_BIN   native: the mpc-node binary (default: mpc-node on PATH)
EOF
}

# ---------------------------------------------------------------- common helpers

valid_name() {
    case $1 in
    '' | -* | *[!A-Za-z0-9_.-]*) return 1 ;;
    *) return 0 ;;
    esac
}

valid_port() {
    case $1 in
    '' | *[!0-9]*) return 1 ;;
    esac
    [ "$1" -ge 1 ] && [ "$1" -le 65535 ]
}

config_file() { printf '%s/%s\n' "$NODE_DIR" "$NODE_CONFIG"; }

need_config() {
    [ -d "$NODE_DIR" ] || die "$NODE_DIR is not a directory"
    [ -f "$(config_file)" ] || die "no $NODE_CONFIG in $NODE_DIR (run $PROG from the node's directory, or set NODE_DIR)"
    [ -r "$(config_file)" ] || die "$(config_file) is not readable"
}

# `[storage] unseal-server-address` of config.toml (the guide's default when absent). A plain
# text read: `mpc-node check` is the real validation.
config_listen() {
    local a
    a=$(sed -n 's/^[[:space:]]*unseal-server-address[[:space:]]*=[[:space:]]*["'\'']\([^"'\'']*\)["'\''].*/\1/p' "$(config_file)" | head -n 1)
    printf '%s\n' "${a:-0.0.0.0:8080}"
}

# Whether stdin is a terminal: then the node's CLI prompts; otherwise it reads stdin.
stdin_is_tty() { [ -t 0 ]; }

# Is something listening on 127.0.0.1:$1?
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------- check

CHECK_FAILS=0
# check_line ok|WARN|FAIL WHAT TEXT: one line of `check`, in the node's own check format.
check_line() {
    printf '%-5s %s: %s\n' "$1" "$2" "$3"
    [ "$1" != FAIL ] || CHECK_FAILS=$((CHECK_FAILS + 1))
}

# `[storage] db-file-path` of config.toml (default asset.db), relative to the node directory.
config_db() {
    local a
    a=$(sed -n 's/^[[:space:]]*db-file-path[[:space:]]*=[[:space:]]*["'\'']\([^"'\'']*\)["'\''].*/\1/p' "$(config_file)" | head -n 1)
    printf '%s\n' "${a:-asset.db}"
}

# The node directory: owned by the user the node runs as (never root), not writable by others,
# and what the node writes there (the key store, its journal, logs) belongs to that user.
check_dir() {
    local dir=$1 user=$2 mode=$3 owner perms uid db f bad=""
    owner=$(stat -c '%u:%g' "$dir")
    uid=${user%%:*}
    perms=$(stat -c '%a' "$dir")
    if [ "$uid" = 0 ] && [ "$mode" = docker ]; then
        check_line FAIL directory "$dir is owned by root, and the node does not run as root: 'chown -R 10001:10001 $dir' (the image's user) or another user, or set NODE_SH_USER=uid:gid"
        return
    fi
    if [ "${owner%%:*}" != "$uid" ]; then
        check_line FAIL directory "$dir belongs to uid ${owner%%:*}, the node runs as $uid: 'chown -R $user $dir'"
        return
    fi
    case $perms in
    *[2367]? | *[2367])
        check_line FAIL directory "$dir (mode $perms) is writable by other users, who could replace the key store: 'chmod go-w $dir'"
        return
        ;;
    esac
    db=$(config_db)
    case $db in /tmp/mpc-node/* | /data/*) db=${db#/tmp/mpc-node/}; db=${db#/data/} ;; esac
    case $db in /*) ;; *) db=$dir/$db ;; esac
    for f in "$db" "$db"-* "$dir/logs" "$dir"/logs/*; do
        [ -e "$f" ] || continue
        if [ "$(stat -c '%u' "$f")" != "$uid" ]; then
            bad=$f
            break
        fi
    done
    if [ -n "$bad" ]; then
        check_line FAIL directory "$bad belongs to uid $(stat -c '%u' "$bad"), not to $uid who runs the node (after a change of user or image?): 'chown -R $user $dir'"
        return
    fi
    check_line ok directory "$dir (owner $owner, mode $perms); the node runs as $user"
}

# The image: pinned, on this host, not running as root, and its labels match its binary.
check_image() {
    local tag user label_version version revision
    case $NODE_IMAGE in
    *@sha256:* | sha256:*) ;;
    *)
        tag=$(image_tag "$NODE_IMAGE")
        if [ -z "$tag" ] || [ "$tag" = latest ]; then
            check_line FAIL image "$NODE_IMAGE is not pinned (no tag, or \"latest\", changes under a running node): use a version, e.g. mpc-node:$NODE_SH_VERSION, or a digest, NAME@sha256:..."
            return 1
        fi
        ;;
    esac
    if ! docker image inspect "$NODE_IMAGE" >/dev/null 2>&1; then
        check_line FAIL image "$NODE_IMAGE is not on this host (node.sh never pulls): build it with deploy/build-images.sh or 'docker build -f deploy/Dockerfile --target node -t $NODE_IMAGE .', or 'docker load' it"
        return 1
    fi
    user=$(docker image inspect -f '{{.Config.User}}' "$NODE_IMAGE")
    case ${user%%:*} in
    '' | 0 | root)
        check_line FAIL image "$NODE_IMAGE runs as root (USER '${user}'): use an image built from deploy/Dockerfile"
        return 1
        ;;
    esac
    label_version=$(image_label version)
    revision=$(image_label revision)
    version=$(docker run --rm --network none --read-only --entrypoint mpc-node "$NODE_IMAGE" --version 2>/dev/null | awk '{ print $2; exit }' || true)
    if [ -z "$version" ]; then
        check_line FAIL image "$NODE_IMAGE: 'mpc-node --version' does not run in it"
        return 1
    fi
    if [ -n "$label_version" ] && [ "$label_version" != "$version" ]; then
        check_line FAIL image "$NODE_IMAGE is labelled version $label_version but holds mpc-node $version"
        return 1
    fi
    case $NODE_IMAGE in
    *@sha256:* | sha256:*) tag= ;;
    *) tag=$(image_tag "$NODE_IMAGE") ;;
    esac
    case $tag in
    [0-9]*)
        case $tag in
        "$version" | "$version"-* | "$version"+*) ;;
        *)
            check_line FAIL image "$NODE_IMAGE: the tag says $tag, the image holds mpc-node $version"
            return 1
            ;;
        esac
        ;;
    esac
    if [ "$version" != "$NODE_SH_VERSION" ]; then
        check_line WARN image "mpc-node $version in the image, this node.sh is of $NODE_SH_VERSION"
    fi
    check_line ok image "$NODE_IMAGE ($(image_id | cut -c1-19)), mpc-node $version, revision ${revision:-unknown}, user $user"
}

# ---------------------------------------------------------------- docker mode

docker_ok() {
    command -v docker >/dev/null 2>&1 || die "Docker is not installed (see Docker's installation guide); or use NODE_SH_MODE=native"
    local err
    if ! err=$(docker info 2>&1 >/dev/null); then
        case $err in
        *ermission*) die "no permission to use Docker: run as root (sudo $PROG ...) or join the docker group" ;;
        *) die "cannot reach the Docker daemon: ${err%%$'\n'*}" ;;
        esac
    fi
}

# The tag of an image reference ("" when it has none; a registry's ":port" is not a tag).
image_tag() {
    local ref=${1%%@*} last
    last=${ref##*/}
    case $last in *:*) printf '%s\n' "${last##*:}" ;; esac
}

# Refuses an unpinned image reference: without a tag or digest docker means "latest", which
# changes under a deployment (and the reference product pulls it on every start).
image_pinned() {
    case $NODE_IMAGE in
    *@sha256:*) return 0 ;;
    sha256:*) return 0 ;;
    esac
    case $(image_tag "$NODE_IMAGE") in
    '') die "NODE_IMAGE=$NODE_IMAGE is not pinned (no tag means \"latest\"): give a version, e.g. mpc-node:$NODE_SH_VERSION, or a digest, NAME@sha256:..." ;;
    latest) die "NODE_IMAGE=$NODE_IMAGE is not pinned: \"latest\" changes under a running node; give a version, e.g. mpc-node:$NODE_SH_VERSION, or a digest, NAME@sha256:..." ;;
    esac
}

# The image is pinned and here (node.sh never pulls: build it, or `docker load` it).
image_ok() {
    image_pinned
    docker image inspect "$NODE_IMAGE" >/dev/null 2>&1 \
        || die "image $NODE_IMAGE is not on this host (node.sh never pulls): build it from the source tree with 'deploy/build-images.sh' or 'docker build -f deploy/Dockerfile --target node -t $NODE_IMAGE .' (deploy/README.md), 'docker load' it, or set NODE_IMAGE"
}

image_id() { docker image inspect -f '{{.Id}}' "$NODE_IMAGE"; }

image_label() {
    docker image inspect -f "{{index .Config.Labels \"org.opencontainers.image.$1\"}}" "$NODE_IMAGE" 2>/dev/null || true
}

ctr_exists() { docker container inspect "$1" >/dev/null 2>&1; }

ctr_running() {
    [ "$(docker container inspect -f '{{.State.Running}}' "$1" 2>/dev/null || true)" = true ]
}

ctr_label() {
    docker container inspect -f "{{index .Config.Labels \"$LABEL.$2\"}}" "$1" 2>/dev/null || true
}

need_running() {
    ctr_running "$1" || die "mpc-node instance $1 is not running: run '$PROG start${2:+ $1}' first"
}

# uid:gid for the container: the owner of NODE_DIR, never root unless asked for.
run_user() {
    if [ -n "$NODE_SH_USER" ]; then
        printf '%s\n' "$NODE_SH_USER"
        return
    fi
    local owner
    owner=$(stat -c '%u:%g' "$NODE_DIR")
    if [ "${owner%%:*}" = 0 ]; then
        die "$NODE_DIR is owned by root, and the node does not run as root. Give the directory to the user the node should run as (e.g. 'chown -R 10001:10001 $NODE_DIR', the image's user) or set NODE_SH_USER=uid:gid"
    fi
    printf '%s\n' "$owner"
}

# First port from 10081 that no container publishes and nothing listens on.
free_port() {
    local p used
    used=$(docker ps --format '{{.Ports}}' 2>/dev/null || true)
    for p in $(seq 10081 10180); do
        case $used in *":$p->"*) continue ;; esac
        port_in_use "$p" || {
            printf '%s\n' "$p"
            return
        }
    done
    die "no free port in 10081-10180: give one, '$PROG start NAME PORT'"
}

docker_wait_ready() {
    local name=$1 i=0
    while [ "$i" -lt "$NODE_SH_TIMEOUT" ]; do
        if ! ctr_running "$name" \
            || [ "$(docker container inspect -f '{{.RestartCount}}' "$name" 2>/dev/null || echo 0)" != 0 ]; then
            docker stop -t 5 "$name" >/dev/null 2>&1 || true
            docker logs --tail 30 "$name" >&2 2>&1 || true
            die "mpc-node instance $name exited during start (its last output is above; the container is stopped: '$PROG check', then '$PROG start')"
        fi
        if docker exec "$name" mpc-node info --config "$CTR_DIR/$NODE_CONFIG" >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
        i=$((i + 1))
    done
    docker logs --tail 30 "$name" >&2 2>&1 || true
    die "mpc-node instance $name did not answer within ${NODE_SH_TIMEOUT}s"
}

docker_start() {
    local name=$1 port=$2 dir listen cport user other image
    docker_ok
    image_ok
    # What runs is the image checked here, by id, even if the tag moves meanwhile.
    image=$(image_id)
    need_config
    dir=$(cd "$NODE_DIR" && pwd -P)
    listen=$(config_listen)
    cport=${listen##*:}
    valid_port "$cport" || die "$(config_file): [storage] unseal-server-address = \"$listen\" has no port"
    case ${listen%:*} in
    127.* | localhost | '[::1]')
        die "$(config_file): [storage] unseal-server-address = \"$listen\" is loopback inside the container and cannot be published; use \"0.0.0.0:$cport\" (node.sh publishes it on this host's 127.0.0.1 only)"
        ;;
    esac
    user=$(run_user)
    # One directory, one node: the key store must never be opened by two nodes.
    other=$(docker ps -a --filter "label=$LABEL.dir=$dir" --format '{{.Names}}' | grep -vx -- "$name" | head -n 1 || true)
    [ -z "$other" ] || die "$dir is already the directory of instance $other: stop it first ('$PROG stop $other'), or give this instance its own directory"
    # Validate before touching a running instance: a bad config must not take a working node down.
    local report
    if ! report=$(docker run --rm --user "$user" --volume "$dir:$CTR_DIR" --network none \
        --read-only "$image" check --config "$CTR_DIR/$NODE_CONFIG" 2>&1); then
        printf '%s\n' "$report" >&2
        die "not started: 'mpc-node check' refused the configuration or the directory (above); a running $name, if any, was left as it is"
    fi
    if ctr_exists "$name"; then
        local odir
        odir=$(ctr_label "$name" dir)
        [ "$odir" = "$dir" ] || die "container $name already exists and is not the node of $dir${odir:+ (it is of $odir)}"
        if [ -z "$port" ]; then
            port=$(ctr_label "$name" port)
        fi
        docker rm -f "$name" >/dev/null
    fi
    if [ -z "$port" ]; then
        if [ "$name" = "$DEFAULT_NAME" ]; then port=$DEFAULT_PORT; else port=$(free_port); fi
    fi
    valid_port "$port" || die "'$port' is not a port"
    if port_in_use "$port"; then
        die "127.0.0.1:$port is in use: stop what listens there, or choose another port ('$PROG start $name PORT')"
    fi
    local -a env=() logopts=()
    # Bounded container logs where the daemon keeps them in files (json-file, local).
    case $(docker info -f '{{.LoggingDriver}}' 2>/dev/null || true) in
    json-file | local) logopts=(--log-opt max-size=50m --log-opt max-file=3) ;;
    esac
    if [ -n "${MPC_NODE_INSECURE_FAST_KDF:-}" ]; then
        warn "MPC_NODE_INSECURE_FAST_KDF is set: passing it to the node (test-only key derivation, never for real keys)"
        env=(-e MPC_NODE_INSECURE_FAST_KDF)
    fi
    echo "mpc-node instance name: $name, unseal server address: 127.0.0.1:$port"
    # Read-only root filesystem: the node writes only /data (its directory, also TMPDIR).
    docker run -d --name "$name" \
        --restart always \
        --user "$user" \
        --label "$LABEL.dir=$dir" --label "$LABEL.port=$port" --label "$LABEL.image=$NODE_IMAGE" \
        --volume "$dir:$CTR_DIR" \
        --publish "127.0.0.1:$port:$cport" \
        --read-only \
        ${logopts[@]+"${logopts[@]}"} \
        --security-opt no-new-privileges --cap-drop ALL \
        ${env[@]+"${env[@]}"} \
        "$image" start --config "$CTR_DIR/$NODE_CONFIG"
    docker_wait_ready "$name"
    echo "mpc-node server address: 127.0.0.1:$port"
}

# init, unseal, reset, cmreset: the node's own CLI inside the container.
docker_secret_cmd() {
    local cmd=$1 name=$2
    docker_ok
    need_running "$name" "$3"
    if stdin_is_tty; then
        docker exec -it "$name" mpc-node "$cmd" --config "$CTR_DIR/$NODE_CONFIG"
    else
        docker exec -i "$name" mpc-node "$cmd" --config "$CTR_DIR/$NODE_CONFIG" --password-stdin
    fi
}

docker_info() {
    docker_ok
    need_running "$1" "$2"
    docker exec "$1" mpc-node info --config "$CTR_DIR/$NODE_CONFIG"
}

docker_stop() {
    local name=$1
    docker_ok
    if ! ctr_exists "$name"; then
        echo "mpc-node instance $name is not running"
        return 0
    fi
    docker stop -t "$NODE_SH_TIMEOUT" "$name" >/dev/null
    docker rm "$name" >/dev/null
    echo "mpc-node instance $name stopped"
}

docker_status() {
    local name=$1
    docker_ok
    if ! ctr_running "$name"; then
        echo "mpc-node instance $name: not running"
        return 3
    fi
    local started health port
    started=$(docker container inspect -f '{{.State.StartedAt}}' "$name")
    health=$(docker container inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}}' "$name")
    port=$(ctr_label "$name" port)
    echo "mpc-node instance $name: running since $started (health: $health), image $(ctr_label "$name" image) ($(docker container inspect -f '{{.Image}}' "$name" | cut -c1-19)), dir $(ctr_label "$name" dir), unseal server address: 127.0.0.1:${port:-?}"
    docker exec "$name" mpc-node info --config "$CTR_DIR/$NODE_CONFIG"
}

docker_check() {
    local name=$1 port=$2 dir user="" id="" rc=0 listen tag
    CHECK_FAILS=0
    docker_ok
    check_line ok docker "$(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?') (daemon reachable)"
    check_image && id=$(image_id)
    need_config
    dir=$(cd "$NODE_DIR" && pwd -P)
    if [ -n "$NODE_SH_USER" ]; then
        user=$NODE_SH_USER
    else
        user=$(stat -c '%u:%g' "$dir")
    fi
    check_dir "$dir" "$user" docker
    listen=$(config_listen)
    case ${listen%:*} in
    127.* | localhost | '[::1]')
        check_line FAIL config "[storage] unseal-server-address = \"$listen\" is loopback inside the container and cannot be published; use \"0.0.0.0:${listen##*:}\""
        ;;
    *) check_line ok config "unseal-server-address $listen in the container" ;;
    esac
    if ctr_running "$name"; then
        tag=$(ctr_label "$name" image)
        check_line ok instance "$name is running (127.0.0.1:$(ctr_label "$name" port), image $tag)"
        if [ "$(docker container inspect -f '{{.Image}}' "$name")" != "$id" ]; then
            check_line WARN instance "$name runs another image than $NODE_IMAGE: '$PROG start' switches to it (the keys stay)"
        fi
        docker exec "$name" mpc-node check --config "$CTR_DIR/$NODE_CONFIG" || rc=1
    else
        port=${port:-$DEFAULT_PORT}
        if [ "$name" = "$DEFAULT_NAME" ] || [ -n "$2" ]; then
            if port_in_use "$port"; then
                check_line FAIL port "127.0.0.1:$port is in use: stop what listens there, or choose another port ('$PROG start $name PORT')"
            else
                check_line ok port "127.0.0.1:$port is free"
            fi
        fi
        if [ -n "$id" ] && [ "$CHECK_FAILS" -eq 0 ]; then
            docker run --rm --user "$user" --volume "$dir:$CTR_DIR" --network none --read-only \
                "$id" check --config "$CTR_DIR/$NODE_CONFIG" || rc=1
        fi
    fi
    [ "$CHECK_FAILS" -eq 0 ] || rc=1
    return "$rc"
}

docker_logs() {
    docker_ok
    ctr_exists "$1" || die "mpc-node instance $1 does not exist"
    docker logs --tail 200 "$1"
}

# ---------------------------------------------------------------- native mode

native_bin() {
    local b
    b=$(command -v "$MPC_NODE_BIN" 2>/dev/null) || die "mpc-node binary '$MPC_NODE_BIN' not found: set MPC_NODE_BIN to its path"
    printf '%s\n' "$b"
}

pid_file() { printf '%s/.%s.pid\n' "$NODE_DIR" "$1"; }
out_file() { printf '%s/logs/%s.out\n' "$NODE_DIR" "$1"; }

# The pid of the running instance, or nothing.
native_pid() {
    local f pid
    f=$(pid_file "$1")
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    case $pid in '' | *[!0-9]*) return 0 ;; esac
    if kill -0 "$pid" 2>/dev/null; then printf '%s\n' "$pid"; fi
}

client_addr() {
    local a
    a=$(config_listen)
    case $a in
    0.0.0.0:*) a=127.0.0.1:${a#0.0.0.0:} ;;
    '[::]':*) a='[::1]':${a#\[::\]:} ;;
    esac
    printf '%s\n' "$a"
}

native_start() {
    local name=$1 bin pid listen out i=0
    bin=$(native_bin)
    need_config
    local report
    if ! report=$("$bin" check --config "$(config_file)" 2>&1); then
        printf '%s\n' "$report" >&2
        die "not started: 'mpc-node check' refused the configuration or the directory (above); a running $name, if any, was left as it is"
    fi
    pid=$(native_pid "$name")
    if [ -n "$pid" ]; then
        native_stop "$name" >/dev/null
    fi
    listen=$(config_listen)
    case $listen in
    127.* | localhost:* | '[::1]':*) ;;
    *) warn "[storage] unseal-server-address = \"$listen\": the local API has no authentication; natively it should listen on 127.0.0.1 only" ;;
    esac
    if [ -n "$2" ]; then
        warn "PORT is ignored in native mode: the node listens on its config's unseal-server-address"
    fi
    out=$(out_file "$name")
    mkdir -p "${out%/*}"
    # Readiness is this process's own "listening" line in its output (not an answer on the
    # port, which another process could give), so remember where this run's output starts.
    local from=1
    [ ! -f "$out" ] || from=$(($(wc -c <"$out") + 1))
    echo "mpc-node instance name: $name, unseal server address: $(client_addr)"
    nohup "$bin" start --config "$(config_file)" </dev/null >>"$out" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$(pid_file "$name")"
    echo "$pid"
    while [ "$i" -lt "$((NODE_SH_TIMEOUT * 5))" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$(pid_file "$name")"
            tail -n 20 "$out" >&2 || true
            die "mpc-node exited during start (its last output is above, all of it in $out)"
        fi
        if tail -c "+$from" "$out" | grep -q 'local API listening on'; then
            echo "mpc-node server address: $(client_addr)"
            return 0
        fi
        sleep 0.2
        i=$((i + 1))
    done
    kill "$pid" 2>/dev/null || true
    rm -f "$(pid_file "$name")"
    die "mpc-node did not answer within ${NODE_SH_TIMEOUT}s (output in $out)"
}

native_need_running() {
    [ -n "$(native_pid "$1")" ] || die "mpc-node instance $1 is not running: run '$PROG start' first"
}

native_secret_cmd() {
    local cmd=$1 name=$2 bin
    bin=$(native_bin)
    need_config
    native_need_running "$name"
    if stdin_is_tty; then
        "$bin" "$cmd" --config "$(config_file)"
    else
        "$bin" "$cmd" --config "$(config_file)" --password-stdin
    fi
}

native_info() {
    local bin
    bin=$(native_bin)
    need_config
    native_need_running "$1"
    "$bin" info --config "$(config_file)"
}

native_stop() {
    local name=$1 pid i=0
    pid=$(native_pid "$name")
    if [ -z "$pid" ]; then
        rm -f "$(pid_file "$name")"
        echo "mpc-node instance $name is not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$i" -ge "$((NODE_SH_TIMEOUT * 5))" ]; then
            warn "mpc-node (pid $pid) did not stop within ${NODE_SH_TIMEOUT}s: killing it"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
        i=$((i + 1))
    done
    rm -f "$(pid_file "$name")"
    echo "mpc-node instance $name stopped"
}

native_status() {
    local name=$1 pid
    pid=$(native_pid "$name")
    if [ -z "$pid" ]; then
        echo "mpc-node instance $name: not running"
        return 3
    fi
    echo "mpc-node instance $name: running (pid $pid), unseal server address: $(client_addr)"
    "$(native_bin)" info --config "$(config_file)"
}

native_check() {
    local bin rc=0
    CHECK_FAILS=0
    bin=$(native_bin)
    check_line ok binary "$bin ($("$bin" --version 2>/dev/null || echo '?'))"
    need_config
    check_dir "$(cd "$NODE_DIR" && pwd -P)" "$(id -u):$(id -g)" native
    "$bin" check --config "$(config_file)" || rc=1
    [ "$CHECK_FAILS" -eq 0 ] || rc=1
    return "$rc"
}

native_logs() {
    local out
    out=$(out_file "$1")
    [ -f "$out" ] || die "no output of instance $1 yet ($out)"
    tail -n 200 "$out"
}

# ---------------------------------------------------------------- main

main() {
    local cmd=${1:-help}
    [ "$#" -le 3 ] || die "too many arguments (usage: $PROG COMMAND [NAME [PORT]]; '$PROG help')"
    local name=${2:-$NODE_NAME} port=${3:-$NODE_PORT} explicit=${2:-}
    valid_name "$name" || die "'$name' is not an instance name (letters, digits, '.', '_', '-')"
    [ -z "$port" ] || valid_port "$port" || die "'$port' is not a port"
    case $NODE_SH_MODE in
    docker | native) ;;
    *) die "NODE_SH_MODE must be docker or native, not '$NODE_SH_MODE'" ;;
    esac
    local m=$NODE_SH_MODE
    case $cmd in
    start) "${m}_start" "$name" "$port" ;;
    init | unseal | reset | cmreset) "${m}_secret_cmd" "$cmd" "$name" "$explicit" ;;
    info) "${m}_info" "$name" "$explicit" ;;
    stop) "${m}_stop" "$name" ;;
    status) "${m}_status" "$name" ;;
    check) "${m}_check" "$name" "$port" ;;
    logs) "${m}_logs" "$name" ;;
    help | -h | --help) usage ;;
    *)
        usage >&2
        die "unknown command '$cmd'"
        ;;
    esac
}

main "$@"
