#!/usr/bin/env bash
# mini-docker build against buildah bud, side by side in one run, on the same input: a
# 5-step Dockerfile (FROM a local busybox, RUN, ENV, COPY, CMD), cold (--no-cache) and
# fully cached. Both start from a busybox image each builds itself FROM scratch from the
# host's busybox-static. buildah uses its own overlay store and chroot isolation (no OCI
# runtime to configure on this host; mini-docker's RUN gets namespaces, overlay, docker's
# capabilities and seccomp). Targets (chapter 6's issue): cold <= 0.5 x buildah, cached
# <= 0.2 x buildah. Needs root, hyperfine, buildah, busybox-static (apt-get install them).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
for tool in hyperfine buildah; do
    command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install $tool)" >&2; exit 1; }
done
cargo build --release -q -p mini-docker
MD="$PWD/target/release/mini-docker"
W=$(mktemp -d /tmp/mdk-bench-build-XXXXXX)
BH="buildah --root $W/buildah/root --runroot $W/buildah/run --storage-driver overlay"
cleanup() {
    $BH rm -a >/dev/null 2>&1 || true
    $BH rmi -a -f >/dev/null 2>&1 || true
    findmnt -rn -o TARGET | grep "^$W" | sort -r | xargs -r umount -l 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/base/rootfs/bin" "$W/base/rootfs/sbin" "$W/base/rootfs/usr/bin" "$W/base/rootfs/usr/sbin" "$W/app"
cp /usr/bin/busybox "$W/base/rootfs/bin/"
chroot "$W/base/rootfs" /bin/busybox --install -s
printf '%s\n' 'FROM scratch' 'COPY rootfs/ /' 'CMD ["sh"]' > "$W/base/Dockerfile"
echo data > "$W/app/file"
printf '%s\n' 'FROM busybox' 'RUN echo hi > /f' 'ENV A=1' 'COPY file /file' 'CMD ["sh"]' > "$W/app/Dockerfile"
"$MD" --root "$W/md" build -q -t busybox "$W/base" >/dev/null
$BH bud -q -t busybox "$W/base" >/dev/null

median() { jq -r '.results[0].median * 1000' "$1"; }
hf() { hyperfine -N -w 2 -r "$RUNS" --export-json "$1" "$2" >/dev/null 2>&1; }
hf "$W/md-cold.json" "$MD --root $W/md build --no-cache -q -t app $W/app"
hf "$W/bh-cold.json" "$BH bud --no-cache --isolation chroot -q -t app $W/app"
hf "$W/md-cached.json" "$MD --root $W/md build -q -t app $W/app"
hf "$W/bh-cached.json" "$BH bud --isolation chroot -q -t app $W/app"

md_cold=$(median "$W/md-cold.json"); bh_cold=$(median "$W/bh-cold.json")
md_cached=$(median "$W/md-cached.json"); bh_cached=$(median "$W/bh-cached.json")
printf '%-48s %10s\n' "what" "median (ms)"
printf '%-48s %10.2f\n' "mini-docker build --no-cache (5 steps)" "$md_cold" "buildah bud --no-cache" "$bh_cold" \
    "mini-docker build, all cached" "$md_cached" "buildah bud, all cached" "$bh_cached"
echo
awk -v a="$md_cold" -v b="$bh_cold" 'BEGIN { printf "cold:   mini-docker / buildah = %.3f (target <= 0.5)\n", a / b }'
awk -v a="$md_cached" -v b="$bh_cached" 'BEGIN { printf "cached: mini-docker / buildah = %.3f (target <= 0.2)\n", a / b }'
