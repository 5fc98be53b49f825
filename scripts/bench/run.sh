#!/usr/bin/env bash
# RangeKV vs etcd on loopback: starts a 3-node RangeKV cluster and a 3-member etcd cluster (temp
# data dirs, distinct ports), runs the same closed-loop workloads against both, prints a comparison
# table, and stops everything it started. It prints figures; it is not a test.
#
#   scripts/bench/run.sh [options]
#     --duration 15s          measured time per run            (BENCH_DURATION)
#     --warmup 3s             unmeasured time before each run  (BENCH_WARMUP)
#     --concurrency 64,256    requests in flight, one run each (BENCH_CONCURRENCY)
#     --workloads LIST        default put,get,get-stale,mix    (BENCH_WORKLOADS)
#     --keys 100000           key space, preloaded before the first get phase (BENCH_KEYS)
#     --value-size 256        bytes                            (BENCH_VALUE_SIZE)
#     --targets rangekv,rangekv-unary,etcd   which to run          (BENCH_TARGETS; rangekv: the
#                             client as it comes, over Multiplex streams; rangekv-unary: one
#                             unary call per request, as etcd's client)
#     --etcd-endpoints all|leader   etcd client talks to every member (default) or to the leader only
#     --out DIR               results (results.jsonl, table.txt, logs); default /tmp/rangekv-bench-results/<time>
#     --profile               instead of the comparison: profile RangeKV (node --cpu-prof on every kvd)
#                             through the target BENCH_PROFILE_TARGET (rangekv, default, or rangekv-unary)
#                             under the workloads of BENCH_PROFILE_WORKLOADS (default get,put) at the first
#                             --concurrency
#     --no-build              do not run tsc first
#     --keep                  keep the clusters' data directories
#     --max-seconds 2400      hard bound of the whole script   (BENCH_MAX_SECONDS)
#
# Experiments: BENCH_KVD_ARGS adds kvd flags (e.g. "--snapshot-entries 1000000"), BENCH_KVD_NODE_FLAGS adds
# node flags of the kvd processes (e.g. "--max-semi-space-size=64"), BENCH_CLIENT_NODE_FLAGS
# sets node flags of the benchmark client process (default "--stack-trace-limit=0"; "" for none).
# Ports: RangeKV 127.0.0.1:$KV_BASE_PORT+i (default 27400+i), etcd clients $BENCH_ETCD_PORT+i
# (default 23790+i), etcd peers $BENCH_ETCD_PORT+10+i. Needs the `etcd` binary (Debian: etcd-server).
# etcd is restarted before every read phase: Debian's etcd 3.4.23 mis-serves reads after large
# write batches until it restarts.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
duration="${BENCH_DURATION:-15s}"
warmup="${BENCH_WARMUP:-3s}"
concurrency="${BENCH_CONCURRENCY:-64,256}"
workloads="${BENCH_WORKLOADS:-put,get,get-stale,mix}"
keys="${BENCH_KEYS:-100000}"
value_size="${BENCH_VALUE_SIZE:-256}"
targets="${BENCH_TARGETS:-rangekv,rangekv-unary,etcd}"
max_seconds="${BENCH_MAX_SECONDS:-2400}"
etcd_mode=all
out=""
profile=0
build=1
keep=0
rkv_base="${KV_BASE_PORT:-27400}"
read -r -a kvd_args <<<"${BENCH_KVD_ARGS:-}"
read -r -a kvd_node_flags <<<"${BENCH_KVD_NODE_FLAGS:-}"
# The load generator skips capturing a stack trace per gRPC call (grpc-js makes an Error per
# unary call): ~15% less client CPU for both targets; server figures are unaffected.
read -r -a client_node_flags <<<"${BENCH_CLIENT_NODE_FLAGS---stack-trace-limit=0}"
etcd_base="${BENCH_ETCD_PORT:-23790}"
profile_target="${BENCH_PROFILE_TARGET:-rangekv}"
profile_workloads="${BENCH_PROFILE_WORKLOADS:-get,put}"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --workloads) workloads="$2"; shift 2 ;;
    --keys) keys="$2"; shift 2 ;;
    --value-size) value_size="$2"; shift 2 ;;
    --targets) targets="$2"; shift 2 ;;
    --etcd-endpoints) etcd_mode="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --profile) profile=1; shift ;;
    --no-build) build=0; shift ;;
    --keep) keep=1; shift ;;
    --max-seconds) max_seconds="$2"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ "$etcd_mode" =~ ^(all|leader)$ ]] || { echo "run.sh: --etcd-endpoints must be all or leader" >&2; exit 2; }
