#!/bin/sh
# Runs the tests that touch cgroups or overlay inside a QEMU guest with another cgroup
# layout and an older kernel than the host's: Debian 12's own kernel (6.1), booted with a
# pure cgroup v2 hierarchy (`--cgroup v2`, what most laptops run) or only the v1 ones
# (`--cgroup v1`). The host's hybrid layout and newer kernel are the main suite's.
#
#   scripts/vm-test.sh --cgroup v2|v1 [TEST-FILTER…]
#   scripts/vm-test.sh --cgroup v2|v1 --run 'ch02-cgroups demo memory'
#
# The second form runs one command in the guest instead of the tests, with the chapters'
# binaries on PATH: a learner's own chapter on a pure v2 (or v1) host.
#
# The guest's root filesystem is the host's own, shared read-only over virtio-9p, so the
# test binaries built here, busybox-static and every tool they call are found at the same
# paths inside. The kernel and QEMU come from Debian's packages, cached under
# target/vm/ with the initramfs. KVM is used when it boots the guest, TCG otherwise. The
# guest prints its kernel and cgroup filesystem first, runs the tests as root with CI set,
# writes their status to the shared results directory and powers off; this script exits
# with that status. A guest that does not finish in $VM_TIMEOUT seconds (default 1500) is
# killed, and its serial log is printed.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
as_root "$@"

lane=""
command=""
while [ $# -gt 0 ]; do
    case $1 in
    --cgroup) lane=${2:-}; shift 2 || true ;;
    --run) command=${2:-}; shift 2 || true ;;
    --cgroup=*) lane=${1#*=}; shift ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
    esac
done
case $lane in
v1 | v2) ;;
*) echo "usage: scripts/vm-test.sh --cgroup v2|v1 [--run COMMAND | TEST-FILTER…]" >&2; exit 2 ;;
esac

need_packages busybox-static kmod e2fsprogs
need_cargo

target=$(realpath -m "${CARGO_TARGET_DIR:-target}")
vm="$target/vm"
mkdir -p "$vm"

