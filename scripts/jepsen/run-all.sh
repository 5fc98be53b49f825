#!/usr/bin/env bash
# Every nemesis, one run each (register workload; the set workload under kill and membership; the
# register workload over 8 pre-split ranges under partition-random-halves), then a table: ops,
# ok/fail/info, valid, availability during and outside the fault windows.
#
#   scripts/jepsen/run-all.sh [--short] [--time SECONDS] [--out DIR] [--nodes N] [--seed N]
#
# --short: 12 s per run (the pass `make test` runs); default --time 60. Runs go to
# DIR/<nemesis>-<workload>[-presplit<N>]/ (default DIR: a new directory under /tmp). Exit 0 when
# every run is valid, 1 otherwise. Needs root, like run.sh.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
time_s=60
out=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --short) time_s=12; shift ;;
    --time) time_s="${2:-}"; shift 2 ;;
    --out) out="${2:-}"; shift 2 ;;
    --nodes|--seed) extra+=("$1" "${2:-}"); shift 2 ;;
    -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-all.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || out="$(mktemp -d /tmp/rangekv-jepsen-XXXXXX)"
mkdir -p "$out"

# Build once, then every run skips the check.
make -C "$root" --no-print-directory build >&2 || { echo "run-all.sh: make build failed" >&2; exit 4; }

runs=(
  "partition-random-halves register"
  "partition-isolate-leader register"
  "partition-majorities-ring register"
  "partition-one-way register"
  "kill register"
  "pause register"
  "membership register"
  "latency register"
  "split register"
  "mixed register"
  "kill set"
  "membership set"
  "partition-random-halves register 8"
)

interrupted=0
trap 'interrupted=1' INT TERM
failed=0
start=$SECONDS
for r in "${runs[@]}"; do
  # An optional third word: --pre-split N.
  read -r nemesis workload presplit <<<"$r"
  dir="$out/$nemesis-$workload${presplit:+-presplit$presplit}"
  echo "=== $nemesis / $workload${presplit:+ / pre-split $presplit} -> $dir"
  "$root/scripts/jepsen/run.sh" --no-build --nemesis "$nemesis" --workload "$workload" --time "$time_s" --out "$dir" \
    ${presplit:+--pre-split "$presplit"} "${extra[@]}" >"$dir.log" 2>&1
  code=$?
  tail -n 3 "$dir.log" | sed 's/^/    /'
  if [ "$code" != 0 ]; then failed=1; echo "    FAILED (exit $code): see $dir.log"; fi
  [ "$interrupted" = 0 ] || { echo "run-all.sh: interrupted" >&2; exit 130; }
done

node "$root/dist/scripts/jepsen/summary.js" "$out" | tee "$out/summary.txt"
echo "run-all: $((SECONDS - start)) s; runs in $out"
exit "$failed"
