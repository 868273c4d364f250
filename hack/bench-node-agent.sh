#!/usr/bin/env bash
# The node agent's cost (docs/benchmarks.md, "Node agent"): runs
# gpu-autoscaler-node-agent against the embedded API server with the fake
# NVML playing a node of 8 GPUs (two NVLink islands of 4, two GPUs in MIG with
# 7 and 3 instances, 40 processes; utilisation replayed from the GenTD26
# duty-cycle excerpt in tests/data/genai), 110 pods bound to the node, the
# fake kubelet PodResources server answering for all 110 (40 hold GPUs: six
# GPUs time-sliced 5 ways, each MIG device exclusive) and a fake /proc with
# the GPU processes' cgroups. The pods are of every Katalyst QoS level; the
# agent keeps their pools in a fake cgroup v2 tree over a fake sysfs of two
# 32-CPU NUMA nodes. It polls NVML every second, asks PodResources
# every 10 s, scrapes /metrics every 15 s like Prometheus, and reports the
# agent's CPU (utime + stime from /proc/PID/stat over the window, % of one
# core) and RSS (peak VmHWM and the last VmRSS from /proc/PID/status).
#
# Usage: hack/bench-node-agent.sh [--window SECONDS] [--build-dir DIR] [--no-pod-resources]
#   defaults: a 60 s window after a 5 s warm-up; --no-pod-resources runs the agent
#   with --pod-resources-socket="" (cgroups only) to show what the kubelet client costs.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build/default
window=60
socket_flag=yes
while [[ $# -gt 0 ]]; do
  case "$1" in
    --window) window="$2"; shift ;;
    --build-dir) build="$2"; shift ;;
    --no-pod-resources) socket_flag=no ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

source hack/lib.sh

start_apiserver "$build"
write_kubeconfig

curl -fsS -XPOST -H 'Content-Type: application/json' "$server/api/v1/nodes" \
  -d '{"apiVersion":"v1","kind":"Node","metadata":{"name":"bench-gpu-node"}}' >/dev/null
curl -fsS -XPOST -H 'Content-Type: application/json' "$server/api/v1/namespaces" \
  -d '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}}' >/dev/null

# 110 pods on the node; 40 of them run one GPU process each. One in ten is
# dedicated_cores, one in ten reclaimed_cores, one in twenty system_cores, the
# rest shared_cores. Writes the fake NVML scenario, the PodResources answer,
# the processes' cgroups, a fake sysfs (two 32-CPU NUMA nodes) and the pods'
# cgroup v2 directories as a systemd-driver kubelet makes them.
python3 - "$server" "$work" tests/data/genai/pod_gpu_duty_cycle_excerpt.csv <<'PY'
import csv, json, os, sys, urllib.request
server, work, excerpt = sys.argv[1:4]
series = {}
for row in csv.DictReader(open(excerpt)):
    series.setdefault(row["container_ip"], []).append(round(float(row["value"])))
traces = list(series.values())

for node in range(2):
    d = f"{work}/sys/devices/system/node/node{node}"
    os.makedirs(d, exist_ok=True)
    open(f"{d}/cpulist", "w").write(f"{node * 32}-{node * 32 + 31}\n")
    open(f"{d}/meminfo", "w").write(f"Node {node} MemTotal: 268435456 kB\n")
cgroot = f"{work}/cgroup"
os.makedirs(cgroot, exist_ok=True)
open(f"{cgroot}/cgroup.controllers", "w").write("cpuset cpu io memory pids\n")

