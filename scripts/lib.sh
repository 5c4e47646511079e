# Helpers shared by scripts/demo.sh and scripts/test.sh. Sourced, not run.

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# Re-runs the calling script as root (through sudo) unless it already is root: the chapters
# create namespaces, mounts and cgroups, which needs root.
as_root() {
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "run this as root (sudo is not installed)" >&2; exit 1; }
        exec sudo --preserve-env=PATH,CARGO_HOME,RUSTUP_HOME,CI,PARITY_ONLY,PARITY_RAW "$0" "$@"
    fi
}

# Run through sudo, cargo leaves the clone's build directory owned by root, and the
# learner's next `cargo build` fails on it: it is given back to the user who ran sudo
# when the script ends, however it ends.
give_back_target() {
    if [ -n "${SUDO_UID:-}" ] && [ "$SUDO_UID" != 0 ]; then
        # shellcheck disable=SC2064
        trap "chown -R '$SUDO_UID:${SUDO_GID:-$SUDO_UID}' '${CARGO_TARGET_DIR:-target}' 2>/dev/null || true" EXIT
    fi
}

# The Fedora name of a Debian package; nothing where Fedora 42+ packages none of it.
fedora_name() {
    case "$1" in
        busybox-static) echo busybox ;;  # Fedora's busybox is the static one
        procps) echo procps-ng ;;
        iproute2) echo iproute ;;
        bsdutils) echo util-linux ;;
        apache2-utils) echo httpd-tools ;;
        xz-utils) echo xz ;;
        docker.io) echo moby-engine ;;
        libc6-dev) echo glibc-devel ;;
        docker-registry) ;;
        *) echo "$1" ;;
    esac
}

# Installs the packages named (Debian's names), if any is missing: with apt-get on Debian
# and Ubuntu, with dnf on Fedora under Fedora's names. This project's CI runs on Debian
# only; the Fedora names come from Fedora's package lists and are not run here.
need_packages() {
    missing=""
    if command -v apt-get >/dev/null; then
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
    elif command -v dnf >/dev/null; then
        for p in "$@"; do
            f=$(fedora_name "$p")
            if [ -z "$f" ]; then
                echo "note: Fedora has no package for $p (see notes/00-start-here.md, Setting up)" >&2
            elif ! rpm -q "$f" >/dev/null 2>&1; then
                case " $missing " in *" $f "*) ;; *) missing="$missing $f" ;; esac
            fi
        done
        if [ -n "$missing" ]; then
            say "Installing:$missing"
            # dnf5 (Fedora 41+) skips a package it cannot find only when told to.
            # shellcheck disable=SC2086
            dnf install -y -q --skip-unavailable $missing || dnf install -y -q $missing
        fi
    else
        echo "neither apt-get nor dnf here: install the equivalents of these yourself: $*" >&2
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
PACKAGES="busybox-static jq time procps iproute2 tar gzip bsdutils util-linux openssl skopeo umoci docker-registry apache2-utils mmdebstrap bzip2 xz-utils podman runc nftables curl docker.io"

# Builds a busybox root filesystem from the host's static busybox into $1 (a directory).
busybox_rootfs() {
    mkdir -p "$1/bin" "$1/sbin" "$1/usr/bin" "$1/usr/sbin" "$1/etc" "$1/root" "$1/tmp" "$1/var" "$1/home"
    cp /usr/bin/busybox "$1/bin/busybox"
    chroot "$1" /bin/busybox --install -s
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$1/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$1/etc/group"
    chmod 1777 "$1/tmp"
}

# Makes the two images the demo and the notes use, offline: `busybox` (an import of the
# host's busybox-static) and `hello-world`, built from a Dockerfile (chapter 6): FROM
# scratch plus one static binary built here.
offline_images() {
    work=$(mktemp -d)
    busybox_rootfs "$work/busybox"
    tar -C "$work/busybox" -cf "$work/busybox.tar" .
    mini-docker import --change 'CMD ["sh"]' "$work/busybox.tar" busybox:latest >/dev/null
    # FROM scratch has no libc: the program is linked statically.
    mkdir "$work/hello"
    rustc -O -C target-feature=+crt-static -C strip=symbols -o "$work/hello/hello" mini-docker/hello/src/main.rs
    printf '%s\n' 'FROM scratch' 'COPY hello /hello' 'CMD ["/hello"]' > "$work/hello/Dockerfile"
    cat "$work/hello/Dockerfile"
    mini-docker build -t hello-world:latest "$work/hello"
    rm -rf "$work"
}
