#!/usr/bin/env bash
# Container-breakout checklist: the same harmless probes against a default mini-docker
# container, Debian's Docker 20.10 (docker.io) and podman, all on one busybox rootfs built
# from the host's busybox-static. A benchmark-style report, not part of CI.
#
#   MD=/path/to/mini-docker scripts/breakout-checklist.sh
#
# MD defaults to target/release/mini-docker (built with cargo only if missing). Installs
# busybox-static, docker.io, containerd and podman with apt-get if missing. Needs root.
#
# Prints one row per probe, one column per tool: "refused"/"allowed" or a short value;
# "exitN" means the probe printed nothing and its container exited with N; "n/a" means the
# tool could not run here (the reason is printed above the table). The last line names the
# rows where mini-docker and docker differ.
#
# What it leaves behind: nothing. The whole run happens in a private mount namespace, with
# fresh tmpfs over /run, /dev/shm, /etc/docker and /var/lib/containers/cache, so dockerd,
# containerd, runc and podman keep their state (key.json, shim sockets, netns, locks,
# blob cache) there; every mount dies with the namespace. dockerd gets its own data, exec
# root, socket and pidfile in a temp dir, no iptables, no bridge, no ip_forward, and is
# stopped on exit; docker's and podman's containers sit under cgroup parents named for this
# run, removed at the end; podman gets its own vfs store. The probes never write
# core_pattern or any sysctl: /proc/sys is tested by writing kernel/hostname with its own
# value (UTS-namespaced), /proc/sysrq-trigger by opening it for writing and writing nothing,
# `reboot -f` only inside the container's own PID namespace (sh is PID 1 there), the
# host's disk by reading one byte.
set -uo pipefail # no -e: probes fail on purpose

REPO=$(cd "$(dirname "$0")/.." && pwd)
SELF="$REPO/scripts/$(basename "$0")"
[ "$(id -u)" = 0 ] || { echo "run as root (namespaces, mounts, dockerd)" >&2; exit 2; }

# ------------------------------------------------------------------ the probes
# One line per probe: id | extra run flags | description | sh snippet (rest of the line).
# The snippet prints one word. It runs after PRELUDE's helpers, with "$1" "$2" set to the
# major and minor numbers of the host's root disk. "-t" in the flags runs the tool under
# script(1) so it gets a terminal.
PROBES=$(cat <<'EOF'
1||CapEff (effective capabilities)|awk '/^CapEff:/ {print $2}' /proc/self/status
2||CapBnd (bounding set)|awk '/^CapBnd:/ {print $2}' /proc/self/status
3||NoNewPrivs|awk '/^NoNewPrivs:/ {print $2}' /proc/self/status
4||Seccomp mode (2 = filter)|awk '/^Seccomp:/ {print $2}' /proc/self/status
5||mount a tmpfs on /mnt|mkdir -p /mnt; yn 'mount -t tmpfs probe /mnt'
6||mount -o remount,rw /sys|yn 'mount -o remount,rw /sys'
7||write /proc/sys/kernel/hostname (own value)|h=$(cat /proc/sys/kernel/hostname); yn 'echo "$h" > /proc/sys/kernel/hostname'
8||/proc/sys mount: ro or rw|o=$(mopt /proc/sys); [ "$o" != none ] || o="$(mopt /proc)(proc)"; echo "$o"
9||open /proc/sysrq-trigger to write (0 bytes)|if [ -e /proc/sysrq-trigger ]; then yn ': >> /proc/sysrq-trigger'; else echo absent; fi
10||read /proc/kcore|if [ ! -e /proc/kcore ]; then echo absent; elif [ "$(mopt /proc/kcore)" != none ]; then echo masked; else yn 'head -c1 /proc/kcore' readable refused; fi
11||/proc/keys size in bytes (0 = masked)|if [ -e /proc/keys ]; then wc -c < /proc/keys; else echo absent; fi
12||/proc/timer_list size in bytes (0 = masked)|if [ ! -e /proc/timer_list ]; then echo absent; elif [ -r /proc/timer_list ]; then wc -c < /proc/timer_list; else echo refused; fi
13||entries in /sys/firmware|ls -A /sys/firmware 2>/dev/null | wc -l
14||unshare -U true (new user namespace)|yn 'unshare -U true'
15||reboot -f (exitN = allowed: PID ns killed)|if [ $$ != 1 ] && [ $(( (0x$(awk '/^CapEff:/ {print $2}' /proc/self/status) >> 22) & 1 )) = 1 ]; then echo skipped; else reboot -f >/dev/null 2>&1; echo refused; fi
16||mknod host root disk, read 1 byte|mknod /tmp/probe-disk b "$1" "$2" 2>/dev/null || { echo refused:mknod; exit 0; }; yn 'head -c1 /tmp/probe-disk'
17||mknod /dev/kmsg (c 1 11), read|mknod /tmp/probe-kmsg c 1 11 2>/dev/null || { echo refused:mknod; exit 0; }; yn 'timeout 2 dd if=/tmp/probe-kmsg of=/dev/null bs=8192 count=1'
18||descriptors besides 0,1,2 (count)|(exec ls -l /proc/self/fd) >/tmp/probe-fds 2>/dev/null; awk '{ i = index($0, " -> "); if (!i) next; fd = substr($0, 1, i - 1); sub(/.* /, "", fd); t = substr($0, i + 4); if (fd !~ /^[012]$/ && t !~ /^\/proc\//) n++ } END { print n + 0 }' /tmp/probe-fds
19|-t|tty under -t|tty
20||/sys/fs/cgroup: absent, ro or rw|cgmounts
21|--read-only|--read-only: write /etc/hostname (own value)|h=$(cat /etc/hostname); yn 'echo "$h" > /etc/hostname'
22|--read-only|--read-only: create /probe on the rootfs|yn ': > /probe'
EOF
)

