#!/usr/bin/env bash
# Many ranges on the 3-node loopback cluster: prints figures; it is not a test. Each part starts
# fresh 3-node RangeKV clusters (temp data dir, 127.0.0.1 only) and stops every process it started.
#
#   (a) throughput: the put and linearizable get workloads (bench.js, as scripts/bench/run.sh runs
#       them) with 1 range, then after splitting the bench key space into --split-ranges ranges
#       (default 64) at keys spread over it; a table with the N/1 ratios, one JSON line per run.
#   (b) idle: CPU (% of one core) and RSS of each kvd holding 1 range (baseline), then on a fresh
#       cluster split into --ranges ranges (default 10,000; splits run --split-concurrency at a
#       time through Admin.SplitRange), once the cluster is idle (CPU over a 5 s window no longer
#       falling, at most --idle-max), over --window. Target: under 10 % of one core per node.
#
#   scripts/bench/ranges.sh [options]
#     --part a|b|ab           which figures (default ab)
#     --ranges 10000          (b) ranges to create
#     --split-ranges 64       (a) ranges of the second run
#     --split-concurrency 16  splits in flight
#     --window 30s            (b) measured CPU window
#     --create-max 1500s      (b) start no split after this long (measure the ranges made so far)
#     --idle-max 180s         (b) longest wait for the cluster to become idle
#     --duration 10s          (a) measured time per run
#     --warmup 2s             (a) unmeasured time before each run
#     --concurrency 64,256    (a) requests in flight, one run each
#     --keys 100000           bench key space (preloaded before the first get run)
#     --value-size 256        bytes
#     --out DIR               logs and JSON lines; default /tmp/rangekv-ranges-results/<time>
#     --no-baseline           (b) skip the 1-range baseline
#     --with-scheduler        leave the placement scheduler on (default: kvd --no-schedule when kvd
#                             has it, so no automatic split or leader move changes the range count)
#     --no-build              do not run tsc first
#     --keep                  keep the clusters' data directories
#     --max-seconds 3000      hard bound of the whole script
#
# RANGES_KVD_ARGS adds kvd flags. Ports 127.0.0.1:$KV_BASE_PORT+1..3 (default 27500). The machine's load (uptime) is printed before
# and after every measurement: on a shared machine the figures move with it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
part=ab
ranges=10000
split_ranges=64
split_conc=16
window=30s
idle_max=180s
create_max=1500s
duration=10s
warmup=2s
concurrency=64,256
keys=100000
value_size=256
out=""
build=1
keep=0
scheduler=0
baseline=1
fg_pid=""
read -r -a kvd_args <<<"${RANGES_KVD_ARGS:-}"
max_seconds=3000
base="${KV_BASE_PORT:-27500}"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --part) part="$2"; shift 2 ;;
    --ranges) ranges="$2"; shift 2 ;;
    --split-ranges) split_ranges="$2"; shift 2 ;;
    --split-concurrency) split_conc="$2"; shift 2 ;;
    --window) window="$2"; shift 2 ;;
    --idle-max) idle_max="$2"; shift 2 ;;
    --create-max) create_max="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --keys) keys="$2"; shift 2 ;;
    --value-size) value_size="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --with-scheduler) scheduler=1; shift ;;
    --no-baseline) baseline=0; shift ;;
    --no-build) build=0; shift ;;
    --keep) keep=1; shift ;;
    --max-seconds) max_seconds="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "ranges.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ "$part" =~ ^(a|b|ab)$ ]] || { echo "ranges.sh: --part must be a, b or ab" >&2; exit 2; }
for v in "$ranges" "$split_ranges" "$split_conc" "$keys" "$value_size" "$max_seconds"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "ranges.sh: '$v' is not a positive integer" >&2; exit 2; }
done

out="${out:-/tmp/rangekv-ranges-results/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
tmp="$(mktemp -d /tmp/rangekv-ranges.XXXXXX)"
bench_js="$root/dist/scripts/bench/bench.js"
ranges_js="$root/dist/scripts/bench/ranges.js"