[[ "$max_seconds" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --max-seconds must be a positive integer" >&2; exit 2; }

out="${out:-/tmp/rangekv-bench-results/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
tmp="$(mktemp -d /tmp/rangekv-bench.XXXXXX)"
bench_js="$root/dist/scripts/bench/bench.js"
results="$out/results.jsonl"

# ------------------------------------------------------------------------------------------------
# Cleanup: only the processes this script started, by pid.

rkv_pids=()
etcd_pids=()
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
      echo "run.sh: SIGKILL to$alive" >&2
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
  stop_pids "${rkv_pids[@]}" "${etcd_pids[@]}"
  if [ "$keep" = 1 ]; then echo "data kept in $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM

# The whole script is bounded: the watchdog sends SIGTERM to this shell, whose trap cleans up.
(
  trap 'kill "$s" 2>/dev/null; exit 0' TERM
  sleep "$max_seconds" &
  s=$!
  if wait "$s"; then echo "run.sh: --max-seconds $max_seconds reached, stopping" >&2; kill -TERM $$; fi
) &
watchdog=$!

port_free() { ! ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }
for i in 1 2 3; do
  for p in $((rkv_base + i)) $((etcd_base + i)) $((etcd_base + 10 + i)); do
    port_free "$p" || { echo "run.sh: port $p is in use (set KV_BASE_PORT / BENCH_ETCD_PORT)" >&2; exit 1; }
  done
done

if [ "$build" = 1 ]; then (cd "$root" && npx --no -- tsc -p tsconfig.json); fi
[ -f "$bench_js" ] || { echo "run.sh: $bench_js missing (build first)" >&2; exit 1; }

load_report() { # label
  echo "--- load ($1): $(uptime)"
  top -bn1 | sed -n '7,12p'
}

# Bounded run of the driver: per run warmup + duration + a minute of slack; preload up to 15 min.
bench() { timeout --kill-after=10 "$1" node "${client_node_flags[@]}" "$bench_js" "${@:2}"; }
secs() { node -e 'const v=process.argv[1];const m=/^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v);if(!m)process.exit(2);const n=+m[1];console.log(Math.ceil(m[2]==="ms"?n/1000:m[2]==="m"?n*60:n))' "$1"; }
run_bound=$(( $(secs "$duration") + $(secs "$warmup") + 60 ))
common=(--keys "$keys" --value-size "$value_size" --duration "$duration" --warmup "$warmup")

# ------------------------------------------------------------------------------------------------
# RangeKV

rkv_eps=""; rkv_initial=""
for i in 1 2 3; do
  rkv_eps="${rkv_eps:+$rkv_eps,}127.0.0.1:$((rkv_base + i))"
  rkv_initial="${rkv_initial:+$rkv_initial,}$i=127.0.0.1:$((rkv_base + i))"
done

start_rkv() { # [node flags...]
  mkdir -p "$tmp/rkv"
  rkv_pids=()
  for i in 1 2 3; do
    node "${kvd_node_flags[@]}" "$@" "$root/bin/kvd" --id "$i" --listen "127.0.0.1:$((rkv_base + i))" --data "$tmp/rkv/data$i" \
      --initial-cluster "$rkv_initial" "${kvd_args[@]}" >>"$out/kvd$i.log" 2>&1 &
    rkv_pids+=($!)
  done
  bench 60 wait --target rangekv --endpoints "$rkv_eps" --timeout 45s
}
stop_rkv() { stop_pids "${rkv_pids[@]}"; rkv_pids=(); }
rkv_pidlist() { local IFS=,; echo "${rkv_pids[*]}"; }

# ------------------------------------------------------------------------------------------------
# etcd

etcd_eps=""; etcd_initial=""
for i in 1 2 3; do
  etcd_eps="${etcd_eps:+$etcd_eps,}127.0.0.1:$((etcd_base + i))"
  etcd_initial="${etcd_initial:+$etcd_initial,}m$i=http://127.0.0.1:$((etcd_base + 10 + i))"
done

start_etcd() {
  command -v etcd >/dev/null || { echo "run.sh: etcd not found (apt-get install -y etcd-server)" >&2; exit 1; }
  mkdir -p "$tmp/etcd"
  etcd_pids=()
  for i in 1 2 3; do
    etcd --name "m$i" --data-dir "$tmp/etcd/m$i" \
      --listen-client-urls "http://127.0.0.1:$((etcd_base + i))" --advertise-client-urls "http://127.0.0.1:$((etcd_base + i))" \
      --listen-peer-urls "http://127.0.0.1:$((etcd_base + 10 + i))" --initial-advertise-peer-urls "http://127.0.0.1:$((etcd_base + 10 + i))" \
      --initial-cluster "$etcd_initial" --initial-cluster-state new --initial-cluster-token "rangekv-bench-$$" \
      --logger zap --log-level warn --log-outputs stderr >>"$out/etcd$i.log" 2>&1 &
    etcd_pids+=($!)
  done
  bench 60 wait --target etcd --endpoints "$etcd_eps" --timeout 45s
}
stop_etcd() { stop_pids "${etcd_pids[@]}"; etcd_pids=(); }
restart_etcd() { stop_etcd; start_etcd; }
etcd_pidlist() { local IFS=,; echo "${etcd_pids[*]}"; }
etcd_targets() { # the endpoints the etcd client uses
  if [ "$etcd_mode" = leader ]; then bench 30 etcd-leader --endpoints "$etcd_eps"; else echo "$etcd_eps"; fi
}

# ------------------------------------------------------------------------------------------------

echo "RangeKV bench: out=$out data=$tmp"
echo "kvd extra args: ${BENCH_KVD_ARGS:-none}; client node flags: ${client_node_flags[*]:-none}"
echo "workloads=$workloads concurrency=$concurrency keys=$keys value=${value_size}B duration=$duration warmup=$warmup targets=$targets etcd-endpoints=$etcd_mode"
echo "node $(node --version), $(etcd --version 2>/dev/null | head -1), $(nproc) cores, git $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet 2>/dev/null || echo '+dirty')"
load_report start | tee "$out/load.txt"

if [ "$profile" = 1 ]; then
  c="${concurrency%%,*}"
  echo "== profile: preload $keys keys (not profiled)"
  start_rkv
  bench 900 run --target rangekv --endpoints "$rkv_eps" "${common[@]}" --workload preload --server-pids "$(rkv_pidlist)" --jsonl "$results"
  stop_rkv
  for w in ${profile_workloads//,/ }; do
    echo "== profile: $w c=$c (node --cpu-prof on every kvd and on the bench client)"
    mkdir -p "$out/prof-$w/client"
    launched_ms=$(date +%s%3N)
    start_rkv --cpu-prof --cpu-prof-dir="$out/prof-$w"
    echo "kvd pids (node ids 1..3): $(rkv_pidlist)" | tee "$out/prof-$w/pids.txt"
    client_ms=$(date +%s%3N)
    timeout --kill-after=10 "$run_bound" node "${client_node_flags[@]}" --cpu-prof --cpu-prof-dir="$out/prof-$w/client" "$bench_js" run --target "$profile_target" \
      --endpoints "$rkv_eps" "${common[@]}" --workload "$w" --no-preload --concurrency "$c" --server-pids "$(rkv_pidlist)" --jsonl "$results"
    stop_rkv
    # The measured window, in seconds since each profile started (start-up and warm-up left out).
    read -r from_s to_s < <(node -e '
      const fs = require("fs"); const [file, launched, warm] = process.argv.slice(1);
      const r = JSON.parse(fs.readFileSync(file, "utf8").trim().split("\n").pop());
      const from = (Date.parse(r.startedAt) + Number(warm) * 1000 - Number(launched)) / 1000;
      console.log(from.toFixed(2), (from + r.durationS).toFixed(2));' "$results" "$launched_ms" "$(secs "$warmup")")
    {
      echo "profiles of the kvd processes during the measured window ($from_s s .. $to_s s after launch); $(cat "$out/prof-$w/pids.txt")"
      node "$bench_js" profile --root "$root" --top 30 --from-s "$from_s" --to-s "$to_s" "$out/prof-$w"/*.cpuprofile
      client_from=$(node -e 'console.log((Number(process.argv[1]) - (Number(process.argv[3]) - Number(process.argv[2])) / 1000).toFixed(2))' "$from_s" "$launched_ms" "$client_ms")
      client_to=$(node -e 'console.log((Number(process.argv[1]) - (Number(process.argv[3]) - Number(process.argv[2])) / 1000).toFixed(2))' "$to_s" "$launched_ms" "$client_ms")
      echo "profile of the bench client (KvClient) during the same window"
      node "$bench_js" profile --root "$root" --top 30 --from-s "$client_from" --to-s "$client_to" "$out/prof-$w/client"/*.cpuprofile
    } >"$out/profile-$w.txt"
    echo "summary: $out/profile-$w.txt"
  done
  load_report end | tee -a "$out/load.txt"
  exit 0
fi

has() { [[ ",$targets," == *",$1,"* ]]; }
# rangekv-unary: the same RangeKV cluster, the client sending one unary call per request.
if has rangekv || has rangekv-unary; then start_rkv; fi
has etcd && start_etcd

# Preload both key spaces first (the put phases then overwrite random keys of it).
case ",$workloads," in
  *,get,*|*,get-stale,*|*,mix,*)
    if has rangekv || has rangekv-unary; then
      echo "== preload rangekv"
      bench 900 run --target rangekv --endpoints "$rkv_eps" "${common[@]}" --workload preload --server-pids "$(rkv_pidlist)" --jsonl "$results"
    fi
    if has etcd; then
      echo "== preload etcd"
      bench 900 run --target etcd --endpoints "$(etcd_targets)" "${common[@]}" --workload preload --server-pids "$(etcd_pidlist)" --jsonl "$results"
    fi
    ;;
esac

for w in ${workloads//,/ }; do
  for c in ${concurrency//,/ }; do
    for t in rangekv rangekv-unary; do
      if has "$t"; then
        bench "$run_bound" run --target "$t" --endpoints "$rkv_eps" "${common[@]}" --workload "$w" --no-preload \
          --concurrency "$c" --server-pids "$(rkv_pidlist)" --jsonl "$results"
      fi
    done
    if has etcd; then
      if [ "$w" != put ]; then restart_etcd; fi
      bench "$run_bound" run --target etcd --endpoints "$(etcd_targets)" "${common[@]}" --workload "$w" --no-preload \
        --concurrency "$c" --server-pids "$(etcd_pidlist)" --jsonl "$results"
    fi
  done
done
load_report end | tee -a "$out/load.txt"
if has rangekv || has rangekv-unary; then
  # Ranges change what a put costs (one Raft group each; the scheduler splits by load too, see
  # kvd --split-qps): the count at the end goes with the figures.
  { echo "RangeKV ranges at the end (kvctl ranges; kvd args: ${kvd_args[*]:-none}):"
    node "$root/bin/kvctl" --endpoints "$rkv_eps" ranges || echo "(kvctl ranges failed)"; } | tee -a "$out/ranges.txt"
fi

echo
node "$bench_js" compare "$results" | tee "$out/table.txt"
echo
echo "results: $out (results.jsonl, table.txt, server logs)"
