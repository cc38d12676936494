#!/usr/bin/env bash
# Installs the deployclaw binary for the GitHub Action (action.yml). No release binaries are
# published: the binary is built from the action's own source with `cargo install --path`,
# into DC_INSTALL_ROOT, which the action caches (actions/cache) keyed on `install.sh key`.
#
#   install.sh key        prints the cache key: OS, architecture, crate version, Cargo.lock hash
#   install.sh install    builds unless DC_INSTALL_ROOT/bin/deployclaw is already there (cache
#                         hit), then puts its bin/ on GITHUB_PATH
#   install.sh cache-key  prints the cache key of deployclaw's own cache directory (the shadow's
#                         initdb template and calibration.json, `--cache-dir`): OS, architecture,
#                         PostgreSQL server version, crate version, template format
#
# Environment: DC_SOURCE (the source tree) [the action's directory], DC_INSTALL_ROOT
# [$HOME/.deployclaw], GITHUB_PATH.
set -euo pipefail
src=${DC_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
root=${DC_INSTALL_ROOT:-$HOME/.deployclaw}

case "${1:-}" in
  key)
    version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$src/Cargo.toml" | head -1)
    lock=$(sha256sum "$src/Cargo.lock" | cut -c1-16)
    echo "deployclaw-$(uname -s)-$(uname -m)-$version-$lock"
    ;;
  cache-key)
    version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$src/Cargo.toml" | head -1)
    format=$(sed -n 's/^pub const TEMPLATE_FORMAT: &str = "\(.*\)";$/\1/p' \
      "$src/crates/topology/src/ephemeral/template.rs")
    # The server binaries the shadow is made from, searched as deployclaw searches them.
    bindir=$(pg_config --bindir 2>/dev/null || true)
    if [ ! -x "$bindir/postgres" ]; then
      bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    fi
    if [ -x "$bindir/postgres" ]; then
      pg=$("$bindir/postgres" --version | sed -n 's/.* \([0-9][0-9.]*\).*/\1/p' | head -1)
    else
      pg=$(postgres --version 2>/dev/null | sed -n 's/.* \([0-9][0-9.]*\).*/\1/p' | head -1)
    fi
    echo "deployclaw-cache-$(uname -s)-$(uname -m)-pg${pg:-none}-$version-template-$format"
    ;;
  install)
    if [ -x "$root/bin/deployclaw" ]; then
      echo "deployclaw: cached $("$root/bin/deployclaw" --version)"
    else
      cargo install --locked --path "$src/crates/cli" --root "$root"
    fi
    echo "$root/bin" >> "${GITHUB_PATH:-/dev/null}"
    ;;
  *)
    echo "usage: install.sh key|install|cache-key" >&2
    exit 3
    ;;
esac
