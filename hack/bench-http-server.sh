#!/usr/bin/env bash
# Serves the same endpoints with our Boost.Beast server (src/net) and with
# cpprestsdk's http_listener, one after the other in the same run, and drives
# each with wrk on 127.0.0.1:
#   GET  /healthz  -> "ok"                          (per-request overhead)
#   POST /echo     <- a recorded AdmissionReview    (admission-shaped: ~2.8 KB JSON
#                     in, the same bytes out)
# Prints requests/s and latency for both and their ratio.
#
# Usage: hack/bench-http-server.sh [DURATION_SECONDS] [CONNECTIONS] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-5}
conns=${2:-16}
build_dir=${3:-build/default}
bin=$build_dir/bench/http_server_compare
[[ -x $bin ]] || { echo "build first: cmake --build $build_dir --target http_server_compare"; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: hack/install-deps.sh"; exit 1; }

tmp=$(mktemp -d /tmp/http-compare.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/post.lua" <<EOF
local f = io.open("$PWD/bench/webhook_review.json", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
EOF

declare -A rps
printf '%-8s %-8s %12s   %-14s %s\n' server load "req/s" "p50" "p99"
for server in beast cpprest; do
  port=$((20000 + RANDOM % 20000))
  "$bin" "$server" "$port" >"$tmp/$server.log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  for load in get post; do
    if [[ $load == get ]]; then
      out=$(wrk -t2 -c"$conns" -d"${duration}s" --latency "http://127.0.0.1:$port/healthz")
    else
      out=$(wrk -t2 -c"$conns" -d"${duration}s" --latency -s "$tmp/post.lua" \
        "http://127.0.0.1:$port/echo")
    fi
    rps[$server-$load]=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    printf '%-8s %-8s %12s   p50 %-10s p99 %s\n' "$server" "$load" "${rps[$server-$load]}" "$p50" "$p99"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
for load in get post; do
  awk -v a="${rps[beast-$load]}" -v b="${rps[cpprest-$load]}" -v l="$load" \
    'BEGIN {printf "beast/cpprest throughput ratio (%s): %.2f\n", l, a / b}'
done
