#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/*_fuzz.cc) with clang and runs them.
#
# Usage: hack/fuzz.sh [--regression | --time SECONDS | --cpu-minutes M] [--jobs N] [TARGET...]
#   --regression     replay each target's seed corpus once under libFuzzer
#   --time SECONDS   fuzz each target for SECONDS of wall-clock time, growing a
#                    scratch corpus under build/fuzz
#   --cpu-minutes M  a campaign: fuzz each target until it has used M minutes of
#                    CPU (read from /proc, so a busy machine still gives each
#                    target its whole budget), resuming from and keeping its
#                    corpus in tests/fuzz/campaign/TARGET.tar.gz (minimised);
#                    crashes are copied into the seed corpus; one line per
#                    target and run is appended to tests/fuzz/campaign/campaign.tsv,
#                    so a campaign can be spread over several runs
#   --jobs N         campaign targets run N at a time (default 1); creating
#                    build/fuzz/campaign.stop ends the running ones early
#   --summary        print each target's campaign so far from campaign.tsv: CPU
#                    minutes and executions summed over its runs, the latest
#                    coverage and corpus size, crashes found (builds nothing)
#   TARGET           limit to these targets (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == --summary ]]; then
  awk -F'\t' 'NR > 1 {
      cpu[$2] += $3; execs[$2] += $4; runs[$2]++; cov[$2] = $5; ft[$2] = $6
      corpus[$2] = $8; crashes[$2] += $9
    }
    END {
      printf "%-32s %8s %5s %14s %6s %7s %7s %8s\n", "target", "cpu_min", "runs", "executions",
        "cov", "ft", "corpus", "crashes"
      for (t in cpu) printf "%-32s %8.1f %5d %14d %6d %7d %7d %8d\n", t, cpu[t] / 60, runs[t],
        execs[t], cov[t], ft[t], corpus[t], crashes[t] | "sort"
    }' tests/fuzz/campaign/campaign.tsv
  exit 0
fi

mode=regression
seconds=60
cpu_minutes=30
jobs=1
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --regression) mode=regression ;;
    --time) mode=fuzz; seconds="$2"; shift ;;
    --cpu-minutes) mode=campaign; cpu_minutes="$2"; shift ;;
    --jobs) jobs="$2"; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown flag $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done

cmake --preset fuzz >/dev/null
if [[ ${#targets[@]} -eq 0 ]]; then
  for src in tests/fuzz/*_fuzz.cc; do targets+=("$(basename "$src" .cc)"); done
fi
cmake --build --preset fuzz -j "${FUZZ_BUILD_JOBS:-$(nproc)}" --target "${targets[@]}"

# CPU seconds (user + system, all threads) process $1 has used so far.
cpu_seconds() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  stat=${stat##*) }  # the fields after "(comm)"
  read -r -a f <<<"$stat"
  echo $(( (f[11] + f[12]) / $(getconf CLK_TCK) ))
}

# One campaign for target $1: runs it until it has used the CPU budget, then
# minimises the grown corpus into tests/fuzz/campaign/$1.tar.gz.
campaign() {
  local t="$1" bin="build/fuzz/tests/fuzz/$1" budget=$((cpu_minutes * 60))
  local work="build/fuzz/campaign/$t" kept="tests/fuzz/campaign/$t.tar.gz"
  rm -rf "$work" && mkdir -p "$work/grown" "$work/minimised" "$work/artifacts" tests/fuzz/campaign
  [[ -f "$kept" ]] && tar -xzf "$kept" -C "$work/grown"
  local before
  before=$(find "$work/grown" -type f | wc -l)
  # UBSan findings (overflows, bad casts) stop the run as crashes do, with an input.
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$bin" -print_final_stats=1 -timeout=60 -rss_limit_mb=4096 \
    -artifact_prefix="$work/artifacts/" "$work/grown" "tests/fuzz/corpus/$t" \
    >"$work/fuzz.log" 2>&1 &
  local pid=$! used=0
  while kill -0 "$pid" 2>/dev/null; do
    used=$(cpu_seconds "$pid")
    # build/fuzz/campaign.stop ends every running campaign early (recorded as such).
    if (( used >= budget )) || [[ -e build/fuzz/campaign.stop ]]; then kill -INT "$pid"; break; fi
    sleep 5
  done
  local status=0
  wait "$pid" || status=$?
  # Every input that made a crash, a leak or a time-out becomes a seed, so
  # `make test` replays it from then on.
  local crashes=0
  for a in "$work"/artifacts/*; do
    [[ -f "$a" ]] || continue
    # A slow unit is timing, not a failure: at nice 19 beside a build one
    # input can wait 10 s for a CPU (and take 0.2 s alone). The log keeps it.
    [[ "$(basename "$a")" == slow-unit-* ]] && continue
    cp "$a" "tests/fuzz/corpus/$t/$(basename "$a")"
    crashes=$((crashes + 1))
  done
  "$bin" -merge=1 "$work/minimised" "$work/grown" >"$work/merge.log" 2>&1 || true
  tar -czf "$kept" -C "$work/minimised" .
  # The last status line: "#N <event> cov: C ft: F corp: K/..." and the final stats.
  local last execs cov ft
  last=$(grep -E '^#[0-9]+' "$work/fuzz.log" | tail -1 || true)
  execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$work/fuzz.log" | awk '{print $2}' ||
    true)
  [[ -n "$execs" ]] || execs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$last")
  cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | awk '{print $2}' || true)
  ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | awk '{print $2}' || true)
  local after
  after=$(find "$work/minimised" -type f | wc -l)
  printf '%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n' "$(date -u +%F)" "$t" "$used" "${execs:-0}" \
    "${cov:-0}" "${ft:-0}" "$before" "$after" "$crashes" "$status" >>tests/fuzz/campaign/campaign.tsv
  echo "fuzz: $t: $((used / 60)) CPU-min, ${execs:-0} runs, cov ${cov:-0}, ft ${ft:-0}," \
    "corpus $before -> $after, $crashes crash(es)"
  [[ $crashes -eq 0 ]]
}

passed=0
failed=0
if [[ "$mode" == campaign ]]; then
  mkdir -p tests/fuzz/campaign build/fuzz
  [[ -f tests/fuzz/campaign/campaign.tsv ]] ||
    printf 'date\ttarget\tcpu_s\texecs\tcov\tft\tcorpus_before\tcorpus_after\tcrashes\texit\n' \
      >tests/fuzz/campaign/campaign.tsv
  running=0
  rm -f build/fuzz/campaign.stop
  for t in "${targets[@]}"; do
    [[ -e build/fuzz/campaign.stop ]] && break
    campaign "$t" &
    running=$((running + 1))
    if (( running >= jobs )); then
      if wait -n; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
      running=$((running - 1))
    fi
  done
  while (( running > 0 )); do
    if wait -n; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    running=$((running - 1))
  done
else
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
fi
echo "fuzz: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
