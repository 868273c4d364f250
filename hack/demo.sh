#!/usr/bin/env bash
# make demo: gpu-autoscaler working on a simulated GPU cluster, on 127.0.0.1.
#   1. the embedded kube-apiserver-compatible server, with the CRDs;
#   2. the admission webhook, registered through its own manifests (Service,
#      Endpoints to 127.0.0.1, caBundle patched by the webhook), so pods
#      created through the API are rewritten or denied as in a cluster;
#   3. the manager with every controller: GPUSharingPolicy status, cost
#      metering per second into SQLite, Budgets with alerts;
#   4. the scheduler (standalone mode), which places every team pod with the
#      placement engine and writes the chosen GPUs on it;
#   5. a local alert receiver standing in for Slack and a webhook endpoint;
#   6. GPU nodes (fake, as in KWOK, their kubelets played by `gpu-autoscaler
#      fleet`: heartbeat Leases, pods Running), the node agent on one of them (on the
#      fake NVML library the tests use), and team pods: costs accrue by team, a
#      Budget crosses 50/80/100%, alerts arrive, and a new GPU pod is denied;
#   7. `gpu-autoscaler status`, `cost` and the placement simulator; then part of
#      the openb trace replayed live on a fleet of fake Nodes (`gpu-autoscaler
#      replay`): arrivals, departures and a progress view;
#   8. a simulated GPU node pool: scale-up, one spot interruption (the node
#      agent against the AWS fake's metadata service), consolidation; and one
#      GPU defragmentation move; and a preemption: an online pod evicts a batch pod.
#   9. a ServiceProfile learning a Deployment's usage (cAdvisor's series from
#      the simulated fleet, through Prometheus; a stand-in for Prometheus when
#      it is not installed) and its recommendation applied to a new pod;
#  10. with Prometheus installed (/usr/bin/prometheus), a real one scrapes every
#      program's metrics under the chart's job names, and some of the Grafana
#      dashboards' panel queries are run on it (step 16b);
#  11. the final report (`gpu-autoscaler report`): an HTML page with charts
#      (--report, default demo-report.html) and its text version.
# Everything binds to 127.0.0.1 and is stopped on exit.
#
# Usage: hack/demo.sh [--build-dir DIR] [--seeds A-B] [--report FILE] [--keep-running]
#   --report FILE    where the final HTML report goes (default demo-report.html in the
#                    current directory)
#   --keep-running   leave the processes up and print a kubeconfig to try the CLI
#                    (and the Prometheus URL)
set -euo pipefail
invoked_from=$PWD  # --report is relative to where the demo was started
cd "$(dirname "$0")/.."

build=build/default
seeds=42-43
keep=0
report=demo-report.html
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build="$2"; shift ;;
    --seeds) seeds="$2"; shift ;;
    --keep-running) keep=1 ;;
    --report) report="$2"; shift ;;
    -h|--help) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

