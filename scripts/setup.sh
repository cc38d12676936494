#!/usr/bin/env bash
# Installs what deployclaw's tests and demo need on a fresh Debian machine (idempotent):
# PostgreSQL server binaries, Chromium (HTML report test), and moto[server] (AWS RDS emulator)
# in the repository's .venv. Run as root (apt-get) or with the packages already present.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && ! command -v pg_ctl >/dev/null 2>&1; then
  need_apt+=(postgresql)
fi
if [ "${DEPLOYCLAW_SKIP_CHROMIUM:-0}" != 1 ] && ! command -v chromium >/dev/null 2>&1; then
  need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ "${DEPLOYCLAW_SKIP_MOTO:-0}" != 1 ] && [ ! -x .venv/bin/moto_server ]; then
  echo "setup: installing moto[server] into .venv" >&2
  python3 -m venv .venv
  .venv/bin/pip install -q 'moto[server]'
fi
