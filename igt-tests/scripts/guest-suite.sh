#!/bin/sh
# The `igt` suite of kernel-patches/xe/test/guest-suites: every subtest of
# every IGT device program of igt-tests/ (xe_svm, xe_svm_evict; the
# benchmarks are subtests of those), run on the xe device of the machine it
# runs on, with IGT's own command line: one process per program
# (`PROGRAM --run-subtest A,B,...`), started again with the subtests left
# after one crashes it or runs past its timeout (IGT_ONE_PROCESS=1: one
# process per subtest, `PROGRAM --run-subtest NAME`). Prints TAP:
#
#   1..N
#   # <why it failed or skipped: the assertion, the requirement, the errno>
#   not ok N xe_svm/NAME
#   ok N xe_svm/NAME # SKIP <reason>
#   # BENCH <the benchmark's igt_info line>
#   ok N xe_svm/NAME
#
# A subtest is `ok` when IGT printed `Subtest NAME: SUCCESS`, skipped on
# `SKIP`, and `not ok` on anything else: FAIL, CRASH, a process that died
# (signal, exit) before its result line, the timeout (killed), in
# per-subtest mode an exit code that contradicts the result line (0
# SUCCESS, 77 SKIP, 98 FAIL), or a kernel splat (WARNING/BUG/KASAN/lockdep
# ...) logged while it ran.
# Exits 1 if any subtest was not ok, 0 otherwise.
#
# Environment (the harness sets the first; everything else has defaults):
#   XESVM_BUILD            build tree whose igt-tests/ holds the programs
#   IGT_SUBTEST_TIMEOUT    seconds per subtest (default 120; the eviction
#                          subtests and the benchmarks get 3x,
#                          evict-malloc-4x and evict-benchmark 8x)
#   IGT_SUITE_BUDGET       seconds for the whole suite (default 1500, below
#                          the harness's 1800): subtests that would start
#                          after it are reported `not ok` without running
#   IGT_PROGRAMS           the programs, in order (default "xe_svm xe_svm_evict")
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
one=${IGT_ONE_PROCESS:-0}
stage=${IGT_STAGE:-$one}
programs=(${IGT_PROGRAMS:-xe_svm xe_svm_evict})

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
# (which needs no device), or from the PROGRAM.subtests file the build
# wrote with it, when that is not older than the program: in the guest each
# program start costs tens of seconds.
plan=() excluded=()
for p in "${found[@]}"; do
	list=$work/list
	if [ -f "$dir/$p.subtests" ] && ! [ "$dir/$p" -nt "$dir/$p.subtests" ]; then
		list=$dir/$p.subtests
	elif ! "${run[@]}" "${prog[$p]}" --list-subtests >"$work/list" 2>&1; then
		echo "# $p --list-subtests failed:"
		while read -r l; do echo "#   $l"; done <"$work/list"
		echo "1..1"
		echo "not ok 1 $p/--list-subtests"
		exit 1
	fi
	while read -r s; do
		[ -n "$s" ] || continue
		if [ -n "$filter" ] && ! [[ $p/$s =~ $filter ]]; then
			excluded+=("$p/$s")
			continue
		fi
		plan+=("$p $s")
	done <"$list"
done
echo "1..$(( ${#plan[@]} + ${#excluded[@]} ))"
# Subtests IGT_SUBTESTS leaves out are listed as skipped, so that a run of
# a subset says what it did not run.
n=0
for e in "${excluded[@]}"; do
	n=$((n + 1))
	echo "ok $n $e # SKIP not in this run's set (IGT_SUBTESTS=$filter)"
done
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

