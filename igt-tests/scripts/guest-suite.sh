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
#   IGT_SUBTESTS           an extended regex the `program/subtest` names
#                          must match (default: all)
#   IGT_STAGE              1 (default): copy the programs and the shared
#                          libraries they load into a temporary directory
#                          and run them from there with that loader; 0: run
#                          them in place
#
# Why staging: in the QEMU guest the root file system is the host's over
# virtio-9p without caching, and under TCG every page of a mapped library is
# a 9p read: starting a libigt program (45 libraries) took ~35 s there, so
# one process per subtest did not fit the suite's time. A tmpfs copy is
# read once. The programs and libraries are the same files either way.
#
# Everything in the per-subtest loop is a bash builtin (no date/sed/awk):
# in that guest every exec of a tool costs seconds.
#
# Runs unchanged on a real Xe machine (as root, debugfs mounted):
#   XESVM_BUILD=build/release sh igt-tests/scripts/guest-suite.sh
# In the QEMU guest of the kernel series:
#   bash kernel-patches/xe/test/guest.sh -s igt-tests/scripts/guest-suite.sh
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi
set -u
shopt -s extglob

build=${XESVM_BUILD:-}
dir=${build:+$build/igt-tests}
per=${IGT_SUBTEST_TIMEOUT:-120}
budget=${IGT_SUITE_BUDGET:-1500}
filter=${IGT_SUBTESTS:-}
stage=${IGT_STAGE:-1}
programs=(xe_svm xe_svm_evict)

