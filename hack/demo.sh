#!/usr/bin/env bash
# A short, real run of what gpu-autoscaler has today (make demo):
#   1. starts the embedded kube-apiserver-compatible server on 127.0.0.1;
#   2. starts the manager against it (leader election on, metrics and probes);
#   3. registers GPU nodes and pods through the API and shows the manager's
#      controller reacting (logs, Events, metrics, the leader Lease);
#   4. starts the admission webhook (self-signed CA, caBundle patched through
#      the API), declares a time-slicing GPUSharingPolicy, and sends it a GPU
#      pod's AdmissionReview over HTTPS: the JSONPatch it answers is shown;
#   5. runs the placement simulator on the Alibaba openb trace and prints the
#      policy comparison table.
# Everything binds to 127.0.0.1 and is stopped on exit.
#
# Usage: hack/demo.sh [--build-dir DIR] [--seeds A-B]
set -euo pipefail
cd "$(dirname "$0")/.."

build=build/default
seeds=42-43
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build="$2"; shift ;;
    --seeds) seeds="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

step "Starting the embedded API server"
"$build/gpu-autoscaler-apiserver" --bind-address 127.0.0.1 --port 0 --crd-dir crds \
  >"$work/apiserver.out" 2>"$work/apiserver.err" &
pids+=($!)
for _ in $(seq 100); do grep -q 'listening on' "$work/apiserver.out" 2>/dev/null && break; sleep 0.1; done
server=$(grep -o 'http[s]*://[0-9.:]*' "$work/apiserver.out" | head -1)
echo "API server: $server"
curl -fsS "$server/version"; echo

cat >"$work/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: demo
  cluster: {server: "$server"}
users:
- name: demo
  user: {token: demo}
contexts:
- name: demo
  context: {cluster: demo, user: demo, namespace: default}
current-context: demo
KUBECONFIG

api() {  # api METHOD PATH [BODY]
  curl -fsS -X "$1" -H 'Content-Type: application/json' "$server$2" ${3:+-d "$3"} >/dev/null
}
api POST /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"gpu-autoscaler-system"}}'

step "Starting the manager (leader election on)"
metrics_port=$(free_port)
probe_port=$(free_port)
"$build/gpu-autoscaler-manager" --kubeconfig "$work/kubeconfig" --leader-elect \
  --leader-election-namespace gpu-autoscaler-system \
  --metrics-bind-address "127.0.0.1:$metrics_port" \
  --health-probe-bind-address "127.0.0.1:$probe_port" >"$work/manager.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "127.0.0.1:$probe_port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
echo "readyz: $(curl -fsS "127.0.0.1:$probe_port/readyz")"

step "Registering GPU nodes"
for i in 1 2 3; do
  model=$([[ $i -le 2 ]] && echo NVIDIA-A100-SXM4-80GB || echo NVIDIA-H100-80GB-HBM3)
  api POST /api/v1/nodes "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"gpu-node-$i\",\"labels\":{\"nvidia.com/gpu.product\":\"$model\",\"node.kubernetes.io/instance-type\":\"p4d.24xlarge\",\"karpenter.sh/capacity-type\":\"spot\"}},\"status\":{\"capacity\":{\"cpu\":\"96\",\"memory\":\"1152Gi\",\"nvidia.com/gpu\":\"8\"},\"allocatable\":{\"cpu\":\"95\",\"memory\":\"1100Gi\",\"nvidia.com/gpu\":\"8\"},\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}"
  echo "node gpu-node-$i ($model, 8 GPUs)"
done
sleep 2

step "What the manager did"
grep -v '^\s*$' "$work/manager.log" | tail -n 15
echo
echo "Lease holder: $(curl -fsS "$server/apis/coordination.k8s.io/v1/namespaces/gpu-autoscaler-system/leases" | python3 -c 'import json,sys; print(", ".join(i["metadata"]["name"]+" -> "+i["spec"].get("holderIdentity","") for i in json.load(sys.stdin)["items"]))')"
echo
echo "Metrics (gpu_autoscaler_*, workqueue_*):"
curl -fsS "127.0.0.1:$metrics_port/metrics" | grep -E '^(gpu_autoscaler_|workqueue_(adds|depth))' | head -n 20

step "Admission webhook: rewriting a GPU pod onto time-sliced GPUs"
api POST /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations \
  '{"apiVersion":"admissionregistration.k8s.io/v1","kind":"MutatingWebhookConfiguration","metadata":{"name":"gpu-autoscaler-webhook"},"webhooks":[{"name":"mutate-pods.gpuautoscaler.io","admissionReviewVersions":["v1"],"sideEffects":"None","failurePolicy":"Ignore","clientConfig":{"service":{"name":"gpu-autoscaler-webhook","namespace":"gpu-autoscaler-system","path":"/mutate-pods"}},"rules":[{"operations":["CREATE"],"apiGroups":[""],"apiVersions":["v1"],"resources":["pods"]}]}]}' || true
api POST /apis/gpuautoscaler.io/v1alpha1/gpusharingpolicies "$(cat bench/webhook_timeslicing_policy.json)"
"$build/gpu-autoscaler-webhook" --bind-address 127.0.0.1 --port 0 --kubeconfig "$work/kubeconfig" \
  --self-signed --self-signed-ip 127.0.0.1 --write-ca-file "$work/ca.crt" \
  >"$work/webhook.out" 2>"$work/webhook.log" &
pids+=($!)
for _ in $(seq 150); do grep -q 'listening on' "$work/webhook.out" 2>/dev/null && break; sleep 0.2; done
webhook=$(grep -o 'listening on [0-9.:]*' "$work/webhook.out" | awk '{print $3}')
echo "webhook: https://$webhook (CA written to ca.crt, caBundle patched into the configuration)"
for _ in $(seq 50); do
  reply=$(curl -fsS --cacert "$work/ca.crt" -H 'Content-Type: application/json' \
    --data-binary @bench/webhook_review.json "https://$webhook/mutate-pods" || true)
  [[ "$reply" == *'"patch"'* ]] && break  # the policy reaches the webhook through its informer
  sleep 0.2
done
python3 -c 'import base64,json,sys; r=json.loads(sys.argv[1])["response"]; print("uid:", r["uid"], " allowed:", r["allowed"]); [print(" ", json.dumps(op)) for op in json.loads(base64.b64decode(r.get("patch","") or "W10="))]' "$reply"

step "Placement simulator on the Alibaba openb trace (seeds $seeds)"
"$build/gpu-autoscaler" simulate --nodes bench/data/openb/openb_node_list_gpu_node.csv \
  --pods bench/data/openb/openb_pod_list_default.csv \
  --policy Random,DotProduct,GpuClustering,GpuPacking,BestFit,FGD --seeds "$seeds"

step "Done"
