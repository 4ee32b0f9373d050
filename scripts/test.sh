#!/usr/bin/env bash
# Runs every test: installs what is needed, then
#   0. clang-format --dry-run --Werror over the C and C++ sources (all but
#      the kernel series),
#   1. a Release build with the whole GoogleTest suite, and the install,
#      Debian package, `xesvm run` and command-line tests (ctest label
#      install: tests/install/),
#   2. an ASan+UBSan build with the suite,
#   3. a TSan build with the concurrency tests (no fork: TSan does not
#      support fork in threaded processes),
#   4. the `xesvm stress` job at 2x oversubscription (0 data errors),
#   5. the kernel series in QEMU (kernel-patches/xe/test/run.sh).
# Set XESVM_SKIP_KERNEL=1 to leave out step 5 (cold, it builds one kernel
# fully and the patched one incrementally on top of it).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh || exit 1

passed=0 failed=0 skipped=0
steps_failed=()
# Wall time of each step, printed at the end (where CI's time goes).
step_times=()
step_start=0
step_done() {  # $1: step name
  step_times+=("$1 $((SECONDS - step_start))s")
  step_start=$SECONDS
}
step_done deps
count_ctest() {  # $1: log file; a test re-run after a timeout counts once, by its last result
  local p f s
  read -r p f s < <(awk '
    match($0, /Test +#[0-9]+: /) {
      id = substr($0, RSTART, RLENGTH)
      if ($0 ~ /\*\*\*Skipped/) r[id] = "s"
      else if ($0 ~ /\*\*\*(Failed|Timeout|Exception|Not Run)/) r[id] = "f"
      else if ($0 ~ / Passed +[0-9.]+ sec$/) r[id] = "p"
    }
    END { for (i in r) n[r[i]]++; print n["p"] + 0, n["f"] + 0, n["s"] + 0 }' "$1")
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}
# The suites run one test per core (CTEST_JOBS overrides): the tests own
# their files and mappings and were written to pass on a loaded machine.
# The TSan run is one at a time: its concurrency tests are the slowest and
# the most timing-sensitive, and TSan multiplies their cost.
run_ctest() {  # $1: config, $2: parallel jobs, rest: ctest args
  local config=$1 jobs=$2; shift 2
  local log="build/$config.ctest.log"
  echo "== ctest ($config, -j $jobs) $*"
  (cd "build/$config" && ctest --output-on-failure --timeout 600 -j "$jobs" "$@") 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  count_ctest "$log"
  [ "$rc" -eq 0 ] || steps_failed+=("ctest $config")
  step_done "ctest-$config"
}

echo "== clang-format"
unformatted=$(git ls-files '*.c' '*.h' '*.cpp' '*.hpp' | grep -v -e '^kernel-patches/' |
  while read -r f; do clang-format --dry-run --Werror "$f" > /dev/null 2>&1 || echo "$f"; done)
if [ -z "$unformatted" ]; then passed=$((passed + 1));
else echo "not clang-formatted (run clang-format -i):" $unformatted; failed=$((failed + 1)); steps_failed+=("clang-format"); fi
step_done clang-format

jobs=${CTEST_JOBS:-$(nproc)}
for config in release asan tsan; do
  echo "== build ($config)"
  if ! bash scripts/build.sh "$config"; then
    steps_failed+=("build $config"); failed=$((failed + 1)); step_done "build-$config"; continue
  fi
  step_done "build-$config"
  case "$config" in
    release) run_ctest release "$jobs" ;;
    asan)    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run_ctest asan "$jobs" ;;
    tsan)    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" run_ctest tsan 1 -L concurrency ;;
  esac
done

echo "== xesvm stress (sim, 2x oversubscription)"
if build/release/tools/xesvm stress --no-progress; then passed=$((passed + 1));
else failed=$((failed + 1)); steps_failed+=("xesvm stress"); fi
step_done stress

if [ "${XESVM_SKIP_KERNEL:-0}" != 1 ] && [ -f kernel-patches/xe/test/run.sh ]; then
  echo "== kernel series in QEMU"
  if bash kernel-patches/xe/test/run.sh; then passed=$((passed + 1));
  else failed=$((failed + 1)); steps_failed+=("kernel series"); fi
  step_done kernel
fi

echo
echo "step times: ${step_times[*]} (total ${SECONDS}s)"
if [ "${#steps_failed[@]}" -gt 0 ]; then echo "failed steps: ${steps_failed[*]}"; fi
echo "xesvm: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "${#steps_failed[@]}" -eq 0 ]
