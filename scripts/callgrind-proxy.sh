#!/usr/bin/env bash
# Instructions bitrouter executes per proxied request, counted by valgrind's callgrind: stable on
# a busy machine, unlike wall-clock figures. Runs the proxy benchmark's single-target mode twice
# (few and many sequential requests through `bitrouter serve` under callgrind) and divides the
# difference, so start-up and shutdown cancel out.
#
#   scripts/callgrind-proxy.sh [BITROUTER_BINARY] [OUT_DIR]
#
# Needs valgrind, nginx and wrk (Debian: valgrind nginx-light wrk) and a built benchmark
# (`cargo bench --bench proxy --no-run`, or `cargo build --profile profiling --bench proxy`).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/release/bitrouter}")
out=$(realpath -m "${2:-target/callgrind}")
mkdir -p "$out"
bench=$(ls -t target/*/deps/proxy-* | grep -v '\.d$' | head -1)
total() { callgrind_annotate "$out/callgrind.$1.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'; }
for n in 200 2200; do
  # The benchmark starts bitrouter with a cleared environment: one wrapper per run.
  wrapper="$out/bitrouter-under-callgrind-$n"
  printf '#!/bin/sh\nexec '"$(command -v valgrind)"'  --tool=callgrind --callgrind-out-file=%s %s "$@"\n' \
    "$out/callgrind.$n.out" "$bin" > "$wrapper"
  chmod +x "$wrapper"
  BITROUTER_BENCH_BIN="$wrapper" BITROUTER_BENCH_ONLY=bitrouter BITROUTER_BENCH_REQUESTS=$n "$bench" >/dev/null
done
few=$(total 200); many=$(total 2200)
echo "bitrouter: $(( (many - few) / 2000 )) instructions per request ($bin)"
echo "profiles: $out/callgrind.2200.out (callgrind_annotate, kcachegrind)"
