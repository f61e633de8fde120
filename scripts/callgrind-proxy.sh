#!/usr/bin/env bash
# Instructions bitrouter executes per proxied request, counted by valgrind's callgrind: stable on
# a busy machine, unlike wall-clock figures. Runs the proxy benchmark's single-target mode twice
# (few and many sequential requests through `bitrouter serve` under callgrind) and divides the
# difference, so start-up and shutdown cancel out.
#
#   scripts/callgrind-proxy.sh [BITROUTER_BINARY] [OUT_DIR]
#
# BITROUTER_HISTORY=off runs bitrouter with `history: off` (the request history costs the
# difference; with sequential requests each is its own write, so this is its most expensive case).
# BITROUTER_CALLGRIND_CONNS=N loads it with wrk at N connections instead, for 5 and then 20
# seconds, and divides by the difference in requests answered: concurrent requests, so the
# history writer stores many rows a transaction, as under real load (though fewer than at full
# speed: under valgrind the server answered some 1,400 requests a second, a twenty-fifth of
# its speed natively).
# BITROUTER_CALLGRIND_TARGET=hyper (or raw) counts the benchmark's minimal hyper proxy (or its
# hand-written HTTP/1.1 one) instead; the binary argument is then ignored.
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
conns=${BITROUTER_CALLGRIND_CONNS:-}
declare -A answered
for n in 200 2200; do
  # The benchmark starts bitrouter with a cleared environment: one wrapper per run.
  wrapper="$out/bitrouter-under-callgrind-$n"
  {
    echo '#!/bin/sh'
    if [ "${BITROUTER_HISTORY:-on}" = off ]; then
      echo 'printf "history: off\n" >>"$XDG_CONFIG_HOME/bitrouter/bitrouter.yaml"'
    fi
    printf 'exec %s --tool=callgrind --callgrind-out-file=%s %s "$@"\n' \
      "$(command -v valgrind)" "$out/callgrind.$n.out" "$bin"
  } >"$wrapper"
  chmod +x "$wrapper"
  target=${BITROUTER_CALLGRIND_TARGET:-bitrouter}
  if [ "$target" != bitrouter ]; then
    printf '#!/bin/sh\nexec %s --tool=callgrind --callgrind-out-file=%s %s "$@"\n' \
      "$(command -v valgrind)" "$out/callgrind.$n.out" "$(realpath "$bench")" >"$wrapper"
    BITROUTER_BENCH_FLOOR_BIN="$wrapper" BITROUTER_BENCH_ONLY=$target BITROUTER_BENCH_REQUESTS=$n \
      "$bench" >/dev/null
  elif [ -n "$conns" ]; then
    secs=$(( n == 200 ? 5 : 20 ))
    line=$(BITROUTER_BENCH_BIN="$wrapper" BITROUTER_BENCH_ONLY=bitrouter BITROUTER_BENCH_CONNS=$conns \
      BITROUTER_BENCH_SECS=$secs "$bench")
    answered[$n]=$(sed -n 's/^bitrouter: \([0-9]*\) requests.*/\1/p' <<<"$line")
  else
    BITROUTER_BENCH_BIN="$wrapper" BITROUTER_BENCH_ONLY=bitrouter BITROUTER_BENCH_REQUESTS=$n \
      "$bench" >/dev/null
  fi
done
few=$(total 200); many=$(total 2200)
if [ -n "$conns" ] && [ "$target" = bitrouter ]; then
  requests=$(( ${answered[2200]} - ${answered[200]} ))
  echo "bitrouter: $(( (many - few) / requests )) instructions per request at $conns connections ($requests requests; $bin, history ${BITROUTER_HISTORY:-on})"
  echo "profiles: $out/callgrind.2200.out (callgrind_annotate, kcachegrind)"
  exit 0
fi
if [ "$target" != bitrouter ]; then
  echo "$target proxy: $(( (many - few) / 2000 )) instructions per request ($bench)"
else
  echo "bitrouter: $(( (many - few) / 2000 )) instructions per request ($bin, history ${BITROUTER_HISTORY:-on})"
fi
echo "profiles: $out/callgrind.2200.out (callgrind_annotate, kcachegrind)"
