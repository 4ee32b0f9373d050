#!/bin/sh
# The `igt` block of CI's guest (kernel-patches/xe/test/guest-suites): the
# subset of guest-suite.sh that fits CI's time in the KASAN guest under TCG
# (igt-tests/README.md, "In CI", has the measured times). The set:
#   - every allocation mode of the `once` and `twice` families (batches in
#     malloc'd, mmap'd, shared, remapped, freed and fresh memory, with and
#     without a CPU memset first, prefetch, madvise, fork and CPU/GPU
#     races) and the busy-unbind errno;
#   - the malloc mode of each `many` family (many execs, strided records,
#     16 queues, 2 MiB ranges);
#   - every standalone subtest but the benchmarks: partial munmap/remap
#     (plain and atomic), unaligned allocations, the bad-address fault,
#     threads on one VM and processes with their own VMs, madvise and its
#     attributes, prefetch (no GPU fault after it) and prefetch both ways,
#     MADV_DONTNEED;
#   - eviction at 9/8 of VRAM, from one process and from one per engine,
#     every value checked.
# Left out: the other 84 `many*` subtests, the benchmarks and the larger
# eviction subtests (minutes each in that guest; the whole suite at 64 MiB
# of VRAM is measured in igt-tests/README.md, "Guest results"). The
# subtests left out are listed as skipped, naming this set. The whole
# suite is guest-suite.sh without IGT_SUBTESTS.
IGT_SUBTESTS=${IGT_SUBTESTS:-'^xe_svm/((once|twice)-|many(-stride|-execqueues|-large)?-malloc$|partial-|unaligned-alloc$|fault$|threads-|process-|madvise-|prefetch$|prefetch-both-ways$|mmap-dontneed$)|^xe_svm_evict/(processes-)?evict-malloc$'}
export IGT_SUBTESTS
exec sh "$(dirname "$0")/guest-suite.sh" "$@"