# The kernel: whatever linux-image-amd64 depends on in this machine's Debian release,
# unpacked (not installed: the host's own kernel and /lib/modules stay as they are), with
# its modules.dep made by depmod so the guest can use modprobe.
kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "vm-test: apt-cache knows no linux-image-amd64" >&2; exit 1; }
kdir="$vm/$kpkg"
if [ ! -e "$kdir/.done" ]; then
    say "Fetching Debian's kernel ($kpkg)"
    rm -rf "$kdir" && mkdir -p "$kdir"
    (cd "$vm" && apt-get download -q "$kpkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    dpkg-deb -x "$vm/$kpkg"_*.deb "$kdir"
    rm -f "$vm/$kpkg"_*.deb
    touch "$kdir/.done"
fi
kver=$(ls "$kdir/lib/modules")
depmod -b "$kdir" "$kver"

# QEMU: Debian's package; where apt refuses it (a newer qemu-utils from backports is
# installed on some machines), its packages unpacked beside the kernel.
qemu=$(command -v qemu-system-x86_64 || true)
bios=""
if [ -z "$qemu" ]; then
    need_packages qemu-system-x86 2>/dev/null || true
    qemu=$(command -v qemu-system-x86_64 || true)
fi
if [ -z "$qemu" ]; then
    say "apt-get refused qemu-system-x86: unpacking Debian's packages instead"
    q="$vm/qemu"
    if [ ! -e "$q/.done" ]; then
        rm -rf "$q" && mkdir -p "$q"
        (cd "$q" && apt-get download -q qemu-system-x86 qemu-system-data qemu-system-common seabios ipxe-qemu)
        for d in "$q"/*.deb; do dpkg-deb -x "$d" "$q"; done
        touch "$q/.done"
    fi
    qemu="$q/usr/bin/qemu-system-x86_64"
    bios="-L $q/usr/share/seabios -L $q/usr/share/qemu"
fi

# The tests: those that touch cgroups or overlay, i.e. run containers. Built here (the
# guest has no network); the guest runs the binaries from the shared root. What does not
# run there says why, in one line each:
say "Building the tests for the guest"
cat <<'EOF_SKIPPED'
not in the lanes: ch01 (namespaces only) and ch05 (the registry client: no container, no cgroup)
not in the lanes: ch04's fuzz loop (a minute of extraction, no mount) and mini-docker's parity test (it needs a docker daemon)
EOF_SKIPPED
list="$vm/tests-$lane.list"
: > "$list"
for sel in "-p ch02-cgroups" "-p ch03-rootfs-pivot_root" \
    "-p ch04-unionfs-layers --lib --test layers --test note" \
    "-p ch06-dockerfile --test note" "-p ch07-veth-bridge --test host --test note" \
    "-p mini-docker --test lifecycle --test security --test walkthroughs --test network \
        --test build --test images --test robustness --test faults --test note"; do
    # shellcheck disable=SC2086
    cargo test --no-run --quiet --message-format=json $sel |
        grep '"profile":{[^}]*"test":true' |
        sed -n 's/.*"manifest_path":"\([^"]*\)\/Cargo.toml".*"executable":"\([^"]*\)".*/\1 \2/p' >> "$list"
done

# The initramfs: busybox-static and the modules that reach the host's files over 9p.
init="$vm/initramfs"
rm -rf "$init" && mkdir -p "$init/bin" "$init/proc" "$init/sys" "$init/dev"
cp /bin/busybox "$init/bin/busybox"
for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -s busybox "$init/bin/$applet"; done
modprobe -d "$kdir" -S "$kver" --show-depends -a virtio_pci 9pnet_virtio 9p |
    awk '$1 == "insmod" {print $2}' | awk '!seen[$0]++' > "$vm/modules.list"
: > "$init/modules.list"
while read -r ko; do
    rel=${ko#"$kdir"/}
    mkdir -p "$init/$(dirname "$rel")"
    cp "$ko" "$init/$rel"
    echo "$rel" >> "$init/modules.list"
done < "$vm/modules.list"
cp scripts/vm/init "$init/init"
(cd "$init" && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$vm/initramfs.cpio.gz"

# The results directory, shared read-write: what to run, and what happened.
run="$vm/run-$lane"
rm -rf "$run" && mkdir -p "$run"
cp "$list" "$run/tests.list"
echo "$*" > "$run/filters"
# Single tests the guest cannot run: NAME, then why.
cat > "$run/skips" <<'EOF_SKIPS'
a_debian_base_installs_a_package_with_apt_get_and_runs_it needs Debian's package mirror, and the guest has no network
EOF_SKIPS
[ -z "$command" ] || printf '%s\n' "$command" > "$run/command"
# A scratch disk for /tmp, where the tests keep their stores: ext4 on a virtio block
# device, so that block I/O limits have a real device to throttle (tmpfs has none).
rm -f "$vm/scratch-$lane.img"
truncate -s 8G "$vm/scratch-$lane.img"
mkfs.ext4 -q -F -E lazy_itable_init=1 "$vm/scratch-$lane.img"
repo=$(pwd)
cargobin=$(dirname "$(command -v cargo)")
# The guest's /tmp is its scratch disk: what the run needs from the host's /tmp (a clone
# of the project there, its target directory) is bound back in by guest.sh.
keep=""
for p in "$repo" "$target" "$cargobin"; do
    case $p in /tmp/?*) top=/tmp/$(echo "${p#/tmp/}" | cut -d/ -f1); keep="$keep${keep:+:}$top" ;; esac
done
cmdline="console=ttyS0 loglevel=3 panic=-1 mdw.run=$run mdw.lane=$lane mdw.kdir=$kdir mdw.repo=$repo mdw.cargobin=$cargobin mdw.bin=$target/debug mdw.keep=$keep mdw.guest=$repo/scripts/vm/guest.sh"
[ "$lane" = v2 ] && cmdline="$cmdline cgroup_no_v1=all"

boot() { # $1: the accelerator's options
    # shellcheck disable=SC2086
    "$qemu" $bios $1 -smp 2 -m 4096 -nodefaults -no-reboot -display none -monitor none \
        -serial "file:$run/serial.log" \
        -kernel "$kdir/boot/vmlinuz-$kver" -initrd "$vm/initramfs.cpio.gz" -append "$cmdline" \
        -drive "file=$vm/scratch-$lane.img,if=virtio,format=raw,cache=unsafe" \
        -fsdev local,id=hostroot,path=/,security_model=passthrough,readonly=on,multidevs=remap \
        -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
        -fsdev "local,id=out,path=$run,security_model=passthrough" \
        -device virtio-9p-pci,fsdev=out,mount_tag=out &
    qemu_pid=$!
}
qemu_pid=""
stop_guest() {
    [ -z "$qemu_pid" ] || { kill "$qemu_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true; }
}
# Whatever happens, no guest outlives the script and the 8 GB scratch image goes.
trap 'stop_guest; rm -f "$vm/scratch-$lane.img"' EXIT
trap 'exit 130' INT TERM

# KVM when it boots the guest within 20 s; some machines' /dev/kvm cannot (a PVM variant
# fails on an MSR or hangs early), and then TCG, QEMU's own emulation, does it all.
accel=""
if [ -w /dev/kvm ]; then
    say "Booting the $lane guest ($kver) with KVM"
    boot "-accel kvm -cpu host"
    t=0
    while [ ! -e "$run/booted" ] && [ $t -lt 20 ] && kill -0 "$qemu_pid" 2>/dev/null; do sleep 1; t=$((t + 1)); done
    if [ -e "$run/booted" ]; then accel=kvm; else
        stop_guest
        echo "vm-test: KVM did not boot the guest in 20 s; using TCG"
        rm -f "$run/serial.log"
    fi
fi
if [ -z "$accel" ]; then
    say "Booting the $lane guest ($kver) with TCG (emulated: slower)"
    boot "-accel tcg,thread=multi -cpu max"
    accel=tcg
fi
touch "$run/serial.log"
tail -n +1 -f --pid="$qemu_pid" "$run/serial.log" &
tail_pid=$!
timeout=${VM_TIMEOUT:-1500}
t=0
while kill -0 "$qemu_pid" 2>/dev/null && [ $t -lt "$timeout" ]; do sleep 1; t=$((t + 1)); done
if kill -0 "$qemu_pid" 2>/dev/null; then
    stop_guest
    kill "$tail_pid" 2>/dev/null || true
    echo "vm-test: the $lane guest did not finish in $timeout s; killed. Its serial log:" >&2
    tail -n 100 "$run/serial.log" >&2
    exit 1
fi
wait "$tail_pid" 2>/dev/null || true
if [ ! -s "$run/status" ]; then
    echo "vm-test: the $lane guest ended without a test status (see its log above)" >&2
    exit 1
fi
status=$(cat "$run/status")
say "The $lane lane ($kver, $accel): $( [ "$status" = 0 ] && echo passed || echo FAILED) in $t s"
exit "$status"