now_s() { local t=$EPOCHREALTIME; echo "${t%.*}"; }
# seconds since $1 (an $EPOCHREALTIME), one decimal
since() {
	local a=$1 b=$EPOCHREALTIME
	local us=$(( (${b%.*} - ${a%.*}) * 1000000 + 10#${b#*.} - 10#${a#*.} ))
	printf '%d.%d' $((us / 1000000)) $((us % 1000000 / 100000))
}

if [ -z "$build" ]; then
	echo "1..0 # SKIP XESVM_BUILD is not set: no build tree to take the igt-tests programs from"
	exit 0
fi
found=()
for p in "${programs[@]}"; do
	[ -x "$dir/$p" ] && found+=("$p")
done
if [ ${#found[@]} -eq 0 ]; then
	echo "1..0 # SKIP no igt-tests programs (${programs[*]}) in $dir: build with XESVM_BUILD_IGT_TESTS=ON (needs intel-gpu-tools)"
	exit 0
fi

t_suite=$EPOCHREALTIME
work=$(mktemp -d "${TMPDIR:-/tmp}/igt-suite.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

# run=(loader...) prefixes every program; prog[NAME] is the path to run.
declare -A prog
run=()
for p in "${found[@]}"; do prog[$p]=$dir/$p; done
killer=(timeout -s KILL)
dmesg_bin=$(command -v dmesg)
tmo_bin=$(command -v timeout)
if [ "$stage" = 1 ]; then
	libs=()
	declare -A have
	if ldd "${found[@]/#/$dir/}" ${dmesg_bin:+"$dmesg_bin"} >"$work/ldd" 2>&1; then
		while read -r a b c _; do
			l=
			if [ "$b" = "=>" ] && [ -f "$c" ]; then
				l=$c
			elif [[ $a == /* ]] && [ -f "$a" ]; then
				l=$a
			fi
			[ -z "$l" ] || [ -n "${have[${l##*/}]:-}" ] || { have[${l##*/}]=1; libs+=("$l"); }
		done <"$work/ldd"
	fi
	loader=
	for l in "${libs[@]}"; do
		[[ $l == */ld-linux* ]] && loader=${l##*/}
	done
	mkdir -p "$work/stage/lib"
	# tar, not cp: cp copies with copy_file_range(), which from 9p to tmpfs
	# took minutes per library in the guest; tar reads and writes.
	if [ -n "$loader" ] &&
		tar -chf - "${libs[@]}" 2>/dev/null | tar -C "$work/stage/lib" -xf - --transform 's,.*/,,' &&
		tar -chf - "${found[@]/#/$dir/}" "$tmo_bin" ${dmesg_bin:+"$dmesg_bin"} 2>/dev/null |
		tar -C "$work/stage" -xf - --transform 's,.*/,,' && [ -x "$work/stage/lib/$loader" ]; then
		run=("$work/stage/lib/$loader" --library-path "$work/stage/lib")
		for p in "${found[@]}"; do prog[$p]=$work/stage/$p; done
		killer=("${run[@]}" "$work/stage/timeout" -s KILL)
		[ -n "$dmesg_bin" ] && dmesg_bin=$work/stage/dmesg
		echo "# staged ${#libs[@]} libraries and ${#found[@]} programs from $dir in $(since "$t_suite") s"
	else
		echo "# staging failed (running in place):"
		while read -r l; do echo "#   $l"; done <"$work/ldd"
	fi
fi

# The plan: program/subtest pairs from each program's --list-subtests
# (which needs no device).
plan=()
for p in "${found[@]}"; do
	if ! "${run[@]}" "${prog[$p]}" --list-subtests >"$work/list" 2>&1; then
		echo "# $p --list-subtests failed:"
		while read -r l; do echo "#   $l"; done <"$work/list"
		echo "1..1"
		echo "not ok 1 $p/--list-subtests"
		exit 1
	fi
	while read -r s; do
		[ -n "$s" ] || continue
		if [ -n "$filter" ] && ! [[ $p/$s =~ $filter ]]; then
			continue
		fi
		plan+=("$p $s")
	done <"$work/list"
done
echo "1..${#plan[@]}"
[ ${#plan[@]} -gt 0 ] || exit 0

# Kernel messages that mean something went wrong in the kernel (as the
# harness's tap.py counts them), from dmesg after each subtest.
splat='WARNING:|BUG:|kernel BUG|Oops:|general protection fault|possible circular locking|possible recursive locking|inconsistent lock state|INFO: lockdep|INFO: task .* blocked|soft lockup|hard LOCKUP|self-detected stall|rcu: INFO|Kernel panic|UBSAN|KASAN|list_add corruption|list_del corruption|Bad page state|Call Trace:'
kmsg_ok=0 kmsg_seen=0
kmsg=()
if [ -n "$dmesg_bin" ] && "${run[@]}" "$dmesg_bin" >"$work/dmesg" 2>/dev/null; then
	kmsg_ok=1
	mapfile -t kmsg <"$work/dmesg"
	kmsg_seen=${#kmsg[@]}
fi
kmsg_new=()
# kmsg_new = the splat lines logged since the last call (all of the ring
# buffer if it shrank, i.e. wrapped).
drain_kmsg() {
	kmsg_new=()
	[ "$kmsg_ok" = 1 ] || return 0
	"${run[@]}" "$dmesg_bin" >"$work/dmesg" 2>/dev/null || return 0
	mapfile -t kmsg <"$work/dmesg"
	local i=$kmsg_seen
	[ "$i" -le ${#kmsg[@]} ] || i=0
	for ((; i < ${#kmsg[@]}; i++)); do
		[[ ${kmsg[i]} =~ $splat ]] && [ ${#kmsg_new[@]} -lt 20 ] && kmsg_new+=("${kmsg[i]}")
	done
	kmsg_seen=${#kmsg[@]}
	return 0
}

n=0 failed=0 skipped=0 passed=0
for entry in "${plan[@]}"; do
	p=${entry%% *} s=${entry#* }
	n=$((n + 1))
	name="$p/$s"
	tmo=$per
	case $s in
	evict-* | processes-evict-* | *-benchmark) tmo=$((per * 3)) ;;
	esac
	used=$(($(now_s) - ${t_suite%.*}))
	if [ $((used + 10)) -gt "$budget" ]; then
		echo "# $name: not run: the suite's time budget of ${budget} s is used up (${used} s)"
		echo "not ok $n $name"
		failed=$((failed + 1))
		continue
	fi
	[ $((used + tmo)) -le "$budget" ] || tmo=$((budget - used))

	t0=$EPOCHREALTIME
	"${killer[@]}" "$tmo" "${run[@]}" "${prog[$p]}" --run-subtest "$s" >"$work/out" 2>&1 </dev/null
	rc=$?
	secs=$(since "$t0")
	drain_kmsg
	mapfile -t out <"$work/out"

	result= skip=() fail=() bench=() in_skip=0
	for l in "${out[@]}"; do
		if [[ $l == "Subtest $s: "* ]]; then
			result=${l#"Subtest $s: "}
			result=${result%% *}
			in_skip=0
		elif [[ $l == "Test requirement not met"* ]]; then
			in_skip=1
			skip+=("$l")
		elif [ "$in_skip" = 1 ]; then
			[[ $l == "Last errno:"* ]] || skip+=("$l")
		elif [[ $l == "**** DEBUG ****" ]]; then
			in_skip=2 # the debug dump repeats what was printed
		elif [[ $l == *") CRITICAL: "* ]] && [ "$in_skip" != 2 ]; then
			fail+=("${l#*) CRITICAL: }")
		fi
		[[ $l =~ ^(fault|prefetch|evict)-benchmark:\  ]] && bench+=("$l")
	done
	for l in "${bench[@]}"; do echo "# BENCH $l"; done

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
	if [ ${#kmsg_new[@]} -gt 0 ]; then
		status="not ok"
		why="${why:+$why; }kernel splat while it ran"
	fi

	case $status in
	ok)
		passed=$((passed + 1))
		echo "# $name: SUCCESS in $secs s"
		echo "ok $n $name"
		;;
	skip)
		skipped=$((skipped + 1))
		for l in "${skip[@]}"; do echo "# $l"; done
		# the message: the lines after "Test requirement: COND"
		msg=
		for l in "${skip[@]:2}"; do msg="${msg:+$msg }$l"; done
		[ -n "$msg" ] || [ ${#skip[@]} -eq 0 ] || msg=${skip[-1]}
		echo "ok $n $name # SKIP ${msg:-no reason printed} (${secs} s)"
		;;
	*)
		failed=$((failed + 1))
		echo "# $name: $why after $secs s"
		for l in "${fail[@]}"; do echo "#   $l"; done
		if [ "$rc" != 98 ] || [ ${#fail[@]} -eq 0 ]; then
			echo "#   last output:"
			from=$((${#out[@]} > 15 ? ${#out[@]} - 15 : 0))
			for l in "${out[@]:from}"; do echo "#   | $l"; done
		fi
		if [ ${#kmsg_new[@]} -gt 0 ]; then
			echo "#   kernel:"
			for l in "${kmsg_new[@]}"; do echo "#   | $l"; done
		fi
		echo "not ok $n $name"
		;;
	esac
done

echo "# igt: $passed passed, $failed failed, $skipped skipped in $(since "$t_suite") s"
[ "$failed" -eq 0 ]
