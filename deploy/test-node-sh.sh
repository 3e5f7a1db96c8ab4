#!/usr/bin/env bash
# test-node-sh.sh: tests deploy/node.sh against a real mpc-node.
#
#   deploy/test-node-sh.sh path/to/mpc-node             native mode (e.g. target/release/mpc-node)
#   deploy/test-node-sh.sh --docker mpc-node:latest     docker mode, with an image already built
#
# Builds nothing. Makes temporary node directories with their own config.toml, runs the node on
# a free 127.0.0.1 port (loopback only), with the test-only fast key derivation if the caller
# sets MPC_NODE_INSECURE_FAST_KDF (the node must then be built with that feature), and checks
# help, check, start, info, init, unseal, reset/cmreset, status, stop and the error paths, with
# passwords holding the characters a hand-built JSON body gets wrong. Every node.sh call is
# bounded by `timeout`; the node (process or container) is stopped and the directories removed
# on exit. Ends with the line "N passed, N failed"; exit status 0 only if nothing failed.
set -uo pipefail

usage() {
    echo "usage: $0 PATH-TO-mpc-node | --docker IMAGE" >&2
    exit 2
}
HERE=$(cd "$(dirname "$0")" && pwd)
NODE_SH=$HERE/node.sh
CALL_TIMEOUT=${CALL_TIMEOUT:-60}
unset NODE_NAME NODE_PORT NODE_CONFIG NODE_IMAGE NODE_SH_USER NODE_DIR
# The test-only fast key derivation only if the caller sets it (CI does, with a node built with
# `--features insecure-test-switches`); a release build refuses it, and then the real one runs.
if [ -n "${MPC_NODE_INSECURE_FAST_KDF:-}" ]; then export MPC_NODE_INSECURE_FAST_KDF; fi
export NODE_SH_TIMEOUT=20

case ${1:-} in
--docker)
    [ "$#" -eq 2 ] || usage
    export NODE_SH_MODE=docker
    export NODE_IMAGE=$2
    command -v docker >/dev/null 2>&1 || { echo "test-node-sh.sh: docker is not installed" >&2; exit 2; }
    docker image inspect "$NODE_IMAGE" >/dev/null 2>&1 || { echo "test-node-sh.sh: no image $NODE_IMAGE" >&2; exit 2; }
    # Own container names, so that a real node on this host is never touched.
    NAME=test-node-sh-$$
    NAME2=test-node-sh-$$-2
    ;;
'' | -*) usage ;;
*)
    [ "$#" -eq 1 ] || usage
    [ -x "$1" ] || { echo "test-node-sh.sh: $1 is not an executable" >&2; exit 2; }
    export NODE_SH_MODE=native
    MPC_NODE_BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
    export MPC_NODE_BIN
    # The default instance name: the guide's output is checked word for word.
    NAME=mpc-node
    NAME2=mpc-node
    ;;
esac
MODE=$NODE_SH_MODE

TMP=$(mktemp -d "${TMPDIR:-/tmp}/test-node-sh.XXXXXX")
DIR=$TMP/node
DIR2=$TMP/other
mkdir -p "$DIR" "$DIR2"
chmod 0755 "$TMP"
# The container runs as the directory's owner and never as root.
if [ "$MODE" = docker ] && [ "$(id -u)" -eq 0 ]; then
    chown 10001:10001 "$DIR" "$DIR2"
fi