[[ $report == /* ]] || report="$invoked_from/$report"

source hack/lib.sh

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# A real Prometheus, when installed (not a system service): its own config and
# data under $work, on a free loopback port, scraping every program's metrics
# each second under the job names the chart's ServiceMonitors and PodMonitor
# give (release "gpa"), so the dashboards' queries work as in a cluster. The
# programs' metrics ports are chosen here; node agents join through a file
# (prom_add_agent). Sets $prometheus ("" when not installed).
webhook_port=$(free_port) webhook_metrics=$(free_port) metrics_port=$(free_port) scheduler_metrics=$(free_port) agent_metrics=$(free_port)
fleet_metrics=$(free_port)
prometheus=""
start_prometheus() {
  [[ -x /usr/bin/prometheus ]] || return 0
  local port; port=$(free_port)
  cat >"$work/prometheus.yml" <<PROM
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
  - {job_name: gpa-gpu-autoscaler-manager-metrics, static_configs: [{targets: ['127.0.0.1:$metrics_port']}]}
  - {job_name: gpa-gpu-autoscaler-scheduler, static_configs: [{targets: ['127.0.0.1:$scheduler_metrics']}]}
  # cAdvisor's container series, here from the simulated fleet (step 6).
  - {job_name: kubelet-cadvisor, static_configs: [{targets: ['127.0.0.1:$fleet_metrics']}]}
  - {job_name: gpa-gpu-autoscaler-webhook, static_configs: [{targets: ['127.0.0.1:$webhook_metrics']}]}
  - {job_name: gpa-system/gpa-gpu-autoscaler-node-agent,
     file_sd_configs: [{files: ['$work/prometheus-agents.json'], refresh_interval: 1s}]}
PROM
  echo '[]' >"$work/prometheus-agents.json"
  /usr/bin/prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus-data" \
    --web.listen-address="127.0.0.1:$port" --log.level=warn >"$work/prometheus.log" 2>&1 &
  pids+=($!)
  wait_for 30 curl -fs "127.0.0.1:$port/-/ready"
  prometheus="http://127.0.0.1:$port"
}
prom_add_agent() {  # prom_add_agent PORT NODE: one more node agent target
  [[ -n $prometheus ]] || return 0
  python3 - "$work/prometheus-agents.json" "$1" "$2" <<'PY'
import json, sys
path, port, node = sys.argv[1:4]
groups = json.load(open(path)) + [{"targets": ["127.0.0.1:" + port], "labels": {"node": node}}]
json.dump(groups, open(path + ".tmp", "w")); __import__("os").replace(path + ".tmp", path)
PY
}
cli="$build/gpu-autoscaler"

step "1. The embedded API server"
start_apiserver "$build"
echo "API server: $server  (CRDs: $(ls crds/*.yaml | xargs -n1 basename | tr '\n' ' '))"
write_kubeconfig
start_prometheus
if [[ -n $prometheus ]]; then
  echo "Prometheus: $prometheus  (scraping the programs' metrics every second)"
else
  echo "Prometheus: not installed, step 16b is skipped (apt-get install prometheus, or hack/install-deps.sh)"
fi
apply() { hack/kube-apply.py --server "$server" "$@"; }
get() { curl -fsS "$server$1"; }

apply - <<'YAML' | sed 's/^/  /'
apiVersion: v1
kind: Namespace
metadata: {name: gpu-autoscaler-system}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-vision, labels: {team: vision, gpuautoscaler.io/gpu-sharing: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-nlp, labels: {team: nlp, gpuautoscaler.io/gpu-sharing: enabled}}
YAML

step "2. The admission webhook, registered through its own manifests"
apply config/webhook/webhook-configurations.yaml | sed 's/^/  /'
apply - <<YAML | sed 's/^/  /'
apiVersion: v1
kind: Endpoints
metadata: {name: gpu-autoscaler-webhook, namespace: gpu-autoscaler-system}
subsets:
  - addresses: [{ip: 127.0.0.1}]
    ports: [{name: https, port: $webhook_port}]
YAML
"$build/gpu-autoscaler-webhook" --bind-address 127.0.0.1 --port "$webhook_port" \
  --metrics-bind-address "127.0.0.1:$webhook_metrics" --metrics-secure=false \
  --kubeconfig "$work/kubeconfig" --self-signed >"$work/webhook.out" 2>"$work/webhook.log" &
pids+=($!)
wait_for 30 grep -q 'listening on' "$work/webhook.out"
wait_for 30 sh -c "curl -fsS '$server/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/gpu-autoscaler-webhook' | grep -q '\"caBundle\": *\"[A-Za-z0-9]'"
echo "webhook serving on https://127.0.0.1:$webhook_port; its CA is in the configurations' caBundle"

step "3. The manager: every controller, cost metering each second"
# Container usage for the ServiceProfile of step 16: the real Prometheus, which
# scrapes it from the simulated fleet (step 6); without one, a stand-in that
# answers the profile's queries with the same figures.
if [[ -n $prometheus ]]; then
  profiles_prometheus=$prometheus
else
  python3 hack/fake-prometheus.py --port-file "$work/prometheus.port" \
    --usage team-nlp/chat-a/server=0.3,629145600 --usage team-nlp/chat-b/server=0.25,600000000 &
  pids+=($!)
  wait_for 10 test -s "$work/prometheus.port"
  profiles_prometheus="http://127.0.0.1:$(cat "$work/prometheus.port")"
fi
cat >"$work/config.yaml" <<CONFIG
apiVersion: gpuautoscaler.io/v1alpha1
kind: ManagerConfig
budgets:
  evaluationPeriod: 2s
  clusterName: demo
sharingPolicies:
  resync: 5s
profiles:
  interval: 2s
  prometheusURL: $profiles_prometheus
CONFIG
probe_port=$(free_port)
"$build/gpu-autoscaler-manager" --kubeconfig "$work/kubeconfig" --controllers='*' \
  --leader-elect --leader-election-namespace gpu-autoscaler-system \
  --config "$work/config.yaml" --cost-db "$work/cost.db" \
  --metrics-bind-address "127.0.0.1:$metrics_port" --metrics-secure=false \
  --health-probe-bind-address "127.0.0.1:$probe_port" >"$work/manager.log" 2>&1 &
pids+=($!)
wait_for 30 curl -fs "127.0.0.1:$probe_port/readyz"
grep -m1 'starting manager' "$work/manager.log" | sed 's/^/  /'

step "4. The scheduler: places pods with schedulerName gpu-autoscaler"
scheduler_probe=$(free_port)
"$build/gpu-autoscaler-scheduler" --kubeconfig "$work/kubeconfig" --mode=standalone \
  --metrics-bind-address "127.0.0.1:$scheduler_metrics" --metrics-secure=false \
  --health-probe-bind-address "127.0.0.1:$scheduler_probe" >"$work/scheduler.log" 2>&1 &
pids+=($!)
wait_for 30 curl -fs "127.0.0.1:$scheduler_probe/readyz"
grep -m1 'starting scheduler' "$work/scheduler.log" | sed 's/^/  /'

step "5. A local alert receiver (standing in for Slack and a webhook endpoint)"
python3 hack/alert-receiver.py --port-file "$work/receiver.port" --log "$work/alerts.jsonl" &
pids+=($!)
wait_for 10 test -s "$work/receiver.port"
receiver="http://127.0.0.1:$(cat "$work/receiver.port")"
echo "receiver: $receiver"

step "6. A simulated GPU fleet, a sharing policy, Budgets and team workloads"
# The fleet plays the kubelet of every node annotated kwok.x-k8s.io/node=fake,
# as KWOK does: a heartbeat Lease each, Ready heartbeats, bound pods Running,
# cAdvisor's container metrics for Prometheus. The trace replay (13b) and the
# node pool (14) play their own nodes' kubelets, so their nodes are left out.
"$cli" fleet --kubeconfig "$work/kubeconfig" --metrics-bind-address "127.0.0.1:$fleet_metrics" \
  --node-selector '!gpuautoscaler.io/node-pool,!gpuautoscaler.io/replay' >"$work/fleet.log" 2>&1 &
pids+=($!)
wait_for 30 curl -fs "127.0.0.1:$fleet_metrics/healthz"
echo "  gpu-autoscaler fleet: kubelets for fake nodes, cAdvisor metrics on 127.0.0.1:$fleet_metrics"
# Nodes as KWOK makes them: API objects only. Instance types and GPU models
# match the pricing catalogue (p4d.24xlarge: 8 x A100-SXM4-40GB).
# a100-spot-1 shares its GPUs four ways by time-slicing (the NVIDIA device
# plugin then advertises 32 nvidia.com/gpu.shared); the others are whole GPUs
# in two NVLink islands of four.
for spec in "a100-spot-1 p4d.24xlarge NVIDIA-A100-SXM4-40GB spot time-slicing" \
            "a100-od-1 p4d.24xlarge NVIDIA-A100-SXM4-40GB on-demand none" \
            "h100-od-1 p5.48xlarge NVIDIA-H100-80GB-HBM3 on-demand none"; do
  read -r name type model tier sharing <<<"$spec"
  cpu=$([[ $type == p5* ]] && echo 192 || echo 96)
  if [[ $sharing == time-slicing ]]; then
    gpus='nvidia.com/gpu.shared: "32"'
    extra=', nvidia.com/gpu.sharing-strategy: time-slicing, nvidia.com/gpu.replicas: "4"'
  else
    gpus='nvidia.com/gpu: "8"'
    extra=''
    # No node agent runs on a100-od-1: its NVLink islands are labelled by hand.
    [[ $name == a100-od-1 ]] && extra=', gpuautoscaler.io/nvlink-islands: 0-3_4-7'
  fi
  apply - <<YAML | sed 's/^/  /'
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {node.kubernetes.io/instance-type: $type, nvidia.com/gpu.product: $model, karpenter.sh/capacity-type: $tier$extra}
status:
  capacity: {cpu: "$cpu", memory: 1152Gi, $gpus}
  allocatable: {cpu: "$cpu", memory: 1152Gi, $gpus}
  conditions: [{type: Ready, status: "True"}]
YAML
done
# Two pods of a chat Deployment for the ServiceProfile of step 16, on
# a100-od-1: the fleet reports the usage their annotation gives and Prometheus
# scrapes it. They start now because the profile's query, a rate over 5m,
# under-reads a series younger than five minutes.
chat_pod() {  # chat_pod NAME [USAGE]: a pod of the chat Deployment asking for 2 CPUs and 4Gi
  cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: team-nlp, labels: {app: chat, team: nlp},
  annotations: {gpuautoscaler.io/fleet-usage: "${2:-}"}}
spec:
  nodeName: a100-od-1
  containers:
    - name: server
      image: registry.example/chat:1
      resources: {requests: {cpu: "2", memory: 4Gi}, limits: {cpu: "4", memory: 8Gi}}
YAML
}
{ chat_pod chat-a server:cpu=0.3,memory=600Mi; echo ---; chat_pod chat-b server:cpu=0.25,memory=600000000; } |
  apply - | sed 's/^/  /'
# The node agent on h100-od-1, reading NVML: here the fake NVML library the
# tests use, playing 8 H100s in two NVSwitch planes. It writes the node's
# NodeResourceReport and its NVLink-islands label, which the scheduler reads.
# Each GPU's utilisation and memory replay, one sample per poll, real inference
# pods of the Alibaba GenTD26 traces (excerpts in tests/data/genai).
python3 - "$work/nvml.json" tests/data/genai/pod_gpu_duty_cycle_excerpt.csv \
  tests/data/genai/recommend_slice/gpu_memory.csv <<'PY'
import csv, json, sys
out, util_csv, mem_csv = sys.argv[1:4]
def series(path, scale):
    by_pod = {}
    for row in csv.DictReader(open(path)):
        by_pod.setdefault(row["container_ip"], []).append(round(float(row["value"]) * scale))
    return list(by_pod.values())
util, mem = series(util_csv, 1), series(mem_csv, 1 / 2**20)
gpus = []
for i in range(8):
    u, m = util[i % len(util)], mem[i % len(mem)]
    shift = (i // len(util)) * len(u) // 2  # GPUs on the same pod's series are out of phase
    gpus.append({"name": "NVIDIA H100 80GB HBM3", "memoryMiB": 81559,
                 "utilSeries": u[shift:] + u[:shift], "usedMiBSeries": [min(v, 81559) for v in m],
                 "nvswitches": ["00000000:%s:00.0" % ("A1" if i < 4 else "B1")]})
json.dump({"gpus": gpus}, open(out, "w"))
PY
agent_probe=$(free_port)
GPA_FAKE_NVML_SCENARIO="$work/nvml.json" "$build/gpu-autoscaler-node-agent" --node-name h100-od-1 \
  --kubeconfig "$work/kubeconfig" --nvml-library "$build/libgpa-fake-nvml.so" --report-interval 1s \
  --metrics-bind-address "127.0.0.1:$agent_metrics" --metrics-secure=false \
  --health-probe-bind-address "127.0.0.1:$agent_probe" >"$work/agent.log" 2>&1 &
pids+=($!)
prom_add_agent "$agent_metrics" h100-od-1
wait_for 30 curl -fs "127.0.0.1:$agent_probe/readyz"
wait_for 30 sh -c "curl -fsS '$server/api/v1/nodes/h100-od-1' | grep -q 'nvlink-islands'"
get /apis/gpuautoscaler.io/v1alpha1/noderesourcereports/h100-od-1 | python3 -c '
import json, sys
r = json.load(sys.stdin); st = r.get("status", {}); sp = r.get("spec", st)
gpus = sp.get("gpus", st.get("gpus", []))
conds = ", ".join("%s=%s" % (c["type"], c["status"]) for c in st.get("conditions", []))
print("  node agent on h100-od-1: NodeResourceReport with %d GPUs (%s), %s" % (
    len(gpus), gpus[0].get("model", "?") if gpus else "-", conds))'
echo "  label gpuautoscaler.io/nvlink-islands=$(get /api/v1/nodes/h100-od-1 | python3 -c '
import json, sys; print(json.load(sys.stdin)["metadata"]["labels"].get("gpuautoscaler.io/nvlink-islands", "-"))')"
apply docs/examples/gpusharingpolicy-timeslicing.yaml | sed 's/^/  /'
b64() { printf '%s' "$1" | base64 -w0; }
apply - <<YAML | sed 's/^/  /'
apiVersion: v1
kind: Secret
metadata: {name: budget-alerts, namespace: team-vision}
data:
  slack-url: $(b64 "$receiver/slack")
  webhook-url: $(b64 "$receiver/hook")
  hmac-key: $(b64 demo-signing-key)
---
apiVersion: gpuautoscaler.io/v1alpha1
kind: Budget
metadata: {name: vision-gpus, namespace: team-vision}
spec:
  scope: {namespaces: [team-vision]}
  amount: 0.30
  currency: USD
  period: monthly
  thresholds: [50, 80, 100]
  notifications:
    - {type: slack, secretRef: {name: budget-alerts, key: slack-url}}
    - {type: webhook, secretRef: {name: budget-alerts, key: webhook-url}}
  enforcement: blockNewGPUPods
---
apiVersion: gpuautoscaler.io/v1alpha1
kind: Budget
metadata: {name: nlp-gpus, namespace: team-nlp}
spec:
  scope: {namespaces: [team-nlp]}
  amount: 500
  period: monthly
  enforcement: alert
YAML

# Pods go through the API, so the webhook rewrites them on the way in; the
# scheduler binds them and the fleet runs them.
run_pod() {  # run_pod NAMESPACE NAME GPUS TEAM WORKLOAD
  apply - <<YAML >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: $2, namespace: $1, labels: {team: $4, workload: $5, project: demo}}
spec:
  schedulerName: gpu-autoscaler
  containers:
    - name: main
      image: registry.example/$5:1
      resources:
        requests: {cpu: "8", memory: 64Gi, nvidia.com/gpu: "$3"}
        limits: {nvidia.com/gpu: "$3"}
YAML
  wait_for 30 sh -c "curl -fsS '$server/api/v1/namespaces/$1/pods/$2' | grep -q '\"phase\": *\"Running\"'"
  get "/api/v1/namespaces/$1/pods/$2" | python3 -c '
import json, sys
p = json.load(sys.stdin); a = p["metadata"].get("annotations", {})
mode = a.get("gpuautoscaler.io/mode", "exclusive") + (" x" + a["gpuautoscaler.io/replicas"] if "gpuautoscaler.io/replicas" in a else "")
print("  pod %-24s admitted as %-15s bound to %-12s GPUs %-8s (%s)" % (
    p["metadata"]["namespace"] + "/" + p["metadata"]["name"], mode, p["spec"]["nodeName"],
    a.get("gpuautoscaler.io/gpu-indices", "-"), a.get("gpuautoscaler.io/placement", "")))'
}
run_pod team-vision train-resnet-0 4 vision training
run_pod team-vision train-resnet-1 4 vision training
run_pod team-nlp finetune-llama 2 nlp training
for i in 0 1 2 3; do run_pod team-nlp "notebook-$i" 1 nlp notebook; done

step "7. Costs accrue by team; the vision Budget crosses its thresholds"
printf '  %-8s %-14s %-10s %-26s\n' "elapsed" "vision spent" "percent" "conditions"
start=$SECONDS
while ((SECONDS - start < 120)); do
  sleep 3
  line=$(get /apis/gpuautoscaler.io/v1alpha1/namespaces/team-vision/budgets/vision-gpus | python3 -c '
import json, sys
s = json.load(sys.stdin).get("status", {})
conds = ",".join(c["type"] for c in s.get("conditions", []) if c["status"] == "True") or "-"
spent, percent = s.get("currentSpend", 0), s.get("percent", 0)
print("%.4f USD|%.0f%%|%s" % (spent, percent, conds))')
  IFS='|' read -r spent percent conds <<<"$line"
  printf '  %-8s %-14s %-10s %-26s\n' "$((SECONDS - start))s" "$spent" "$percent" "$conds"
  alerts=0
  [[ -f "$work/alerts.jsonl" ]] && alerts=$(wc -l <"$work/alerts.jsonl")
  [[ "$conds" == *Exceeded* && $alerts -ge 6 ]] && break
done
echo
echo "Cost by team so far (gpu-autoscaler cost --by team,tier --since 10m):"
"$cli" cost --by team,tier --since 10m --db "$work/cost.db" | sed 's/^/  /'
echo
echo "What spot saved on the bill, and what sharing only moved (gpu-autoscaler roi --since 10m):"
"$cli" roi --since 10m --db "$work/cost.db" | sed 's/^/  /'

step "8. Alerts the local receiver got (one per threshold per channel)"
python3 - "$work/alerts.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    body = json.loads(r["body"])
    text = body.get("summary") or body.get("text") or json.dumps(body)[:100]
    extra = f" Idempotency-Key: {r['idempotency_key']}" if r["idempotency_key"] else ""
    print(f"  POST {r['path']:<6} {text}{extra}")
PY

step "9. A new GPU pod in team-vision is denied at admission"
set +e
denied=$(hack/kube-apply.py --server "$server" - 2>&1 <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: train-resnet-2, namespace: team-vision, labels: {team: vision}}
spec:
  containers:
    - name: main
      image: registry.example/training:1
      resources: {limits: {nvidia.com/gpu: "2"}}
YAML
)
set -e
echo "  $denied"
echo "$denied" >"$work/denied.txt"  # for the final report
echo "  (a pod without GPUs, or one annotated gpuautoscaler.io/budget-exempt: \"true\", is still admitted)"

step "10. GPUSharingPolicy status, as the manager writes it"
get /apis/gpuautoscaler.io/v1alpha1/gpusharingpolicies | python3 -c '
import json, sys
for p in json.load(sys.stdin)["items"]:
    s = p.get("status", {})
    conds = ", ".join("%s=%s" % (c["type"], c["status"]) for c in s.get("conditions", []))
    print("  %s: matchedPods=%s  %s" % (p["metadata"]["name"], s.get("matchedPods", 0), conds))'

step "11. gpu-autoscaler status -o wide"
"$cli" status --kubeconfig "$work/kubeconfig" -o wide | sed 's/^/  /'

step "12. Manager metrics (controller-runtime names, cost by attribution)"
curl -fsS "127.0.0.1:$metrics_port/metrics" |
  grep -E '^(gpu_autoscaler_cost_per_hour|gpu_autoscaler_budget_notifications_total|controller_runtime_reconcile_total\{controller="budget")' |
  head -n 12 | sed 's/^/  /'

step "13. Placement simulator on the Alibaba openb trace (seeds $seeds)"
"$cli" simulate --nodes bench/data/openb/openb_node_list_gpu_node.csv \
  --pods bench/data/openb/openb_pod_list_default.csv \
  --policy Random,BestFit,FGD,FragLookahead --seeds "$seeds" --arrived-curve "$work/placement.csv"
# The same recipe with CPU-only tasks at 30% of the tasks (bench/openb_variants.py):
# the CPU-only pods ask more CPU than the cluster has, so every GPU pod placed
# takes CPU from them. FragLookahead places more GPU and still refuses fewer
# CPU-only pods than FGD (its tie-breaks for oversubscribed CPU); the pods it
# refuses are larger (the cores row).
python3 bench/openb_variants.py --data bench/data/openb --out "$work/openb-cpu300" --seed 7 \
  --variants cpu300 >/dev/null
echo
echo "  CPU-heavy mix (cpu300: CPU-only tasks at 30%, CPU oversubscribed):"
"$cli" simulate --nodes bench/data/openb/openb_node_list_gpu_node.csv \
  --pods "$work/openb-cpu300/openb_pod_list_cpu300.csv" --policy FGD,FragLookahead --seeds "$seeds" |
  grep -E '^(policy|GPU alloc|failed cpu-only)' | sed 's/^/  /'
# The same policy behind kube-scheduler (extender mode, modelled): sent only the
# GPU pods, kube-scheduler spreads the CPU-only ones and strands GPUs on a
# multi-GPU mix; sent every pod at weight 100, it places as standalone does.
echo
echo "  FragLookahead behind kube-scheduler as its extender (multigpu20, GPU allocated %):"
build/default/bench/placement_behind_kube_scheduler --traces multigpu20 --seeds "${seeds%%-*}" \
  --weights 100 --percentages 0 | sed 's/^/  /'

step "13b. The openb trace replayed live on a simulated fleet (gpu-autoscaler replay)"
# 21 openb nodes become fake Nodes (KWOK-style: Ready, a heartbeat Lease each);
# four trace hours of pods arrive and depart at 320x, placed by the scheduler
# above, marked Running, billed to three teams; the progress line redraws on a
# terminal. It runs before step 14's node pool exists, so that pending trace
# pods do not scale the pool.
"$cli" replay --kubeconfig "$work/kubeconfig" --nodes bench/data/openb/openb_node_list_gpu_node.csv \
  --pods bench/data/openb/openb_pod_list_default.csv --node-limit 21 --shared-fraction 0.25 \
  --start 12815361 --window 4h --speed 320 | sed 's/^/  /'
echo "  the scheduler's target workload, relearnt from the pods the cluster runs now:"
curl -fs "127.0.0.1:$scheduler_metrics/metrics" |
  grep -E '^gpu_autoscaler_scheduler_(target_workload_shapes|cache_pods)' | sed 's/^/    /'

step "14. The autoscaler: a simulated GPU node pool grows, survives a spot interruption, shrinks"
apply - <<'YAML' | sed 's/^/  /'
apiVersion: v1
kind: Namespace
metadata: {name: batch}
---
apiVersion: gpuautoscaler.io/v1alpha1
kind: GPUNodePool
metadata: {name: demo-a10}
spec:
  provider:
    type: simulated
    zone: sim-a
    provisioningDelay: 2s
    groups: {spot: a10-spot, onDemand: a10-ondemand}
  instanceTypes:
    # Priced as the cost meter prices it: the catalogue has no sim.a10x2, so
    # 2 x A10G at the model's fallback rate plus vCPUs and memory at the split
    # weights (2.79 USD/h), 60% off on spot (1.12).
    - {name: sim.a10x2, gpuModel: NVIDIA-A10G, gpuCount: 2, cpu: "16", memory: 64Gi,
       price: {spot: 1.12, onDemand: 2.79}}
  maxNodes: 4
  tiers: {spot: {weight: 1, maxNodes: 4}, onDemand: {weight: 1}}
  scaleDown: {policy: WhenEmpty, consolidateAfter: 5s}
YAML
render_pod() {  # render_pod I: a one-GPU pod for the pool
  apply - <<YAML | sed 's/^/  /'
apiVersion: v1
kind: Pod
metadata: {name: render-$1, namespace: batch}
spec:
  schedulerName: gpu-autoscaler
  nodeSelector: {gpuautoscaler.io/node-pool: demo-a10}
  containers:
    - name: main
      image: render:1
      resources: {limits: {nvidia.com/gpu: "1"}}
YAML
}
for i in 0 1 2; do render_pod $i; done
pool_status() {
  get /apis/gpuautoscaler.io/v1alpha1/gpunodepools/demo-a10 | python3 -c '
import json, sys
s = json.load(sys.stdin).get("status", {})
tiers = ", ".join("%s %s/%s" % (t, v.get("nodes", 0), v.get("desired", 0))
                  for t, v in sorted(s.get("tiers", {}).items()))
conds = ", ".join("%s=%s" % (c["type"], c["status"]) for c in s.get("conditions", []))
print("  nodes/desired: %s | %s" % (tiers, conds))
for a in s.get("recentActions", [])[:3]:
    print("  action: %s %s" % (a.get("action"), a.get("message", "")))'
}
bound() {
  get /api/v1/namespaces/batch/pods | python3 -c '
import json, sys
pods = json.load(sys.stdin)["items"]
print(sum(1 for p in pods if p["spec"].get("nodeName")))'
}
all_bound() { test "$(bound)" = 3; }
wait_for 60 all_bound
echo "  3 pods pending -> the pool scaled up and the scheduler bound them:"
pool_status

# One spot interruption. The AWS fake the tests use, as a program, serves the
# instance metadata; the node agent on render-0's node polls it, and AWS's
# two-minute notice arrives: the agent taints, cordons and drains the node.
# Simulated nodes have no kubelet: the demo finishes the evicted pods. The
# drained node, empty, is consolidated; then the demo, standing in for the pods'
# Job, creates them again: they come back pending and the pool replaces the
# capacity. (A controller that counted the cordoned node as room would wait
# for it instead, so the demo recreates the pods only once it is gone.)
spot_node=$(get /api/v1/namespaces/batch/pods/render-0 | python3 -c '
import json, sys; print(json.load(sys.stdin)["spec"]["nodeName"])')
"$build/gpa-fake-aws" --notice-file "$work/spot-notice.json" >"$work/fake-aws.log" 2>&1 &
pids+=($!)
wait_for 30 grep -q '^imds_endpoint=' "$work/fake-aws.log"
imds=$(sed -n 's/^imds_endpoint=//p' "$work/fake-aws.log")
spot_probe=$(free_port) spot_metrics=$(free_port)
echo '{"gpus": [{"name": "NVIDIA A10G", "memoryMiB": 23028}, {"name": "NVIDIA A10G", "memoryMiB": 23028}]}' \
  >"$work/nvml-a10.json"
GPA_FAKE_NVML_SCENARIO="$work/nvml-a10.json" "$build/gpu-autoscaler-node-agent" --node-name "$spot_node" \
  --kubeconfig "$work/kubeconfig" --nvml-library "$build/libgpa-fake-nvml.so" --report-interval 1s \
  --interruption-source aws --metadata-endpoint "$imds" --interruption-poll-interval 200ms \
  --metrics-bind-address "127.0.0.1:$spot_metrics" --metrics-secure=false \
  --health-probe-bind-address "127.0.0.1:$spot_probe" >"$work/spot-agent.log" 2>&1 &
pids+=($!)
prom_add_agent "$spot_metrics" "$spot_node"
wait_for 30 curl -fs "127.0.0.1:$spot_probe/readyz"
evicted_pods() {  # the pool's pods on $spot_node that are terminating, one name a line
  get /api/v1/namespaces/batch/pods | python3 -c '
import json, sys
for p in json.load(sys.stdin)["items"]:
    if p["spec"].get("nodeName") == sys.argv[1] and p["metadata"].get("deletionTimestamp"):
        print(p["metadata"]["name"])' "$spot_node"
}
on_spot_node() {
  get /api/v1/namespaces/batch/pods | python3 -c '
import json, sys
print(sum(1 for p in json.load(sys.stdin)["items"] if p["spec"].get("nodeName") == sys.argv[1]))' "$spot_node"
}
before=$(on_spot_node)
python3 -c 'import datetime, json
t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=2)
print(json.dumps({"action": "terminate", "time": t.strftime("%Y-%m-%dT%H:%M:%SZ")}))' \
  >"$work/spot-notice.json"
echo "  AWS posts a spot interruption notice for $spot_node (IMDS spot/instance-action)"
all_evicted() { test "$(evicted_pods | wc -l)" = "$before"; }
wait_for 60 all_evicted
get /api/v1/nodes/"$spot_node" | python3 -c '
import json, sys
n = json.load(sys.stdin)
print("  node %s: unschedulable=%s, taints=%s" % (n["metadata"]["name"], n["spec"].get("unschedulable", False),
      ", ".join("%s=%s:%s" % (t["key"], t.get("value", ""), t["effect"]) for t in n["spec"].get("taints", []))))'
drained_event() {
  get /api/v1/namespaces/default/events | python3 -c '
import json, sys
for e in json.load(sys.stdin)["items"]:
    if e.get("reason") == "InterruptionDrained": print("  event InterruptionDrained: " + e["message"])'
}
wait_for 30 sh -c "curl -fsS '$server/api/v1/namespaces/default/events' | grep -q InterruptionDrained"
drained_event
evicted=$(evicted_pods)
for pod in $evicted; do
  curl -fsS -X DELETE "$server/api/v1/namespaces/batch/pods/$pod?gracePeriodSeconds=0" >/dev/null
done
spot_node_gone() { ! curl -fsS "$server/api/v1/nodes/$spot_node" >/dev/null 2>&1; }
wait_for 60 spot_node_gone
echo "  the drained node $spot_node was terminated; the evicted pods are created again:"
for pod in $evicted; do render_pod "${pod#render-}"; done
wait_for 90 all_bound
echo "  they came back pending and were bound; the pool replaced the capacity:"
pool_status
# Pods that belong to a node do not keep it: a DaemonSet's pod and a static
# pod's mirror (owned by the Node) on one pool node, as a real node has.
keep_node=$(get /api/v1/namespaces/batch/pods/render-1 | python3 -c '
import json, sys; print(json.load(sys.stdin)["spec"]["nodeName"])')
node_pod() {  # node_pod NAME OWNER_KIND OWNER_NAME [mirror]
  apply - <<YAML | sed 's/^/  /'
apiVersion: v1
kind: Pod
metadata:
  name: $1
  namespace: batch
  ownerReferences: [{apiVersion: v1, kind: $2, name: $3, uid: uid-$1, controller: true}]
  annotations: {${4:+kubernetes.io/config.mirror: demo}}
spec:
  nodeName: $keep_node
  containers: [{name: main, image: agent:1, resources: {requests: {cpu: 100m}}}]
YAML
}
node_pod gpu-agent-demo DaemonSet gpu-agent
node_pod kube-proxy-demo Node "$keep_node" mirror
echo "  a DaemonSet pod and a static pod on $keep_node; the render pods finish:"
for i in 0 1 2; do
  curl -fsS -X DELETE "$server/api/v1/namespaces/batch/pods/render-$i?gracePeriodSeconds=0" >/dev/null
done
empty() {
  get /api/v1/nodes | python3 -c '
import json, sys
print(sum(1 for n in json.load(sys.stdin)["items"]
          if n["metadata"].get("labels", {}).get("gpuautoscaler.io/node-pool") == "demo-a10"))'
}
pool_empty() { test "$(empty)" = 0; }
wait_for 60 pool_empty
echo "  the pods finished -> empty nodes consolidated after consolidateAfter:"
pool_status

step "15. The rescheduler: one GPU defragmentation move (dry run, then live)"
# Two 2-GPU nodes each run one 1-GPU pod and a 2-GPU job waits: neither node
# has two free GPUs. The rescheduler moves one pod so that a node is whole.
for n in t4-1 t4-2; do
  apply - <<YAML >/dev/null
apiVersion: v1
kind: Node
metadata: {name: $n, labels: {nvidia.com/gpu.product: Tesla-T4}}
status:
  capacity: {cpu: "16", memory: 64Gi, pods: "110", nvidia.com/gpu: "2"}
  allocatable: {cpu: "16", memory: 64Gi, pods: "110", nvidia.com/gpu: "2"}
  conditions: [{type: Ready, status: "True"}]
YAML
done
defrag_pod() {  # defrag_pod NAME NODE GPU_INDEX GPUS
  apply - <<YAML >/dev/null
apiVersion: v1
kind: Pod
metadata:
  name: $1
  namespace: defrag
  annotations: {gpuautoscaler.io/gpu-indices: "$3"}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: infer, uid: 6b1d0a3e-0d7c-4c55-9a51-1f3c2e9d8b70, controller: true}]
spec:
  nodeName: $2
  containers: [{name: main, image: infer:1, resources: {limits: {nvidia.com/gpu: "$4"}, requests: {cpu: "2", memory: 8Gi, nvidia.com/gpu: "$4"}}}]
YAML
  curl -fsS -X PATCH -H 'Content-Type: application/merge-patch+json' \
    "$server/api/v1/namespaces/defrag/pods/$1/status" -d '{"status":{"phase":"Running"}}' >/dev/null
}
apply - <<'YAML' | sed 's/^/  /'
apiVersion: v1
kind: Namespace
metadata: {name: defrag}
---
apiVersion: v1
kind: Pod
metadata: {name: train-2gpu, namespace: defrag}
spec:
  schedulerName: waits-for-room
  containers: [{name: main, image: train:1, resources: {limits: {nvidia.com/gpu: "2"}}}]
YAML
defrag_pod infer-0 t4-1 0 1
defrag_pod infer-1 t4-2 1 1
apply - <<'YAML' | sed 's/^/  /'
apiVersion: gpuautoscaler.io/v1alpha1
kind: ReschedulePolicy
metadata: {name: defrag-demo}
spec:
  dryRun: true
  intervalSeconds: 3600
  namespaces: {include: [defrag]}
  defragmentation: {maxMovesPerRun: 1, minGainMilliGPU: 100}
YAML
policy_run() {
  get /apis/gpuautoscaler.io/v1alpha1/reschedulepolicies/defrag-demo | python3 -c '
import json, sys
s = json.load(sys.stdin).get("status", {})
r = s.get("lastRun", {})
if not r or r.get("dryRun") != (sys.argv[1] == "dry"): sys.exit(1)
print("  lastRun: dryRun=%s planned=%s executed=%s blocked=%s fragmentation %s%% of idle GPU" % (
    r.get("dryRun"), r.get("planned"), r.get("executed"), r.get("blocked"), r.get("fragmentationRatio")))
for m in s.get("plannedMoves", []):
    print("  %s %s/%s: %s" % (m["result"], m["namespace"], m["pod"], m["reason"]))' "$1"
}
wait_for 30 policy_run dry
policy_run dry
curl -fsS -X PATCH -H 'Content-Type: application/merge-patch+json' \
  "$server/apis/gpuautoscaler.io/v1alpha1/reschedulepolicies/defrag-demo" -d '{"spec":{"dryRun":false}}' >/dev/null
echo "  dryRun: false ->"
wait_for 30 policy_run live
policy_run live
get /api/v1/namespaces/defrag/events | python3 -c '
import json, sys
for e in json.load(sys.stdin)["items"]:
    if e["reason"] in ("ReschedulePlanned", "Rescheduled", "RescheduleBlocked"):
        print("  Event %-17s pod/%-8s %s" % (e["reason"], e["involvedObject"]["name"], e["message"]))'
step "15b. Preemption: an online pod evicts the least important batch pod"
# One 2-GPU L40S node runs two batch pods (PriorityClass batch, 100); an online
# pod (PriorityClass online, 100000) that needs an L40S arrives. The scheduler
# evicts one batch pod (DisruptionTarget, then a DELETE), nominates the node,
# keeps the freed GPU for the online pod, and binds it once the victim is gone.
l40s_node() {  # l40s_node NAME: a Ready node with two L40S GPUs
  apply - <<YAML >/dev/null
apiVersion: v1
kind: Node
metadata: {name: $1, labels: {nvidia.com/gpu.product: NVIDIA-L40S}}
status:
  capacity: {cpu: "32", memory: 256Gi, pods: "110", nvidia.com/gpu: "2"}
  allocatable: {cpu: "32", memory: 256Gi, pods: "110", nvidia.com/gpu: "2"}
  conditions: [{type: Ready, status: "True"}]
YAML
}
l40s_node l40s-1
apply - <<'YAML' >/dev/null
apiVersion: v1
kind: Namespace
metadata: {name: priority}
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: batch}
value: 100
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: online}
value: 100000
YAML
# batch_pod NAME NODE GPU DAY [CLASS [GROUP]]: a running pod of PriorityClass CLASS
# (batch), in pod group GROUP if given, started on day DAY of December
batch_pod() {
  local group=""
  [[ -n ${6:-} ]] && group=", gpuautoscaler.io/pod-group: $6"
  apply - <<YAML >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: priority, annotations: {gpuautoscaler.io/gpu-indices: "$3"$group}}
spec:
  nodeName: $2
  priorityClassName: ${5:-batch}
  containers: [{name: main, image: batch:1, resources: {limits: {nvidia.com/gpu: "1"}, requests: {cpu: "4", memory: 16Gi, nvidia.com/gpu: "1"}}}]
YAML
  curl -fsS -X PATCH -H 'Content-Type: application/merge-patch+json' \
    "$server/api/v1/namespaces/priority/pods/$1/status" \
    -d "{\"status\":{\"phase\":\"Running\",\"startTime\":\"2026-12-0${4}T00:00:00Z\"}}" >/dev/null
}
batch_pod batch-0 l40s-1 0 1
batch_pod batch-1 l40s-1 1 2
online_pod() {  # online_pod NAME: an online pod (PriorityClass online) that needs one L40S GPU
  apply - <<YAML | sed 's/^/  /'
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: priority}
spec:
  schedulerName: gpu-autoscaler
  priorityClassName: online
  nodeSelector: {nvidia.com/gpu.product: NVIDIA-L40S}
  containers: [{name: main, image: online:1, resources: {limits: {nvidia.com/gpu: "1"}, requests: {cpu: "4", memory: 16Gi, nvidia.com/gpu: "1"}}}]
YAML
}
online_pod online-0
pod_field() {  # pod_field NAME EXPR: prints EXPR of the pod (p), fails when it is empty
  get "/api/v1/namespaces/priority/pods/$1" |
    python3 -c 'import json, sys; p = json.load(sys.stdin); v = eval(sys.argv[1]); print(v); sys.exit(0 if v else 1)' "$2"
}
nominated() { [[ $(pod_field online-0 'p["status"].get("nominatedNodeName", "")') == l40s-1 ]]; }
wait_for 30 nominated
preemption_view() {
  get /api/v1/namespaces/priority/pods | python3 -c '
import json, sys
for p in json.load(sys.stdin)["items"]:
    m, st = p["metadata"], p.get("status", {})
    gpus = m.get("annotations", {}).get("gpuautoscaler.io/gpu-indices", "?")
    state = "terminating" if m.get("deletionTimestamp") else ("bound to %s, GPU %s" % (p["spec"]["nodeName"], gpus) if p["spec"].get("nodeName") else "pending")
    extra = ""
    for c in st.get("conditions", []):
        if c["type"] == "DisruptionTarget":
            extra = "  DisruptionTarget=%s (%s)" % (c["status"], c["reason"])
    if st.get("nominatedNodeName") and not p["spec"].get("nodeName"):
        extra = "  nominatedNodeName=" + st["nominatedNodeName"]
    print("  pod/%-9s priority %-6s %s%s" % (m["name"], p["spec"].get("priority"), state, extra))'
}
preemption_view
get /api/v1/namespaces/priority/events | python3 -c '
import json, sys
seen = set()
for e in json.load(sys.stdin)["items"]:
    key = (e["reason"], e["involvedObject"]["name"])
    if (e["reason"] == "Preempted" or "evicting" in e["message"]) and key not in seen:
        seen.add(key)
        print("  Event %-16s pod/%-9s %s" % (e["reason"], e["involvedObject"]["name"], e["message"]))'
# The kubelet stops the victim and confirms its deletion.
victim=$(get /api/v1/namespaces/priority/pods | python3 -c '
import json, sys
print(next(p["metadata"]["name"] for p in json.load(sys.stdin)["items"] if p["metadata"].get("deletionTimestamp")))')
curl -fsS -X DELETE "$server/api/v1/namespaces/priority/pods/$victim?gracePeriodSeconds=0" >/dev/null
online_bound() { [[ $(pod_field online-0 'p["spec"].get("nodeName", "")') == l40s-1 ]]; }
wait_for 30 online_bound
echo "  the kubelet stopped $victim ->"
preemption_view
step "15c. Behind kube-scheduler: the extender's preemptVerb chooses victims by GPU"
# kube-scheduler (1.20.10+, 1.21.4+, 1.22+) asks its extender which victims to
# evict. On a time-sliced node it counts replicas: for a pod that needs a whole
# GPU's share (2 of 2 replicas) it offers the two least important pods, one on
# each GPU, and no GPU is freed. The extender (a second scheduler process, in
# extender mode) answers with the two pods that share one GPU.
extender_port=$(free_port) extender_probe=$(free_port)
"$build/gpu-autoscaler-scheduler" --kubeconfig "$work/kubeconfig" --mode=extender \
  --bind-address 127.0.0.1 --port "$extender_port" --metrics-bind-address 0 \
  --health-probe-bind-address "127.0.0.1:$extender_probe" >"$work/extender.log" 2>&1 &
extender_pid=$!
pids+=($extender_pid)
apply - <<'YAML' >/dev/null
apiVersion: v1
kind: Node
metadata: {name: ts-1, labels: {nvidia.com/gpu.product: NVIDIA-L4, nvidia.com/gpu.sharing-strategy: time-slicing, nvidia.com/gpu.replicas: "2"}}
status:
  capacity: {cpu: "32", memory: 128Gi, pods: "110", nvidia.com/gpu.shared: "4"}
  allocatable: {cpu: "32", memory: 128Gi, pods: "110", nvidia.com/gpu.shared: "4"}
  conditions: [{type: Ready, status: "True"}]
YAML
# GPU 0: shared-a (started 1 Dec), shared-b (3 Dec); GPU 1: shared-c (2 Dec), shared-d (4 Dec).
for spec in "a 0 1" "b 0 3" "c 1 2" "d 1 4"; do
  read -r id gpu day <<<"$spec"
  apply - <<YAML >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: shared-$id, namespace: priority, annotations: {gpuautoscaler.io/gpu-indices: "$gpu"}}
spec:
  nodeName: ts-1
  priorityClassName: batch
  containers: [{name: main, image: batch:1, resources: {limits: {nvidia.com/gpu.shared: "1"}, requests: {cpu: "2", memory: 8Gi, nvidia.com/gpu.shared: "1"}}}]
YAML
  curl -fsS -X PATCH -H 'Content-Type: application/merge-patch+json' \
    "$server/api/v1/namespaces/priority/pods/shared-$id/status" \
    -d "{\"status\":{\"phase\":\"Running\",\"startTime\":\"2026-12-0${day}T00:00:00Z\"}}" >/dev/null
done
wait_for 30 curl -fs "127.0.0.1:$extender_probe/readyz"
# kube-scheduler's count-based choice: spare the most important (earliest
# started) while 2 replicas stay free in total: a, c spared; b, d evicted.
get /api/v1/namespaces/priority/pods | python3 -c '
import json, sys
pods = {p["metadata"]["name"]: p for p in json.load(sys.stdin)["items"]}
offered = [{"UID": pods[n]["metadata"]["uid"]} for n in ("shared-b", "shared-d")]
preemptor = {"metadata": {"name": "online-1", "namespace": "priority", "uid": "online-1"},
             "spec": {"priority": 100000, "containers": [{"name": "main", "resources": {
                 "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu.shared": "2"},
                 "limits": {"nvidia.com/gpu.shared": "2"}}}]}}
json.dump({"Pod": preemptor, "NodeNameToVictims": None,
           "NodeNameToMetaVictims": {"ts-1": {"Pods": offered, "NumPDBViolations": 0}}}, sys.stdout)' \
  >"$work/preempt-args.json"
curl -fsS -X POST -H 'Content-Type: application/json' --data-binary @"$work/preempt-args.json" \
  "127.0.0.1:$extender_port/preempt" >"$work/preempt-answer.json"
get /api/v1/namespaces/priority/pods | python3 -c '
import json, sys
pods = {p["metadata"]["uid"]: p for p in json.load(sys.stdin)["items"]}
def show(uids):
    return ", ".join("%s (GPU %s)" % (pods[u]["metadata"]["name"],
                     pods[u]["metadata"]["annotations"]["gpuautoscaler.io/gpu-indices"]) for u in uids)
asked = json.load(open(sys.argv[1]))["NodeNameToMetaVictims"]["ts-1"]["Pods"]
answer = json.load(open(sys.argv[2]))["NodeNameToMetaVictims"]
print("  POST /preempt for online-1 (priority 100000, nvidia.com/gpu.shared: 2) on ts-1")
print("  kube-scheduler offers:  " + show([p["UID"] for p in asked]) + "  -> no GPU freed")
for node, v in answer.items():
    print("  the extender answers:   %s on %s, NumPDBViolations %d -> GPU %s freed" % (
        show([p["UID"] for p in v["Pods"]]), node, v["NumPDBViolations"],
        pods[v["Pods"][0]["UID"]]["metadata"]["annotations"]["gpuautoscaler.io/gpu-indices"]))
if not answer:
    sys.exit("the extender named no victims")' "$work/preempt-args.json" "$work/preempt-answer.json"
# The step leaves nothing behind for the later steps.
kill "$extender_pid" 2>/dev/null || true
for id in a b c d; do
  curl -fsS -X DELETE "$server/api/v1/namespaces/priority/pods/shared-$id?gracePeriodSeconds=0" >/dev/null
done
curl -fsS -X DELETE "$server/api/v1/nodes/ts-1" >/dev/null

step "15d. A gang preempts as a whole: two batch pods go, both members bind together"
# A second L40S node runs two more batch pods. A training job of two pods
# (pod group "train", PriorityClass online) needs one L40S GPU each: no single
# member may evict alone, so the scheduler plans both, evicts for both, and
# binds them together once the victims are gone.
l40s_node l40s-2
batch_pod batch-2 l40s-2 0 3
batch_pod batch-3 l40s-2 1 4
for i in 0 1; do
  apply - <<YAML | sed 's/^/  /'
apiVersion: v1
kind: Pod
metadata:
  name: train-$i
  namespace: priority
  annotations: {gpuautoscaler.io/pod-group: train, gpuautoscaler.io/pod-group-min-member: "2"}
spec:
  schedulerName: gpu-autoscaler
  priorityClassName: online
  nodeSelector: {nvidia.com/gpu.product: NVIDIA-L40S}
  containers: [{name: main, image: train:1, resources: {limits: {nvidia.com/gpu: "1"}, requests: {cpu: "4", memory: 16Gi, nvidia.com/gpu: "1"}}}]
YAML
done
both_members() {  # both_members EXPR: EXPR of the pod (p) is set on train-0 and train-1
  pod_field train-0 "$1" >/dev/null 2>&1 && pod_field train-1 "$1" >/dev/null 2>&1
}
wait_for 30 both_members 'p["status"].get("nominatedNodeName", "")'
preemption_view
get /api/v1/namespaces/priority/events | python3 -c '
import json, sys
seen = set()
for e in json.load(sys.stdin)["items"]:
    if e["involvedObject"]["name"] == "train-0" and "for pod group" in e["message"] and "gang" not in seen:
        seen.add("gang")
        print("  Event %-16s pod/%-9s %s" % (e["reason"], "train-0", e["message"]))'
# The kubelet stops both victims and confirms their deletion.
for victim in $(get /api/v1/namespaces/priority/pods | python3 -c '
import json, sys
print(" ".join(p["metadata"]["name"] for p in json.load(sys.stdin)["items"] if p["metadata"].get("deletionTimestamp")))'); do
  curl -fsS -X DELETE "$server/api/v1/namespaces/priority/pods/$victim?gracePeriodSeconds=0" >/dev/null
  echo "  the kubelet stopped $victim"
done
wait_for 30 both_members 'p["spec"].get("nodeName", "")'
preemption_view

step "15e. A running gang goes whole: four workers on two nodes, none left idle"
# A preemptible job (PriorityClass preemptible, 10) runs four workers, one per
# GPU of l40s-3 and l40s-4, as pod group "etl". Another online pod needs one
# L40S GPU. The cheapest victims rank 10, so the job goes; evicting one worker
# would stop the job and leave the other three holding their GPUs, so all four
# go, on both nodes, and their Events say why.
apply - <<'YAML' >/dev/null
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: preemptible}
value: 10
YAML
l40s_node l40s-3
l40s_node l40s-4
for spec in "0 l40s-3 0" "1 l40s-3 1" "2 l40s-4 0" "3 l40s-4 1"; do
  read -r id node gpu <<<"$spec"
  batch_pod "etl-$id" "$node" "$gpu" 5 preemptible etl
done
online_pod online-2
etl_gone() {
  [[ $(get /api/v1/namespaces/priority/pods | python3 -c '
import json, sys
print(sum(1 for p in json.load(sys.stdin)["items"]
          if p["metadata"]["name"].startswith("etl-") and p["metadata"].get("deletionTimestamp")))') == 4 ]]
}
wait_for 30 etl_gone
preemption_view
get /api/v1/namespaces/priority/events | python3 -c '
import json, sys
for e in json.load(sys.stdin)["items"]:
    name = e["involvedObject"]["name"]
    if (e["reason"] == "Preempted" and name.startswith("etl-")) or (name == "online-2" and "evicting" in e["message"]):
        print("  Event %-16s pod/%-9s %s" % (e["reason"], name, e["message"]))' | sort -u -k3,3
for id in 0 1 2 3; do
  curl -fsS -X DELETE "$server/api/v1/namespaces/priority/pods/etl-$id?gracePeriodSeconds=0" >/dev/null
done
echo "  the kubelet stopped etl-0 .. etl-3"
online2_bound() { [[ -n $(pod_field online-2 'p["spec"].get("nodeName", "")' 2>/dev/null) ]]; }
wait_for 30 online2_bound
preemption_view

step "15f. Serving replicas kept apart: required anti-affinity, a zone spread, and preemption for them"
# Three serving nodes in two zones (serve-1: four L40S GPUs, serve-2 and
# serve-3: two). Four replicas of an inference service, each one GPU, with
# required pod anti-affinity on the host: the policy alone would pack them,
# the rule puts one on each node, and the fourth has nowhere to go, in
# kube-scheduler's words.
for spec in "serve-1 z1 4" "serve-2 z1 2" "serve-3 z2 2"; do
  read -r node zone gpus <<<"$spec"
  apply - <<YAML >/dev/null
apiVersion: v1
kind: Node
metadata: {name: $node, labels: {nvidia.com/gpu.product: NVIDIA-L40S, kubernetes.io/hostname: $node, topology.kubernetes.io/zone: $zone, demo/pool: serving}}
status:
  capacity: {cpu: "32", memory: 256Gi, pods: "110", nvidia.com/gpu: "$gpus"}
  allocatable: {cpu: "32", memory: 256Gi, pods: "110", nvidia.com/gpu: "$gpus"}
  conditions: [{type: Ready, status: "True"}]
YAML
done
for i in 0 1 2 3; do
  apply - <<YAML >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: infer-$i, namespace: priority, labels: {app: infer}}
spec:
  schedulerName: gpu-autoscaler
  priorityClassName: online
  nodeSelector: {demo/pool: serving}
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector: {matchLabels: {app: infer}}
        topologyKey: kubernetes.io/hostname
  containers: [{name: main, image: infer:1, resources: {limits: {nvidia.com/gpu: "1"}, requests: {cpu: "4", memory: 16Gi, nvidia.com/gpu: "1"}}}]
YAML
done
three_bound_one_told() {  # three_bound_one_told PREFIX: 3 such pods bound, 1 told why not
  [[ $(get /api/v1/namespaces/priority/pods | python3 -c '
import json, sys
pods = [p for p in json.load(sys.stdin)["items"] if p["metadata"]["name"].startswith(sys.argv[1])]
bound = sum(1 for p in pods if p["spec"].get("nodeName"))
told = sum(1 for p in pods if not p["spec"].get("nodeName") and any(
    c["type"] == "PodScheduled" and c["status"] == "False" for c in p.get("status", {}).get("conditions", [])))
print(bound, told)' "$1") == "3 1" ]]
}
placement_view() {  # placement_view PREFIX: where each such pod went, or why it did not
  get /api/v1/namespaces/priority/pods | python3 -c '
import json, sys
zone = {"serve-1": "z1", "serve-2": "z1", "serve-3": "z2"}
for p in json.load(sys.stdin)["items"]:
    m = p["metadata"]
    if not m["name"].startswith(sys.argv[1]):
        continue
    node = p["spec"].get("nodeName")
    if node:
        where = " (zone %s)" % zone[node] if sys.argv[1] == "spread-" else ""
        print("  pod/%-9s bound to %s%s" % (m["name"], node, where))
    else:
        for c in p.get("status", {}).get("conditions", []):
            if c["type"] == "PodScheduled":
                print("  pod/%-9s %s: %s" % (m["name"], c["reason"], c["message"]))' "$1"
}
wait_for 30 three_bound_one_told infer-
placement_view infer-
# Four workers spread over the two zones (maxSkew 1), on the GPUs the
# replicas left (three on serve-1 in z1, one on each other node): packing
# would put three on serve-1; the spread alternates the zones, and the
# fourth would make z1 two ahead of z2, which has no GPU left.
for i in 0 1 2 3; do
  apply - <<YAML >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: spread-$i, namespace: priority, labels: {app: spread}}
spec:
  schedulerName: gpu-autoscaler
  priorityClassName: online
  nodeSelector: {demo/pool: serving}
  topologySpreadConstraints:
  - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: spread}}}
  containers: [{name: main, image: train:1, resources: {limits: {nvidia.com/gpu: "1"}, requests: {cpu: "4", memory: 16Gi, nvidia.com/gpu: "1"}}}]
YAML
done
wait_for 30 three_bound_one_told spread-
placement_view spread-
# A batch pod on serve-1, where two GPUs are still free, with required
# anti-affinity that keeps canary pods off its host. An online canary then
# has no node: serve-1 is shut by that rule, the others are full. As in
# kube-scheduler, anti-affinity is something preemption can clear: the batch
# pod is evicted, and nothing else.
apply - <<'YAML' >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: guard, namespace: priority, labels: {app: guard}}
spec:
  schedulerName: gpu-autoscaler
  priorityClassName: batch
  nodeSelector: {kubernetes.io/hostname: serve-1}
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector: {matchLabels: {app: canary}}
        topologyKey: kubernetes.io/hostname
  containers: [{name: main, image: batch:1, resources: {limits: {nvidia.com/gpu: "1"}, requests: {cpu: "4", memory: 16Gi, nvidia.com/gpu: "1"}}}]
YAML
guard_bound() { pod_field guard 'p["spec"].get("nodeName", "")' >/dev/null; }
wait_for 30 guard_bound
echo "  pod/guard     priority 100    bound to $(pod_field guard 'p["spec"]["nodeName"]'), anti-affinity to app=canary on its host"
apply - <<'YAML' >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: canary, namespace: priority, labels: {app: canary}}
spec:
  schedulerName: gpu-autoscaler
  priorityClassName: online
  nodeSelector: {demo/pool: serving}
  containers: [{name: main, image: infer:2, resources: {limits: {nvidia.com/gpu: "1"}, requests: {cpu: "4", memory: 16Gi, nvidia.com/gpu: "1"}}}]
YAML
guard_terminating() { pod_field guard 'p["metadata"].get("deletionTimestamp", "")' >/dev/null; }
wait_for 30 guard_terminating
get /api/v1/namespaces/priority/events | python3 -c '
import json, sys
for e in json.load(sys.stdin)["items"]:
    name = e["involvedObject"]["name"]
    if (name == "canary" and "evicting" in e["message"]) or (name == "guard" and e["reason"] == "Preempted"):
        print("  Event %-16s pod/%-9s %s" % (e["reason"], name, e["message"]))' | sort -u -k3,3
curl -fsS -X DELETE "$server/api/v1/namespaces/priority/pods/guard?gracePeriodSeconds=0" >/dev/null
canary_bound() { pod_field canary 'p["spec"].get("nodeName", "")' >/dev/null; }
wait_for 30 canary_bound
echo "  the kubelet stopped guard"
echo "  pod/canary    priority 100000 bound to $(pod_field canary 'p["spec"]["nodeName"]')"

step "16. A ServiceProfile: usage -> recommendation -> applied to a new pod"
# chat-a and chat-b have run on a100-od-1 since step 6.
apply - <<'YAML' | sed 's/^/  /'
apiVersion: apps/v1
kind: Deployment
metadata: {name: chat, namespace: team-nlp}
spec:
  replicas: 2
  selector: {matchLabels: {app: chat}}
  template:
    metadata: {labels: {app: chat, team: nlp}}
    spec: {containers: [{name: server, image: registry.example/chat:1}]}
---
apiVersion: gpuautoscaler.io/v1alpha1
kind: ServiceProfile
metadata: {name: chat, namespace: team-nlp}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: chat}
  updateMode: Initial
YAML
profile_ready() {
  get /apis/gpuautoscaler.io/v1alpha1/namespaces/team-nlp/serviceprofiles/chat |
    grep -q '"recommendations"'
}
wait_for 60 profile_ready
get /apis/gpuautoscaler.io/v1alpha1/namespaces/team-nlp/serviceprofiles/chat | python3 -c '
import json, sys
s = json.load(sys.stdin)["status"]
c = [c for c in s["conditions"] if c["type"] == "RecommendationProvided"][0]
print("  RecommendationProvided=%s: %s" % (c["status"], c["message"]))
for r in s["recommendations"]:
    cpu, mem = r["cpu"], r["memory"]
    print("  container %s: cpu target %s (lower %s, upper %s), memory target %s (%.0f MiB)" % (
        r["containerName"], cpu["target"], cpu["lowerBound"],
        cpu.get("upperBound", "none yet: too little history"), mem["target"],
        int(mem["target"]) / 2**20))'
echo "  a new pod of the Deployment, created asking for cpu 2 / memory 4Gi (limits 4 / 8Gi):"
chat_pod chat-c | apply - >/dev/null
get /api/v1/namespaces/team-nlp/pods/chat-c | python3 -c '
import json, sys
p = json.load(sys.stdin)
r = p["spec"]["containers"][0]["resources"]
a = p["metadata"]["annotations"]
print("  admitted with requests %s, limits %s" % (json.dumps(r["requests"]), json.dumps(r["limits"])))
print("  gpuautoscaler.io/original-resources: %s" % a["gpuautoscaler.io/original-resources"])'

step "16b. The Grafana dashboards' panel queries, on the real Prometheus"
if [[ -n $prometheus ]]; then
  # Counters read as totals since the programs started; series at 0 are left out.
  hack/dashboard-queries.py --prometheus "$prometheus" --window 1m --totals --nonzero \
    "cost/Cost per hour by team" "cost/Budget used" "cluster/GPU allocation" \
    "webhook/Reviews by endpoint and verdict" "autoscaler/Scale actions" \
    "node-agent/NVML state" | sed 's/^/  /'
else
  echo "  skipped: Prometheus is not installed (apt-get install prometheus, or hack/install-deps.sh)"
fi

step "17. The report: what the autoscaler did and saved ($report)"
# One reading of the cluster and the cost history: the text here, the page in $report.
"$cli" report --kubeconfig "$work/kubeconfig" --db "$work/cost.db" --since 1h --cluster demo \
  --alerts "$work/alerts.jsonl" --placement "$work/placement.csv" --denied "$work/denied.txt" \
  --html-out "$report" | sed 's/^/  /'
echo "  HTML report with charts: $report"

if ((keep)); then
  cp "$work/kubeconfig" ./demo.kubeconfig
  step "Still running (Ctrl-C stops everything)"
  echo "  kubeconfig: $(pwd)/demo.kubeconfig   API server: $server"
  [[ -n $prometheus ]] && echo "  Prometheus: $prometheus  (the dashboards' queries: $prometheus/graph)"
  echo "  try: $cli status --kubeconfig demo.kubeconfig"
  echo "       $cli cost --by team --since 1h --db $work/cost.db"
  echo "       kubectl --kubeconfig demo.kubeconfig get gpusharingpolicies,budgets -A"
  wait
fi
step "Done"
