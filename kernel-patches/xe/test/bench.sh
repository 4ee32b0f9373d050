#!/bin/sh
# Runs in the guest: the eviction benchmark (see hmm-evict-bench.c).
# usage: bench.sh DIR   (DIR holds the hmm-evict-bench binary)
exec "$1/hmm-evict-bench" "${XESVM_BENCH_PAGES:-4096}" "${XESVM_BENCH_REPEATS:-5}" "${XESVM_BENCH_CALL_PAGES:-512}"
