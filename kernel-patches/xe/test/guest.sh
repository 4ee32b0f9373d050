#!/usr/bin/env bash
# Runs commands in the QEMU guest of the last patched kernel the harness
# built (run.sh publishes each one with its uapi headers under
# ${XESVM_CACHE:-/var/cache/xesvm}/kernel/guest-kernels/), without building
# anything: for iterating on user space that drives the software Xe device.
#
#   bash kernel-patches/xe/test/guest.sh [-k DIR] [-o OUT] [-t SECS] CMD [ARG...]
#   bash kernel-patches/xe/test/guest.sh [-k DIR] [-o OUT] [-t SECS] -s SCRIPT
#   bash kernel-patches/xe/test/guest.sh [-k DIR] [-o OUT] -p PLAN
#
# CMD runs as root in the guest (cwd /tmp; the host root is the guest's,
# read-only, so binaries and scripts are reached by their host paths) with
# a watchdog of SECS seconds (default 1200). -s runs a suite script of
# test/guest-suites exactly as the harness does (XESVM_REPO = the git
# checkout holding SCRIPT, XESVM_BUILD = its build/release,
# XESVM_KERNEL_INCLUDE = the kernel's uapi headers). -p runs a plan file instead
# (lines "<timeout> <name> <command...>", as the harness writes them).
# -k picks a published kernel directory (default: guest-kernels/current,
# the last one built); its uapi headers are in DIR/include. Output lands in
# OUT (default /var/tmp/xesvm-guest): tests.log is printed at the end, and
# the exit status is tap.py's (non-zero on a failed TAP line, a block that
# did not finish or a kernel splat in console.log).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=qemu.sh
. "$here/qemu.sh"
cache=${XESVM_CACHE:-/var/cache/xesvm}/kernel
kdir=$cache/guest-kernels/current out=/var/tmp/xesvm-guest tmo=1200 plan= suite=
while getopts k:o:t:p:s: opt; do
	case $opt in
	k) kdir=$OPTARG ;;
	o) out=$OPTARG ;;
	t) tmo=$OPTARG ;;
	p) plan=$OPTARG ;;
	s) suite=$OPTARG ;;
	*) echo "usage: guest.sh [-k DIR] [-o OUT] [-t SECS] (CMD [ARG...] | -s SCRIPT | -p PLAN)" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
if [ ! -f "$kdir/bzImage" ]; then
	echo "guest.sh: no kernel in $kdir: run kernel-patches/xe/test/run.sh once to build and publish one" >&2
	exit 2
fi
kdir=$(readlink -f "$kdir")
if [ -n "$suite" ]; then
	[ -f "$suite" ] || { echo "guest.sh: no suite script $suite" >&2; exit 2; }
	suite=$(readlink -f "$suite")
	srepo=$(git -C "$(dirname "$suite")" rev-parse --show-toplevel)
	set -- XESVM_REPO="$srepo" XESVM_BUILD="$srepo/build/release" \
		XESVM_KERNEL_INCLUDE="$kdir/include" sh "$suite"
fi
if [ -z "$plan" ] && [ $# -eq 0 ]; then
	echo "guest.sh: nothing to run: give a command or -p PLAN" >&2
	exit 2
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ -n "$plan" ]; then
	cp "$plan" "$out/plan"
else
	printf '%s cmd %s\n' "$tmo" "$*" >"$out/plan"
fi
echo "[guest] kernel $kdir"
XESVM_QEMU_TIMEOUT=${XESVM_QEMU_TIMEOUT:-$((tmo + 600))} \
	xesvm_qemu_guest "$kdir/bzImage" "$out" guest "$here/guest-init.sh"
cat "$out/tests.log" 2>/dev/null || true
python3 "$here/tap.py" --label guest "$out/tests.log" "$out/console.log" "$out/plan"
