#!/bin/sh
# The `igt` suite of kernel-patches/xe/test/guest-suites: every subtest of
# every IGT device program of igt-tests/ (xe_svm, xe_svm_evict; the
# benchmarks are subtests of those), run on the xe device of the machine it
# runs on, one process per subtest with IGT's own command line
# (`PROGRAM --run-subtest NAME`) under a per-subtest timeout. Prints TAP:
#
#   1..N
#   # <why it failed or skipped: the assertion, the requirement, the errno>
#   not ok N xe_svm/NAME
#   ok N xe_svm/NAME # SKIP <reason>
#   # BENCH <the benchmark's igt_info line>
#   ok N xe_svm/NAME
#
# A subtest is `ok` when the program exits 0 and printed `Subtest NAME:
# SUCCESS`, skipped when it exits 77 (IGT's skip) with `SKIP`, and `not ok`
# on anything else: exit 98 (FAIL), another exit code or a signal (CRASH),
# the timeout (killed), a result line that contradicts the exit code, or a
# kernel splat (WARNING/BUG/KASAN/lockdep ...) logged while it ran.
# Exits 1 if any subtest was not ok, 0 otherwise.
#
# Environment (the harness sets the first; everything else has defaults):
#   XESVM_BUILD            build tree whose igt-tests/ holds the programs
#   IGT_SUBTEST_TIMEOUT    seconds per subtest (default 120; the eviction
#                          subtests and the benchmarks get 3x)
#   IGT_SUITE_BUDGET       seconds for the whole suite (default 1500, below
#                          the harness's 1800): subtests that would start
#                          after it are reported `not ok` without running
#   IGT_SUBTESTS           optional wildmat-free filter: an extended regex
#                          the `program/subtest` names must match
#
# Runs unchanged on a real Xe machine (as root, debugfs mounted):
#   XESVM_BUILD=build/release sh igt-tests/scripts/guest-suite.sh
# In the QEMU guest of the kernel series:
#   bash kernel-patches/xe/test/guest.sh -s igt-tests/scripts/guest-suite.sh
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi
set -u

build=${XESVM_BUILD:-}
dir=${build:+$build/igt-tests}
per=${IGT_SUBTEST_TIMEOUT:-120}
budget=${IGT_SUITE_BUDGET:-1500}
filter=${IGT_SUBTESTS:-}
programs="xe_svm xe_svm_evict"

if [ -z "$build" ]; then
	echo "1..0 # SKIP XESVM_BUILD is not set: no build tree to take the igt-tests programs from"
	exit 0
fi
found=
for p in $programs; do
	[ -x "$dir/$p" ] && found="$found $p"
done
if [ -z "$found" ]; then
	echo "1..0 # SKIP no igt-tests programs ($programs) in $dir: build with XESVM_BUILD_IGT_TESTS=ON (needs intel-gpu-tools)"
	exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/igt-suite.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

# The plan: program/subtest pairs from each program's --list-subtests
# (which needs no device).
: >"$work/plan"
for p in $found; do
	if ! "$dir/$p" --list-subtests >"$work/list" 2>"$work/list.err"; then
		echo "# $p --list-subtests failed:"
		sed 's/^/#   /' "$work/list.err"
		echo "1..1"
		echo "not ok 1 $p/--list-subtests"
		exit 1
	fi
	while read -r s; do
		[ -n "$s" ] || continue
		if [ -n "$filter" ] && ! printf '%s/%s\n' "$p" "$s" | grep -Eq -- "$filter"; then
			continue
		fi
		printf '%s %s\n' "$p" "$s" >>"$work/plan"
	done <"$work/list"
done
total=$(wc -l <"$work/plan")
echo "1..$total"
[ "$total" -gt 0 ] || exit 0

# Kernel messages that mean something went wrong in the kernel (as the
# harness's tap.py counts them).
splat='WARNING:|BUG:|kernel BUG|Oops:|general protection fault|possible circular locking|possible recursive locking|inconsistent lock state|INFO: lockdep|INFO: task .* blocked|soft lockup|hard LOCKUP|self-detected stall|rcu: INFO|Kernel panic|UBSAN|KASAN|list_add corruption|list_del corruption|Bad page state|Call Trace:'
have_dmesg=0
dmesg >/dev/null 2>&1 && have_dmesg=1

