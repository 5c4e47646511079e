#!/bin/sh
# The fault-injection loop of issue 19 (mini-docker/tests/faults.rs,
# a_fault_loop_loses_no_exit_status_and_leaves_nothing_behind), for as long as you ask:
# on a store on a 160 MB tmpfs, random `run`, `run --rm`, `rm -f`, `commit`, `import` and
# `pull` killed with SIGKILL at random moments, runs that end normally (alone and five in
# parallel) and containers that fill the disk. It fails on a lost exit status, on anything
# left in the store after one ordinary command, or on anything left on the host (a mount,
# a cgroup, a process). The seed is printed, and the number of each operation. As root.
#   scripts/faults.sh [SECONDS]     (default 180; the test suite runs it for 30)
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
as_root "$@"
need_packages busybox-static docker-registry skopeo umoci apache2-utils openssl
need_cargo
secs=${1:-180}
say "faults: ${secs} s of operations killed at random"
FAULTS_SECONDS=$secs CI=${CI:-1} exec cargo test -p mini-docker --test faults -- --nocapture --exact a_fault_loop_loses_no_exit_status_and_leaves_nothing_behind
