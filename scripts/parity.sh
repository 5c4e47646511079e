#!/bin/sh
# mini-docker beside Debian's real Docker, case by case (mini-docker/tests/parity): installs
# docker.io when missing, starts a dockerd of the test's own (its own data root, socket and
# network namespace, stopped at the end), and prints `same` or both answers per case, the
# total, and the deliberate differences with their reasons. As root.
#   PARITY_ONLY=TEXT  only the cases whose name contains TEXT
#   PARITY_RAW=1      both sides' whole output for each case
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
as_root "$@"
need_packages busybox-static docker.io nftables
need_cargo
say "parity: mini-docker against $(/usr/bin/docker --version)"
CI=${CI:-1} exec cargo test -p mini-docker --test parity -- --nocapture mini_docker_answers
