#!/usr/bin/env bash
# The xesvm kernel harness: one command.
#
#   bash kernel-patches/xe/test/run.sh            # from the repository root
#
# 1. installs the Debian packages (scripts/deps.sh), unpacks
#    linux-source-6.12 into ${XESVM_CACHE:-/var/cache/xesvm}/kernel,
# 2. builds the unpatched kernel (only when its results for this config are
#    not cached) and the patched kernel (series applied; incremental, and
#    on a cold cache started from the unpatched build: same source path),
# 3. builds the selftests, boots each kernel in QEMU (TCG, 2 vCPUs, the host
#    root shared read-only over virtio-9p) and runs the tests with a
#    watchdog on every test and on the whole guest,
# 4. parses the TAP output and the console log and exits non-zero on any
#    failed test or kernel splat (WARN, BUG, lockdep report, stall).
#
# Environment: XESVM_CACHE (cache root), XESVM_JOBS (make -j, default 2),
# XESVM_BENCH=1 also runs the benchmark (bench.sh), XESVM_SKIP_BASELINE=1
# skips the unpatched kernel, XESVM_CHECK=1 also runs checkpatch/W=1/sparse,
# XESVM_ONLY=REGEX runs only the patched kernel's test binaries whose plan
# name matches (for iterating; a full run is the one that counts).
set -euo pipefail

# The whole script is one function, read completely before it runs, so that
# editing this file during a run cannot change the running harness.
main() {

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=qemu.sh
. "$here/qemu.sh"
xe=$(dirname "$here")
repo=$(cd "$xe/../.." && pwd)
cache=${XESVM_CACHE:-/var/cache/xesvm}/kernel
export XESVM_JOBS=${XESVM_JOBS:-2}
t0=$(date +%s)

log() { echo "[kernel] $*"; }
die() { echo "[kernel] ERROR: $*" >&2; echo "kernel: 0 passed, 1 failed, 0 skipped"; exit 1; }
elapsed() { echo $(( $(date +%s) - t0 ))s; }

# ---------------------------------------------------------------- packages
bash "$repo/scripts/deps.sh" || die "scripts/deps.sh failed"
for tool in qemu-system-x86_64 busybox gcc make patch python3 timeout; do
	command -v "$tool" >/dev/null || die "missing tool: $tool"
done

# ---------------------------------------------------------------- sources
pkgver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
tarball=/usr/src/linux-source-6.12.tar.xz
[ -r "$tarball" ] || die "$tarball missing"
mkdir -p "$cache"
pristine=$cache/pristine-$pkgver
if [ ! -f "$pristine/.xesvm-complete" ]; then
	log "unpacking $tarball"
	rm -rf "$pristine" "$pristine.tmp"
	mkdir -p "$pristine.tmp"
	tar -C "$pristine.tmp" -xf "$tarball" --strip-components=1
	touch "$pristine.tmp/.xesvm-complete"
	mv "$pristine.tmp" "$pristine"
fi
kver=$(make -s -C "$pristine" kernelversion)
log "Debian linux-source-6.12 $pkgver: Linux $kver"

frag=$here/config.fragment
cfghash=$( (echo "$pkgver"; cat "$frag" "$here/kbuild.sh") | sha256sum | cut -c1-16)
# The patched kernel also gets config.patched.fragment (DRM and the
# software Xe device): the unpatched kernel's config and cache stay as
# they are.
pfrag=$here/config.patched.fragment
pcfghash=$( (echo "$pkgver"; cat "$frag" "$pfrag" "$here/kbuild.sh") | sha256sum | cut -c1-16)
series=$(grep -v '^\s*#' "$xe/series" | sed '/^\s*$/d')
serieshash=$( (cd "$xe" && cat series $series) | sha256sum | cut -c1-16)
log "config hash $cfghash (patched $pcfghash), series hash $serieshash"

# ------------------------------------------------------------- test plans
inithash=$( (cat "$here/guest-init.sh" "$here/tap.py" "$here/qemu.sh" "$0") | sha256sum | cut -c1-16)

write_plan() { # dir with binaries, kind
	local d=$1 kind=$2
	{
		echo "2400 hmm-tests $d/hmm-tests"
		if [ "$kind" = patched ]; then
			echo "1200 xe-soft-tests $d/xe-soft-tests"
			echo "3600 hmm-evict-tests $d/hmm-evict-tests"
			# the user-space suites that run on the software Xe device
			# (guest-suites: timeout, block name, script in the repo)
			while read -r stmo sname sscript; do
				case "$stmo" in ''|'#'*) continue ;; esac
				[ -f "$repo/$sscript" ] || continue
				echo "$stmo $sname XESVM_REPO=$repo XESVM_BUILD=$repo/build/release XESVM_KERNEL_INCLUDE=$cache/patched-$pcfghash/usr/include sh $repo/$sscript"
			done <"$here/guest-suites"
			if [ "${XESVM_BENCH:-0}" = 1 ]; then
				echo "1800 bench $here/bench.sh $d"
			fi
		fi
	} >"$d/plan"
	if [ "$kind" = patched ] && [ -n "${XESVM_ONLY:-}" ]; then
		awk -v re="$XESVM_ONLY" '$2 ~ re' "$d/plan" >"$d/plan.only"
		mv "$d/plan.only" "$d/plan"
		log "XESVM_ONLY=$XESVM_ONLY: plan is $(awk '{print $2}' "$d/plan" | tr '\n' ' ')"
	fi
}

