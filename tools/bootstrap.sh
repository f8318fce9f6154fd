#!/usr/bin/env bash
# bash tools/bootstrap.sh <task> [args…]
#
# Sets up this machine for the repository, skipping what is present, then
# runs `deno task <task> [args…]`. The README's two commands are
# `bash tools/bootstrap.sh demo` and `bash tools/bootstrap.sh test`;
# `.ci/run` is the second one.
#
# It needs only the OS, git, bash, a Rust toolchain (rustup's, with rustfmt
# and clippy) and the package registries. Tools are found deterministically,
# whatever else is on PATH:
#   - Deno: the version in .dvmrc. A `deno` of that version already first on
#     PATH is used; otherwise the one in the private tools directory
#     (KREPIS_TOOLS_DIR, default ~/.cache/krepis-tools), installed there from
#     npm when missing. npm's global prefix is never put on PATH (it is often
#     /usr, where a distribution's cargo and rustc would shadow rustup's).
#   - Rust: rustup's proxies (CARGO_HOME/bin, else ~/.cargo/bin where rustup
#     puts them) come first on PATH, so Debian's /usr/bin/cargo and
#     /usr/bin/rustc never build the gate's kernel.
#   - Debian packages (Linux): with apt-get, through sudo when not root.
#   - The rest (zig, cargo-zigbuild, sccache, minisign, abidiff, actionlint,
#     the arm64 emulation): `deno task setup`, which says what it cannot
#     install on this OS instead of pretending.
#
# No step has a time limit: on a slow or busy machine a step takes longer,
# it does not fail. A step still running says so every 30 s, and each says
# how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."

task="${1:-}"
if [ -z "$task" ]; then
  # A usage error, written as every failure is: on stderr, `error: Cannot …`, the hint below.
  printf 'error: Cannot run tools/bootstrap.sh: no task given\nHint: bash tools/bootstrap.sh demo (or test); bash tools/bootstrap.sh --help says more\n' >&2
  exit 2
fi
if [ "$task" = "-h" ] || [ "$task" = "--help" ]; then
  cat <<'EOF'
Usage: bash tools/bootstrap.sh <task> [args…]

Installs what this machine lacks for the repository (skipping what is present),
then runs `deno task <task> [args…]`. Examples:

  bash tools/bootstrap.sh demo   # build, sign, serve on loopback, krepis init, load()
  bash tools/bootstrap.sh test   # the gate (what CI runs as .ci/run)

Environment:
  KREPIS_TOOLS_DIR  where Deno is installed when missing (default ~/.cache/krepis-tools)
  CARGO_HOME        where cargo puts installed binaries (default ~/.cargo); rustup's
                    cargo is looked for in CARGO_HOME/bin, else ~/.cargo/bin
EOF
  exit 0
fi
shift

# fd 3: where progress goes, also while a step's own output is discarded.
exec 3>&1
say() { printf 'bootstrap: %s\n' "$*" >&3; }
fail() {
  printf 'error: Cannot set up this machine: %s\n' "$1" >&2
  if [ -n "${2:-}" ]; then printf 'Hint: %s\n' "$2" >&2; fi
  exit 1
}
# timed <what> <command>…: runs it to its end, saying every 30 s that it is
# still running, then how long it took. Its exit code is the command's.
timed() {
  local what="$1" start rc=0 beat
  shift
  start=$(date +%s)
  (while sleep 30; do say "… still $what ($(($(date +%s) - start)) s)"; done) &
  beat=$!
  "$@" || rc=$?
  kill "$beat" 2>/dev/null || true
  wait "$beat" 2>/dev/null || true
  say "$what: $([ "$rc" = 0 ] && echo done || echo "failed ($rc)") in $(($(date +%s) - start)) s"
  return "$rc"
}

os="$(uname -s)"

# --- Debian packages (Linux only), installed only when their command is missing.
apt_updated=""
need_apt() { # need_apt <command> <package>...
  command -v "$1" >/dev/null && return 0
  # Elsewhere the runner image provides these; tests skip, with a reason, what is absent.
  [ "$os" = Linux ] || return 0
  command -v apt-get >/dev/null || fail "$1 is not installed and there is no apt-get" "install $1 by hand"
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || fail "$1 is not installed and this user cannot run apt-get" "install ${*:2} as root"
    sudo="sudo -n"
  fi
  if [ -z "$apt_updated" ]; then
    timed "apt-get update" $sudo apt-get update -qq >/dev/null || fail "apt-get update failed" "install ${*:2} by hand"
    apt_updated=1
  fi
  shift
  timed "installing $* (apt-get)" \
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
    fail "apt-get could not install $*" "install $* by hand"
}

