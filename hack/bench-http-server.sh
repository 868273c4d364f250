#!/usr/bin/env bash
# Serves the same endpoint with our Boost.Beast server and with cpprestsdk's
# http_listener, one after the other in the same run, and drives each with wrk on
# 127.0.0.1. Prints requests/s and latency for both and their ratio.
#
# Usage: hack/bench-http-server.sh [DURATION_SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-5}
conns=${2:-16}
bin=build/default/bench/http_server_compare
[[ -x $bin ]] || { echo "build first: make build"; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: hack/install-deps.sh"; exit 1; }

declare -A rps
for server in beast cpprest; do
  port=$((20000 + RANDOM % 20000))
  "$bin" "$server" "$port" >/tmp/http-compare-$$.log 2>&1 &
  pid=$!
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  out=$(wrk -t2 -c"$conns" -d"${duration}s" --latency "http://127.0.0.1:$port/healthz")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rps[$server]=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  printf '%-8s %12s req/s   p50 %-8s p99 %s\n' "$server" "${rps[$server]}" "$p50" "$p99"
done
rm -f /tmp/http-compare-$$.log
awk -v a="${rps[beast]}" -v b="${rps[cpprest]}" 'BEGIN {printf "beast/cpprest throughput ratio: %.2f\n", a / b}'
