#!/usr/bin/env bash
# End-to-end admission webhook benchmark over TLS + HTTP/2 with h2load:
# gpu-autoscaler-webhook (time-slicing policy, real mutation) side by side
# with a Go peer (net/http, encoding/json), same AdmissionReview body
# (bench/webhook_review.json, recorded from kube-apiserver), same certificate,
# same run.
#
# For each server, one after the other:
#   1. maximum throughput: one connection, 16 concurrent streams (-c1 -m16);
#   2. latency at a fixed rate (default 2,000 reviews/s), one connection,
#      up to 16 concurrent streams, p50/p99 from h2load's per-request log,
#      with two arrival patterns:
#      - paced: an h2load timing script sends a small group of requests
#        every 2 ms (h2load's timers tick in whole milliseconds; the group
#        size is calibrated in a 2 s trial so the achieved rate is RATE);
#      - bursts: `--rps RATE`. h2load's rate timer fires at most every
#        10 ms, so 16 requests arrive at once and p99 is the time to answer
#        a whole burst of 16.
# Prints a table and the throughput ratio. Everything binds 127.0.0.1.
#
# Usage: hack/bench-webhook.sh [--peer DIR] [--build-dir DIR] [--duration SECONDS]
#                              [--rate N] [--threads N] [--rounds N]
#   --peer DIR        Go peer's source directory, required (or $GO_WEBHOOK_PEER);
#                     it is built with `go build` into a temp dir, never copied
#   --build-dir DIR   where gpu-autoscaler-webhook was built (default build/default)
#   --duration S      seconds per measurement (default 10)
#   --rate N          fixed request rate for the latency runs (default 2000)
#   --threads N       event-loop threads of our server (default 2)
#   --rounds N        repeat the whole comparison N times (default 1)
set -euo pipefail
cd "$(dirname "$0")/.."

peer=${GO_WEBHOOK_PEER:-}
build_dir=build/default
duration=10
rate=2000
threads=2
rounds=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --peer) peer=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

