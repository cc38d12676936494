#!/usr/bin/env bash
# The main job with nothing to configure: sets up a fresh machine, builds deployclaw and runs
# `deployclaw demo` (3 ephemeral instances, 100 tenant schemas with planted problems, the example
# migration, the report in ./deployclaw-demo-report).
set -euo pipefail
cd "$(dirname "$0")/.."
DEPLOYCLAW_SKIP_MOTO=1 DEPLOYCLAW_SKIP_CHROMIUM=1 bash scripts/setup.sh
cargo run --release --locked -p deployclaw-cli -- demo "$@"
