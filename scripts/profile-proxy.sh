#!/usr/bin/env bash
# Where bitrouter's CPU time goes under load: samples `bitrouter serve` with perf while wrk drives
# it through the proxy benchmark's single-target mode, then sums the samples by component
# (kernel socket I/O, JSON, HTTP client and server layers, SSE relay, ...).
#
#   scripts/profile-proxy.sh [BITROUTER_BINARY] [CONNECTIONS] [SECONDS] [OUT_DIR]
#
# Use a build with symbols: `cargo build --profile profiling --bin bitrouter --bench proxy`
# (target/profiling/bitrouter). Needs perf (Debian linux-perf), nginx-light, wrk and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/profiling/bitrouter}")
conns=${2:-32}
secs=${3:-15}
out=$(realpath -m "${4:-target/perf}")
mkdir -p "$out"
bench=$(ls -t target/*/deps/proxy-* | grep -v '\.d$' | head -1)
BITROUTER_BENCH_BIN="$bin" BITROUTER_BENCH_ONLY=bitrouter BITROUTER_BENCH_CONNS="$conns" \
  BITROUTER_BENCH_SECS="$secs" "$bench" >"$out/bench.txt" 2>"$out/bench.err" &
bench_pid=$!
pid=
for _ in $(seq 1 100); do
  pid=$(grep -o 'pid [0-9]*' "$out/bench.err" | head -1 | cut -d' ' -f2 || true)
  [ -n "$pid" ] && break
  sleep 0.2
done
[ -n "$pid" ] || { cat "$out/bench.err"; exit 1; }
sleep 2
perf record -F 2000 -e cpu-clock --call-graph dwarf,16384 -p "$pid" -o "$out/perf.data" \
  -- sleep $((secs - 4)) >/dev/null 2>&1
wait "$bench_pid"
cat "$out/bench.txt"
perf script -i "$out/perf.data" 2>/dev/null | python3 scripts/perf-categories.py
