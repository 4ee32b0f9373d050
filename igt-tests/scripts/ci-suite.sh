#!/bin/sh
# The `igt` block of CI's guest (kernel-patches/xe/test/guest-suites): the
# subset of guest-suite.sh that fits CI's time in the KASAN guest under TCG.
# Every allocation mode of the `once` and `twice` families (batches in
# malloc'd, mmap'd, shared, remapped, freed and fresh memory, with and
# without a CPU memset first, prefetch, madvise, fork and CPU/GPU races,
# and the busy-unbind errno) and eviction at 9/8 of VRAM with every byte
# checked. The subtests left out are listed as skipped, naming this set.
# The whole suite is guest-suite.sh without IGT_SUBTESTS.
IGT_SUBTESTS=${IGT_SUBTESTS:-'^xe_svm/(once|twice)-|^xe_svm_evict/evict-malloc$'}
export IGT_SUBTESTS
exec sh "$(dirname "$0")/guest-suite.sh" "$@"
