#!/usr/bin/env bash
# The node agent's cost (docs/benchmarks.md, "Node agent"): runs
# gpu-autoscaler-node-agent against the embedded API server with the fake
# NVML playing a node of 8 GPUs (two NVLink islands of 4, two GPUs in MIG with
# 7 and 3 instances, 40 processes), polling NVML every second, scrapes
# /metrics every 15 s like Prometheus, and reports the agent's CPU (utime +
# stime from /proc/PID/stat over the window, % of one core) and RSS (peak
# VmHWM and the last VmRSS from /proc/PID/status). The node also runs --pods
# pods (default 110) of every Katalyst QoS level, whose pools the agent keeps
# in a fake cgroup v2 tree over a fake sysfs of two 32-CPU NUMA nodes.
#
# Usage: hack/bench-node-agent.sh [--window SECONDS] [--pods N] [--build-dir DIR]
#   defaults: a 60 s window after a 5 s warm-up, 110 pods.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build/default
window=60
npods=110
while [[ $# -gt 0 ]]; do
  case "$1" in
    --window) window="$2"; shift ;;
    --pods) npods="$2"; shift ;;
    --build-dir) build="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
# The node's pods, bound to it, with their cgroups as a systemd-driver kubelet
# on cgroup v2 makes them; one in ten dedicated_cores, one in ten
# reclaimed_cores, one in twenty system_cores, the rest shared_cores.
python3 - "$server" "$work" "$npods" <<'PY'
import json, os, sys, urllib.request
server, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for node in range(2):
    d = f"{work}/sys/devices/system/node/node{node}"
    os.makedirs(d, exist_ok=True)
    open(f"{d}/cpulist", "w").write(f"{node * 32}-{node * 32 + 31}\n")
    open(f"{d}/meminfo", "w").write(f"Node {node} MemTotal: 268435456 kB\n")
root = f"{work}/cgroup"
os.makedirs(root, exist_ok=True)
open(f"{root}/cgroup.controllers", "w").write("cpuset cpu io memory pids\n")
def post(path, body):
    req = urllib.request.Request(server + path, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
for i in range(n):
    level, res, tier = "shared_cores", {"requests": {"cpu": "250m", "memory": "512Mi"}}, "burstable"
    if i % 10 == 0:
        level, tier = "dedicated_cores", ""
        res = {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    elif i % 10 == 5:
        level, tier = "reclaimed_cores", "besteffort"
        r = {"resource.katalyst.kubewharf.io/reclaimed_millicpu": "1k",
             "resource.katalyst.kubewharf.io/reclaimed_memory": "1Gi"}
        res = {"requests": r, "limits": r}
    elif i % 20 == 3:
        level = "system_cores"
    pod = post("/api/v1/namespaces/bench/pods", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"p{i}", "annotations": {"katalyst.kubewharf.io/qos_level": level}},
        "spec": {"nodeName": "bench-gpu-node",
                 "containers": [{"name": "main", "image": "busybox", "resources": res}]}})
    uid = pod["metadata"]["uid"].replace("-", "_")
    d = f"{root}/kubepods.slice"
    d += (f"/kubepods-{tier}.slice/kubepods-{tier}-pod{uid}.slice" if tier
          else f"/kubepods-pod{uid}.slice")
    os.makedirs(d, exist_ok=True)
    for f, v in {"cpuset.cpus": "", "cpuset.mems": "", "cpu.max": "max 100000",
                 "cpu.weight": "100", "memory.high": "max", "memory.min": "0"}.items():
        open(f"{d}/{f}", "w").write(v + "\n")
PY

probe=$(free_port)
metrics=$(free_port)
GPA_FAKE_NVML_SCENARIO="$work/scenario.json" "$build/gpu-autoscaler-node-agent" \
  --node-name bench-gpu-node --kubeconfig "$work/kubeconfig" \
  --nvml-library "$PWD/$build/libgpa-fake-nvml.so" --poll-interval 1s --report-interval 10s \
  --sysfs-root "$work/sys" --cgroup-root "$work/cgroup" --cgroup-driver systemd \
  --reserved-cpus 0-1 --reclaim-reserve-cpu 2 --reclaim-reserve-memory 4Gi \
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
qos=$(curl -fsS "127.0.0.1:$metrics/metrics" |
  awk '/^gpu_autoscaler_node_(qos_syncs_total\{result="ok"\}|cgroup_writes_total\{result="written"\}|reclaimable_millicpu)/ {print $1 "=" $2}' |
  paste -sd' ')
polls=$(curl -fsS "127.0.0.1:$metrics/metrics" |
  awk '/^gpu_autoscaler_node_nvml_poll_duration_seconds_(count|sum)/ {print $2}' | paste -sd' ')
python3 - "$u0" "$s0" "$u1" "$s1" "$t0" "$t1" "$ticks" "$rss" "$hwm" "$scrapes" "$series" "$npods" "$qos" $polls <<'PY'
import sys
u0, s0, u1, s1, t0, t1, ticks, rss, hwm, scrapes, series, npods, qos, pcount, psum = sys.argv[1:16]
qos = {k.split("{")[0]: float(v) for k, v in (kv.rsplit("=", 1) for kv in qos.split())}
reclaim = qos.get("gpu_autoscaler_node_reclaimable_millicpu", 0)
writes = qos.get("gpu_autoscaler_node_cgroup_writes_total", 0)
syncs = qos.get("gpu_autoscaler_node_qos_syncs_total", 0)
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
print(f"  QoS pools:    {npods} pods, {float(syncs):.0f} passes, {float(writes):.0f} cgroup writes "
      f"in all, {float(reclaim):.0f}m reclaimable")
PY
