#!/bin/sh
# Runs in the guest: the GPU fault benchmark of the software Xe device
# (xe-soft-bench.c, built here against the patched kernel's uapi headers,
# BENCH lines only) and the eviction benchmark (see hmm-evict-bench.c,
# whose TAP result is the block's).
# usage: bench.sh DIR   (DIR holds the hmm-evict-bench binary; the kernel
# build directory DIR/.. holds usr/include)
src=$(dirname "$0")
if gcc -O2 -Wall -I"$1/../usr/include" -o /tmp/xe-soft-bench "$src/xe-soft-bench.c"; then
	/tmp/xe-soft-bench "${XESVM_BENCH_REPEATS:-9}" || echo "BENCH xe_soft failed"
else
	echo "BENCH xe_soft not built"
fi
exec "$1/hmm-evict-bench" "${XESVM_BENCH_PAGES:-4096}" "${XESVM_BENCH_REPEATS:-5}" "${XESVM_BENCH_CALL_PAGES:-512}"
