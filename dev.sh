#!/usr/bin/env bash
# dev.sh: README's two commands, and the one place that knows which system packages the build
# and the tests need. On a fresh Debian 12 / Ubuntu 22.04+ machine with only the Rust toolchain,
# it installs what is missing (apt-get, as root or through sudo), then runs the command.
#
#   ./dev.sh devnet [ARGS…]     set-up, then: cargo run --release --locked --bin mpc-devnet -- ARGS
#                               (with --scale the set-up includes postgresql and nats-server)
#   ./dev.sh test [ARGS…]       set-up, then: cargo test --workspace --locked ARGS
#   ./dev.sh build              set-up, then: cargo build --release --locked --bin mpc-devnet
#   ./dev.sh setup [devnet|test]   the set-up only (default: test, which includes devnet's)
#   ./dev.sh check [devnet|test]   say what is missing and change nothing (exit 1 if anything is)
#
# Environment:
#   MPC_DEV_NO_INSTALL=1   never install: fail, naming what is missing and how to install it.
#
# Exit status: 0 ok; 1 set-up impossible or the command failed (its own status); 2 usage.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf 'dev.sh: %s\n' "$*" >&2; }
die() { printf 'dev.sh: %s\n' "$*" >&2; exit 1; }

# What the build and the tests need from the system: a command (or, with a '/', a file pattern),
# the Debian/Ubuntu package that provides it, why, and which command needs it ("devnet": building
# anything; "test": the tests).
# One row per command; `./dev.sh check` prints this table's verdict.
NEEDS=(
  # command  package          for     why
  "cc        build-essential  devnet  C compiler and linker (rustc links with cc; ring, SQLite and GMP have C parts)"
  "make      build-essential  devnet  GMP's build (gmp-mpfr-sys builds its bundled GMP source)"
  "m4        m4               devnet  GMP's configure"
  "openssl   openssl          test    the callback-demo tests make keys with the openssl command"
  "kill      procps           test    the tests stop the processes they started"
  "/usr/lib/postgresql/*/bin/postgres  postgresql  test  the coordinator's store is tested on a private PostgreSQL server the tests start"
  "nats-server  nats-server  test  the platform's bus is tested on a private nats-server the tests start"
  "ip        iproute2         test  a node is cut off from the platform in a network namespace of the test's own"
  "chromium  chromium         test  the console is tested in a real browser (headless)"
  "chromedriver  chromium-driver  test  the console test drives the browser over WebDriver"
)

# Rows of NEEDS that apply to $1 (devnet: devnet rows; test: all rows).
rows_for() {
  local scope=$1 row cmd pkg for why
  for row in "${NEEDS[@]}"; do
    read -r cmd pkg for why <<<"$row"
    if [ "$scope" = test ] || [ "$for" = "$scope" ]; then
      printf '%s\t%s\t%s\n' "$cmd" "$pkg" "$why"
    fi
  done
}

