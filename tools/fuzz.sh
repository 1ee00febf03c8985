#!/usr/bin/env bash
# Builds the libFuzzer targets with AddressSanitizer and runs each for FUZZ_SECONDS
# (docs/fuzzing.md). New inputs and crash reproducers go under $RUNS/fuzz/<target>,
# never into the committed corpus, which libFuzzer only reads. Exit status 1 when any
# target found a crash, a leak, a timeout or ran out of memory.
#
#   tools/fuzz.sh [target ...]     (default: all)
#
# Environment: FUZZ_SECONDS (60), RUNS (/work/lasr-runs), SWIFT, FUZZ_JOBS (build
# parallelism; SwiftPM's default when unset), FUZZ_SCRATCH (.build-fuzz), FUZZ_BUILD=0,
# FUZZ_RUNS (stop after this many inputs, with FUZZ_SEED, default 1: the same inputs on
# every machine, so that a check in CI fails for the code and not for the draw;
# FUZZ_SECONDS still bounds the time).
set -uo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
RUNS=${RUNS:-/work/lasr-runs}
SWIFT=${SWIFT:-swift}
SCRATCH=${FUZZ_SCRATCH:-.build-fuzz}
ALL_TARGETS="audio opus pcm-stream model manifest"
TARGETS=${*:-$ALL_TARGETS}
# Inputs larger than these add nothing the format's structure does not already give.
declare -A MAX_LEN=([audio]=8192 [opus]=8192 [pcm-stream]=4096 [model]=12288 [manifest]=2048)

# One -sanitize= flag with both: swiftc keeps only the last of several. lld: gold
# aborts on the ASan-instrumented objects (internal error in format_file_lineno).
build_flags=(-c release --scratch-path "$SCRATCH" ${FUZZ_JOBS:+-j "$FUZZ_JOBS"}
  -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address
  -Xswiftc -DLASR_FUZZ -Xswiftc -use-ld=lld)
start=$(date +%s)
for t in $TARGETS; do
  [ -n "${MAX_LEN[$t]:-}" ] || { echo "fuzz: unknown target '$t' (targets: $ALL_TARGETS)"; exit 2; }
  # FUZZ_BUILD=0 runs executables built before (long runs of a fixed build while the sources change).
  if [ "${FUZZ_BUILD:-1}" != 0 ]; then
    $SWIFT build "${build_flags[@]}" --product "fuzz-$t" 2>&1 | grep -v '^\[' | grep -v 'Cannot export local symbol' || true
  fi
  [ -x "$SCRATCH/release/fuzz-$t" ] || { echo "fuzz: building fuzz-$t failed"; exit 2; }
done
echo "fuzz: built in $(( $(date +%s) - start )) s"

export LSAN_OPTIONS="suppressions=$PWD/Tests/Fuzz/lsan.supp:print_suppressions=0"
# The Swift runtime's own backtracer reads memory ASan then reports as a wild access
# (CrashHandlerLinux memserver_read), hiding the real crash: libFuzzer reports instead.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_stack_use_after_return=1:strict_string_checks=1}"
failed=0
summary=()
for t in $TARGETS; do
  work="$RUNS/fuzz/$t"
  mkdir -p "$work/corpus" "$work/artifacts"
  log="$work/last.log"
  echo "fuzz: $t for $FUZZ_SECONDS s (new inputs: $work/corpus, log: $log)"
  # In process, one after another: one core. (-jobs=N would run it in a child writing
  # ./fuzz-0.log; -fork forks workers.)
  # The findings are seeds too: the fuzzer keeps probing around what once broke.
  seeds=("Tests/Fuzz/corpus/$t")
  [ -d "Tests/Fuzz/findings/$t" ] && seeds+=("Tests/Fuzz/findings/$t")
  bounded=()
  [ -n "${FUZZ_RUNS:-}" ] && bounded=(-runs="$FUZZ_RUNS" -seed="${FUZZ_SEED:-1}")
  # Swift seeds its Hasher per process: dictionaries would iterate, and cover, differently.
  [ -n "${FUZZ_RUNS:-}" ] && export SWIFT_DETERMINISTIC_HASHING=1
  "$SCRATCH/release/fuzz-$t" "$work/corpus" "${seeds[@]}" "${bounded[@]}" \
    -dict="Tests/Fuzz/dict/$t.dict" -max_len="${MAX_LEN[$t]}" -max_total_time="$FUZZ_SECONDS" \
    -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  result=ok
  if [ $rc -ne 0 ]; then
    failed=1
    result="FOUND (exit $rc): $(grep -m1 -E '^(==[0-9]+==ERROR|SUMMARY|.*Fatal error|.*deadly signal|ALARM|.*out-of-memory)' "$log" | cut -c1-120)"
    grep -E "Test unit written to" "$log" | sed 's/^/  /'
  fi
  summary+=("$(printf '%-11s %6s s  execs %-10s exec/s %-7s cov %-6s ft %-7s corpus %-6s %s' \
    "$t" "${FUZZ_RUNS:+≤}$FUZZ_SECONDS" "${execs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result")")
done
printf '%s\n' "${summary[@]}"
exit $failed
