#!/usr/bin/env bash
# Benchmarks, reported as numbers (never asserted in tests):
#  1. BenchmarkRun50NoopStages: engine overhead — one run of 50 no-op stages
#     through the SQLite store: µs per stage transition, writes per run and per second.
#  2. Webhook intake under load (bench/intake.sh): N signed GitHub push
#     deliveries at fixed concurrency against `slipway serve` on SQLite and
#     three replicas on PostgreSQL, each beside its floor (a bare handler
#     that verifies the signature and stores the row): deliveries/s, p50/p99
#     latency, and a check that each delivery made exactly one run or no-match.
#  3. The first half of a release against the real systems (needs root and
#     `make tools`): go-git vs git CLI clone of one generated repository (time,
#     peak memory), the clone stage's default (engine auto) vs plain `git
#     clone` on a large generated repository, the Kaniko sandbox's cost, a build with the layer cache
#     cold and warm, and a Trivy scan.
#  4. The local environment: launcher start (first and warm), Argo CD sync to
#     the new version serving (p50, split into synced / running / ready /
#     serving), and a weight change in the API server to the mesh proxy.
#  6. What strangers cost: engine RSS while 50 unsigned 24 MiB webhook posts
#     arrive at once (bench/webhookflood, in bench/intake.sh).
#  5. Time to rollback: a bad canary's first answer to its last (seen at the
#     mesh proxy) over 5 releases, p50/max, split into detection, decision,
#     git, sync and route flip.
#  8. From git push to Gitea: to the run's commit status (two fake stages),
#     and to the canary serving on the environment make demo runs (Kaniko,
#     Trivy, Argo CD), p50/max over 5 pushes each.
#  7. The web UI: server time and gzipped weight of the release page with
#     1,000 measurements and of a run page over a 100k-line log, heap per
#     open live stream, and first paint of both pages in Chromium.
# Environment: COUNT (benchmark repetitions, default 5), N (deliveries,
# default 20000), C (concurrency, default 16).
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/last-run.txt
: > "$out"

echo "== engine overhead" | tee -a "$out"
go test -run '^$' -bench . -benchmem -count "${COUNT:-5}" ./runner/... | tee -a "$out"

echo "== clone, build, scan" | tee -a "$out"
go test -run '^$' -bench 'Clone|Sandbox|Build|Scan' -benchtime "${BENCHTIME:-5x}" ./integration/ | tee -a "$out"

echo "== local environment" | tee -a "$out"
go test -run '^$' -bench 'Launcher|SyncToServing|WeightChangeToProxy' -benchtime "${BENCHTIME:-5x}" -v ./integration/ | grep -E 'Benchmark|start [0-9]' | tee -a "$out"

echo "== time to rollback" | tee -a "$out"
go test -run '^$' -bench 'TimeToRollback' -benchtime 1x -v ./integration/ | grep -E 'Benchmark|release [0-9]|time to rollback' | tee -a "$out"

echo "== from git push" | tee -a "$out"
go test -run '^$' -bench 'GiteaPushToStatus' -benchtime 1x -v ./integration/ | grep -E '^Benchmark|after git push' | tee -a "$out"
(cd cmd/slipway-demo && go test -run '^$' -bench 'PushToCanaryServing' -benchtime 1x -timeout 30m -v .) | grep -E '^Benchmark|after git push' | tee -a "$out"

echo "== web UI" | tee -a "$out"
go test -run '^$' -bench 'ReleasePage|RunPage|EventStreamMemory' -benchtime "${BENCHTIME:-5x}" ./server/ | tee -a "$out"
go test -run '^$' -bench 'BrowserFirstRender' -benchtime "${BENCHTIME:-5x}" ./integration/ | grep -E '^Benchmark' | tee -a "$out"

echo "== webhook intake (SQLite and PostgreSQL, each beside its floor; then an unsigned flood)" | tee -a "$out"
bash bench/intake.sh | tee -a "$out"

