#!/usr/bin/env bash
# A local RangeKV cluster on loopback.
#
#   scripts/cluster.sh start [-n N]   build if needed, start N nodes (default 3), wait until a leader serves
#   scripts/cluster.sh stop           stop the nodes (SIGTERM, then SIGKILL after 10 s)
#   scripts/cluster.sh status         show which nodes run, and the cluster status
#
# Nodes listen on 127.0.0.1:$KV_BASE_PORT+i (default 7001..); data and logs live in .cluster/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${KV_CLUSTER_DIR:-$root/.cluster}"
base_port="${KV_BASE_PORT:-7000}"
cmd="${1:-}"
shift || true
n=3
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n="${2:-}"; shift 2 ;;
    *) echo "cluster.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if ! [[ "$n" =~ ^[1-9][0-9]?$ ]]; then echo "cluster.sh: -n must be a number from 1 to 99, got '$n'" >&2; exit 2; fi

endpoints() {
  local count="$1" out=""
  for i in $(seq 1 "$count"); do out="${out:+$out,}127.0.0.1:$((base_port + i))"; done
  echo "$out"
}

running_pids() {
  for f in "$dir"/node*.pid; do
    [ -f "$f" ] || continue
    local pid; pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
  done
}

case "$cmd" in
  start)
    if [ -n "$(running_pids)" ]; then echo "cluster.sh: a cluster is already running (scripts/cluster.sh stop first)" >&2; exit 1; fi
    make -C "$root" --no-print-directory build >/dev/null
    mkdir -p "$dir"
    if [ -f "$dir/size" ] && [ "$(cat "$dir/size")" != "$n" ]; then
      echo "cluster.sh: $dir holds a $(cat "$dir/size")-node cluster; remove it to start a $n-node one" >&2; exit 1
    fi
    echo "$n" > "$dir/size"
    initial=""
    for i in $(seq 1 "$n"); do initial="${initial:+$initial,}$i=127.0.0.1:$((base_port + i))"; done
    for i in $(seq 1 "$n"); do
      nohup "$root/bin/kvd" --id "$i" --listen "127.0.0.1:$((base_port + i))" --data "$dir/data$i" \
        --initial-cluster "$initial" >"$dir/node$i.log" 2>&1 &
      echo $! > "$dir/node$i.pid"
    done
    eps="$(endpoints "$n")"
    # Wait until the cluster serves a linearizable read (a leader exists and answers).
    deadline=$((SECONDS + 30))
    until "$root/bin/kvctl" --endpoints "$eps" --timeout-ms 2000 get __cluster_sh_probe >/dev/null 2>&1 || [ $? -eq 1 ]; do
      if [ $SECONDS -ge $deadline ]; then echo "cluster.sh: no leader within 30 s; see $dir/node*.log" >&2; exit 1; fi
      sleep 0.2
    done
    echo "RangeKV: $n nodes running on $eps (data and logs in $dir)"
    echo "try:     ./bin/kvctl --endpoints $eps put hello world && ./bin/kvctl --endpoints $eps get hello"
    echo "stop:    scripts/cluster.sh stop"
    ;;
  stop)
    pids="$(running_pids)"
    if [ -z "$pids" ]; then echo "cluster.sh: no cluster running"; exit 0; fi
    kill -TERM $pids 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while [ -n "$(running_pids)" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    left="$(running_pids)"
    if [ -n "$left" ]; then kill -KILL $left 2>/dev/null || true; fi
    rm -f "$dir"/node*.pid
    echo "cluster stopped (data kept in $dir)"
    ;;
  status)
    size="$(cat "$dir/size" 2>/dev/null || echo 0)"
    for i in $(seq 1 "$size"); do
      pid="$(cat "$dir/node$i.pid" 2>/dev/null || true)"
      if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "node $i: running (pid $pid) on 127.0.0.1:$((base_port + i))"
      else echo "node $i: stopped"; fi
    done
    [ "$size" -gt 0 ] && "$root/bin/kvctl" --endpoints "$(endpoints "$size")" status || true
    ;;
  *)
    echo "usage: scripts/cluster.sh start|stop|status [-n N]" >&2
    exit 2
    ;;
esac
