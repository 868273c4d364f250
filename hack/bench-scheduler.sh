#!/usr/bin/env bash
# Standalone binding throughput (docs/benchmarks.md, "Scheduler"; target: at
# least 1,000 pods/s against the embedded API server). Each round runs, one
# after the other on fresh gpu-autoscaler-apiservers filled by cluster_loader
# with the same nodes and pending pods (8 GPUs per node, 1 GPU per pod):
#   raw        the API server's own binding rate: one curl process POSTs every
#              pods/binding (the scheduler's body: target node and GPU-index
#              annotations) with --bind-workers connections, no decisions;
#   scheduler  gpu-autoscaler-scheduler --mode=standalone for the pods'
#              schedulerName; timed from /readyz (its informers have listed
#              every node and pod) until its bind counter
#              (gpu_autoscaler_scheduler_bind_total{result="bound"}: Bindings
#              the API server answered 201) reaches the pod count, polled
#              every 0.05 s on its /metrics, so that polling costs the API
#              server nothing; the time from process start is printed too.
# Then checks the placements (no node has more GPU pods than GPUs, every pod
# has distinct gpuautoscaler.io/gpu-indices on its node) and prints pods/s,
# CPU seconds of each process and the ratio scheduler / raw.
#
# Usage: hack/bench-scheduler.sh [--nodes N] [--pods N] [--bind-workers N] [--policy NAME]
#                                [--rounds N] [--build-dir DIR]
#   defaults: 1000 nodes, 5000 pods, 16 bind workers, FragLookahead, 1 round, build/default
#   (the pods must fit: nodes x 8 >= pods).
set -euo pipefail
cd "$(dirname "$0")/.."

build=build/default
nodes=1000
pods=5000
workers=16
policy=FragLookahead
rounds=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nodes) nodes="$2"; shift ;;
    --pods) pods="$2"; shift ;;
    --bind-workers) workers="$2"; shift ;;
    --policy) policy="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --build-dir) build="$2"; shift ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if (( nodes * 8 < pods )); then
  echo "$pods one-GPU pods do not fit on $nodes 8-GPU nodes" >&2
  exit 2
fi
for program in gpu-autoscaler-apiserver gpu-autoscaler-scheduler bench/cluster_loader; do
  [[ -x "$build/$program" ]] || { echo "missing $build/$program (build it first)" >&2; exit 2; }
done

source hack/lib.sh

namespaces=200  # cluster_loader's default: pod-P lives in ns-(P % 200)

now() { date +%s.%N; }
cpu_seconds() {  # cpu_seconds PID: user + system seconds so far
  awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"
}
bound_count() {  # bound_count METRICS_PORT: Bindings the scheduler got a 201 for
  curl -fsS "127.0.0.1:$1/metrics" |
    awk '/^gpu_autoscaler_scheduler_bind_total\{.*result="bound"/ {n += $2} END {print n + 0}'
}

# A fresh API server with the nodes and the pending pods for scheduler $1.
fresh_cluster() {
  if [[ -n "${apiserver:-}" ]]; then
    kill "$apiserver" 2>/dev/null || true
    wait "$apiserver" 2>/dev/null || true
  fi
  start_apiserver "$build"
  apiserver=${pids[-1]}
  "$build/bench/cluster_loader" --server "$server" --nodes "$nodes" --pods "$pods" --threads 4 \
    --namespaces "$namespaces" --scheduler-name "$1" 2>"$work/loader.err" ||
    { cat "$work/loader.err" >&2; exit 1; }
}

# Every pod bound, within capacity, with distinct GPU indices per node.
verify() {
  curl -fsS "$server/api/v1/pods" >"$work/pods.json"
  curl -fsS "$server/api/v1/nodes" >"$work/nodes.json"
  python3 - "$work/pods.json" "$work/nodes.json" "$pods" <<'PY'
import json, sys
pods = json.load(open(sys.argv[1]))["items"]
nodes = {n["metadata"]["name"]: int(n["status"]["allocatable"]["nvidia.com/gpu"])
         for n in json.load(open(sys.argv[2]))["items"]}
want = int(sys.argv[3])
errors, used = [], {}
for p in pods:
    name = p["metadata"]["namespace"] + "/" + p["metadata"]["name"]
    node = p["spec"].get("nodeName", "")
    gpus = int(p["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"])
    text = p["metadata"].get("annotations", {}).get("gpuautoscaler.io/gpu-indices")
    if not node:
        errors.append(f"{name}: not bound")
        continue
    if text is None:
        errors.append(f"{name}: no gpuautoscaler.io/gpu-indices")
        continue
    indices = [int(i) for i in text.split(",")]
    if len(indices) != gpus or any(i < 0 or i >= nodes[node] for i in indices):
        errors.append(f"{name}: gpu-indices {text} on {node}")
    used.setdefault(node, []).extend(indices)
for node, indices in used.items():
    if len(indices) > nodes[node]:
        errors.append(f"{node}: {len(indices)} GPU pods on {nodes[node]} GPUs")
    if len(set(indices)) != len(indices):
        errors.append(f"{node}: a GPU given twice ({sorted(indices)})")
if len(pods) != want:
    errors.append(f"{len(pods)} pods, want {want}")
full = sum(1 for n, i in used.items() if len(i) == nodes[n])
print(f"  verified: {len(pods)} pods bound on {len(used)} nodes ({full} full), "
      f"every pod with distinct gpu-indices, no node over its GPUs: "
      f"{'OK' if not errors else 'FAILED'}")
for e in errors[:10]:
    print("   ", e)
sys.exit(1 if errors else 0)
PY
}

