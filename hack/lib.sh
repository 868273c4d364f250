# Shared by the demo and benchmark scripts: a work directory and background
# processes that are stopped on exit, polling with a deadline, free ports.
#   source "$(dirname "$0")/lib.sh"
#   "$build/gpu-autoscaler-apiserver" ... & pids+=($!)
#   wait_for 10 grep -q 'listening on' "$work/apiserver.out"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() {  # wait_for SECONDS COMMAND...: polls every 0.2 s
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "timed out waiting for: $*" >&2; return 1; }
    sleep 0.2
  done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts the embedded API server with the CRDs; sets $server.
start_apiserver() {  # start_apiserver BUILD_DIR [EXTRA FLAGS...]
  local build=$1; shift
  "$build/gpu-autoscaler-apiserver" --bind-address 127.0.0.1 --port 0 --crd-dir crds "$@" \
    >"$work/apiserver.out" 2>"$work/apiserver.err" &
  pids+=($!)
  wait_for 10 grep -q 'listening on' "$work/apiserver.out"
  server=$(grep -o 'http[s]*://[0-9.:]*' "$work/apiserver.out" | head -1)
}

# A kubeconfig for $server at $work/kubeconfig.
write_kubeconfig() {
  cat >"$work/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$server"}}]
users: [{name: local, user: {token: local}}]
contexts: [{name: local, context: {cluster: local, user: local}}]
current-context: local
KUBECONFIG
}
