#!/usr/bin/env bash
# govulncheck over the whole module, offline, against the Go vulnerability
# database that `make tools` builds from the pinned golang.org/x/vulndb
# module. A finding in reachable code fails unless scripts/vulncheck.accepted
# lists it with a reason; so does an accepted entry no longer found.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS_DIR=${TOOLS_DIR:-${SLIPWAY_TOOLS_DIR:-$HOME/.cache/slipway/tools}}
. scripts/lint.env
govulncheck="$TOOLS_DIR/govulncheck-$GOVULNCHECK_VERSION/govulncheck"
db="$TOOLS_DIR/govulndb-$VULNDB_VERSION"
[ -x "$govulncheck" ] && [ -f "$db/index/db.json" ] || { echo "vulncheck: run make tools first" >&2; exit 1; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
"$govulncheck" -db "file://$db" ./... > "$out" 2>&1
rc=$?
set -e
if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then
  cat "$out" >&2
  echo "vulncheck: govulncheck failed (exit $rc)" >&2
  exit 1
fi
found=$(grep -oE '^Vulnerability #[0-9]+: GO-[0-9]+-[0-9]+' "$out" | awk '{print $3}' | sort -u || true)
accepted=$(grep -oE '^GO-[0-9]+-[0-9]+' scripts/vulncheck.accepted | sort -u)
new=$(comm -23 <(printf '%s\n' "$found" | sed '/^$/d') <(printf '%s\n' "$accepted"))
gone=$(comm -13 <(printf '%s\n' "$found" | sed '/^$/d') <(printf '%s\n' "$accepted"))
for id in $gone; do echo "vulncheck: $id is accepted but no longer found; delete it from scripts/vulncheck.accepted" >&2; done
if [ -n "$new" ]; then
  cat "$out"
  echo "vulncheck: reachable vulnerabilities not accepted: $(echo $new)" >&2
  exit 1
fi
[ -z "$gone" ] || exit 1
echo "vulncheck: ok ($(printf '%s\n' "$found" | sed '/^$/d' | wc -l) reachable, all accepted in scripts/vulncheck.accepted; database $VULNDB_VERSION)"