# Helpers every snippet can use.
# shellcheck disable=SC2016 # expanded in the container, not here
PRELUDE='
yn() { if (eval "$1") >/dev/null 2>&1; then echo "${2:-allowed}"; else echo "${3:-refused}"; fi; }
mopt() { awk -v m="$1" '\''$5 == m { split($6, o, ","); r = o[1] } END { print (r == "" ? "none" : r) }'\'' /proc/self/mountinfo; }
cgmounts() { awk '\''$5 == "/sys/fs/cgroup" || index($5, "/sys/fs/cgroup/") == 1 {
    n++; for (i = 7; $i != "-"; i++) ; if ($(i + 1) !~ /^cgroup2?$/) next
    split($6, o, ","); if (o[1] == "ro") ro++; else rw++ }
  END { if (!n) print "absent"; else if (!ro && !rw) print "no-cgroupfs"; else if (!rw) print "ro";
        else if (!ro) print "rw"; else print "mixed" }'\'' /proc/self/mountinfo; }
'

# ------------------------------------------------------------------ setup, outside the namespace
T0=${BREAKOUT_T0:-$(date +%s.%N)}
if [ "${BREAKOUT_IN_NS:-}" != 1 ]; then
    MD=${MD:-$REPO/target/release/mini-docker}
    case $MD in /*) ;; *) MD=$PWD/$MD ;; esac
    if [ ! -x "$MD" ]; then
        if [ "$MD" = "$REPO/target/release/mini-docker" ]; then
            echo "==> building mini-docker (cargo build --release -p mini-docker)"
            (cd "$REPO" && cargo build --release -p mini-docker) || exit 1
        else
            echo "MD=$MD: not an executable" >&2; exit 2
        fi
    fi
    missing=()
    for p in busybox-static docker.io containerd runc podman; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "==> apt-get install ${missing[*]}"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/dev/null \
            || echo "    apt-get failed: the missing tools' columns will say n/a" >&2
    fi
    export MD BREAKOUT_IN_NS=1 BREAKOUT_T0="$T0"
    exec unshare --mount --propagation private -- "$BASH" "$SELF" "$@"
fi

# ------------------------------------------------------------------ inside the private mount namespace
T=$(mktemp -d /tmp/breakout-checklist-XXXXXX)
mkdir -p "$T/tmp" "$T/md" "$T/podman/tmp" "$T/docker-data" "$T/docker-exec" "$T/out"
export TMPDIR="$T/tmp"
TAG=breakout-checklist-$$
DOCKER_BIN=/usr/bin/docker # Debian's client: /usr/local/bin may hold another one
DOCKER=("$DOCKER_BIN" -H "unix://$T/docker.sock")
PODMAN=(podman --root "$T/podman/root" --runroot "$T/podman/runroot" --storage-driver vfs
        --tmpdir "$T/podman/tmp" --events-backend file)
PODMAN_RUN=()
DOCKER_OK=0 PODMAN_OK=0 DOCKER_WHY="" PODMAN_WHY="" PODMAN_HOW=""
CGROUP_PARENTS=("$TAG-docker" "$TAG-podman")

cgroup_dirs() { # NAME -> that cgroup on every hierarchy
    local d
    for d in /sys/fs/cgroup/"$1" /sys/fs/cgroup/*/"$1"; do [ -d "$d" ] && echo "$d"; done
}
MD_CGROUPS_BEFORE=$(cgroup_dirs mini-docker)
CACHE_EXISTED=0; [ -d /var/lib/containers/cache ] && CACHE_EXISTED=1
CONTAINERS_EXISTED=0; [ -d /var/lib/containers ] && CONTAINERS_EXISTED=1