# Prints `# ` context lines for the reason of a skip (the requirement and
# its message) or a failure (IGT's CRITICAL lines, first block only).
reason_lines() { # log, kind
	case $2 in
	skip)
		awk '/^Test requirement not met/ { on = 1 }
		     /^Subtest .*: SKIP/ { on = 0 }
		     on && !/^Last errno:/ { print }' "$1"
		;;
	fail)
		awk '/^\*\*\*\* DEBUG \*\*\*\*/ { exit }
		     /CRITICAL: / { sub(/^\([^)]*\) CRITICAL: /, ""); print }' "$1"
		;;
	esac
}

n=0 failed=0 skipped=0 passed=0
t_suite=$(date +%s)
while read -r p s; do
	n=$((n + 1))
	name="$p/$s"
	tmo=$per
	case $s in
	evict-* | processes-evict-* | *-benchmark) tmo=$((per * 3)) ;;
	esac
	used=$(($(date +%s) - t_suite))
	if [ $((used + 10)) -gt "$budget" ]; then
		echo "# $name: not run: the suite's time budget of ${budget} s is used up (${used} s)"
		echo "not ok $n $name"
		failed=$((failed + 1))
		continue
	fi
	[ $((used + tmo)) -le "$budget" ] || tmo=$((budget - used))
	[ "$have_dmesg" = 1 ] && dmesg >"$work/dmesg.before" 2>/dev/null
	t0=$(date +%s.%N)
	timeout -s KILL "$tmo" "$dir/$p" --run-subtest "$s" >"$work/out" 2>&1 </dev/null
	rc=$?
	t1=$(date +%s.%N)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	result=$(sed -n "s/^Subtest $(printf '%s' "$s" | sed 's/[.[\*^$/]/\\&/g'): \([A-Z]*\).*/\1/p" "$work/out" | tail -n1)
	kmsg=
	if [ "$have_dmesg" = 1 ] && dmesg >"$work/dmesg.after" 2>/dev/null; then
		# new lines only (the ring buffer only grows during a subtest unless
		# it wraps; then everything is searched)
		kmsg=$(diff "$work/dmesg.before" "$work/dmesg.after" | sed -n 's/^> //p' | grep -E -- "$splat" | head -n 20)
	fi
	grep -E '^(fault|prefetch|evict)-benchmark: ' "$work/out" | sed 's/^/# BENCH /'

	status=ok why=
	case $rc in
	0) [ "$result" = SUCCESS ] || { status="not ok"; why="exit 0 but the result line says '${result:-nothing}'"; } ;;
	77) if [ "$result" = SKIP ]; then status=skip; else status="not ok"; why="exit 77 but the result line says '${result:-nothing}'"; fi ;;
	98) status="not ok"; why="FAIL (exit 98)" ;;
	137) status="not ok"; why="TIMEOUT: killed after ${tmo} s" ;;
	*)
		status="not ok"
		if [ "$rc" -gt 128 ]; then
			why="CRASH: killed by signal $((rc - 128)) (result line: ${result:-none})"
		else
			why="CRASH: exit $rc (result line: ${result:-none})"
		fi
		;;
	esac
	if [ -n "$kmsg" ]; then
		status="not ok"
		why="${why:+$why; }kernel splat while it ran"
	fi

	case $status in
	ok)
		passed=$((passed + 1))
		echo "# $name: SUCCESS in ${secs} s"
		echo "ok $n $name"
		;;
	skip)
		skipped=$((skipped + 1))
		reason_lines "$work/out" skip | sed 's/^/# /'
		msg=$(reason_lines "$work/out" skip | sed -n '3,$p' | tr '\n' ' ' | sed 's/ *$//')
		[ -n "$msg" ] || msg=$(reason_lines "$work/out" skip | tail -n1)
		echo "ok $n $name # SKIP ${msg:-no reason printed} (${secs} s)"
		;;
	*)
		failed=$((failed + 1))
		echo "# $name: $why after ${secs} s"
		reason_lines "$work/out" fail | sed 's/^/#   /'
		if [ "$rc" != 98 ] || [ -z "$(reason_lines "$work/out" fail)" ]; then
			echo "#   last output:"
			tail -n 15 "$work/out" | sed 's/^/#   | /'
		fi
		if [ -n "$kmsg" ]; then
			echo "#   kernel:"
			printf '%s\n' "$kmsg" | sed 's/^/#   | /'
		fi
		echo "not ok $n $name"
		;;
	esac
done <"$work/plan"

echo "# igt: $passed passed, $failed failed, $skipped skipped in $(($(date +%s) - t_suite)) s"
[ "$failed" -eq 0 ]
