#!/usr/bin/env bash
# Benchmarks of the engine, reported as numbers (never asserted in tests).
#   BenchmarkRun50NoopStages: one run of 50 no-op stages through the SQLite
#   store — µs per stage transition, store writes per run and per second.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench . -benchmem -count "${COUNT:-5}" ./runner/... | tee bench/last-run.txt