# The raw rate: a curl config with one POST per pod, run $workers at a time.
raw_round() {
  fresh_cluster raw-binding
  python3 - "$server" "$nodes" "$pods" "$namespaces" >"$work/bindings.curl" <<'PY'
import json, sys
server, nodes, pods, namespaces = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for p in range(pods):
    if p:
        print("next")
    ns, name = f"ns-{p % namespaces}", f"pod-{p}"
    body = {"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": name, "namespace": ns,
                         "annotations": {"gpuautoscaler.io/gpu-indices": str(p // nodes),
                                         "gpuautoscaler.io/placement": "raw"}},
            "target": {"apiVersion": "v1", "kind": "Node", "name": f"node-{p % nodes}"}}
    print(f'url = "{server}/api/v1/namespaces/{ns}/pods/{name}/binding"')
    print(f"data = {json.dumps(json.dumps(body, separators=(',', ':')))}")
    print('header = "Content-Type: application/json"')
    print('output = "/dev/null"')
    print('write-out = "%{http_code}\\n"')
PY
  local c0 t0 t1 c1
  c0=$(cpu_seconds "$apiserver")
  t0=$(now)
  curl -sS --no-progress-meter --parallel --parallel-immediate --parallel-max "$workers" -K "$work/bindings.curl" \
    >"$work/codes"
  t1=$(now)
  c1=$(cpu_seconds "$apiserver")
  local created
  created=$(grep -c '^201$' "$work/codes" || true)
  raw_rate=$(python3 -c "print(f'{$created / ($t1 - $t0):.0f}')")
  printf '  raw pods/binding:  %d of %d bound (201) in %.2f s = %s pods/s, %d connections; apiserver CPU %.2f s\n' \
    "$created" "$pods" "$(python3 -c "print($t1 - $t0)")" "$raw_rate" "$workers" \
    "$(python3 -c "print($c1 - $c0)")"
  verify
}

scheduler_round() {
  fresh_cluster gpu-autoscaler
  write_kubeconfig
  local a0 t0 t_ready t_done a1 s1 health metrics scheduler deadline
  a0=$(cpu_seconds "$apiserver")
  t0=$(now)
  "$build/gpu-autoscaler-scheduler" --mode=standalone --kubeconfig="$work/kubeconfig" \
    --policy="$policy" --bind-workers="$workers" --kube-api-qps=100000 --kube-api-burst=100000 \
    --metrics-bind-address=127.0.0.1:0 --metrics-secure=false --health-probe-bind-address=127.0.0.1:0 \
    >"$work/scheduler.log" 2>&1 &
  scheduler=$!
  pids+=("$scheduler")
  wait_for 20 grep -q 'health_port' "$work/scheduler.log"
  health=$(grep -o 'health_port[^0-9]*[0-9]*' "$work/scheduler.log" | grep -o '[0-9]*$' | head -1)
  metrics=$(grep -o 'metrics_port[^0-9]*[0-9]*' "$work/scheduler.log" | grep -o '[0-9]*$' | head -1)
  until curl -fs "127.0.0.1:$health/readyz" >/dev/null 2>&1; do
    kill -0 "$scheduler" 2>/dev/null || { cat "$work/scheduler.log" >&2; exit 1; }
    sleep 0.02
  done
  t_ready=$(now)
  deadline=$((SECONDS + 600))
  while (( $(bound_count "$metrics") < pods )); do
    kill -0 "$scheduler" 2>/dev/null || { cat "$work/scheduler.log" >&2; exit 1; }
    ((SECONDS < deadline)) || { echo "not every pod was bound within 600 s" >&2; exit 1; }
    sleep 0.05
  done
  t_done=$(now)
  a1=$(cpu_seconds "$apiserver")
  s1=$(cpu_seconds "$scheduler")
  curl -fsS "127.0.0.1:$metrics/metrics" >"$work/metrics.txt" || true
  kill "$scheduler" 2>/dev/null || true
  wait "$scheduler" 2>/dev/null || true
  sched_rate=$(python3 -c "print(f'{$pods / ($t_done - $t_ready):.0f}')")
  python3 - "$pods" "$t0" "$t_ready" "$t_done" "$s1" "$(python3 -c "print($a1 - $a0)")" \
    "$work/metrics.txt" <<'PY'
import re, sys
pods, t0, ready, done, sched_cpu, api_cpu = int(sys.argv[1]), *map(float, sys.argv[2:7])
text = open(sys.argv[7]).read() if sys.argv[7] else ""
binds = {m.group(1): float(m.group(2)) for m in
         re.finditer(r'^gpu_autoscaler_scheduler_bind_total\{[^}]*result="([^"]+)"[^}]*\} (\S+)$', text, re.M)}
print(f"  scheduler:         {pods} pods bound in {done - ready:.2f} s after /readyz = "
      f"{pods / (done - ready):.0f} pods/s ({done - t0:.2f} s from process start = "
      f"{pods / (done - t0):.0f} pods/s; sync took {ready - t0:.2f} s)")
print(f"                     CPU from start: scheduler {sched_cpu:.2f} s, apiserver {api_cpu:.2f} s; "
      f"binds {binds or 'n/a'}")
PY
  verify
}

echo "bench-scheduler: $nodes nodes x 8 GPUs, $pods pending 1-GPU pods, $workers bind workers," \
  "policy $policy, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  echo "round $round"
  raw_round
  scheduler_round
  python3 -c "print(f'  ratio scheduler / raw binding rate: {$sched_rate / $raw_rate:.2f}')"
done
