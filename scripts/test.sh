#!/bin/sh
# The whole test suite, as CI runs it: formatting, lints, and every test, for real, as root.
# Installs what is missing first (Debian/Ubuntu packages, and Rust if there is none).
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
as_root "$@"
give_back_target
# shellcheck disable=SC2086
need_packages $PACKAGES
need_cargo
say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
say "cargo test"
cargo test --workspace --no-fail-fast  # every failure reported, not only the first binary's
say "The workshop: each exercise passes with its solution and is caught without it"
cargo xtask prove-workshop
say "The VM lanes: the cgroup and overlay tests on Debian 12's kernel, pure cgroup v2 and v1"
./scripts/vm-test.sh --cgroup v2
./scripts/vm-test.sh --cgroup v1