# ------------------------------------------------------------------------------------------------
# Cleanup: only the processes this script started, by pid.

pids=()
watchdog=""
stop_pids() { # pid...: SIGTERM, up to 15 s, then SIGKILL
  local p alive deadline=$((SECONDS + 15))
  [ $# -gt 0 ] || return 0
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  while :; do
    alive=""
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    [ -z "$alive" ] && break
    if [ $SECONDS -ge $deadline ]; then
      echo "ranges.sh: SIGKILL to$alive" >&2
      for p in $alive; do kill -KILL "$p" 2>/dev/null || true; done
      break
    fi
    sleep 0.1
  done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$watchdog" ] && kill "$watchdog" 2>/dev/null || true
  [ -n "$fg_pid" ] && stop_pids "$fg_pid"
  stop_pids "${pids[@]}"
  if [ "$keep" = 1 ]; then echo "data kept in $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "ranges.sh: interrupted" >&2; exit 130' INT TERM
(
  trap 'kill "$s" 2>/dev/null; exit 0' TERM
  sleep "$max_seconds" &
  s=$!
  if wait "$s"; then echo "ranges.sh: --max-seconds $max_seconds reached, stopping" >&2; kill -TERM $$; fi
) &
watchdog=$!

port_free() { ! ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }
for i in 1 2 3; do port_free $((base + i)) || { echo "ranges.sh: port $((base + i)) is in use (set KV_BASE_PORT)" >&2; exit 1; }; done

if [ "$build" = 1 ]; then (cd "$root" && npx --no -- tsc -p tsconfig.json); fi
[ -f "$ranges_js" ] && [ -f "$bench_js" ] || { echo "ranges.sh: $ranges_js or $bench_js missing (build first)" >&2; exit 1; }

if [ "$scheduler" = 0 ] && node "$root/bin/kvd" --help 2>/dev/null | grep -q -- '--no-schedule'; then kvd_args+=(--no-schedule); fi

eps=""; initial=""
for i in 1 2 3; do
  eps="${eps:+$eps,}127.0.0.1:$((base + i))"
  initial="${initial:+$initial,}$i=127.0.0.1:$((base + i))"
done

cluster=0
start_cluster() { # label: a fresh cluster in its own data dir
  cluster=$((cluster + 1))
  local d="$tmp/c$cluster-$1"
  mkdir -p "$d"
  pids=()
  for i in 1 2 3; do
    node "$root/bin/kvd" --id "$i" --listen "127.0.0.1:$((base + i))" --data "$d/data$i" --initial-cluster "$initial" "${kvd_args[@]}" \
      >>"$out/c$cluster-$1-kvd$i.log" 2>&1 &
    pids+=($!)
  done
  timeout --kill-after=10 60 node "$bench_js" wait --target rangekv --endpoints "$eps" --timeout 45s
  echo "cluster $cluster ($1): kvd pids $(pidlist) (nodes 1..3), logs $out/c$cluster-$1-kvd*.log"
}
stop_cluster() { stop_pids "${pids[@]}"; pids=(); }
pidlist() { local IFS=,; echo "${pids[*]}"; }
load() { echo "--- load ($1): $(uptime)"; }
R() { node "$ranges_js" "$@"; }
# Long commands run in the background and are waited for, so SIGTERM/SIGINT (and the --max-seconds
# watchdog) reach the trap at once; the cleanup stops them.
run_fg() { local rc=0; "$@" & fg_pid=$!; wait "$fg_pid" || rc=$?; fg_pid=""; return "$rc"; }
split_to() { # N
  local t0=$SECONDS
  load "before creating $1 ranges"
  local rc=0
  run_fg timeout --kill-after=10 3600 node "$ranges_js" split --endpoints "$eps" --ranges "$1" --keys "$keys" --concurrency "$split_conc" --max "$create_max" >"$out/split.out" || rc=$?
  cat "$out/split.out" >>"$out/results.jsonl"; cat "$out/split.out"
  load "after creating $1 ranges ($((SECONDS - t0)) s)"
  R leaders --endpoints "$eps" --expect "$1" | tee "$out/leaders.out" || true
  return "$rc"
}

echo "RangeKV ranges bench: out=$out data=$tmp part=$part"
echo "node $(node --version), $(nproc) cores, git $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet 2>/dev/null || echo '+dirty')"
echo "kvd extra args: ${kvd_args[*]:-none}"
echo "NOTE: figures from a shared machine when other work runs; see the load lines"
load start

if [[ "$part" == *a* ]]; then
  echo
  echo "=== (a) throughput: 1 range vs $split_ranges ranges (keys=$keys value=${value_size}B duration=$duration warmup=$warmup concurrency=$concurrency)"
  start_cluster a
  run_bound=$(( $(node -e 'const m=/^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(process.argv[1]);const f=(v,u)=>u==="ms"?v/1000:u==="m"?v*60:v;console.log(Math.ceil(f(+m[1],m[2])))' "$duration") * 2 + 600 ))
  common=(--target rangekv --endpoints "$eps" --keys "$keys" --value-size "$value_size" --duration "$duration" --warmup "$warmup" --server-pids "$(pidlist)")
  echo "== preload $keys keys (1 range)"
  run_fg timeout --kill-after=10 900 node --stack-trace-limit=0 "$bench_js" run "${common[@]}" --workload preload --jsonl "$out/preload.jsonl" >/dev/null
  tail -1 "$out/preload.jsonl" | node -e 'const r=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(`   ${r.ops} keys in ${r.durationS} s (${Math.round(r.opsPerSec)} ops/s)`)'
  for n in 1 "$split_ranges"; do
    if [ "$n" != 1 ]; then split_to "$n"; fi
    load "before the $n-range runs"
    run_fg timeout --kill-after=10 "$run_bound" node --stack-trace-limit=0 "$bench_js" run "${common[@]}" --workload put,get --no-preload \
      --concurrency "$concurrency" --jsonl "$out/bench-$n.jsonl" >"$out/bench-$n.out"
    grep -v '^{' "$out/bench-$n.out" | sed "s/^/   [$n range(s)] /"
    load "after the $n-range runs"
  done
  stop_cluster
  echo
  R report --files "1=$out/bench-1.jsonl,$split_ranges=$out/bench-$split_ranges.jsonl" | tee -a "$out/results.jsonl"
  load "end of (a)"
fi

if [[ "$part" == *b* ]]; then
  counts="$ranges"; [ "$baseline" = 1 ] && counts="1 $ranges"
  for n in $counts; do
    echo
    echo "=== (b) idle CPU with $n range(s)"
    start_cluster "b$n"
    if [ "$n" != 1 ]; then split_to "$n" || echo "ranges.sh: creating $n ranges failed or stopped early (see above); measuring the ranges that exist"; fi
    echo "waiting until idle (5 s windows, at most $idle_max)"
    label="$n range(s)"
    if [ "$n" != 1 ]; then
      cnt="$(awk '{print $1; exit}' "$out/leaders.out" 2>/dev/null || true)"
      label="${cnt:-? (placement did not answer)} ranges in placement's map ($n asked for)"
    fi
    run_fg node "$ranges_js" wait-idle --pids "$(pidlist)" --window 5s --max "$idle_max"
    load "before the $n-range idle window"
    run_fg node "$ranges_js" cpu --pids "$(pidlist)" --names kvd1,kvd2,kvd3 --window "$window" --label "$label" >"$out/cpu-$n.out"
    cat "$out/cpu-$n.out"; grep '^{' "$out/cpu-$n.out" >>"$out/results.jsonl"
    load "after the $n-range idle window"
    stop_cluster
  done
fi

echo
echo "results: $out (results.jsonl, kvd logs)"