cleanup() {
    local pid pidf d m name
    trap - EXIT INT TERM
    if [ "$PODMAN_OK" = 1 ]; then "${PODMAN[@]}" rm -a -f -t 0 >/dev/null 2>&1; fi
    for pidf in "$T/docker.pid" "$T/docker-exec/containerd/containerd.pid"; do
        pid=$(cat "$pidf" 2>/dev/null) || continue
        [ -n "$pid" ] || continue
        kill "$pid" 2>/dev/null || continue
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    done
    [ -n "${DOCKERD_PID:-}" ] && wait "$DOCKERD_PID" 2>/dev/null
    findmnt -rn -o TARGET | grep "^$T/" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    for name in "${CGROUP_PARENTS[@]}"; do
        cgroup_dirs "$name" | while read -r d; do find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done
    done
    cgroup_dirs mini-docker | while read -r d; do
        grep -qxF "$d" <<<"$MD_CGROUPS_BEFORE" || rmdir "$d" 2>/dev/null
    done
    # Only if the tmpfs could not cover it (it did not exist): podman created it on the host.
    if [ "$CACHE_EXISTED" = 0 ]; then
        rm -rf /var/lib/containers/cache
        [ "$CONTAINERS_EXISTED" = 1 ] || rmdir /var/lib/containers 2>/dev/null
    fi
    rm -rf --one-file-system "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runtime state goes to tmpfs that die with this namespace.
mount -t tmpfs -o mode=0755 breakout-run /run
mount -t tmpfs -o mode=1777 breakout-shm /dev/shm
[ -d /etc/docker ] && mount -t tmpfs -o mode=0755 breakout-etc-docker /etc/docker
[ "$CACHE_EXISTED" = 1 ] && mount -t tmpfs -o mode=0700 breakout-cache /var/lib/containers/cache

# The host's root disk, for the mknod probe: the mountinfo line whose mount point is /.
read -r DISK_MAJ DISK_MIN < <(awk '$5 == "/" { split($3, d, ":") } END { print d[1], d[2] }' /proc/self/mountinfo)
if [ "${DISK_MAJ:-0}" = 0 ]; then # overlay, btrfs...: try the mount's source device instead
    src=$(awk '$5 == "/" { for (i = 7; $i != "-"; i++) ; s = $(i + 2) } END { print s }' /proc/self/mountinfo)
    if [ -b "$src" ]; then read -r DISK_MAJ DISK_MIN < <(stat -Lc '%t %T' "$src"); DISK_MAJ=$((16#$DISK_MAJ)); DISK_MIN=$((16#$DISK_MIN)); fi
fi

# Can the host itself read it? If not (an LSM, a sandboxed VM), row 16 cannot tell a
# container's devices rule from the host's own refusal.
HOST_DISK=refused
mknod "$T/host-disk" b "$DISK_MAJ" "$DISK_MIN" 2>/dev/null && head -c1 "$T/host-disk" >/dev/null 2>&1 && HOST_DISK=allowed
rm -f "$T/host-disk"

# ------------------------------------------------------------------ the image
echo "==> busybox rootfs from $(command -v busybox) ($T)"
R="$T/rootfs"
mkdir -p "$R"/{bin,etc,proc,sys,dev,tmp,root}
chmod 1777 "$R/tmp"; chmod 0700 "$R/root"
install -m 0755 "$(command -v busybox)" "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$R/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$R/etc/group"
tar -C "$R" -cf "$T/rootfs.tar" .

echo "==> mini-docker: $MD --root $T/md import"
"$MD" --root "$T/md" import "$T/rootfs.tar" busybox >/dev/null || { echo "mini-docker import failed" >&2; exit 1; }

echo "==> docker: dockerd on unix://$T/docker.sock"
if [ ! -x /usr/sbin/dockerd ] || [ ! -x "$DOCKER_BIN" ]; then
    DOCKER_WHY="docker.io is not installed"
else
    echo '{}' > "$T/daemon.json"
    dockerd --config-file "$T/daemon.json" --data-root "$T/docker-data" --exec-root "$T/docker-exec" \
        --pidfile "$T/docker.pid" -H "unix://$T/docker.sock" --iptables=false --ip-forward=false \
        --ip-masq=false --bridge=none --cgroup-parent "$TAG-docker" >"$T/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 150); do
        "${DOCKER[@]}" version >/dev/null 2>&1 && { DOCKER_OK=1; break; }
        kill -0 "$DOCKERD_PID" 2>/dev/null || break
        sleep 0.2
    done
    if [ "$DOCKER_OK" = 1 ]; then
        "${DOCKER[@]}" import "$T/rootfs.tar" busybox-probe >/dev/null 2>"$T/docker-import.err" \
            || { DOCKER_OK=0; DOCKER_WHY="docker import: $(tail -1 "$T/docker-import.err")"; }
    else
        DOCKER_WHY="dockerd did not come up: $(grep -iE 'level=(error|fatal)|failed' "$T/dockerd.log" | tail -1)"
    fi
fi
[ "$DOCKER_OK" = 1 ] || echo "    docker: n/a ($DOCKER_WHY)"

echo "==> podman: own vfs store in $T/podman"
if ! command -v podman >/dev/null; then
    PODMAN_WHY="podman is not installed"
elif ! "${PODMAN[@]}" import -q "$T/rootfs.tar" busybox-probe >/dev/null 2>"$T/podman-import.err"; then
    PODMAN_WHY="podman import: $(tail -1 "$T/podman-import.err")"
else
    # Defaults first; then what this host may need: cgroupfs instead of systemd, runc
    # instead of crun (crun 1.8 refuses hybrid cgroups), and rlimits within podman's own
    # hard limits: it asks for nofile and nproc 1048576, which is above them without
    # CAP_SYS_RESOURCE. Podman 4.3 lowers its own RLIMIT_NPROC to 32768 when it starts
    # (strace shows the setrlimit), so nproc cannot go above that either.
    hn=$(ulimit -Hn); hu=$(ulimit -Hu)
    [ "$hn" = unlimited ] && hn=1048576
    { [ "$hu" = unlimited ] || [ "$hu" -gt 32768 ]; } && hu=32768
    ULIMITS=(--ulimit "nofile=$hn:$hn" --ulimit "nproc=$hu:$hu")
    for global in "" "--cgroup-manager cgroupfs" "--cgroup-manager cgroupfs --runtime runc"; do
        read -ra g <<<"$global"
        for ul in "" "${ULIMITS[*]}"; do
            read -ra run <<<"--cgroup-parent /$TAG-podman $ul"
            how="podman${global:+ $global} run${ul:+ $ul}"
            if "${PODMAN[@]}" "${g[@]}" run --rm --network=none "${run[@]}" localhost/busybox-probe true \
                >/dev/null 2>"$T/podman-try.err"; then
                PODMAN+=("${g[@]}"); PODMAN_RUN=("${run[@]}"); PODMAN_OK=1; PODMAN_HOW=$how
                break 2
            fi
            PODMAN_WHY="podman run: $(tail -1 "$T/podman-try.err")"
            echo "    tried: $how: $(tail -1 "$T/podman-try.err")"
        done
    done
fi
if [ "$PODMAN_OK" = 1 ]; then echo "    works: $PODMAN_HOW"; else echo "    podman: n/a ($PODMAN_WHY)"; fi

# ------------------------------------------------------------------ runners
# TOOL_run FLAGS SNIPPET: one fresh default container (plus FLAGS, word-split) runs the
# snippet; its stdout is the result. With -t in FLAGS the tool runs under script(1).
with_tty() { # FLAGS CMD... -> run CMD (with a terminal if FLAGS hold -t), 2 minutes at most
    local flags=$1; shift
    if [[ " $flags " == *" -t "* ]]; then
        SHELL=/bin/bash timeout -k 5 120 script -qec "$(printf '%q ' "$@")" /dev/null </dev/null
    else
        timeout -k 5 120 "$@" </dev/null
    fi
}
md_run() {
    local -a f; read -ra f <<<"$1"
    with_tty "$1" "$MD" --root "$T/md" run --rm --network none "${f[@]}" \
        busybox sh -c "$PRELUDE$2" sh "$DISK_MAJ" "$DISK_MIN"
}
docker_run() {
    local -a f; read -ra f <<<"$1"
    with_tty "$1" "${DOCKER[@]}" run --rm --network none "${f[@]}" \
        busybox-probe sh -c "$PRELUDE$2" sh "$DISK_MAJ" "$DISK_MIN"
}
podman_run() {
    local -a f; read -ra f <<<"$1"
    with_tty "$1" "${PODMAN[@]}" run --rm --network=none "${PODMAN_RUN[@]}" "${f[@]}" \
        localhost/busybox-probe sh -c "$PRELUDE$2" sh "$DISK_MAJ" "$DISK_MIN"
}
cell() { # TOOL ID FLAGS SNIPPET -> the table cell: the first word printed, or exitN
    local tool=$1 id=$2 out rc
    case $tool in
        docker) [ "$DOCKER_OK" = 1 ] || { echo n/a; return; } ;;
        podman) [ "$PODMAN_OK" = 1 ] || { echo n/a; return; } ;;
    esac
    "${tool}_run" "$3" "$4" >"$T/out/$tool.$id.out" 2>"$T/out/$tool.$id.err"
    rc=$?
    out=$(tr -d '\r' <"$T/out/$tool.$id.out" | awk 'NF { $1 = $1; print; exit }')
    echo "${out:-exit$rc}"
}

# ------------------------------------------------------------------ run
printf '==> probes (host root disk %s:%s):' "$DISK_MAJ" "$DISK_MIN" >&2
MD_VER=$("$MD" --version 2>/dev/null | awk '{print $NF}')
DOCKER_VER=n/a; [ "$DOCKER_OK" = 1 ] && DOCKER_VER=$("${DOCKER[@]}" version --format '{{.Server.Version}}' 2>/dev/null)
PODMAN_VER=n/a; [ "$PODMAN_OK" = 1 ] && PODMAN_VER=$(podman --version | awk '{print $NF}')
declare -A RES
while IFS='|' read -r -u 3 id flags desc snippet; do
    [ -n "$id" ] || continue
    for tool in md docker podman; do RES[$tool.$id]=$(cell "$tool" "$id" "$flags" "$snippet"); done
    printf ' %s' "$id" >&2
done 3<<<"$PROBES"
echo >&2

# ------------------------------------------------------------------ report
echo
echo "mini-docker $MD_VER: $MD"
echo "docker $DOCKER_VER: own dockerd, runc $(runc --version 2>/dev/null | awk 'NR == 1 {print $3}'), docker run --rm --network none"
echo "podman $PODMAN_VER: ${PODMAN_HOW:-n/a}, own vfs store, --network=none"
[ "$HOST_DISK" = allowed ] || echo "note: the host itself cannot read its root disk $DISK_MAJ:$DISK_MIN here, so row 16 says nothing about the containers' device rules"
[ "$DOCKER_OK" = 1 ] || echo "docker: n/a: $DOCKER_WHY"
[ "$PODMAN_OK" = 1 ] || echo "podman: n/a: $PODMAN_WHY"
echo
fmt='%-3s %-46s %-18s %-18s %-18s\n'
# shellcheck disable=SC2059
printf "$fmt" id probe mini-docker docker podman
# shellcheck disable=SC2059
printf "$fmt" --- "$(printf '%.0s-' {1..46})" ------------------ ------------------ ------------------
differ=() differ_podman=()
while IFS='|' read -r id _ desc _; do
    [ -n "$id" ] || continue
    # shellcheck disable=SC2059
    printf "$fmt" "$id" "$desc" "${RES[md.$id]}" "${RES[docker.$id]}" "${RES[podman.$id]}"
    [ "$DOCKER_OK" = 1 ] && [ "${RES[md.$id]}" != "${RES[docker.$id]}" ] && differ+=("$id")
    [ "$PODMAN_OK" = 1 ] && [ "${RES[md.$id]}" != "${RES[podman.$id]}" ] && differ_podman+=("$id")
done <<<"$PROBES"
notes=$(for f in "$T"/out/*.err; do
    [ -s "$f" ] || continue
    b=$(basename "$f" .err); tool=${b%%.*}; id=${b#*.}
    case ${RES[$tool.$id]} in exit*) printf '    %s, probe %s: %s\n' "$tool" "$id" "$(tail -1 "$f" | cut -c1-110)" ;; esac
done)
[ -z "$notes" ] || printf '\nprobes that printed nothing (last line of stderr):\n%s\n' "$notes"
echo
[ "$PODMAN_OK" = 1 ] && echo "mini-docker vs podman differ on: ${differ_podman[*]:-none}"
echo "run time: $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }')"
if [ "$DOCKER_OK" = 1 ]; then
    echo "mini-docker vs docker differ on rows: ${differ[*]:-none}"
else
    echo "mini-docker vs docker: docker n/a ($DOCKER_WHY)"
fi
