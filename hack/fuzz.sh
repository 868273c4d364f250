#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/*_fuzz.cc) with clang and runs them.
#
# Usage: hack/fuzz.sh [--regression | --time SECONDS] [TARGET...]
#   --regression    replay each target's seed corpus once under libFuzzer
#   --time SECONDS  fuzz each target for SECONDS, growing a scratch corpus
#   TARGET          limit to these targets (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

mode=regression
seconds=60
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --regression) mode=regression ;;
    --time) mode=fuzz; seconds="$2"; shift ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) targets+=("$1") ;;
  esac
  shift
done

cmake --preset fuzz >/dev/null
if [[ ${#targets[@]} -eq 0 ]]; then
  for src in tests/fuzz/*_fuzz.cc; do targets+=("$(basename "$src" .cc)"); done
fi
cmake --build --preset fuzz -j "$(nproc)" --target "${targets[@]}"

passed=0
failed=0
for t in "${targets[@]}"; do
  corpus="tests/fuzz/corpus/$t"
  bin="build/fuzz/tests/fuzz/$t"
  if [[ "$mode" == regression ]]; then
    if "$bin" -runs=0 "$corpus" >"build/fuzz/$t.log" 2>&1; then
      echo "fuzz: $t: replayed $(ls "$corpus" | wc -l) seeds, ok"
      passed=$((passed + 1))
    else
      echo "fuzz: $t: FAILED (log: build/fuzz/$t.log)"; tail -20 "build/fuzz/$t.log"
      failed=$((failed + 1))
    fi
  else
    scratch="build/fuzz/corpus-$t"
    mkdir -p "$scratch"
    if "$bin" -max_total_time="$seconds" -print_final_stats=1 "$scratch" "$corpus"; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1))
    fi
  fi
done
echo "fuzz: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
