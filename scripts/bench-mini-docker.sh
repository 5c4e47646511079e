#!/usr/bin/env bash
# mini-docker against crun and podman, side by side in one run, on the same busybox
# rootfs: the peers' (../shared/tools/peers/setup.sh, work dir $1, default /tmp/peers).
#
#   run:  mini-docker run --rm --network none busybox true   vs  crun run  vs  podman run --rm --network=none
#   exec: mini-docker exec C true                            vs  crun exec C true
#   net:  mini-docker run --rm busybox true (the default bridge) vs the same with --network none,
#         and podman's bridge vs its none
#
# Targets (the mini-docker issue): run <= 1.5 x crun and <= 0.1 x podman; exec <= 2 x crun.
# Chapter 7's: the bridge costs at most 2 x --network none (podman: 2.3 x). The bridge rows
# use the host's own network (a bridge mdocker0 and the table ip mini_docker come and go),
# as a learner's runs do.
# BASE=REV (a git revision) also measures mini-docker as built from REV, in the same run
# and on its own store, so a change is compared with what it replaces ("no regression").
# crun's bundle gets the same defences as a default mini-docker container: the peers' bundle
# has docker's capabilities, masked and read-only paths and a devices rule already; the
# bench adds docker's default seccomp profile (resolved by scripts/bench/oci-seccomp.jq).
# crun 1.8 refuses a hybrid cgroup host; it runs in a private mount namespace with the
# cgroup2 mount detached (the peers' "legacy" rows), which changes nothing it measures.
set -euo pipefail
W=${1:-/tmp/peers}
cd "$(dirname "$0")/.."
[ -f "$W/peers.env" ] || { echo "run ../shared/tools/peers/setup.sh -w $W first" >&2; exit 1; }
# shellcheck disable=SC1091
. "$W/peers.env"
export CONTAINERS_CONF CONTAINERS_STORAGE_CONF
RUNS=${RUNS:-30}
cargo build --release -q -p mini-docker
MD="$PWD/target/release/mini-docker"
BASE_MD=
if [ -n "${BASE:-}" ]; then
    rev=$(git rev-parse --short "$BASE")
    BASE_MD="$PWD/target/bench-base/$rev/release/mini-docker"
    if [ ! -x "$BASE_MD" ]; then
        src=$(mktemp -d /tmp/mdk-bench-base-XXXXXX)
        git archive "$rev" | tar -C "$src" -x
        (cd "$src" && cargo build --release -q -p mini-docker --target-dir "$OLDPWD/target/bench-base/$rev")
        rm -rf "$src"
    fi
fi
R=$(mktemp -d /tmp/mdk-bench-XXXXXX)
RB=$(mktemp -d /tmp/mdk-bench-base-root-XXXXXX)
OUT=$(mktemp -d /tmp/mdk-bench-results-XXXXXX)
cleanup() {
    "$MD" --root "$R" rm -f execbench keeper >/dev/null 2>&1 || true
    [ -z "$BASE_MD" ] || "$BASE_MD" --root "$RB" rm -f execbench >/dev/null 2>&1 || true
    unshare --mount --propagation private sh -c "umount -l /sys/fs/cgroup/unified 2>/dev/null; crun kill mdk-bench-exec KILL 2>/dev/null; crun delete -f mdk-bench-exec 2>/dev/null" || true
    rm -rf "$R" "$RB" "$OUT"
}
trap cleanup EXIT

tar -C "$W/rootfs" -cf "$R/rootfs.tar" .
"$MD" --root "$R" import "$R/rootfs.tar" busybox >/dev/null
[ -z "$BASE_MD" ] || "$BASE_MD" --root "$RB" import "$R/rootfs.tar" busybox >/dev/null
# crun's bundle with docker's seccomp profile; an exec target: the same bundle, running sleep.
jq -f scripts/bench/oci-seccomp.jq chapters/ch01-namespaces/src/seccomp/docker-default.json > "$R/seccomp.json"
cp -a "$W/bundle" "$R/bundle"
jq --slurpfile s "$R/seccomp.json" '.linux.seccomp = $s[0]' "$W/bundle/config.json" > "$R/bundle/config.json"
cp -a "$R/bundle" "$R/bundle-sleep"
jq '.process.args = ["/bin/sleep", "1000"] | .process.terminal = false' "$R/bundle/config.json" > "$R/bundle-sleep/config.json"

# The median: a `run` waits for an RCU grace period in the kernel (the first write to a v1
# cgroup.procs), so a few runs take several times longer and would swing a mean.
mean() { jq -r '.results[0].median * 1000' "$1"; }
hf() { hyperfine -N -w 3 -r "$RUNS" --export-json "$1" "$2" >/dev/null 2>&1; }
legacy() { unshare --mount --propagation private sh -c "umount -l /sys/fs/cgroup/unified 2>/dev/null; $1"; }