cleanup() {
    local d n f
    if [ "$MODE" = docker ]; then
        for n in "$NAME" "$NAME2"; do
            NODE_DIR=$DIR timeout 60 "$NODE_SH" stop "$n" >/dev/null 2>&1 || true
            # Only our own containers, by their exact names.
            docker rm -f "$n" >/dev/null 2>&1 || true
        done
        # Only the tags this run made.
        docker image ls --format '{{.Repository}}:{{.Tag}}' "test-node-sh-$$" | while read -r t; do
            docker rmi "$t" >/dev/null 2>&1 || true
        done
    else
        for d in "$DIR" "$DIR2"; do
            NODE_DIR=$d timeout 30 "$NODE_SH" stop >/dev/null 2>&1 || true
            # Whatever node.sh could not stop: the pid files name our own processes only.
            for f in "$d"/.*.pid; do
                [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
            done
        done
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PASS=0
FAIL=0
ok() {
    PASS=$((PASS + 1))
    echo "ok - $1"
}
not_ok() {
    FAIL=$((FAIL + 1))
    echo "not ok - $1"
    [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/    # /'
}

OUT=
RC=0
# run DIR [stdin-text] -- ARGS: node.sh in DIR, stdout+stderr in OUT, status in RC.
run() {
    local dir=$1 input=$2
    shift 3
    if [ -n "$input" ]; then
        OUT=$(printf '%s\n' "$input" | NODE_DIR=$dir timeout "$CALL_TIMEOUT" "$NODE_SH" "$@" 2>&1)
    else
        OUT=$(NODE_DIR=$dir timeout "$CALL_TIMEOUT" "$NODE_SH" "$@" </dev/null 2>&1)
    fi
    RC=$?
}

# expect NAME RC-WANTED TEXT...: the last run exited RC-WANTED and printed every TEXT.
expect() {
    local name=$1 want=$2 t
    shift 2
    if [ "$RC" -ne "$want" ]; then
        not_ok "$name (exit $RC, want $want)" "$OUT"
        return
    fi
    for t in "$@"; do
        case $OUT in
        *"$t"*) ;;
        *)
            not_ok "$name (no \"$t\" in the output)" "$OUT"
            return
            ;;
        esac
    done
    ok "$name"
}

# A free loopback port: nothing answers there.
free_port() {
    local p i
    for i in $(seq 1 50); do
        p=$((20000 + (RANDOM * 7 + i) % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    echo "no free port found" >&2
    exit 2
}

PORT=$(free_port)
write_config() { # DIR PORT [extra storage lines]
    cat >"$1/config.toml" <<EOF
[app]
name = "mpc-node-test"
party-id = "a"
account-type = "2"

[log.stdout]
enable = false
level = 4

[log.file]
enable = true
level = 5
path = "logs/mpc-node.log"

[storage]
engine = "bolt"
t = 1
n = 1
db-file-path = "asset.db"
unseal-server-address = "${LISTEN_HOST:-127.0.0.1}:$2"
$3

[mpc-service]
protocol = "ws"
address = "127.0.0.1:1"
path = "/proxy"
EOF
}
if [ "$MODE" = docker ]; then
    # Inside the container the node listens on all its interfaces; node.sh publishes the port
    # on the host's 127.0.0.1 only.
    LISTEN_HOST=0.0.0.0
    write_config "$DIR" 8080 ""
    export NODE_PORT=$PORT NODE_NAME=$NAME
else
    LISTEN_HOST=127.0.0.1
    write_config "$DIR" "$PORT" ""
fi

# Passwords with the characters a hand-written JSON body gets wrong: " \ ' and $.
# shellcheck disable=SC2016 # the $ are literal on purpose
PW1='Correct"Horse\Battery$1'"'"
# shellcheck disable=SC2016
PW2='N3w-pa$$word"with\quotes'

echo "# node.sh: $NODE_SH"
if [ "$MODE" = docker ]; then
    echo "# mode: docker, image $NODE_IMAGE, container $NAME"
else
    echo "# mode: native, mpc-node: $MPC_NODE_BIN ($("$MPC_NODE_BIN" --version 2>/dev/null))"
fi
echo "# node directory: $DIR, local API 127.0.0.1:$PORT"

# --- commands that need no running node
run "$DIR" "" -- help
expect "help lists every command" 0 "Usage:" start init unseal info reset cmreset stop status check help

run "$DIR" "" -- frobnicate
expect "an unknown command fails" 1 "unknown command 'frobnicate'"

run "$DIR" "" -- start 'bad name!'
expect "a bad instance name is refused" 1 "is not an instance name"

run "$DIR" "" -- check
if [ "$MODE" = docker ]; then
    IMAGE_VERSION=$(docker run --rm --network none --entrypoint mpc-node "$NODE_IMAGE" --version | awk '{ print $2 }')
    expect "check accepts the environment and the config" 0 "ok    docker:" "ok    image: $NODE_IMAGE (sha256:" "mpc-node $IMAGE_VERSION, revision " "ok    directory: $DIR" "the node runs as $(stat -c %u:%g "$DIR")" "ok    port: 127.0.0.1:$PORT is free" "ok    config:" "ok    db directory:"
else
    expect "check accepts the config" 0 "ok    binary:" "ok    directory: $DIR" "ok    config:" "ok    db directory:" "127.0.0.1:$PORT is free"
    # node.sh's default image is the release it belongs to: the version of the node it manages.
    SH_VERSION=$(sed -n 's/^NODE_SH_VERSION=//p' "$NODE_SH")
    BIN_VERSION=$("$MPC_NODE_BIN" --version | awk '{ print $2 }')
    if [ -n "$SH_VERSION" ] && [ "$SH_VERSION" = "$BIN_VERSION" ]; then
        ok "node.sh's pinned default image is of the node's version ($SH_VERSION)"
    else
        not_ok "node.sh's pinned default image is of the node's version" "NODE_SH_VERSION=$SH_VERSION, mpc-node --version: $BIN_VERSION"
    fi
fi

# --- check: the directory's owner and mode
chmod g+w "$DIR"
run "$DIR" "" -- check
expect "check refuses a directory others can write" 1 "FAIL  directory:" "is writable by other users" "chmod go-w $DIR"
chmod g-w "$DIR"
if [ "$(id -u)" -eq 0 ]; then
    mkdir -p "$DIR/logs"
    chown 4242:4242 "$DIR/logs"
    run "$DIR" "" -- check
    expect "check refuses node files of another user" 1 "FAIL  directory:" "$DIR/logs belongs to uid 4242"
    if [ "$MODE" = docker ]; then
        chown 10001:10001 "$DIR/logs"
        write_config "$DIR2" 8080 ""
        chown 0:0 "$DIR2"
        run "$DIR2" "" -- check
        expect "check refuses a directory owned by root (docker)" 1 "FAIL  directory:" "owned by root" "chown -R 10001:10001 $DIR2"
        run "$DIR2" "" -- start "$NAME2"
        expect "start refuses a directory owned by root (docker)" 1 "owned by root"
        chown 10001:10001 "$DIR2"
    else
        rm -rf "$DIR/logs"
    fi
fi

# --- the image is pinned: never an implicit or explicit "latest", a tag that tells the truth
if [ "$MODE" = docker ]; then
    IMAGE_REPO=${NODE_IMAGE%%[:@]*}
    for ref in "$IMAGE_REPO" "$IMAGE_REPO:latest"; do
        OUT=$(NODE_IMAGE=$ref NODE_DIR=$DIR timeout "$CALL_TIMEOUT" "$NODE_SH" start </dev/null 2>&1)
        RC=$?
        expect "start refuses the unpinned image $ref" 1 "is not pinned"
        OUT=$(NODE_IMAGE=$ref NODE_DIR=$DIR timeout "$CALL_TIMEOUT" "$NODE_SH" check </dev/null 2>&1)
        RC=$?
        expect "check refuses the unpinned image $ref" 1 "FAIL  image:" "is not pinned"
    done
    OUT=$(NODE_IMAGE=test-node-sh-$$:1.2.3 NODE_DIR=$DIR timeout "$CALL_TIMEOUT" "$NODE_SH" start </dev/null 2>&1)
    RC=$?
    expect "start refuses an image that is not on the host (never pulls)" 1 "is not on this host (node.sh never pulls)"
    # A tag naming another version than the image holds.
    docker tag "$NODE_IMAGE" "test-node-sh-$$:9.9.9"
    OUT=$(NODE_IMAGE=test-node-sh-$$:9.9.9 NODE_DIR=$DIR timeout "$CALL_TIMEOUT" "$NODE_SH" check </dev/null 2>&1)
    RC=$?
    expect "check refuses a tag that is not the image's version" 1 "FAIL  image:" "the tag says 9.9.9, the image holds mpc-node $IMAGE_VERSION"
    docker rmi "test-node-sh-$$:9.9.9" >/dev/null
    # Pinned by image id (digest) works like a tag.
    IMAGE_ID=$(docker image inspect -f '{{.Id}}' "$NODE_IMAGE")
    OUT=$(NODE_IMAGE=$IMAGE_ID NODE_DIR=$DIR timeout "$CALL_TIMEOUT" "$NODE_SH" check </dev/null 2>&1)
    RC=$?
    expect "check accepts an image pinned by its id" 0 "ok    image: $IMAGE_ID"
fi

write_config "$DIR2" 8080 ""
sed -i 's/^t = 1$/t = 3/' "$DIR2/config.toml"
run "$DIR2" "" -- check
expect "check refuses t > n with file, key and reason" 1 "FAIL" "[storage] t" "larger than n"

run "$TMP" "" -- check
expect "check without config.toml says so" 1 "no config.toml in $TMP"

run "$DIR" "" -- info
expect "info before start: not running" 1 "is not running" "start' first"

run "$DIR" "" -- status
expect "status before start: exit 3" 3 "not running"

run "$DIR" "$PW1" -- init
expect "init before start: not running" 1 "is not running"

# --- start, init, unseal, info
run "$DIR" "" -- start
expect "start" 0 "mpc-node instance name: $NAME, unseal server address: 127.0.0.1:$PORT" "mpc-node server address: 127.0.0.1:$PORT"

run "$DIR" "" -- status
if [ "$MODE" = docker ]; then RUNNING="running since"; else RUNNING="running (pid"; fi
expect "status while running" 0 "$RUNNING" '"state":"uninitialized"'

if [ "$MODE" = docker ]; then
    # The container: the image checked (by id), read-only root filesystem, not root, no
    # capabilities, the local API on loopback only.
    GOT=$(docker container inspect -f '{{.Image}} ro={{.HostConfig.ReadonlyRootfs}} user={{.Config.User}} caps={{.HostConfig.CapDrop}} ports={{json .HostConfig.PortBindings}}' "$NAME")
    WANT="$IMAGE_ID ro=true user=$(stat -c %u:%g "$DIR") caps=[ALL] ports={\"8080/tcp\":[{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"$PORT\"}]}"
    if [ "$GOT" = "$WANT" ]; then
        ok "the container: pinned image id, read-only root, user 10001, no capabilities, 127.0.0.1 only"
    else
        not_ok "the container: pinned image id, read-only root, user 10001, no capabilities, 127.0.0.1 only" "got:  $GOT
want: $WANT"
    fi
    run "$DIR" "" -- check
    expect "check while running names the instance and its image" 0 "ok    instance: $NAME is running (127.0.0.1:$PORT, image $NODE_IMAGE)"
fi

run "$DIR" "" -- info
expect "info: uninitialized" 0 '"status":"ok"' '"state":"uninitialized"'

run "$DIR" "short" -- init
expect "init refuses a weak password" 1 '"status":"error"'

run "$DIR" "$PW1" -- init
expect "init prints node id and public key" 0 '"status":"ok"' '"node_id":"sino' "BEGIN PUBLIC KEY"
NODE_ID=$(printf '%s\n' "$OUT" | sed -n 's/.*"node_id":"\([^"]*\)".*/\1/p' | head -n 1)

if [ -f "$DIR/asset.db" ]; then
    ok "init created asset.db in the node directory"
else
    not_ok "init created asset.db in the node directory" "$(ls -la "$DIR")"
fi

run "$DIR" "" -- info
expect "info after init: sealed, same node id" 0 '"state":"sealed"' "\"node_id\":\"$NODE_ID\""

run "$DIR" "wrong-Password-1!" -- unseal
expect "unseal with a wrong password fails" 1 '"status":"error"'
# The node slows down wrong passwords (0.5 s after one failure): wait that out.
sleep 1

run "$DIR" "$PW1" -- unseal
expect "unseal" 0 '"status":"ok"' 'in-bkey success'

run "$DIR" "" -- info
expect "info after unseal: unsealed" 0 '"state":"unsealed"' "\"node_id\":\"$NODE_ID\""

# --- a restart with a broken config is refused before the running node is touched
cp "$DIR/config.toml" "$TMP/config.good"
sed -i 's/^t = 1$/t = 3/' "$DIR/config.toml"
run "$DIR" "" -- start
expect "start with a refused config does not start" 1 "[storage] t" "not started" "left as it is"
cp "$TMP/config.good" "$DIR/config.toml"
run "$DIR" "" -- info
expect "... and the running node stays up and unsealed" 0 '"state":"unsealed"'

# --- a second node on the same port cannot start, and says why
if [ "$MODE" = docker ]; then
    write_config "$DIR2" 8080 ""
    run "$DIR2" "" -- start "$NAME2"
    expect "start on a busy port fails and says so" 1 "127.0.0.1:$PORT is in use"
    run "$DIR" "" -- start "$NAME2"
    expect "a second instance on the same directory is refused" 1 "already the directory of instance $NAME"
else
    write_config "$DIR2" "$PORT" ""
    run "$DIR2" "" -- start
    expect "start on a busy port fails with the node's reason" 1 "exited during start" "cannot listen"
fi

# --- password change: reset (current) + cmreset (new)
run "$DIR" "$PW1" -- reset
expect "reset with the current password" 0 're-bkey-init success'

run "$DIR" "$PW2" -- cmreset
expect "cmreset sets the new password" 0 're-bkey success'

# --- restart: sealed again; old password refused, new one accepted
run "$DIR" "" -- start
expect "start again (restart)" 0 "mpc-node server address: 127.0.0.1:$PORT"

run "$DIR" "" -- info
expect "info after restart: sealed" 0 '"state":"sealed"' "\"node_id\":\"$NODE_ID\""

run "$DIR" "$PW1" -- unseal
expect "unseal with the old password fails after cmreset" 1 '"status":"error"'
sleep 1

run "$DIR" "$PW2" -- unseal
expect "unseal with the new password" 0 'in-bkey success'

# --- an image upgrade on the same directory keeps the keys (docker): a new image (another id,
# another version tag) started on the directory opens the same key store with the same password.
if [ "$MODE" = docker ]; then
    UPGRADE=test-node-sh-$$:$IMAGE_VERSION-upgrade
    printf 'FROM %s\nLABEL io.mpc-cosigner.test="upgrade"\n' "$IMAGE_ID" \
        | DOCKER_BUILDKIT=0 timeout 120 docker build -q -t "$UPGRADE" - >/dev/null 2>&1
    if [ "$(docker image inspect -f '{{.Id}}' "$UPGRADE" 2>/dev/null || echo none)" = "$IMAGE_ID" ] \
        || ! docker image inspect "$UPGRADE" >/dev/null 2>&1; then
        not_ok "an upgrade image with another id was built" "$(docker image ls "test-node-sh-$$")"
    else
        OUT=$(NODE_IMAGE=$UPGRADE NODE_DIR=$DIR timeout "$CALL_TIMEOUT" "$NODE_SH" start </dev/null 2>&1)
        RC=$?
        expect "start with the upgraded image" 0 "mpc-node server address: 127.0.0.1:$PORT"
        run "$DIR" "$PW2" -- unseal
        expect "after the upgrade: unseal with the password" 0 'in-bkey success'
        run "$DIR" "" -- info
        expect "after the upgrade: the same node id, unsealed" 0 '"state":"unsealed"' "\"node_id\":\"$NODE_ID\""
        run "$DIR" "" -- status
        expect "status names the upgraded image" 0 "image $UPGRADE"
    fi
fi

# --- a crash (docker): `docker kill` of the container, then `start` and `unseal`: the same key
# store (node id) with the current password.
if [ "$MODE" = docker ]; then
    if timeout 30 docker kill "$NAME" >/dev/null 2>&1 \
        && [ "$(docker container inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null)" != true ]; then
        ok "docker kill stops the node's container"
    else
        not_ok "docker kill stops the node's container" "$(docker ps -a --filter "name=^$NAME\$")"
    fi
    run "$DIR" "" -- start
    expect "start after docker kill" 0 "mpc-node server address: 127.0.0.1:$PORT"
    run "$DIR" "$PW2" -- unseal
    expect "unseal after docker kill" 0 'in-bkey success'
    run "$DIR" "" -- info
    expect "after docker kill: the same node id, unsealed" 0 '"state":"unsealed"' "\"node_id\":\"$NODE_ID\""
fi

# --- two nodes on one host (docker): a second instance by name, its own directory and port,
# running beside the first; each command reaches the instance it names.
if [ "$MODE" = docker ]; then
    write_config "$DIR2" 8080 ""
    # NODE_PORT (exported for the first instance) is the default port: the second gets its own.
    PORT2=$(free_port)
    run "$DIR2" "" -- start "$NAME2" "$PORT2"
    expect "a second instance starts by its name and port" 0 "mpc-node instance name: $NAME2, unseal server address: 127.0.0.1:$PORT2" "mpc-node server address: 127.0.0.1:$PORT2"
    run "$DIR2" "$PW1" -- init "$NAME2"
    expect "init of the second instance" 0 '"status":"ok"' '"node_id":"sino'
    NODE_ID2=$(printf '%s\n' "$OUT" | sed -n 's/.*"node_id":"\([^"]*\)".*/\1/p' | head -n 1)
    run "$DIR2" "$PW1" -- unseal "$NAME2"
    expect "unseal of the second instance" 0 'in-bkey success'
    run "$DIR2" "" -- info "$NAME2"
    expect "info of the second instance: its own node id, unsealed" 0 '"state":"unsealed"' "\"node_id\":\"$NODE_ID2\""
    if [ -n "$NODE_ID2" ] && [ "$NODE_ID2" != "$NODE_ID" ]; then
        ok "two instances, two node ids"
    else
        not_ok "two instances, two node ids" "$NODE_ID / $NODE_ID2"
    fi
    run "$DIR" "" -- info
    expect "the first instance still runs, unsealed, beside the second" 0 '"state":"unsealed"' "\"node_id\":\"$NODE_ID\""
    run "$DIR2" "" -- stop "$NAME2"
    expect "stop of the second instance" 0 "mpc-node instance $NAME2 stopped"
    run "$DIR" "" -- info
    expect "the first instance is untouched by stopping the second" 0 '"state":"unsealed"'
fi

# --- stop
PID=$(cat "$DIR/.$NAME.pid" 2>/dev/null || true)
run "$DIR" "" -- stop
expect "stop" 0 "mpc-node instance $NAME stopped"
if [ "$MODE" = docker ]; then
    if docker container inspect "$NAME" >/dev/null 2>&1; then
        not_ok "the container is gone after stop" "$(docker ps -a --filter "name=^$NAME\$")"
    else
        ok "the container is gone after stop"
    fi
elif [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    not_ok "the node process is gone after stop" "pid $PID still alive"
else
    ok "the node process is gone after stop"
fi

run "$DIR" "" -- stop
expect "stop when stopped" 0 "is not running"

run "$DIR" "" -- info
expect "info after stop: not running" 1 "is not running"

if grep -rqF -e "$PW1" -e "$PW2" "$DIR" 2>/dev/null; then
    not_ok "no password in the node directory (files, logs, output)" "$(grep -rlF -e "$PW1" -e "$PW2" "$DIR")"
else
    ok "no password in the node directory (files, logs, output)"
fi

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
