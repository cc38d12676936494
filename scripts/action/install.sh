#!/usr/bin/env bash
# Installs the deployclaw binary for the GitHub Action (action.yml). No release binaries are
# published: the binary is built from the action's own source with `cargo install --path`,
# into DC_INSTALL_ROOT, which the action caches (actions/cache) keyed on `install.sh key`.
#
#   install.sh key      prints the cache key: OS, architecture, crate version, Cargo.lock hash
#   install.sh install  builds unless DC_INSTALL_ROOT/bin/deployclaw is already there (cache
#                       hit), then puts its bin/ on GITHUB_PATH
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
  install)
    if [ -x "$root/bin/deployclaw" ]; then
      echo "deployclaw: cached $("$root/bin/deployclaw" --version)"
    else
      cargo install --locked --path "$src/crates/cli" --root "$root"
    fi
    echo "$root/bin" >> "${GITHUB_PATH:-/dev/null}"
    ;;
  *)
    echo "usage: install.sh key|install" >&2
    exit 3
    ;;
esac