hf "$OUT/md-run.json" "$MD --root $R run --rm --network none busybox true"
[ -z "$BASE_MD" ] || hf "$OUT/base-run.json" "$BASE_MD --root $RB run --rm --network none busybox true"
legacy "hyperfine -N -w 3 -r $RUNS --export-json $OUT/crun-run.json 'crun run -b $R/bundle mdk-bench-crun' >/dev/null 2>&1"
# For comparison: crun without any seccomp filter (doing less than a default container).
legacy "hyperfine -N -w 3 -r $RUNS --export-json $OUT/crun-noseccomp.json 'crun run -b $W/bundle mdk-bench-crun' >/dev/null 2>&1"
hf "$OUT/podman-run.json" "podman run --rm --network=none $PEERS_IMAGE true"
# The bridge: a container already on it keeps the bridge and the table up, as on a host
# where containers run; each measured run adds and removes its veth pair, address and names.
"$MD" --root "$R" run -d --name keeper busybox sleep 1000 >/dev/null
hf "$OUT/md-bridge.json" "$MD --root $R run --rm busybox true"
"$MD" --root "$R" rm -f keeper >/dev/null
hf "$OUT/podman-bridge.json" "podman run --rm $PEERS_IMAGE true"

"$MD" --root "$R" run -d --network none --name execbench busybox sleep 1000 >/dev/null
hf "$OUT/md-exec.json" "$MD --root $R exec execbench true"
if [ -n "$BASE_MD" ]; then
    "$BASE_MD" --root "$RB" run -d --network none --name execbench busybox sleep 1000 >/dev/null
    hf "$OUT/base-exec.json" "$BASE_MD --root $RB exec execbench true"
fi
legacy "crun run -d -b $R/bundle-sleep mdk-bench-exec >/dev/null && hyperfine -N -w 3 -r $RUNS --export-json $OUT/crun-exec.json 'crun exec mdk-bench-exec /bin/true' >/dev/null 2>&1"

md_run=$(mean "$OUT/md-run.json"); crun_run=$(mean "$OUT/crun-run.json"); podman_run=$(mean "$OUT/podman-run.json")
crun_bare=$(mean "$OUT/crun-noseccomp.json")
md_exec=$(mean "$OUT/md-exec.json"); crun_exec=$(mean "$OUT/crun-exec.json")
md_bridge=$(mean "$OUT/md-bridge.json"); podman_bridge=$(mean "$OUT/podman-bridge.json")
printf '%-48s %10s\n' "what" "median (ms)"
printf '%-48s %10.2f\n' "mini-docker run --rm --network none busybox true" "$md_run" "crun run (docker's seccomp profile)" "$crun_run" \
    "crun run (no seccomp filter)" "$crun_bare" "podman run --rm --network=none" "$podman_run" \
    "mini-docker exec C true" "$md_exec" "crun exec C true" "$crun_exec" \
    "mini-docker run --rm busybox true (bridge)" "$md_bridge" "podman run --rm (bridge)" "$podman_bridge"
echo
awk -v a="$md_run" -v b="$crun_run" 'BEGIN { printf "run:  mini-docker / crun   = %.2f (target <= 1.5)\n", a / b }'
awk -v a="$md_run" -v b="$crun_bare" 'BEGIN { printf "run:  mini-docker / crun without seccomp = %.2f (for comparison)\n", a / b }'
awk -v a="$md_run" -v b="$podman_run" 'BEGIN { printf "run:  mini-docker / podman = %.3f (target <= 0.1)\n", a / b }'
awk -v a="$md_exec" -v b="$crun_exec" 'BEGIN { printf "exec: mini-docker / crun   = %.2f (target <= 2.0)\n", a / b }'
awk -v a="$md_bridge" -v b="$md_run" 'BEGIN { printf "net:  mini-docker bridge / none = %.2f (target <= 2.0)\n", a / b }'
awk -v a="$podman_bridge" -v b="$podman_run" 'BEGIN { printf "net:  podman bridge / none = %.2f (for comparison)\n", a / b }'
if [ -n "$BASE_MD" ]; then
    base_run=$(mean "$OUT/base-run.json"); base_exec=$(mean "$OUT/base-exec.json")
    echo
    printf '%-48s %10.2f\n' "mini-docker at $rev: run --rm" "$base_run" "mini-docker at $rev: exec" "$base_exec"
    awk -v a="$md_run" -v b="$base_run" -v r="$rev" 'BEGIN { printf "run:  mini-docker / %s = %.2f (no regression: <= 1.0 within noise)\n", r, a / b }'
    awk -v a="$md_exec" -v b="$base_exec" -v r="$rev" 'BEGIN { printf "exec: mini-docker / %s = %.2f\n", r, a / b }'
fi
