#!/bin/sh
# The workshop's main job: build the chapters and watch them isolate and limit processes
# for real. Works offline once the packages and crates are there. Installs what is missing.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
as_root "$@"
# shellcheck disable=SC2086
need_packages $PACKAGES
need_cargo
say "Building the chapters"
cargo build --workspace --quiet
PATH="$PWD/target/debug:$PATH"

say "Chapter 1: 'ps aux' in a new PID namespace sees only itself, as PID 1"
ch01-namespaces run --pid -- ps aux

say "Chapter 1: two detached processes, each PID 1 of its own namespace; the host sees both"
C1=$(ch01-namespaces run --detach --pid --uts --hostname one -- sleep 300)
C2=$(ch01-namespaces run --detach --pid --uts --hostname two -- sleep 300)
trap 'kill -9 $C1 $C2 2>/dev/null || true' EXIT
echo "--- inside the first (joined with setns, like docker exec):"
ch01-namespaces join --target "$C1" --pid --mount --uts -- sh -c 'hostname; ps aux'
echo "--- on the host:"
ps -o pid,args -p "$C1,$C2"
echo "--- its namespaces, compared with the host's:"
ch01-namespaces ns "$C1"
kill -9 "$C1" "$C2"

say "Chapter 1: root in a new user namespace is nobody to the host"
ch01-namespaces run --user -- sh -c 'id; cat /etc/shadow >/dev/null || echo "(uid 0 inside, yet the host'"'"'s /etc/shadow is out of reach)"'

say "Chapter 2: where this host's cgroup controllers live"
ch02-cgroups info

say "Chapter 2: past a 32 MiB memory limit, the OOM killer"
ch02-cgroups demo memory

say "Chapter 2: a busy loop under --cpus 0.5"
ch02-cgroups demo cpu

say "Chapter 2: a fork loop under --pids 20"
ch02-cgroups demo pids

say "Done. The notes in notes/ explain each step; the chapters' --trace shows every system call."
