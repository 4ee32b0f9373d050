#!/usr/bin/env bash
# The runtime on the software Xe device, in the patched kernel's QEMU guest
# (the `runtime-xe` suite of kernel-patches/xe/test/guest-suites). Prints TAP:
#   - every test of xe_tests' XeDevice suite (the xe backend against the
#     real device) and the recording-layer suites (encoding checks), one
#     TAP line per GoogleTest case;
#   - the uAPI agreement: runtime/backends/xe/xe_uapi_check.cpp compiled
#     against the booted kernel's installed xe_drm.h (XESVM_KERNEL_INCLUDE),
#     requiring every SVM name (XESVM_XE_UAPI_REQUIRE_SVM);
#   - `xesvm stress -b xe:` (all three patterns at 2x VRAM, see below), which
#     fails on any data error;
#   - the Level Zero driver on the device: level-zero's ze_driver_tests through
#     the system loader (ZE_ENABLE_ALT_DRIVERS, XESVM_BACKEND=xe:), one TAP
#     line per GoogleTest case (those that need kernels skip, saying why),
#     and samples/ze_oversubscribe (device copies and fills over twice the
#     device memory, every byte checked);
#   - last, the device removed under an open runtime (XeDeviceRemoval: sysfs
#     unbind while data is in VRAM, every operation kDeviceLost naming ENODEV,
#     the bytes intact; then bound again and used), and under an open Level
#     Zero context (ZE_RESULT_ERROR_DEVICE_LOST; bound again after it).
# Environment (COMMON3.md): XESVM_REPO, XESVM_BUILD, XESVM_KERNEL_INCLUDE.
# Run it with: bash kernel-patches/xe/test/guest.sh -s tests/xe/guest-suite.sh
# The harness may start it with sh: continue in bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -uo pipefail
repo="${XESVM_REPO:?XESVM_REPO is not set}"
build="${XESVM_BUILD:-$repo/build/release}"
kinc="${XESVM_KERNEL_INCLUDE:-}"
# CI size of the stress run: a working set of 2x the device's VRAM (MEM_REGIONS),
# one pass of each of the three patterns (grid-stride, block-stride, random)
# as device copies and fills of 2 MiB blocks, 5% of the blocks checked and
# rewritten by the CPU after the pass, every byte verified at the end.
# Override with XESVM_XE_STRESS_ARGS.
stress_args="${XESVM_XE_STRESS_ARGS:---oversubscription 2 --pattern all --passes 1 --cpu-fraction 0.05}"

# debugfs for the kernel counters of the stress report.
mountpoint -q /sys/kernel/debug 2>/dev/null || mount -t debugfs none /sys/kernel/debug 2>/dev/null

