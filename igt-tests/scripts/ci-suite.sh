#!/bin/sh
# The `igt` block of CI's guest (kernel-patches/xe/test/guest-suites): every
# subtest of guest-suite.sh (xe_svm and xe_svm_evict, the three benchmarks
# included), in the KASAN guest under TCG. The sizes are the subtests' own:
# relative to the VRAM that MEM_REGIONS reports where the size is the point
# (the eviction subtests, evict-benchmark at 2x VRAM), fixed where it is not.
# The one CI setting: fault-benchmark and prefetch-benchmark take
# XE_SVM_BENCH_MIB (default here 4 MiB instead of 64 MiB or half the VRAM),
# so that they run to the end in minutes of emulation and still print their
# figures and check every page; their full-size figures are taken by hand
# (igt-tests/README.md, "Benchmark figures"). The measured times are in
# igt-tests/README.md, "Guest results". IGT_SUBTESTS still selects a subset
# (the others are listed as skipped, naming the set).
XE_SVM_BENCH_MIB=${XE_SVM_BENCH_MIB:-4}
export XE_SVM_BENCH_MIB
exec sh "$(dirname "$0")/guest-suite.sh" "$@"
