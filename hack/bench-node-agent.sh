#!/usr/bin/env bash
# The node agent's cost (docs/benchmarks.md, "Node agent"): runs
# gpu-autoscaler-node-agent against the embedded API server with the fake
# NVML playing a node of 8 GPUs (two NVLink islands of 4, two GPUs in MIG with
# 7 and 3 instances, 40 processes), polling NVML every second, scrapes
# /metrics every 15 s like Prometheus, and reports the agent's CPU (utime +
# stime from /proc/PID/stat over the window, % of one core) and RSS (peak
# VmHWM and the last VmRSS from /proc/PID/status).
#
# Usage: hack/bench-node-agent.sh [--window SECONDS] [--build-dir DIR]
#   defaults: a 60 s window after a 5 s warm-up.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build/default
window=60
while [[ $# -gt 0 ]]; do
  case "$1" in
    --window) window="$2"; shift ;;
    --build-dir) build="$2"; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

source hack/lib.sh

start_apiserver "$build"
write_kubeconfig

python3 - "$work/scenario.json" <<'PY'
import json, sys
gpus = []
pid = 1000
for i in range(8):
    g = {"name": "NVIDIA H100 80GB HBM3", "memoryMiB": 81559, "usedMiB": 20000 + i, "util": 40 + i,
         "nvlinkPeers": [j for j in range(8) if j // 4 == i // 4 and j != i], "processes": []}
    if i in (6, 7):
        n = 7 if i == 6 else 3
        g["mig"] = {"enabled": True, "devices": [
            {"profile": "1g.10gb" if n == 7 else "2g.20gb", "gi": 9 + k,
             "memoryMiB": 9984 if n == 7 else 19968, "usedMiB": 100 * k} for k in range(n)]}
    for k in range(5):
        p = {"pid": pid, "usedMiB": 1000 + k, "smUtil": 5 + k, "memUtil": 1}
        if "mig" in g:
            p["gi"] = 9 + k % len(g["mig"]["devices"])
        g["processes"].append(p)
        pid += 1
    gpus.append(g)
json.dump({"gpus": gpus}, open(sys.argv[1], "w"))
PY

curl -fsS -XPOST -H 'Content-Type: application/json' "$server/api/v1/nodes" \
  -d '{"apiVersion":"v1","kind":"Node","metadata":{"name":"bench-gpu-node"}}' >/dev/null
probe=$(free_port)
metrics=$(free_port)
GPA_FAKE_NVML_SCENARIO="$work/scenario.json" "$build/gpu-autoscaler-node-agent" \
  --node-name bench-gpu-node --kubeconfig "$work/kubeconfig" \
  --nvml-library "$PWD/$build/libgpa-fake-nvml.so" --poll-interval 1s --report-interval 10s \
  --health-probe-bind-address "127.0.0.1:$probe" --metrics-bind-address "127.0.0.1:$metrics" \
  --log-level warn >"$work/agent.log" 2>&1 &
agent=$!
pids+=($agent)
wait_for 30 curl -fs "127.0.0.1:$probe/readyz" || { cat "$work/agent.log"; exit 1; }
sleep 5  # warm-up
ticks=$(getconf CLK_TCK)
read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$agent/stat")
t0=$(date +%s.%N)
scrapes=0
series=0
for ((i = 0; i < window; i += 15)); do
  series=$(curl -fsS "127.0.0.1:$metrics/metrics" | grep -c '^DCGM_FI_DEV\|^gpu_autoscaler_node_gpu')
  scrapes=$((scrapes + 1))
  sleep $((window - i < 15 ? window - i : 15))
done
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$agent/stat")
t1=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$agent/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$agent/status")
polls=$(curl -fsS "127.0.0.1:$metrics/metrics" |
  awk '/^gpu_autoscaler_node_nvml_poll_duration_seconds_(count|sum)/ {print $2}' | paste -sd' ')
python3 - "$u0" "$s0" "$u1" "$s1" "$t0" "$t1" "$ticks" "$rss" "$hwm" "$scrapes" "$series" $polls <<'PY'
import sys
u0, s0, u1, s1, t0, t1, ticks, rss, hwm, scrapes, series, pcount, psum = sys.argv[1:14]
secs = float(t1) - float(t0)
cpu = (int(u1) + int(s1) - int(u0) - int(s0)) / int(ticks) / secs * 100
print("node agent: 8 GPUs (2 in MIG, 10 MIG devices), 40 processes, NVML polled every 1 s, "
      f"{scrapes} scrapes of {series} GPU series")
print(f"  CPU:          {cpu:.2f}% of one core over {secs:.0f} s "
      f"({cpu * 10:.1f}m; HAMi device plugin 150-600m: {150 / max(cpu * 10, 0.01):.0f}x-"
      f"{600 / max(cpu * 10, 0.01):.0f}x less)")
print(f"  RSS:          {int(rss) / 1024:.1f} MiB now, {int(hwm) / 1024:.1f} MiB peak "
      f"(HAMi 256-1024 MiB: {256 / (int(hwm) / 1024):.0f}x-{1024 / (int(hwm) / 1024):.0f}x less)")
print(f"  NVML poll:    {float(psum) / max(float(pcount), 1) * 1000:.2f} ms mean over {float(pcount):.0f} polls")
PY