n=0
failed=0
t_suite=$EPOCHREALTIME
t_sec=$EPOCHREALTIME
# seconds since $1 (an $EPOCHREALTIME), one decimal, without a process
since() {
  local a=$1 b=$EPOCHREALTIME
  local us=$(( (${b%.*} - ${a%.*}) * 1000000 + 10#${b#*.} - 10#${a#*.} ))
  printf '%d.%d' $((us / 1000000)) $((us % 1000000 / 100000))
}
# Closes a section: its wall time as a context line.
section_done() { echo "# time: $1 took $(since "$t_sec") s"; t_sec=$EPOCHREALTIME; }
ok() { n=$((n + 1)); echo "ok $n $1${2:+ # SKIP $2}"; }
notok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n $1"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A GoogleTest program as TAP, one line per case, numbered on from $n:
#   gtest_tap NAME SECONDS BINARY [ARG...]   (the environment passes through)
gtest_tap() {
  local name=$1 secs=$2 bin=$3
  shift 3
  if [[ ! -x "$bin" ]]; then
    notok "$name built at $bin"
    return
  fi
  timeout -s KILL "$secs" "$bin" --gtest_color=no "$@" >"$tmp/$name.log" 2>&1
  local rc=$?
  sed 's/^/# /' "$tmp/$name.log" |
    grep -E '^# \[  (FAILED|SKIPPED) \]|^# .*: (Failure|Skipped)$|^# +(Which is|Expected|Value of)|^# xesvm-ze: |^# # ' |
    head -200
  # One awk for the TAP lines: a process per test is slow under TCG.
  awk -v name="$name" -v n0="$n" '
    /^\[ +(OK|FAILED|SKIPPED) +\] [^ ]+ \([0-9]+ ms\)$/ { t = $(NF - 1); sub(/^\(/, "", t); print "#ms " t " " $(NF - 2) }
    /: Skipped$/ { want = 1; next }
    want { reason = $0; want = 0; next }
    /^\[ RUN      \] / { reason = ""; next }
    /^\[       OK \] [^ ]+ \(/ { n++; print "ok " n0 + n " " name "." $4; next }
    /^\[  FAILED  \] [^ ]+ \(/ { n++; f++; print "not ok " n0 + n " " name "." $4; next }
    /^\[  SKIPPED \] [^ ]+ \(/ { n++; print "ok " n0 + n " " name "." $4 " # SKIP " (reason == "" ? "skipped" : reason); next }
    END { print "#count " n + 0 " " f + 0 }' "$tmp/$name.log" >"$tmp/$name.tap"
  grep -v '^#count \|^#ms ' "$tmp/$name.tap"
  echo "# $name: the slowest cases (ms):"
  grep '^#ms ' "$tmp/$name.tap" | sort -k2,2nr | head -8 | sed 's/^#ms /#   /'
  local counts
  counts=$(grep '^#count ' "$tmp/$name.tap")
  n=$((n + $(echo "$counts" | cut -d' ' -f2)))
  failed=$((failed + $(echo "$counts" | cut -d' ' -f3)))
  if [[ $rc -eq 137 ]]; then
    notok "$name finished within $secs s (killed: the cases after the last one listed did not run)"
  elif [[ $rc -ne 0 ]] && ! grep -q '^\[  FAILED  \]' "$tmp/$name.log"; then
    notok "$name exited with status $rc"
  fi
}

# A command as one TAP line, its output as context lines:
#   run_tap NAME SECONDS CMD [ARG...]   (ok when CMD exits 0 within SECONDS)
run_tap() {
  local name=$1 secs=$2
  shift 2
  timeout -s KILL "$secs" "$@" >"$tmp/run.log" 2>&1
  local rc=$?
  sed 's/^/# /' "$tmp/run.log"
  if [[ $rc -eq 0 ]]; then ok "$name"; else notok "$name (exit $rc)"; fi
}

# 2 starts first, in the background: compiling one file in the guest costs minutes
# (cc1plus is read page by page over 9p under TCG: 377 s on a loaded host), nearly all
# of it waiting for 9p while the device tests below keep the vCPUs busy.
uapi_pid=
if [[ -n "$kinc" && -f "$kinc/drm/xe_drm.h" ]]; then
  (
    t0=$EPOCHREALTIME
    c++ -std=c++20 -fsyntax-only -I"$repo" -I"$repo/include" -isystem "$kinc" \
      '-DXESVM_XE_SYSTEM_UAPI_HEADER=<drm/xe_drm.h>' -DXESVM_XE_UAPI_REQUIRE_SVM \
      "$repo/runtime/backends/xe/xe_uapi_check.cpp" >"$tmp/uapi.log" 2>&1
    rc=$?
    echo "$(since "$t0")" >"$tmp/uapi.secs"
    exit $rc
  ) &
  uapi_pid=$!
fi

# 1. GoogleTest, one TAP line per case. XeIntegration.ToolInfoAndStressOnARealXeDevice
# is left out here: it starts the xesvm tool twice for a small stress run (about a
# minute of program starts over 9p on a loaded host), and step 3 runs the same tool's
# stress on the device at full size.
# XeDeviceRemoval runs last (step 5): it takes the device away.
gtest_tap xe_tests 900 "$build/tests/xe/xe_tests" --gtest_filter=-XeIntegration.ToolInfoAndStressOnARealXeDevice:XeDeviceRemoval.*
section_done xe_tests

# 2. The uAPI agreement with the booted kernel's header (compiled in the background
# since the suite started).
if [[ -n "$uapi_pid" ]]; then
  wait "$uapi_pid"
  uapi_rc=$?
  echo "# the uAPI check compiled in $(cat "$tmp/uapi.secs" 2>/dev/null || echo '?') s (in the background)"
  if [[ $uapi_rc -eq 0 ]]; then
    ok "xe_uapi.hpp agrees with the booted kernel's drm/xe_drm.h"
  else
    sed 's/^/# /' "$tmp/uapi.log" | head -40
    notok "xe_uapi.hpp agrees with the booted kernel's drm/xe_drm.h"
  fi
else
  notok "xe_uapi.hpp agrees with the booted kernel's drm/xe_drm.h (XESVM_KERNEL_INCLUDE has no drm/xe_drm.h: '$kinc')"
fi
section_done "waiting for the uAPI check"

# 3. xesvm stress on the device.
tool="$build/tools/xesvm"
if [[ -x "$tool" ]]; then
  # shellcheck disable=SC2086
  run_tap "xesvm stress -b xe: $stress_args (every byte verified)" 480 "$tool" stress -b xe: $stress_args --no-progress
else
  notok "xesvm tool built at $tool"
fi
section_done "xesvm stress"

# 4. Level Zero on the device, through the system loader. The driver built
# without the SPIR-V compiler (no module runs on xe): loading libLLVM-15
# and its libraries over 9p under TCG alone takes about eight minutes.
driver="$build/level-zero/libze_xesvm_no_spirv.so"
[[ -f "$driver" ]] || driver="$build/level-zero/libze_xesvm.so"
echo "# Level Zero driver: $driver"
if [[ -f "$driver" ]]; then
  export ZE_ENABLE_ALT_DRIVERS="$driver"
  # Every test runs on the device; those that need kernels skip, saying
  # why. The SPIR-V tests (ZeSpirv*, when the build has them) are all
  # kernels, and this driver is the one built without the SPIR-V compiler:
  # they are listed as one skip. XESVM_XE_ZE_FILTER selects others.
  # The device removal test runs in step 5.
  ze_filter=${XESVM_XE_ZE_FILTER:--ZeSpirv*:Ze.XeDeviceRemovedUnderAnOpenContextIsDeviceLost}
  echo "# ze_driver_tests filter: $ze_filter"
  if [[ $ze_filter == -ZeSpirv* ]]; then
    ok "ze_driver_tests.ZeSpirv*" "SPIR-V kernels: the xe device runs no kernels (zeModuleCreate answers ZE_RESULT_ERROR_UNSUPPORTED_FEATURE, ZeXe.XeModulesAreUnsupportedWithABuildLog)"
  fi
  XESVM_BACKEND=xe: gtest_tap ze_driver_tests 600 "$build/level-zero/tests/ze_driver_tests" \
    "--gtest_filter=$ze_filter"
  section_done ze_driver_tests
  # samples/ze_oversubscribe: shared allocations of twice the device's
  # memory (from zeDeviceGetMemoryProperties), one pass of device fills and
  # copies in each of its two modes, every byte checked.
  sample="$build/samples/ze_oversubscribe"
  if [[ -x "$sample" ]]; then
    XESVM_BACKEND=xe: run_tap "samples/ze_oversubscribe 1 on xe: (device copies and fills over 2x device memory, every byte checked)" \
      600 "$sample" 1
    section_done samples/ze_oversubscribe
  else
    notok "samples/ze_oversubscribe built at $sample"
  fi
  unset ZE_ENABLE_ALT_DRIVERS
else
  notok "the Level Zero driver built at $driver"
fi

# 5. Last: the device removed under an open runtime and bound again
# (XeDeviceRemoval, tests/xe/removal_test.cpp). It needs the device to itself.
XESVM_XE_REMOVAL_TEST=1 gtest_tap xe_tests_removal 300 "$build/tests/xe/xe_tests" --gtest_filter='XeDeviceRemoval.*'
# The same through Level Zero (the test binds the device again at its end).
if [[ -f "$driver" ]]; then
  XESVM_XE_REMOVAL_TEST=1 ZE_ENABLE_ALT_DRIVERS="$driver" XESVM_BACKEND=xe: gtest_tap ze_driver_tests_removal 300 \
    "$build/level-zero/tests/ze_driver_tests" --gtest_filter='Ze.XeDeviceRemovedUnderAnOpenContextIsDeviceLost'
fi
section_done "device removal"

echo "# runtime-xe: $n tests, $failed failed, in $(since "$t_suite") s"
echo "1..$n"
[[ $failed -eq 0 ]]
