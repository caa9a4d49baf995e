#!/usr/bin/env bash
# Installs, idempotently, what `make test` and `make demo` need beyond the
# Go toolchain, into a per-machine cache keyed by version ($TOOLS_DIR,
# default ~/.cache/slipway/tools) so fresh clones on the same machine reuse
# it. A second run changes nothing. Today the engine needs only Go itself
# and git; the pinned Kaniko, Trivy and cluster tools join this list with
# the stage kinds that use them.
set -euo pipefail

TOOLS_DIR=${TOOLS_DIR:-$HOME/.cache/slipway/tools}
mkdir -p "$TOOLS_DIR"

want_go=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
have_go=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$want_go" "$have_go" | sort -V | head -n1)" != "$want_go" ]; then
  echo "tools: go.mod wants Go $want_go, this machine has $have_go" >&2
  exit 1
fi

# Debian packages the tests use; installed only when missing.
need=()
command -v git >/dev/null || need+=(git)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "tools: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
    exit 1
  fi
  apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi
echo "tools: ok (Go $have_go, $(git --version), cache $TOOLS_DIR)"
