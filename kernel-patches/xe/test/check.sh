#!/usr/bin/env bash
# Static checks of the series: checkpatch.pl --strict on every patch, W=1
# warnings of the touched objects compared with the unpatched tree, and
# sparse (C=2) on the touched files. CHECK_BUILD=0: checkpatch only.
# usage: check.sh PATCHED_SRC PATCHED_BUILD [PRISTINE_SRC BASE_BUILD]
#        check.sh --base PRISTINE_SRC BASE_BUILD
# The unpatched findings are cached in BASE_BUILD (.w1-base, .sparse-base):
# --base computes them (while the source tree is pristine: the unpatched
# and patched kernels build from one source path); PRISTINE_SRC "-" means
# "use the cached ones".
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
xe=$(dirname "$here")
objs="mm/migrate_device.o mm/memory.o lib/test_hmm.o"
rc=0

w1() { # src out -> warnings of the touched objects, line numbers dropped
	for o in $objs; do rm -f "$2/$o"; done
	make -s -C "$1" O="$2" -j"${XESVM_JOBS:-2}" W=1 $objs 2>&1 |
		grep -E 'warning:' | sed -E 's#^.*/([^/]+\.[ch]):[0-9]+:[0-9]+:#\1:#' | sort
}
sparse() { # src out -> sparse findings of the touched files, line numbers dropped
	for o in $objs; do rm -f "$2/$o"; done
	make -s -C "$1" O="$2" -j"${XESVM_JOBS:-2}" C=2 $objs 2>&1 |
		grep -E '(warning|error):' | grep -v 'Wframe-larger-than' |
		sed -E 's#^.*/([^/]+\.[ch]):[0-9]+:[0-9]+:#\1:#' | sort
}
base_findings() { # pristine src, base build -> cached .w1-base, .sparse-base
	w1 "$1" "$2" >"$2/.w1-base.tmp" && sparse "$1" "$2" >"$2/.sparse-base.tmp" &&
		make -s -C "$1" O="$2" -j"${XESVM_JOBS:-2}" $objs >/dev/null 2>&1 &&
		mv "$2/.w1-base.tmp" "$2/.w1-base" && mv "$2/.sparse-base.tmp" "$2/.sparse-base"
}

if [ "${1:-}" = --base ]; then
	base_findings "$2" "$3" || { echo "check.sh: building the unpatched objects failed" >&2; exit 1; }
	exit 0
fi
src=$1 out=$2 psrc=${3:-} bout=${4:-}

echo "== checkpatch.pl --strict"
# The source tree is a release tarball without git history, so checkpatch
# cannot look up the upstream commits the backports cite; every other
# check runs.
for p in $(grep -v '^#' "$xe/series"); do
	res=$(cd "$src" && perl scripts/checkpatch.pl --strict --ignore UNKNOWN_COMMIT_ID -q "$xe/$p" 2>/dev/null |
		grep -E '^(ERROR|WARNING|CHECK)' |
		grep -v 'does MAINTAINERS need updating' || true)
	if [ -n "$res" ]; then
		echo "$p:"; echo "$res" | sed 's/^/  /'; rc=1
	else
		echo "$p: clean"
	fi
done

if [ "${CHECK_BUILD:-1}" = 0 ]; then
	exit $rc
fi

if [ -n "$bout" ] && ! { [ -f "$bout/.w1-base" ] && [ -f "$bout/.sparse-base" ]; }; then
	if [ "$psrc" = - ]; then
		echo "no W=1/sparse findings of the unpatched tree cached in $bout (it was"
		echo "built without XESVM_CHECK=1): remove $bout and run again with XESVM_CHECK=1"
		exit 1
	fi
	base_findings "$psrc" "$bout" || { echo "building the unpatched objects failed"; exit 1; }
fi
echo "== W=1 ($objs)"
w1 "$src" "$out" >"$out/.w1-patched"
if [ -n "$bout" ]; then
	cp "$bout/.w1-base" "$out/.w1-base"
	new=$(comm -13 "$out/.w1-base" "$out/.w1-patched")
	sed 's/^/  unpatched and patched: /' "$out/.w1-base"
	if [ -n "$new" ]; then echo "  NEW warnings:"; echo "$new" | sed 's/^/    /'; rc=1; else echo "  no new warnings"; fi
else
	sed 's/^/  /' "$out/.w1-patched"
fi

echo "== sparse C=2 ($objs)"
sparse "$src" "$out" >"$out/.sparse-patched"
if [ -n "$bout" ]; then
	cp "$bout/.sparse-base" "$out/.sparse-base"
	new=$(comm -13 "$out/.sparse-base" "$out/.sparse-patched")
	sed 's/^/  unpatched and patched: /' "$out/.sparse-base"
	if [ -n "$new" ]; then echo "  NEW findings:"; echo "$new" | sed 's/^/    /'; rc=1; else echo "  no new findings"; fi
else
	sed 's/^/  /' "$out/.sparse-patched"
fi
# leave the objects built normally again
make -s -C "$src" O="$out" -j"${XESVM_JOBS:-2}" $objs >/dev/null 2>&1
exit $rc