need_apt git git
need_apt npm nodejs npm
need_apt cc gcc libc6-dev
need_apt python3 python3 python3-pip python3-venv
need_apt sha256sum coreutils
need_apt unshare util-linux
need_apt openssl openssl
need_apt go golang-go

# --- Rust: rustup's toolchain, first on PATH.
# A CARGO_HOME of its own (say, for installed binaries) still finds rustup's
# proxies where rustup put them; rustup itself finds its toolchains in RUSTUP_HOME.
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
for bin in "$cargo_home/bin" "$HOME/.cargo/bin"; do
  if [ -x "$bin/cargo" ] || [ -x "$bin/cargo.exe" ]; then
    export PATH="$bin:$PATH"
    break
  fi
done
command -v cargo >/dev/null || fail "cargo is not installed" "install Rust with rustup (stable, with rustfmt and clippy)"
if command -v rustup >/dev/null; then
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi
# A RUSTC or CARGO inherited from the environment would pick another compiler.
unset RUSTC CARGO
hash -r
say "$(cargo --version) at $(command -v cargo)"

# --- Deno at the version in .dvmrc.
want_deno="$(tr -d '[:space:]' < .dvmrc)"
deno_version() { "$1" --version 2>/dev/null | awk 'NR==1 {print $2}' || true; }
tools_dir="${KREPIS_TOOLS_DIR:-$HOME/.cache/krepis-tools}"
deno_home="$tools_dir/deno-$want_deno"
find_private_deno() {
  local candidate
  for candidate in "$deno_home"/node_modules/deno/deno "$deno_home"/node_modules/deno/deno.exe \
    "$deno_home"/node_modules/@deno/*/deno "$deno_home"/node_modules/@deno/*/deno.exe; do
    if [ -x "$candidate" ] && [ "$(deno_version "$candidate")" = "$want_deno" ]; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  return 1
}
if [ "$(deno_version deno)" != "$want_deno" ]; then
  if ! deno_bin="$(find_private_deno)"; then
    say "installing deno $want_deno into $deno_home (found on PATH: $(deno_version deno || true))"
    mkdir -p "$deno_home"
    timed "npm install deno@$want_deno" npm install --prefix "$deno_home" --no-save --no-fund \
      --no-audit --loglevel=error "deno@$want_deno" >/dev/null || fail "npm could not install deno@$want_deno" "install Deno $want_deno by hand"
    deno_bin="$(find_private_deno)" || fail "the npm package deno@$want_deno has no runnable binary here" \
      "install Deno $want_deno by hand and put it first on PATH"
  fi
  export PATH="$(dirname "$deno_bin"):$PATH"
  hash -r
fi
[ "$(deno_version deno)" = "$want_deno" ] || fail "deno on PATH is $(deno_version deno), not $want_deno" \
  "put Deno $want_deno first on PATH"
say "deno $(deno_version deno) at $(command -v deno)"

# --- Everything else: one script for this and every workflow job.
# pip's --user installs land in ~/.local/bin, Go's in GOPATH/bin: both after
# everything else on PATH, so they add tools and shadow none.
export PATH="$PATH:$HOME/.local/bin:$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"
if [ "$task" = demo ]; then
  # `demo --target <triple>` builds that target too: set up for it as well.
  setup_args=(--build)
  args=("$@")
  for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
      --target) setup_args+=(--target "${args[i + 1]:-}") ;;
      --target=*) setup_args+=(--target "${args[i]#--target=}") ;;
    esac
  done
  timed "deno task setup --build" deno task setup "${setup_args[@]}"
else
  timed "deno task setup" deno task setup
fi

# sccache makes repeated Rust builds cheap; use it when it works.
if [ -z "${RUSTC_WRAPPER:-}" ] && command -v sccache >/dev/null; then
  sccache --start-server >/dev/null 2>&1 || true # fails harmlessly when already running
  if sccache --show-stats >/dev/null 2>&1; then
    export RUSTC_WRAPPER=sccache
    say "using $(sccache --version)"
  fi
fi

exec deno task "$task" "$@"
