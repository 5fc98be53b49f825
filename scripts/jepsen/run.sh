#!/usr/bin/env bash
# One Jepsen-style run of RangeKV: real kvd processes, each in its own network namespace, a nemesis,
# a workload with a recorded history, then the checker. Needs root (namespaces, iptables).
#
#   scripts/jepsen/run.sh --nemesis NAME --out DIR [--workload register|set] [--time SECONDS]
#                         [--nodes 5] [--seed N] [--read-mode linearizable|stale] [--concurrency N]
#                         [--client unary|multiplex] [--pre-split N]
#   scripts/jepsen/run.sh --help
#
# Builds first when dist/ is missing or older than a source file (--no-build skips that; it must be
# the first argument). Exit: 0 valid, 1 invalid, 3 unknown, 2 usage, 4 harness failure or no
# recovery. On SIGINT/SIGTERM the harness stops its nodes and removes its network; whatever a dead
# run left behind is swept after every run (and at the start of the next).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
runner="$root/dist/scripts/jepsen/run.js"

build=1
if [ "${1:-}" = "--no-build" ]; then build=0; shift; fi
if [ "$build" = 1 ]; then
  if [ ! -f "$runner" ] || [ -n "$(find "$root/src" "$root/scripts" -name '*.ts' -newer "$runner" -print -quit)" ]; then
    make -C "$root" --no-print-directory build >&2 || { echo "run.sh: make build failed" >&2; exit 4; }
  fi
fi
if [ ! -f "$runner" ]; then echo "run.sh: $runner is missing: run make build" >&2; exit 4; fi

node "$runner" "$@" &
child=$!
# Background jobs of a non-interactive shell ignore SIGINT, so every signal goes on as SIGTERM.
trap 'kill -TERM "$child" 2>/dev/null' INT TERM HUP
code=0
while :; do
  wait "$child"; code=$?
  kill -0 "$child" 2>/dev/null || break
done
node "$root/dist/scripts/jepsen/sweep.js" || true
exit "$code"