# Prints "cmd<TAB>pkg<TAB>why" for each missing command of scope $1.
missing_for() {
  local cmd pkg why
  while IFS=$'\t' read -r cmd pkg why; do
    if [[ $cmd == */* ]]; then
      # shellcheck disable=SC2086 # a glob, expanded on purpose
      compgen -G "$cmd" >/dev/null || printf '%s\t%s\t%s\n' "$cmd" "$pkg" "$why"
    else
      command -v "$cmd" >/dev/null 2>&1 || printf '%s\t%s\t%s\n' "$cmd" "$pkg" "$why"
    fi
  done < <(rows_for "$1")
}

describe() { # stdin: missing rows -> "  m4 (package m4): GMP's configure" lines
  local cmd pkg why
  while IFS=$'\t' read -r cmd pkg why; do
    printf '  %s (package %s): %s\n' "$cmd" "$pkg" "$why"
  done
}

apt_install() { # apt_install SUDO-PREFIX… -- PACKAGES…
  local -a sudo=()
  while [ "$1" != -- ]; do sudo+=("$1"); shift; done
  shift
  local -a cmd=(${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get)
  say "running: ${sudo[*]:+${sudo[*]} }apt-get install -y --no-install-recommends $*"
  if "${cmd[@]}" install -y -q --no-install-recommends "$@" >/tmp/dev-sh-apt.$$ 2>&1; then
    rm -f /tmp/dev-sh-apt.$$
    return 0
  fi
  # A fresh machine (or container) often has no package lists yet: update once and retry.
  say "apt-get install failed; running apt-get update and trying again"
  "${cmd[@]}" update -q >/tmp/dev-sh-apt.$$ 2>&1 || { cat /tmp/dev-sh-apt.$$ >&2; rm -f /tmp/dev-sh-apt.$$; die "apt-get update failed (output above)"; }
  "${cmd[@]}" install -y -q --no-install-recommends "$@" >/tmp/dev-sh-apt.$$ 2>&1 || { cat /tmp/dev-sh-apt.$$ >&2; rm -f /tmp/dev-sh-apt.$$; die "apt-get install $* failed (output above)"; }
  rm -f /tmp/dev-sh-apt.$$
}

# Installs what scope $1 needs, or explains why it cannot.
setup() {
  local scope=$1 missing pkgs
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install the Rust toolchain (https://rustup.rs), then run this again"
  missing=$(missing_for "$scope")
  if [ -z "$missing" ]; then
    say "system packages for '$scope': all present"
    return 0
  fi
  pkgs=$(cut -f2 <<<"$missing" | sort -u | tr '\n' ' ')
  pkgs=${pkgs% }
  local how="install them, e.g.: sudo apt-get install -y $pkgs"
  if [ "${MPC_DEV_NO_INSTALL:-}" = 1 ]; then
    die "missing (MPC_DEV_NO_INSTALL=1, so not installing):
$(describe <<<"$missing")
$how"
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    die "missing, and this machine has no apt-get (not Debian/Ubuntu):
$(describe <<<"$missing")
install the equivalent packages with this system's package manager, then run this again"
  fi
  say "missing on this machine:"
  describe <<<"$missing" >&2
  # shellcheck disable=SC2086 # $pkgs is a list of package names
  if [ "$(id -u)" -eq 0 ]; then
    apt_install -- $pkgs
  elif command -v sudo >/dev/null 2>&1; then
    if ! sudo -n true 2>/dev/null && ! [ -t 0 ]; then
      die "installing needs root: sudo asks for a password and there is no terminal to type it; $how"
    fi
    apt_install sudo -- $pkgs
  else
    die "installing needs root, and sudo is not installed; as root: apt-get install -y $pkgs"
  fi
  missing=$(missing_for "$scope")
  [ -z "$missing" ] || die "still missing after installing:
$(describe <<<"$missing")"
  say "system packages for '$scope': installed $pkgs"
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

scope_arg() { # scope_arg [devnet|test] -> scope
  case "${1:-test}" in
  devnet | test) printf '%s' "${1:-test}" ;;
  *) say "unknown scope '$1' (devnet or test)"; usage ;;
  esac
}

cmd=${1:-}
[ $# -eq 0 ] || shift
case "$cmd" in
devnet)
  # --scale runs PostgreSQL and nats-server: the test rows hold them.
  scope=devnet
  for a in "$@"; do [ "$a" != --scale ] || scope=test; done
  setup "$scope"
  exec cargo run --release --locked --bin mpc-devnet -- "$@"
  ;;
build)
  [ $# -eq 0 ] || usage
  setup devnet
  exec cargo build --release --locked --bin mpc-devnet
  ;;
test)
  setup test
  exec cargo test --workspace --locked "$@"
  ;;
setup)
  [ $# -le 1 ] || usage
  setup "$(scope_arg "${1:-}")"
  ;;
check)
  [ $# -le 1 ] || usage
  scope=$(scope_arg "${1:-}")
  missing=$(missing_for "$scope")
  if [ -n "$missing" ]; then
    say "missing for '$scope':"
    describe <<<"$missing" >&2
    exit 1
  fi
  say "system packages for '$scope': all present"
  ;;
-h | --help | help) usage ;;
*) [ -z "$cmd" ] || say "unknown command '$cmd'"; usage ;;
esac
