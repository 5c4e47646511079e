#!/bin/sh
# Runs in the guest as its first process, after scripts/vm/init: the root filesystem is
# the host's, read-only, with tmpfs on /tmp, /run and /var/tmp. Sets up the lane's cgroup
# layout as a host of that kind would, runs the tests scripts/vm-test.sh listed, writes
# their status where the host reads it, and powers the guest off.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
arg() {
    for a in $(cat /proc/cmdline); do
        case $a in "mdw.$1="*) echo "${a#*=}" ;; esac
    done
}
RUN=$(arg run) LANE=$(arg lane) KDIR=$(arg kdir)
off() { sync; echo o > /proc/sysrq-trigger; sleep 10; }
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts 2>/dev/null || { mkdir -p /dev/pts && mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts; }
[ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx
mkdir -p /dev/shm && mount -t tmpfs tmpfs /dev/shm
ln -sf /proc/self/fd /dev/fd
hostname vm-"$LANE"
ip link set lo up
# Modules the tests need (bridge, veth, nf_tables, …) load on demand, as on any host: the
# kernel runs this modprobe, which looks in the unpacked kernel package, not in /lib/modules.
printf '#!/bin/sh\nexec /usr/sbin/modprobe -d %s "$@"\n' "$KDIR" > /run/modprobe
chmod +x /run/modprobe
echo /run/modprobe > /proc/sys/kernel/modprobe
modprobe() { /run/modprobe "$@"; }
# /tmp on the scratch disk (ext4 on /dev/vda): the tests' stores, and a real block device
# for the I/O limits. What the run needs from the host's /tmp (the project, when it is
# cloned there; mdw.keep) is bound back at its path, read-only as the rest.
modprobe virtio_blk && modprobe ext4 && mount /dev/vda /tmp && chmod 1777 /tmp \
    || { echo "vm: cannot mount the scratch disk on /tmp"; off; }
for keep in $(arg keep | tr : ' '); do
    if [ -d "/run/host-tmp/${keep#/tmp/}" ]; then mkdir -p "$keep"; else touch "$keep"; fi
    mount --bind "/run/host-tmp/${keep#/tmp/}" "$keep" || { echo "vm: cannot bind $keep"; off; }
done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 out "$RUN" || { echo "vm: cannot mount the results directory"; off; }
echo "booted" > "$RUN/booted"

case $LANE in
v2)
    # A pure unified hierarchy (the kernel was booted with cgroup_no_v1=all), its
    # controllers enabled for children as systemd does on such a host.
    mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
    for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
        echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control
    done
    ;;
v1)
    # The v1 hierarchies a v1 host mounts (systemd's legacy mode: its own named hierarchy,
    # name=systemd, holds no controller), and no cgroup2 anywhere.
    mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
    for h in memory cpu,cpuacct pids blkio cpuset devices freezer; do
        mkdir -p "/sys/fs/cgroup/$h"
        mount -t cgroup -o "$h" cgroup "/sys/fs/cgroup/$h"
    done
    mkdir -p /sys/fs/cgroup/systemd
    mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
    ln -s cpu,cpuacct /sys/fs/cgroup/cpu
    ln -s cpu,cpuacct /sys/fs/cgroup/cpuacct
    # memory.use_hierarchy is always on since 5.x; cpuset needs cpus and mems set for
    # children to be usable, which the root has.
    ;;
esac

{
    echo "guest: uname -r: $(uname -r)"
    echo "guest: stat -fc %T /sys/fs/cgroup: $(stat -fc %T /sys/fs/cgroup)"
    echo "guest: cgroup mounts:"; grep cgroup /proc/self/mountinfo | awk '{print "  " $5 " " $9 " " $NF}'
} | tee "$RUN/guest-info"

# tests.list: one line per test binary: the package's directory, then the binary.
# filters: the test names to run (empty: all).
# The host's Rust toolchain (a test compiles a probe with rustc), from the shared root.
export HOME=/root PATH="$PATH:$(arg cargobin)"
# /dev/fuse, which a test hands to a container with --device (built in, or a module).
[ -e /dev/fuse ] || modprobe fuse
# insta finds the snapshot files from the workspace's root, which it would ask cargo for.
export CI=true RUST_BACKTRACE=1 MDW_VM_LANE="$LANE" INSTA_WORKSPACE_ROOT="$(arg repo)" INSTA_UPDATE=no
status=0
if [ -s "$RUN/command" ]; then
    # --run: one command, with the chapters' binaries on PATH, from /tmp.
    echo "guest: \$ $(cat "$RUN/command")"
    (cd /tmp && PATH="$(arg bin):$PATH" sh -c "$(cat "$RUN/command")") || status=$?
    echo "$status" > "$RUN/status"
    off
fi
filters=$(cat "$RUN/filters" 2>/dev/null)
skips=""
while read -r name why; do
    [ -n "$name" ] || continue
    echo "not run in the $LANE lane: $name: $why"
    skips="$skips --skip $name"
done < "$RUN/skips"
while read -r dir bin; do
    name=$(basename "$bin")
    echo "guest: running ${name%-*} (in $dir)"
    # shellcheck disable=SC2086
    (cd "$dir" && "$bin" --test-threads=2 $skips $filters) || status=1
done < "$RUN/tests.list"
echo "$status" > "$RUN/status"
off
