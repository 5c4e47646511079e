#!/bin/sh
# Chapter 5 benchmark: ch05-image-pull against its peers, on this machine, printing ratios.
#   1. pull an image from a local registry into an empty store vs `skopeo copy docker:// oci:`
#      (ch05 also extracts the layer, in the same pass as the download: it must not be slower)
#   2. extract a ~100 MB gzip layer (ch05's layer path: gunzip + sha256 + chapter 4's apply)
#      vs GNU `tar -xzf`
#   3. peak memory of a pull as the layer grows (it must stay flat: blobs are streamed)
# Needs: docker-registry, skopeo, umoci, hyperfine, GNU time; run as root from the repo.
set -eu
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p ch05-image-pull
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/ch05-image-pull
fi
W=$(mktemp -d /tmp/bench-ch05.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
cleanup() { [ -n "${RPID:-}" ] && kill "$RPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: %s\n' "$W" "$REG" > "$W/config.yml"
docker-registry serve "$W/config.yml" >/dev/null 2>&1 & RPID=$!
for _ in $(seq 100); do curl -sf "http://$REG/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

# An image with a 100 MB layer: 60 MB of random data (incompressible) + 40 MB of text.
make_image() { # tag size_mb
  umoci init --layout "$W/oci" 2>/dev/null || true
  umoci new --image "$W/oci:$1"
  umoci unpack --image "$W/oci:$1" "$W/b-$1" >/dev/null
  head -c "$(( $2 * 600000 ))" /dev/urandom > "$W/b-$1/rootfs/random.bin"
  yes 'the quick brown fox jumps over the lazy dog' | head -c "$(( $2 * 400000 ))" > "$W/b-$1/rootfs/text.txt"
  cp -a /usr/bin/busybox "$W/b-$1/rootfs/"
  umoci repack --image "$W/oci:$1" "$W/b-$1" && rm -rf "$W/b-$1"
  umoci config --image "$W/oci:$1" --config.cmd /busybox --architecture amd64 --os linux
  skopeo copy -q --dest-tls-verify=false "oci:$W/oci:$1" "docker://$REG/bench:$1"
}
make_image big 100
for s in 10 50 200; do make_image "m$s" "$s"; done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mean() { jq -r '.results[0].median' "$1"; }

echo "== pull 100 MB image into an empty store (ch05 also extracts the layer) vs skopeo copy"
hyperfine -N -r 10 -w 1 --export-json "$W/pull.json" \
  --prepare "rm -rf $W/store $W/skopeo" \
  "$BIN --root $W/store pull -q $REG/bench:big" \
  "skopeo copy -q --src-tls-verify=false docker://$REG/bench:big oci:$W/skopeo:big" >/dev/null
P1=$(jq -r '.results[0].median' "$W/pull.json"); P2=$(jq -r '.results[1].median' "$W/pull.json")
echo "ch05 pull ${P1}s  skopeo copy ${P2}s  ratio $(ratio "$P1" "$P2")"

echo "== extract the 100 MB gzip layer: ch05 (gunzip+sha256+apply) vs tar -xzf"
LAYER=$(skopeo inspect --tls-verify=false "docker://$REG/bench:big" | jq -r '.Layers[0]' | cut -d: -f2)
BLOB=$W/store/images/blobs/sha256/$LAYER
"$BIN" --root "$W/store" pull -q "$REG/bench:big" >/dev/null
DIFF=$(ls "$W/store/layers" | grep -v '^\.')
hyperfine -N -r 5 -w 1 --export-json "$W/x.json" \
  --prepare "rm -rf $W/store/layers/$DIFF $W/x" \
  "$BIN --root $W/store pull -q $REG/bench:big" \
  --prepare "sh -c 'rm -rf $W/x; mkdir $W/x'" \
  "tar -xzf $BLOB -C $W/x" >/dev/null
X1=$(jq -r '.results[0].median' "$W/x.json"); X2=$(jq -r '.results[1].median' "$W/x.json")
echo "ch05 extract (pull with blobs present) ${X1}s  tar -xzf ${X2}s  ratio $(ratio "$X1" "$X2")"

echo "== peak RSS of a pull by layer size (should stay flat)"
for s in 10 50 200; do
  rm -rf "$W/store"
  /usr/bin/time -f "%M" -o "$W/rss" "$BIN" --root "$W/store" pull -q "$REG/bench:m$s" >/dev/null
  echo "layer ${s} MB: peak RSS $(( $(cat "$W/rss") / 1024 )) MB"
done
