#!/usr/bin/env bash
# Webhook intake under load, each store beside its floor: N signed GitHub
# push deliveries (half start a one-stage run, which executes meanwhile;
# half match no path) at concurrency C, against
#   1. the floor on SQLite: bench/intakefloor, which only verifies the HMAC
#      and stores the delivery's row;
#   2. `slipway serve` on SQLite;
#   3. the floor on PostgreSQL (fsync and synchronous commit on);
#   4. three `slipway serve` replicas on that PostgreSQL, the deliveries
#      spread over them round robin;
# and then what strangers cost: the SQLite engine's RSS while FLOOD (default
# 50) unsigned 24 MiB posts arrive at once (bench/webhookflood), and while
# IDLE (default 2000) idle connections and SLOW (default 64) slow posts
# with a signature header are held open, EDGE_N (default 200) signed
# deliveries being answered meanwhile (bench/edgeload).
# Each line: deliveries/s and answer latency p50/p99/max; after an engine,
# a check in its database that each delivery made exactly one run or one
# recorded no-match, how many runs had ended when the last delivery was
# answered, and the rate sustained until every run had ended. Loopback
# only. Environment: N (default 20000), C (default 16), REPLICAS
# (default 3), RUNS=0 for intake alone (the pipeline's paths match no
# delivery, so none starts a run), NEW_CONNECTIONS=1 to send each delivery
# on a new connection, as a forge that keeps none open (by default each
# sender keeps its connections).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000} C=${C:-16} REPLICAS=${REPLICAS:-3}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
CGO_ENABLED=0 go build -tags slipway_fake -o "$work/slipway" ./cmd/slipway # the fake kind: no-op stages
for cmd in webhookload webhookflood edgeload intakefloor pgserver; do go build -o "$work/$cmd" "./bench/$cmd"; done
printf 'bench-secret\n' > "$work/secret"
paths='web/**'
[ "${RUNS:-}" = 0 ] && paths='no-delivery-touches-this/**'
cat > "$work/web.yaml" <<YAML
apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: web}
on: {push: {branches: [main], paths: ["$paths"]}}
stages:
  - {name: build, fake: {}}
YAML

# start NAME PATTERN CMD...: runs CMD in the background and sets $addr to
# what follows PATTERN in its output (the address it serves on).
start() {
  local name=$1 pattern=$2; shift 2
  "$@" > "$work/$name.out" 2> "$work/$name.log" &
  pids+=($!)
  for _ in $(seq 300); do
    grep -q "$pattern" "$work/$name.out" && break
    sleep 0.1
  done
  addr=$(sed -n "s/^$pattern //p" "$work/$name.out" | head -1)
  [ -n "$addr" ] || { echo "$name did not start:"; cat "$work/$name.log"; exit 1; }
}

# engine NAME DATABASE-LINE: writes an engine config and starts it.
engine() {
  cat > "$work/$1.yaml" <<YAML
apiVersion: slipway.dev/v1
kind: EngineConfig
listen: 127.0.0.1:0
data: $1
$2
repositories:
  - {name: web, url: "https://github.com/bench/web.git", forge: github, webhookSecret: {file: secret}, pipelines: [{file: web.yaml}]}
YAML
  start "$1" "slipway serving on" "$work/slipway" serve --config "$work/$1.yaml"
}

# load ARGS...: sends the deliveries, then stops what serves them (an
# engine's backlog of runs must not run on into the next measurement).
load() {
  "$work/webhookload" -secret bench-secret -n "$N" -c "$C" ${NEW_CONNECTIONS:+-new-connections} "$@" | grep -E 'throughput|latency|verified|answers|runs when|sustained' | sed 's/^/  /'
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  pids=()
}

echo "-- sqlite floor (verify the signature, store the row)"
mkdir -p "$work/floor"
start floor 'intakefloor serving on' "$work/intakefloor" -secret bench-secret -data "$work/floor"
load -server "$addr"
echo "-- sqlite: slipway serve"
engine sqlite ''
load -server "$addr" -data "$work/sqlite"

# A database each: the engines must not find the floor's deliveries (the
# same IDs) and take them for redeliveries.
start pg 'pgserver database engines' "$work/pgserver" -password-file "$work/pg-password" -databases floor,engines
dsn=$addr pg=${pids[0]} pids=()
floordsn=$(sed -n 's/^pgserver database floor //p' "$work/pg.out")
trap 'kill "$pg" 2>/dev/null || true; cleanup' EXIT
echo "-- postgresql floor"
start pgfloor 'intakefloor serving on' "$work/intakefloor" -secret bench-secret -database "$floordsn" -password-file "$work/pg-password"
load -server "$addr"
echo "-- postgresql: $REPLICAS slipway serve replicas"
servers=()
for i in $(seq "$REPLICAS"); do
  engine "replica$i" "database: {url: \"$dsn\", password: {file: pg-password}}"
  servers+=("$addr")
done
load -server "$(IFS=,; echo "${servers[*]}")" -database "$dsn" -password-file "$work/pg-password"

echo "-- unsigned webhook flood"
engine flood ''
"$work/webhookflood" -server "$addr" -pid "${pids[0]}" -c "${FLOOD:-50}" -size $((24 << 20)) | sed 's/^/  /'

echo "-- a hostile edge: idle connections and slow signed-looking posts, signed deliveries meanwhile"
engine edge ''
"$work/edgeload" -server "$addr" -pid "${pids[0]}" -idle "${IDLE:-2000}" -slow "${SLOW:-64}" -n "${EDGE_N:-200}" | sed 's/^/  /'
