#!/usr/bin/env bash
# The test command: sets up a fresh machine (scripts/setup.sh) and runs every test of the
# workspace, with the AWS feature, against real PostgreSQL clusters, moto and Chromium that the
# tests start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export AWS_EC2_METADATA_DISABLED=true
export MOTO_SERVER_BIN="$PWD/.venv/bin/moto_server"
# The library examples must keep compiling *and* running: a custom rule from another crate, and
# the whole gate embedded in another tool.
cargo run --quiet --locked --example custom_rule
cargo run --quiet --locked --example embed_gate
cargo test --workspace --all-features --locked "$@"