def create_pod(i):
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
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"p-{i}", "namespace": "bench",
                         "annotations": {"katalyst.kubewharf.io/qos_level": level}},
            "spec": {"nodeName": "bench-gpu-node",
                     "containers": [{"name": "main", "image": "x", "resources": res}]}}
    req = urllib.request.Request(f"{server}/api/v1/namespaces/bench/pods",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    uid = json.load(urllib.request.urlopen(req))["metadata"]["uid"]
    u = uid.replace("-", "_")
    d = f"{cgroot}/kubepods.slice"
    d += (f"/kubepods-{tier}.slice/kubepods-{tier}-pod{u}.slice" if tier
          else f"/kubepods-pod{u}.slice")
    os.makedirs(d, exist_ok=True)
    for f, v in {"cpuset.cpus": "", "cpuset.mems": "", "cpu.max": "max 100000",
                 "cpu.weight": "100", "memory.high": "max", "memory.min": "0"}.items():
        open(f"{d}/{f}", "w").write(v + "\n")
    return uid

uids = [create_pod(i) for i in range(110)]
gpus, holders, allocatable = [], {}, []
pid, pod = 1000, 0
for i in range(8):
    uuid = "GPU-00000000-0000-4000-8000-%012d" % i
    g = {"name": "NVIDIA H100 80GB HBM3", "memoryMiB": 81559, "usedMiB": 20000 + i,
         "utilSeries": traces[i % len(traces)],
         "nvlinkPeers": [j for j in range(8) if j // 4 == i // 4 and j != i], "processes": []}
    if i in (6, 7):
        n = 7 if i == 6 else 3
        g["mig"] = {"enabled": True, "devices": [
            {"uuid": "MIG-%d-%d" % (i, k), "profile": "1g.10gb" if n == 7 else "2g.20gb",
             "gi": 9 + k, "memoryMiB": 9984 if n == 7 else 19968, "usedMiB": 100 * k}
            for k in range(n)]}
        allocatable += [d["uuid"] for d in g["mig"]["devices"]]
    else:
        allocatable += ["%s::%d" % (uuid, r) for r in range(10)]
    for k in range(5):
        p = {"pid": pid, "usedMiB": 1000 + k, "smUtil": 5 + k, "memUtil": 1}
        if "mig" in g:
            p["gi"] = 9 + k % len(g["mig"]["devices"])
            device = "MIG-%d-%d" % (i, k % len(g["mig"]["devices"]))
        else:
            device = "%s::%d" % (uuid, k)
        holders[pod] = device
        cg = os.path.join(work, "proc", str(pid))
        os.makedirs(cg)
        with open(os.path.join(cg, "cgroup"), "w") as f:
            f.write("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s"
                    ".slice/cri-containerd-%064x.scope\n" % (uids[pod].replace("-", "_"), pid))
        g["processes"].append(p)
        pid += 1
        pod += 1
    gpus.append(g)
json.dump({"gpus": gpus}, open(os.path.join(work, "scenario.json"), "w"))
pods = []
for i in range(110):
    c = {"name": "main", "devices": []}
    if i in holders:
        c["devices"].append({"resource": "nvidia.com/gpu", "ids": [holders[i]]})
    pods.append({"namespace": "bench", "name": f"p-{i}", "containers": [c]})
json.dump({"pods": pods, "allocatable": [{"resource": "nvidia.com/gpu", "ids": allocatable}]},
          open(os.path.join(work, "pod-resources.json"), "w"))
PY
"$build/gpa-fake-pod-resources" --socket="$work/kubelet.sock" --pods="$work/pod-resources.json" \
  >"$work/kubelet.log" 2>&1 &
pids+=($!)
wait_for 10 test -S "$work/kubelet.sock"

probe=$(free_port)
metrics=$(free_port)
GPA_FAKE_NVML_SCENARIO="$work/scenario.json" "$build/gpu-autoscaler-node-agent" \
  --node-name bench-gpu-node --kubeconfig "$work/kubeconfig" \
  --nvml-library "$PWD/$build/libgpa-fake-nvml.so" --poll-interval 1s --report-interval 10s \
  --health-probe-bind-address "127.0.0.1:$probe" --metrics-bind-address "127.0.0.1:$metrics" --metrics-secure=false \
  --pod-resources-socket "$([[ $socket_flag == yes ]] && echo "$work/kubelet.sock")" \
  --proc-root "$work/proc" \
  --sysfs-root "$work/sys" --cgroup-root "$work/cgroup" --cgroup-driver systemd \
  --cgroup-version v2 --reserved-cpus 0-1 --reclaim-reserve-cpu 2 --reclaim-reserve-memory 4Gi \
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
  body=$(curl -fsS "127.0.0.1:$metrics/metrics")
  series=$(grep -c '^DCGM_FI_DEV\|^gpu_autoscaler_node_gpu\|^gpu_autoscaler_node_pod_gpu' <<<"$body")
  labelled=$(grep -c '^gpu_autoscaler_node_gpu_process_sm_utilization{.*pod="p-' <<<"$body" || true)
  scrapes=$((scrapes + 1))
  sleep $((window - i < 15 ? window - i : 15))
done
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$agent/stat")
t1=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$agent/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$agent/status")
polls=$(curl -fsS "127.0.0.1:$metrics/metrics" |
  awk '/^gpu_autoscaler_node_nvml_poll_duration_seconds_(count|sum)/ {print $2}' | paste -sd' ')
python3 - "$u0" "$s0" "$u1" "$s1" "$t0" "$t1" "$ticks" "$rss" "$hwm" "$scrapes" "$series" \
  "$labelled" $polls <<'PY'
import sys
u0, s0, u1, s1, t0, t1, ticks, rss, hwm, scrapes, series, labelled, pcount, psum = sys.argv[1:15]
secs = float(t1) - float(t0)
cpu = (int(u1) + int(s1) - int(u0) - int(s0)) / int(ticks) / secs * 100
print("node agent: 8 GPUs (2 in MIG, 10 MIG devices), 40 processes, 110 pods of every QoS "
      "level in PodResources with their pools in cgroups, "
      f"NVML polled every 1 s, {scrapes} scrapes of {series} GPU and pod series "
      f"({labelled}/40 processes with pod labels)")
print(f"  CPU:          {cpu:.2f}% of one core over {secs:.0f} s "
      f"({cpu * 10:.1f}m; HAMi device plugin 150-600m: {150 / max(cpu * 10, 0.01):.0f}x-"
      f"{600 / max(cpu * 10, 0.01):.0f}x less)")
print(f"  RSS:          {int(rss) / 1024:.1f} MiB now, {int(hwm) / 1024:.1f} MiB peak "
      f"(HAMi 256-1024 MiB: {256 / (int(hwm) / 1024):.0f}x-{1024 / (int(hwm) / 1024):.0f}x less)")
print(f"  NVML poll:    {float(psum) / max(float(pcount), 1) * 1000:.2f} ms mean over {float(pcount):.0f} polls")
PY