build_selftests() { # src, out dir, kind[, kernel build dir for the uapi headers]
	local src=$1 d=$2 kind=$3 kout=${4:-}
	local st=$d/selftests
	# The tests build from a copy whose kselftest harness allows 10x the
	# default per-test timeout and 4x the explicit ones: KASAN in TCG is
	# that much slower, and a hang is still caught.
	rm -rf "$st"; mkdir -p "$st/mm"
	cp "$src"/tools/testing/selftests/*.h "$st/"
	cp "$src"/tools/testing/selftests/mm/*.[ch] "$st/mm/"
	sed -i -e 's/^#define TEST_TIMEOUT_DEFAULT 30$/#define TEST_TIMEOUT_DEFAULT 300/' \
		-e 's/__TEST_F_IMPL(fixture_name, test_name, -1, timeout)$/__TEST_F_IMPL(fixture_name, test_name, -1, 4 * (timeout))/' \
		"$st/kselftest_harness.h"
	grep -q 'TEST_TIMEOUT_DEFAULT 300' "$st/kselftest_harness.h" &&
		grep -q '4 \* (timeout)' "$st/kselftest_harness.h" || die "cannot scale the kselftest timeouts"
	local mm=$st/mm
	local cflags="-O2 -g -Wall -I$src -I$mm -I$src/tools/include/uapi -I$st"
	(cd "$mm" && gcc $cflags -o "$d/hmm-tests" hmm-tests.c vm_util.c -lpthread) ||
		die "building hmm-tests failed"
	if [ "$kind" = patched ]; then
		(cd "$mm" && gcc $cflags -o "$d/hmm-evict-tests" hmm-evict-tests.c vm_util.c -lpthread) ||
			die "building hmm-evict-tests failed"
		gcc $cflags -I"$mm" -o "$d/hmm-evict-bench" "$here/hmm-evict-bench.c" -lpthread ||
			die "building hmm-evict-bench failed"
		# the software Xe device's tests use the series' uapi headers
		make -s -C "$src" O="$kout" headers_install >/dev/null ||
			die "headers_install failed"
		local xs=$st/drivers/gpu/xe_soft
		mkdir -p "$xs" && cp "$src"/tools/testing/selftests/drivers/gpu/xe_soft/*.c "$xs/"
		(cd "$xs" && gcc -O2 -g -Wall -I"$kout/usr/include" -o "$d/xe-soft-tests" \
			xe-soft-tests.c -lpthread) || die "building xe-soft-tests failed"
	fi
}

run_guest() { # bzImage, out dir, label
	xesvm_qemu_guest "$1" "$2" "$3" "$here/guest-init.sh"
}

# ------------------------------------------------- the shared source tree
# Both kernels build from one source path, $psrc: the unpatched kernel with
# the tree in its pristine state, the patched one after the series is
# applied. A cold cache builds the unpatched kernel first and starts the
# patched build from a copy of its output tree, so kbuild (per-file
# dependencies from fixdep, per-CONFIG dependencies from syncconfig)
# rebuilds only what the series and config.patched.fragment change: a cold
# run costs about one kernel build, not two.
psrc=$cache/src-$pkgver-patched
pout=$cache/patched-$pcfghash
if [ ! -f "$psrc/.xesvm-complete" ]; then
	log "copying the source tree for the patched kernel"
	rm -rf "$psrc" "$psrc.tmp"
	cp -a "$pristine" "$psrc.tmp"
	rm -f "$psrc.tmp/.xesvm-series" "$psrc.tmp/.xesvm-files"
	mv "$psrc.tmp" "$psrc"
fi
# Put back the pristine version of every file the applied series touched,
# with a new mtime so that make rebuilds it (a file the series added goes).
revert_series() {
	if [ -f "$psrc/.xesvm-files" ]; then
		while read -r f; do
			if [ -e "$pristine/$f" ]; then cp "$pristine/$f" "$psrc/$f"; else rm -f "$psrc/$f"; fi
		done <"$psrc/.xesvm-files"
	fi
	rm -f "$psrc/.xesvm-series" "$psrc/.xesvm-files"
}
# A finished unpatched build: marked by this harness, or (a cache from
# before the shared source path) configured with a kernel image.
base_built() {
	[ -f "$1/.xesvm-built" ] || { [ -f "$1/.xesvm-frag" ] && [ -f "$1/arch/x86/boot/bzImage" ]; }
}

# -------------------------------------------------------- unpatched kernel
# The stock hmm-tests on the unpatched kernel: the reference that tells a
# failure the series causes from one of the guest or of 6.12 itself (the
# stock tests run again on the patched kernel).
base_fail=0
if [ "${XESVM_SKIP_BASELINE:-0}" != 1 ]; then
	bout=$cache/base-$cfghash
	bres=$bout/results-$inithash
	if [ -f "$bres/summary.txt" ]; then
		log "unpatched results cached ($bres)"
	else
		if base_built "$bout"; then
			log "unpatched kernel already built ($bout)"
		else
			log "building the unpatched kernel ($bout) in $psrc"
			revert_series
			rm -f "$bout/.xesvm-built"
			s=$(date +%s)
			bash "$here/kbuild.sh" "$psrc" "$bout" "$frag" bzImage || die "unpatched build failed"
			log "unpatched kernel built in $(( $(date +%s) - s ))s"
			echo "$psrc" >"$bout/.xesvm-src"
			# check.sh compares the patched tree's W=1 and sparse
			# findings with these; the tree is pristine only now
			if [ "${XESVM_CHECK:-0}" = 1 ]; then
				bash "$here/check.sh" --base "$psrc" "$bout" || die "static checks of the unpatched tree failed"
			fi
			touch "$bout/.xesvm-built"
		fi
		rm -rf "$bres.tmp"; mkdir -p "$bres.tmp"
		build_selftests "$pristine" "$bres.tmp" base
		write_plan "$bres.tmp" base
		run_guest "$bout/arch/x86/boot/bzImage" "$bres.tmp" unpatched
		python3 "$here/tap.py" --label unpatched --json "$bres.tmp/results.json" \
			"$bres.tmp/tests.log" "$bres.tmp/console.log" "$bres.tmp/plan" \
			>"$bres.tmp/summary.txt" || true
		# keep results only if the guest got to the end
		if grep -q XESVM-DONE "$bres.tmp/tests.log" 2>/dev/null; then
			rm -rf "$bres"; mv "$bres.tmp" "$bres"
		else
			bres=$bres.tmp
		fi
	fi
fi

# ---------------------------------------------------------- patched kernel
pfragall=$cache/fragment-patched-$pcfghash
cat "$frag" "$pfrag" >"$pfragall"
if [ ! -f "$pout/.config" ] && [ -n "${bout:-}" ] && [ -f "$bout/.xesvm-built" ] &&
	[ "$(cat "$bout/.xesvm-src" 2>/dev/null)" = "$psrc" ]; then
	log "starting the patched build from the unpatched one ($bout)"
	rm -rf "$pout" "$pout.tmp"
	cp -a "$bout" "$pout.tmp"
	rm -rf "$pout.tmp"/results-* "$pout.tmp/.xesvm-built" "$pout.tmp/.xesvm-src" \
		"$pout.tmp/.w1-base" "$pout.tmp/.sparse-base"
	mv "$pout.tmp" "$pout"
fi
if [ "$(cat "$psrc/.xesvm-series" 2>/dev/null)" != "$serieshash" ]; then
	# Put back the pristine version of every file the previous series
	# touched (with a new mtime, so make rebuilds it), then apply. A file
	# the new series leaves exactly as the previous one did gets its old
	# mtime back, so that a change to one file does not rebuild everything
	# that includes another.
	prev=$(mktemp -d)
	if [ -f "$psrc/.xesvm-files" ]; then
		while read -r f; do
			if [ -e "$psrc/$f" ]; then
				mkdir -p "$prev/$(dirname "$f")" && cp -p "$psrc/$f" "$prev/$f"
			fi
		done <"$psrc/.xesvm-files"
	fi
	revert_series
	for p in $series; do
		log "applying $p"
		patch -d "$psrc" -p1 -s --no-backup-if-mismatch -f <"$xe/$p" || die "$p does not apply"
		sed -n 's#^+++ b/##p' "$xe/$p" >>"$psrc/.xesvm-files"
	done
	sort -u -o "$psrc/.xesvm-files" "$psrc/.xesvm-files"
	while read -r f; do
		if [ -e "$prev/$f" ] && cmp -s "$prev/$f" "$psrc/$f"; then
			touch -r "$prev/$f" "$psrc/$f"
		fi
	done <"$psrc/.xesvm-files"
	rm -rf "$prev"
	echo "$serieshash" >"$psrc/.xesvm-series"
fi
log "building the patched kernel ($pout)"
s=$(date +%s)
bash "$here/kbuild.sh" "$psrc" "$pout" "$pfragall" bzImage || die "patched build failed"
log "patched kernel built in $(( $(date +%s) - s ))s"
pres=$pout/results
rm -rf "$pres"; mkdir -p "$pres"
build_selftests "$psrc" "$pres" patched "$pout"
write_plan "$pres" patched
# Publish this kernel and its uapi headers for guest.sh, so that user-space
# work can boot the last patched kernel built while the series moves on.
gk=$cache/guest-kernels/$serieshash-$pcfghash
if [ ! -f "$gk/.complete" ]; then
	rm -rf "$gk"; mkdir -p "$gk"
	cp "$pout/arch/x86/boot/bzImage" "$gk/bzImage"
	cp -a "$pout/usr/include" "$gk/include"
	touch "$gk/.complete"
fi
ln -sfn "$gk" "$cache/guest-kernels/current"

# checkpatch always; W=1 and sparse (which rebuild the touched objects of
# both trees) with XESVM_CHECK=1
# (the unpatched findings come from $bout, cached when it was built in
# $psrc, or computed from $pristine for a build made there)
if [ "${XESVM_CHECK:-0}" = 1 ] && [ -n "${bout:-}" ] && [ -f "$bout/.config" ]; then
	bsrc=$pristine
	[ -f "$bout/.xesvm-src" ] && bsrc=-
	bash "$here/check.sh" "$psrc" "$pout" "$bsrc" "$bout" >"$pout/check.txt" 2>&1
else
	CHECK_BUILD=0 bash "$here/check.sh" "$psrc" "$pout" >"$pout/check.txt" 2>&1
fi || { cat "$pout/check.txt"; die "static checks failed"; }

run_guest "$pout/arch/x86/boot/bzImage" "$pres" patched
set +e
python3 "$here/tap.py" --label patched --json "$pres/results.json" \
	"$pres/tests.log" "$pres/console.log" "$pres/plan" >"$pres/summary.txt"
prc=$?
set -e

# ---------------------------------------------------------------- summary
echo
echo "==================== xesvm kernel summary ===================="
echo "Linux $kver (Debian linux-source-6.12 $pkgver), config $cfghash (patched $pcfghash), series $serieshash"
if [ "${XESVM_SKIP_BASELINE:-0}" != 1 ]; then
	echo "-- unpatched kernel, stock hmm-tests (failures here are not caused by the series):"
	sed 's/^/  /' "$bres/summary.txt"
fi
echo "-- static checks:"
sed 's/^/  /' "$pout/check.txt"
echo "-- patched kernel:"
sed 's/^/  /' "$pres/summary.txt"
if [ -f "$pres/bench.txt" ]; then
	echo "-- benchmark:"; sed 's/^/  /' "$pres/bench.txt"
fi
[ -f "$pres/bench.txt" ] || grep -h '^BENCH' "$pres/tests.log" 2>/dev/null | sed 's/^/  /' || true
grep -h '^  block ' "$pres/summary.txt" | sed 's/^  block //' || true
echo "logs: $pres/{console.log,tests.log}"
echo "total time $(elapsed)"
# The closing line: counts of the patched kernel.
tail -n1 "$pres/summary.txt" | sed 's/^patched:/kernel:/'
exit $prc
}

main "$@"
exit $?
