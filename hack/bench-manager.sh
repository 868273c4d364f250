#!/usr/bin/env bash
# The manager at scale (docs/benchmarks.md, "Manager at scale"): fills the
# embedded API server with GPU nodes and pods, starts gpu-autoscaler-manager
# with every controller on and cost metering at 1 Hz, and reports
#   - sync: seconds from start until /readyz answers 200 (every informer listed);
#   - steady RSS (MiB) and steady CPU (% of one core) over a window after sync,
#     read from /proc, with the seconds metered meanwhile.
#
# Usage: hack/bench-manager.sh [--nodes N] [--pods N] [--window SECONDS] [--build-dir DIR]
#                              [--controllers LIST]
#   defaults: 5000 nodes, 150000 pods, a 60 s window, every controller.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build/default
nodes=5000
pods=150000
window=60
controllers='*'
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nodes) nodes="$2"; shift ;;
    --pods) pods="$2"; shift ;;
    --window) window="$2"; shift ;;
    --controllers) controllers="$2"; shift ;;
    --build-dir) build="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

source hack/lib.sh

start_apiserver "$build" --watch-history 1000
"$build/bench/cluster_loader" --server "$server" --nodes "$nodes" --pods "$pods" --threads 4

write_kubeconfig

probe=$(free_port)
metrics=$(free_port)
start=$(date +%s.%N)
"$build/gpu-autoscaler-manager" --kubeconfig "$work/kubeconfig" --controllers="$controllers" \
  --cost-db "$work/cost.db" --health-probe-bind-address "127.0.0.1:$probe" \
  --metrics-bind-address "127.0.0.1:$metrics" --metrics-secure=false --log-level warn >"$work/manager.log" 2>&1 &
manager=$!
pids+=($manager)
until curl -fs "127.0.0.1:$probe/readyz" >/dev/null 2>&1; do
  kill -0 "$manager" 2>/dev/null || { cat "$work/manager.log"; exit 1; }
  sleep 0.05
done
synced=$(date +%s.%N)
# Let the first full inventory and metering settle before measuring.
sleep 10
ticks=$(getconf CLK_TCK)
read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$manager/stat")
m0=$(curl -fsS "127.0.0.1:$metrics/metrics" | awk '/^gpu_autoscaler_cost_metered_seconds_total/ {print $2}')
t0=$(date +%s.%N)
peak=0
for _ in $(seq "$window"); do
  sleep 1
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$manager/status")
  (( rss > peak )) && peak=$rss
done
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$manager/stat")
t1=$(date +%s.%N)
m1=$(curl -fsS "127.0.0.1:$metrics/metrics" | awk '/^gpu_autoscaler_cost_metered_seconds_total/ {print $2}')
rss=$(awk '/VmRSS/ {print $2}' "/proc/$manager/status")
python3 - "$nodes" "$pods" "$start" "$synced" "$u0" "$s0" "$u1" "$s1" "$t0" "$t1" "$ticks" "$rss" "$peak" "${m0:-0}" "${m1:-0}" "$controllers" <<'PY'
import sys
n, p, start, synced, u0, s0, u1, s1, t0, t1, ticks, rss, peak, m0, m1 = sys.argv[1:16]
cpu = (int(u1) + int(s1) - int(u0) - int(s0)) / int(ticks) / (float(t1) - float(t0)) * 100
print(f"manager with {n} nodes, {p} pods, controllers {sys.argv[16]}, metering at 1 Hz")
print(f"  time to sync (start -> /readyz):  {float(synced) - float(start):.2f} s")
print(f"  steady RSS:                       {int(rss) / 1024:.0f} MiB (peak {int(peak) / 1024:.0f} MiB)")
print(f"  steady CPU:                       {cpu:.1f}% of one core over {float(t1) - float(t0):.0f} s")
print(f"  seconds metered in the window:    {float(m1) - float(m0):.0f}")
PY