failed=0 skipped=${#excluded[@]} passed=0
last_skip=() launches=0

# report NAME STATUS WHY SECS: prints the TAP line of one subtest from its
# output lines in seg[] (from "Starting subtest" to its result line).
# STATUS: SUCCESS, SKIP, or anything else = not ok (WHY says what).
report() {
	local name=$1 status=$2 why=$3 secs=$4 l in_skip=0
	local skip=() fail=()
	n=$((n + 1))
	for l in "${seg[@]}"; do
		if [[ $l == "Test requirement not met"* ]]; then
			in_skip=1
			skip+=("$l")
		elif [[ $l == "Subtest "* ]]; then
			in_skip=0
		elif [ "$in_skip" = 1 ]; then
			[[ $l == "Last errno:"* ]] || skip+=("$l")
		elif [[ $l == "**** DEBUG ****" ]]; then
			in_skip=2 # the debug dump repeats what was printed
		elif [[ $l == "****  END  ****" ]]; then
			in_skip=0
		elif [[ $l == *") CRITICAL: "* ]] && [ "$in_skip" != 2 ]; then
			fail+=("${l#*) CRITICAL: }")
		fi
		[[ $l =~ ^(fault|prefetch|evict)-benchmark:\  ]] && echo "# BENCH $l"
	done
	if [ ${#kmsg_new[@]} -gt 0 ]; then
		why="${why:-$status}; kernel splat while it ran"
		status=SPLAT
	fi
	case $status in
	SUCCESS)
		passed=$((passed + 1))
		echo "# $name: SUCCESS in $secs s"
		echo "ok $n $name"
		;;
	SKIP)
		skipped=$((skipped + 1))
		# a fixture's skip prints its reason once, before the first subtest
		if [ ${#skip[@]} -eq 0 ]; then skip=("${last_skip[@]}"); else last_skip=("${skip[@]}"); fi
		for l in "${skip[@]}"; do echo "# $l"; done
		# the message: the lines after "Test requirement: COND"
		local msg=
		for l in "${skip[@]:2}"; do msg="${msg:+$msg }$l"; done
		[ -n "$msg" ] || [ ${#skip[@]} -eq 0 ] || msg=${skip[-1]}
		echo "ok $n $name # SKIP ${msg:-no reason printed} (${secs} s)"
		;;
	*)
		failed=$((failed + 1))
		echo "# $name: $why after $secs s"
		for l in "${fail[@]}"; do echo "#   $l"; done
		if [ "$status" != FAIL ] || [ ${#fail[@]} -eq 0 ]; then
			echo "#   last output:"
			local from=$((${#seg[@]} > 15 ? ${#seg[@]} - 15 : 0))
			for l in "${seg[@]:from}"; do echo "#   | $l"; done
		fi
		if [ ${#kmsg_new[@]} -gt 0 ]; then
			echo "#   kernel:"
			for l in "${kmsg_new[@]}"; do echo "#   | $l"; done
		fi
		echo "not ok $n $name"
		;;
	esac
}

# evict-malloc-4x moves about 3.5x the data of evict-malloc (1 GiB in,
# 3/4 of it out again, with 256 MiB of VRAM), which took up to 140 s in the
# KASAN guest under TCG on a loaded host: killed at 3x it needed more.
# evict-benchmark moves 2x VRAM in and out three times and then copies it
# (6x the data of evict-malloc): killed at 3x (360 s) on a host loaded to 15-18.
subtest_timeout() { # NAME
	case $1 in
	evict-malloc-4x | evict-benchmark) echo $((per * 8)) ;;
	evict-* | processes-evict-* | *-benchmark) echo $((per * 3)) ;;
	*) echo "$per" ;;
	esac
}

budget_left() { echo $((budget - ($(now_s) - ${t_suite%.*}))); }

not_run() { # NAME
	n=$((n + 1)) failed=$((failed + 1))
	echo "# $1: not run: the suite's time budget of ${budget} s is used up"
	echo "not ok $n $1"
}

# A file descriptor that never has data: `read -t` on it sleeps without
# an exec.
mkfifo "$work/never" && exec 9<>"$work/never"
pause() { read -r -t "$1" -u 9 _ || :; }

# One process per program (default): PROGRAM --run-subtest A,B,C,... runs
# the subtests in order; the output is watched, a subtest that runs past
# its timeout kills the process, and after a crash or timeout the process
# is started again with the subtests that had not started.
run_batch() { # PROGRAM SUBTEST...
	local p=$1
	shift
	local todo=("$@")
	while [ ${#todo[@]} -gt 0 ]; do
		local left
		left=$(budget_left)
		if [ "$left" -le 10 ]; then
			for s in "${todo[@]}"; do not_run "$p/$s"; done
			return
		fi
		local list
		list=$(IFS=,; echo "${todo[*]}")
		launches=$((launches + 1))
		local of=$work/batch.$launches
		: >"$of"
		"${run[@]}" "${prog[$p]}" --run-subtest "$list" >"$of" 2>&1 </dev/null &
		local pid=$! seen=0 cur= cur_t0=$EPOCHREALTIME cur_from=0 last_end=0 done_n=0 rc= killed=
		local out=()
		while :; do
			local alive=1
			kill -0 "$pid" 2>/dev/null || alive=0
			mapfile -t out <"$of"
			local i
			for ((i = seen; i < ${#out[@]}; i++)); do
				local l=${out[i]}
				if [[ $l == "Starting subtest: "* ]]; then
					cur=${l#Starting subtest: } cur_t0=$EPOCHREALTIME cur_from=$i
				elif [[ $l =~ ^Subtest\ (.+):\ ([A-Z]+)\ \((.*)s\)$ ]]; then
					# a subtest skipped by its fixture has no "Starting" line
					[ -n "$cur" ] || cur_from=$last_end
					cur=${BASH_REMATCH[1]}
					local res=${BASH_REMATCH[2]} secs=${BASH_REMATCH[3]}
					seg=("${out[@]:cur_from:i - cur_from + 1}")
					last_end=$((i + 1))
					drain_kmsg
					case $res in
					SUCCESS | SKIP) report "$p/$cur" "$res" "" "$secs" ;;
					FAIL) report "$p/$cur" FAIL "FAIL" "$secs" ;;
					*) report "$p/$cur" "$res" "$res" "$secs" ;;
					esac
					done_n=$((done_n + 1)) cur=
				fi
			done
			seen=${#out[@]}
			[ "$alive" = 1 ] || break
			if [ -n "$cur" ]; then
				local el
				el=$(since "$cur_t0")
				el=${el%.*}
				local tmo
				tmo=$(subtest_timeout "$cur")
				if [ -n "$killed" ]; then
					# SIGKILL did not end it: stuck in the kernel
					if [ $((el - tmo)) -ge 30 ]; then
						killed="$killed; still alive 30 s after SIGKILL (stuck in the kernel), abandoned"
						break
					fi
				elif [ "$el" -ge "$tmo" ] || [ "$(budget_left)" -le 0 ]; then
					kill -KILL "$pid" 2>/dev/null
					killed="TIMEOUT: killed after $el s"
				fi
			fi
			pause 1
		done
		if [[ $killed == *abandoned ]]; then
			rc=137
		else
			wait "$pid"
			rc=$?
		fi
		# the subtests that reported, the one that was running, the rest
		local started=$done_n
		if [ -n "$cur" ]; then
			seg=("${out[@]:cur_from}")
			drain_kmsg
			local why=$killed
			if [ -z "$why" ]; then
				if [ "$rc" -gt 128 ]; then
					why="CRASH: killed by signal $((rc - 128))"
				else
					why="CRASH: exit $rc with no result line"
				fi
			fi
			report "$p/$cur" CRASH "$why" "$(since "$cur_t0")"
			started=$((started + 1))
		elif [ "$done_n" -lt ${#todo[@]} ] && [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ "$rc" != 98 ]; then
			# died between subtests (or before the first): blame the next one
			seg=("${out[@]}")
			drain_kmsg
			report "$p/${todo[done_n]}" CRASH "CRASH: $p exited $rc before its result line" 0
			started=$((started + 1))
		elif [ "$done_n" -lt ${#todo[@]} ]; then
			seg=("${out[@]}")
			for ((; done_n < ${#todo[@]}; done_n++)); do
				report "$p/${todo[done_n]}" MISSING "$p exited $rc without running it" 0
			done
			started=$done_n
		fi
		todo=("${todo[@]:started}")
	done
}

# One process per subtest (IGT_ONE_PROCESS=1).
run_one() { # PROGRAM SUBTEST
	local p=$1 s=$2 tmo left
	tmo=$(subtest_timeout "$s")
	left=$(budget_left)
	if [ "$left" -le 10 ]; then
		not_run "$p/$s"
		return
	fi
	[ "$tmo" -le "$left" ] || tmo=$left
	local t0=$EPOCHREALTIME
	"${killer[@]}" "$tmo" "${run[@]}" "${prog[$p]}" --run-subtest "$s" >"$work/out" 2>&1 </dev/null
	local rc=$? secs result= l
	secs=$(since "$t0")
	drain_kmsg
	mapfile -t seg <"$work/out"
	for l in "${seg[@]}"; do
		if [[ $l == "Subtest $s: "* ]]; then
			result=${l#"Subtest $s: "}
			result=${result%% *}
		fi
	done
	case $rc in
	0) if [ "$result" = SUCCESS ]; then report "$p/$s" SUCCESS "" "$secs"; else report "$p/$s" BAD "exit 0 but the result line says '${result:-nothing}'" "$secs"; fi ;;
	77) if [ "$result" = SKIP ]; then report "$p/$s" SKIP "" "$secs"; else report "$p/$s" BAD "exit 77 but the result line says '${result:-nothing}'" "$secs"; fi ;;
	98) report "$p/$s" FAIL "FAIL (exit 98)" "$secs" ;;
	137) report "$p/$s" TIMEOUT "TIMEOUT: killed after ${tmo} s" "$secs" ;;
	*) if [ "$rc" -gt 128 ]; then report "$p/$s" CRASH "CRASH: killed by signal $((rc - 128))" "$secs"; else report "$p/$s" CRASH "CRASH: exit $rc" "$secs"; fi ;;
	esac
}

for p in "${found[@]}"; do
	subs=()
	for entry in "${plan[@]}"; do
		[ "${entry%% *}" = "$p" ] && subs+=("${entry#* }")
	done
	[ ${#subs[@]} -gt 0 ] || continue
	if [ "$one" = 1 ]; then
		for s in "${subs[@]}"; do run_one "$p" "$s"; done
	else
		run_batch "$p" "${subs[@]}"
	fi
done

echo "# igt: $passed passed, $failed failed, $skipped skipped in $(since "$t_suite") s"
[ "$failed" -eq 0 ]