ours=$build_dir/gpu-autoscaler-webhook
[[ -x $ours ]] || { echo "missing $ours: build the gpu-autoscaler-webhook target" >&2; exit 1; }
[[ -n $peer && -f $peer/main.go ]] || { echo "no Go peer at '$peer' (use --peer DIR)" >&2; exit 1; }
for tool in h2load go openssl curl; do
  command -v "$tool" >/dev/null || { echo "$tool missing: hack/install-deps.sh" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/bench-webhook.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# Same certificate (ECDSA P-256, SAN 127.0.0.1) for both servers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -keyout "$tmp/tls.key" -out "$tmp/tls.crt" -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 2>/dev/null
# The AdmissionReview kube-apiserver sent for a 2-GPU pod (the "review" of
# tests/golden/admission/admission-review-2.json).
cp bench/webhook_review.json "$tmp/review.json"

echo "building the Go peer from $peer ($(go version | awk '{print $3}'))"
(cd "$peer" && GOCACHE=${GOCACHE:-$tmp/gocache} GOFLAGS=-mod=mod go build -o "$tmp/go-webhook" .)

"$ours" --bind-address 127.0.0.1 --port 0 --threads "$threads" --metrics-bind-address 0 \
  --tls-cert-file "$tmp/tls.crt" --tls-key-file "$tmp/tls.key" \
  --policy-file bench/webhook_timeslicing_policy.json >"$tmp/ours.out" 2>"$tmp/ours.err" &
pids+=($!)
go_port=$((20000 + RANDOM % 20000))
"$tmp/go-webhook" -addr "127.0.0.1:$go_port" -cert "$tmp/tls.crt" -key "$tmp/tls.key" \
  >"$tmp/go.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$tmp/ours.out" && break; sleep 0.1; done
our_port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/ours.out")
[[ -n $our_port ]] || { echo "our webhook did not start:"; cat "$tmp/ours.err"; exit 1; }
our_url=https://127.0.0.1:$our_port/mutate-pods
go_url=https://127.0.0.1:$go_port/mutate
for url in "$our_url" "$go_url"; do
  for _ in $(seq 100); do
    curl -fsk -o /dev/null -H 'Content-Type: application/json' --data-binary @"$tmp/review.json" \
      "$url" && break
    sleep 0.1
  done
  # Both must answer with a JSONPatch, or the comparison is meaningless.
  curl -fsk -H 'Content-Type: application/json' --data-binary @"$tmp/review.json" "$url" |
    grep -q '"patchType":"JSONPatch"' || { echo "$url does not return a JSONPatch" >&2; exit 1; }
done

# summarize H2LOAD_OUTPUT LOG -> sets rps, p50, p99 (ms), ok
summarize() {
  rps=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' <<<"$1")
  ok=$(awk '/^status codes:/ {print $3}' <<<"$1")
  read -r p50 p99 < <(awk -F'\t' '{print $3}' "$2" | sort -n |
    awk '{v[NR]=$1} END {if (NR == 0) {print "nan nan"; exit}
                          i50=int(NR*0.50); if (i50 < 1) i50=1
                          i99=int(NR*0.99); if (i99 < 1) i99=1
                          printf "%.3f %.3f\n", v[i50]/1000, v[i99]/1000}')
}

# run NAME URL H2LOAD_ARGS... : a timed h2load run
run() {
  local name=$1 url=$2; shift 2
  local log=$tmp/$name.log
  rm -f "$log"  # h2load appends to an existing log
  summarize "$(h2load -D "$duration" --warm-up-time=1 "$@" -d "$tmp/review.json" \
    -H 'content-type: application/json' --log-file="$log" "$url" 2>&1)" "$log"
}

# run_paced NAME URL GROUP COUNT : COUNT requests, GROUP of them every 2 ms
run_paced() {
  local name=$1 url=$2 group=$3 count=$4
  local log=$tmp/$name.log script=$tmp/$name.script
  rm -f "$log"
  awk -v u="$url" -v g="$group" -v n="$count" \
    'BEGIN {for (i = 0; i < n; i++) printf "%.3f\t%s\n", int(i / g) * 2.0, u}' >"$script"
  summarize "$(h2load -c1 -m16 --timing-script-file="$script" -d "$tmp/review.json" \
    -H 'content-type: application/json' --log-file="$log" 2>&1)" "$log"
}

# Group size for the paced runs: start from RATE/500 per 2 ms and correct it
# by the rate a 2 s trial achieves (timer overshoot makes ticks longer).
group=$(( (rate + 499) / 500 ))
run_paced calibrate "$our_url" "$group" $((rate * 2))
group=$(awk -v g="$group" -v want="$rate" -v got="$rps" \
  'BEGIN {n = int(g * want / got + 0.5); print (n < 1 ? 1 : n)}')

printf '\nh2load, 1 connection, 16 concurrent streams, %ss per run, paced groups of %s per 2 ms,\nreview %s bytes, our threads %s, %s\n' "$duration" "$group" \
  "$(wc -c <"$tmp/review.json")" "$threads" "$(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
printf '%-6s %-26s %12s %10s %10s %9s\n' round run "req/s" "p50 ms" "p99 ms" "2xx"
for round in $(seq "$rounds"); do
  declare -A max
  for server in ours go; do
    url=$our_url; [[ $server == go ]] && url=$go_url
    run "$server-max" "$url" -c1 -m16
    max[$server]=$rps
    printf '%-6s %-26s %12s %10s %10s %9s\n' "$round" "$server max" "$rps" "$p50" "$p99" "$ok"
  done
  for server in ours go; do
    url=$our_url; [[ $server == go ]] && url=$go_url
    run_paced "$server-paced" "$url" "$group" $((rate * duration))
    printf '%-6s %-26s %12s %10s %10s %9s\n' "$round" "$server $rate/s paced" "$rps" "$p50" "$p99" "$ok"
    run "$server-bursts" "$url" -c1 -m16 --rps "$rate"
    printf '%-6s %-26s %12s %10s %10s %9s\n' "$round" "$server $rate/s bursts" "$rps" "$p50" "$p99" "$ok"
  done
  awk -v a="${max[ours]}" -v b="${max[go]}" \
    'BEGIN {printf "round %d: throughput ours/go = %.2fx\n", '"$round"', a / b}'
done
