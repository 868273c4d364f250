#!/usr/bin/env bash
# Runs the benchmarks that docs/benchmarks.md reports: every Google Benchmark
# program in the build's bench/ folder (*_bench), then, with --servers, the
# server benchmarks against their peers (hack/bench-*.sh: the webhook with
# h2load, the scheduler extender, the manager, the node agent, the HTTP
# server). Each program prints its own table; docs/benchmarks.md says what
# each figure means and the command that reproduced it there.
#
# Usage: hack/bench.sh [--build-dir DIR] [--filter REGEX] [--servers]
#   --filter REGEX   only the *_bench programs whose name matches
#   --servers        also run hack/bench-*.sh (minutes each; they start servers on 127.0.0.1)
set -euo pipefail
cd "$(dirname "$0")/.."

build=build/default
filter=.
servers=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build="$2"; shift ;;
    --filter) filter="$2"; shift ;;
    --servers) servers=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

mapfile -t programs < <(find "$build/bench" -maxdepth 1 -type f -name '*_bench' -perm -u+x |
  sort | grep -E "$filter" || true)
if [[ ${#programs[@]} -eq 0 ]]; then
  echo "bench: no *_bench program under $build/bench matches '$filter' (run make build first)" >&2
  exit 1
fi
n=0
for program in "${programs[@]}"; do
  n=$((n + 1))
  echo "== [$n/${#programs[@]}] $(basename "$program")"
  "$program" --benchmark_counters_tabular=true
done
if [[ $servers == 1 ]]; then
  for script in hack/bench-*.sh; do
    echo "== $script"
    case "$script" in
      *bench-http-server.sh) "$script" 5 16 "$build" ;;  # positional arguments
      *) "$script" --build-dir "$build" ;;
    esac
  done
fi
