# Helpers shared by scripts/demo.sh and scripts/test.sh. Sourced, not run.

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# Re-runs the calling script as root (through sudo) unless it already is root: the chapters
# create namespaces, mounts and cgroups, which needs root.
as_root() {
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "run this as root (sudo is not installed)" >&2; exit 1; }
        exec sudo --preserve-env=PATH,CARGO_HOME,RUSTUP_HOME,CI "$0" "$@"
    fi
}

# Installs the Debian/Ubuntu packages named, if any is missing.
need_packages() {
    missing=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        say "Installing:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
}

# Makes `cargo` available: the one on PATH, the usual rustup location, or a fresh rustup.
need_cargo() {
    command -v cargo >/dev/null && return
    for d in "${CARGO_HOME:-$HOME/.cargo}/bin" /root/.cargo/bin; do
        if [ -x "$d/cargo" ]; then PATH="$d:$PATH"; export PATH; return; fi
    done
    say "Installing the Rust toolchain (rustup, minimal profile)"
    need_packages curl ca-certificates gcc libc6-dev
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"; export PATH
}

# What the chapters and their tests use from the host.
PACKAGES="busybox-static procps iproute2 tar gzip skopeo umoci docker-registry apache2-utils"
