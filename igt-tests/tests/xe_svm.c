/*
 * xe_svm: shared virtual memory (the "system allocator") on an xe device,
 * following the protocol of upstream IGT's xe_exec_system_allocator: one
 * VM with the CPU address mirror over the whole VA space, batches written
 * into the test's own malloc/mmap memory and executed from there, every
 * GPU access served by a GPU page fault, and the CPU checking every value
 * the GPU wrote. igt-tests/README.md maps each subtest to the upstream one
 * it follows.
 *
 * Without an xe device every subtest skips (exit 77) with the reason.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "igt_core_abi.h"
#include "xe_batch.h"
#include "xe_device.h"
#include "xe_exec.h"
#include "xe_exec_queue.h"
#include "xe_madvise.h"
#include "xe_mem_range_attrs.h"
#include "xe_prefetch.h"
#include "xe_svm_common.h"
#include "xe_user_fence.h"
#include "xe_vm.h"

enum {
  MMAP = 1 << 0,
  SHARED = 1 << 1,
  REMAP = 1 << 2,
  DONTUNMAP = 1 << 3,
  FREE = 1 << 4,
  NEW = 1 << 5,
  PREFETCH = 1 << 6,
  MADVISE = 1 << 7,
  FORK_READ = 1 << 8,
  RACE = 1 << 9,
  NOMEMSET = 1 << 10,
  ATOMIC = 1 << 11,
};

struct mode {
  const char *name;
  unsigned flags;
};

static const struct mode modes[] = {
    {"malloc", 0},
    {"malloc-prefetch", PREFETCH},
    {"malloc-madvise", MADVISE},
    {"malloc-fork-read", FORK_READ},
    {"malloc-race", RACE},
    {"mmap", MMAP},
    {"mmap-shared", MMAP | SHARED},
    {"mmap-remap", MMAP | REMAP},
    {"mmap-remap-dontunmap", MMAP | REMAP | DONTUNMAP},
    {"free", FREE},
    {"new", NEW},
};

struct family {
  const char *name;
  unsigned n_queues, n_execs, stride;
  bool large;
};

static const struct family families[] = {
    {"once", 1, 1, 1, false},
    {"twice", 1, 2, 1, false},
    {"many", 1, 32, 1, false},
    {"many-stride", 1, 16, 256, false},
    {"many-execqueues", 16, 32, 1, false},
    {"many-large", 1, 4, 1, true},
};

static struct svm_device dev = {.fd = -1};

static size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

static void *alloc_buf(size_t size, size_t align, unsigned flags) {
  void *p;
  if (flags & MMAP) {
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, ((flags & SHARED) ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
    igt_assert(p != MAP_FAILED);
  } else {
    p = aligned_alloc(align, size);
    igt_assert(p);
  }
  if (!(flags & NOMEMSET)) memset(p, 5, size);
  return p;
}

static void free_buf(void *p, size_t size, unsigned flags) {
  if (flags & MMAP)
    munmap(p, size);
  else
    free(p);
}

/* Moves an mmap'd buffer to a fresh address (MREMAP_FIXED into a reserved
 * hole, so it really moves); with DONTUNMAP the old range stays mapped,
 * empty, and *old_out receives it. */
static void *move_buf(void *p, size_t size, unsigned flags, void **old_out) {
  void *hole = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  igt_assert(hole != MAP_FAILED);
  int mflags = MREMAP_MAYMOVE | MREMAP_FIXED | ((flags & DONTUNMAP) ? MREMAP_DONTUNMAP : 0);
  void *n = mremap(p, size, size, mflags, hole);
  igt_assert_f(n == hole, "mremap: %s\n", strerror(errno));
  *old_out = (flags & DONTUNMAP) ? p : NULL;
  return n;
}

struct race {
  struct svm_exec_data *data;
  size_t entries;
  atomic_bool stop;
  unsigned long rounds;
};

/* CPU side of the race modes: reads every record and writes its pad field
 * while the GPU writes the data fields of the same pages. */
static void *race_thread(void *arg) {
  struct race *r = arg;
  while (!atomic_load(&r->stop)) {
    for (size_t i = 0; i < r->entries; i++) {
      volatile struct svm_exec_data *e = &r->data[i];
      e->pad = e->pad + (uint64_t)e->data;
    }
    r->rounds++;
  }
  return NULL;
}

static void check_entries(struct svm_exec_data *data, unsigned n_execs, unsigned stride) {
  for (unsigned i = 0; i < n_execs; i++) {
    struct svm_exec_data *e = &data[(size_t)i * stride];
    igt_assert_f(e->data == e->expected_data, "exec %u: data %#x, expected %#x\n", i, e->data, e->expected_data);
  }
}

static void test_exec(const struct drm_xe_engine_class_instance *eci, const struct family *f, unsigned flags) {
  size_t align = f->large ? SZ_2M : SZ_4K;
  size_t entries = (size_t)f->n_execs * f->stride;
  size_t size = align_up(entries * sizeof(struct svm_exec_data) + SZ_4K, align);
  size_t one_size = align_up(sizeof(struct svm_exec_data) + SZ_4K, align);
  uint32_t vm = svm_vm_create(&dev);
  uint32_t queues[16];
  for (unsigned i = 0; i < f->n_queues; i++) queues[i] = svm_exec_queue_create(&dev, vm, eci);

  struct svm_exec_data *data = NULL;
  void *old = NULL;
  void **news = NULL;
  if (flags & NEW) news = calloc(f->n_execs, sizeof(*news));
  if (!(flags & (FREE | NEW))) data = alloc_buf(size, align, flags);

  if (data && (flags & MADVISE)) {
    int ret = xe_madvise_preferred_loc(dev.fd, vm, (uintptr_t)data, size, DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE,
                                       DRM_XE_MIGRATE_ALL_PAGES);
    igt_require_f(ret != -ENOTTY, "the kernel has no DRM_IOCTL_XE_MADVISE\n");
    igt_assert_f(ret == 0, "MADVISE preferred location device: %s\n", strerror(-ret));
  }

  uint64_t *fence = (flags & RACE) ? NULL : svm_fence_alloc();
  struct race race = {.data = data, .entries = entries};
  pthread_t racer;
  if (flags & RACE) igt_assert_eq(pthread_create(&racer, NULL, race_thread, &race), 0);

  unsigned remap_at = (f->n_execs - 1) / 2;
  for (unsigned i = 0; i < f->n_execs; i++) {
    struct svm_exec_data *buf = data;
    size_t idx = (size_t)i * f->stride;
    if (flags & (FREE | NEW)) {
      buf = alloc_buf(one_size, align, flags);
      idx = 0;
    }
    struct svm_exec_data *e = &buf[idx];
    svm_write_batch(e, svm_value(i), flags & ATOMIC);
    if (flags & PREFETCH) {
      /* After the CPU wrote the batch: move the record's pages to VRAM (or
       * system memory on an integrated device) before the GPU uses it. */
      const struct drm_xe_mem_region *vram = xe_info_near_vram(&dev.info, 0);
      uint64_t *pf = svm_fence_alloc();
      struct drm_xe_sync sync = xe_user_fence_sync(pf, XE_USER_FENCE_VALUE);
      uint64_t start = (uintptr_t)e & ~(SZ_4K - 1);
      uint64_t end = align_up((uintptr_t)(e + 1), SZ_4K);
      int ret = xe_vm_prefetch(dev.fd, vm, start, end - start, vram ? vram->instance : 0, &sync);
      igt_assert_f(ret == 0, "PREFETCH: %s\n", strerror(-ret));
      igt_assert_eq(xe_wait_user_fence(dev.fd, pf, XE_USER_FENCE_VALUE, 0, XE_FIVE_SEC), 0);
      svm_fence_free(pf);
    }
    svm_exec_wait(&dev, queues[i % f->n_queues], e->batch, (flags & RACE) ? &e->exec_sync : fence, XE_FIVE_SEC);
    /* The CPU touches the result between GPU accesses. */
    igt_assert_f(e->data == e->expected_data, "exec %u: data %#x, expected %#x\n", i, e->data, e->expected_data);
    if (flags & FREE) free_buf(buf, one_size, flags);
    if (flags & NEW) news[i] = buf;
    if ((flags & REMAP) && i == remap_at) {
      data = move_buf(data, size, flags, &old);
      race.data = data;
      check_entries(data, i + 1, f->stride); /* the values moved along */
    }
  }

  if (flags & RACE) {
    atomic_store(&race.stop, true);
    pthread_join(racer, NULL);
    igt_debug("race: %lu CPU rounds\n", race.rounds);
  }
  if (data) check_entries(data, f->n_execs, f->stride);
  if (news)
    for (unsigned i = 0; i < f->n_execs; i++) check_entries(news[i], 1, 1);
  if (flags & FORK_READ) {
    igt_fork(child, 1) { check_entries(data, f->n_execs, f->stride); }
    igt_waitchildren();
    check_entries(data, f->n_execs, f->stride);
  }

  for (unsigned i = 0; i < f->n_queues; i++) svm_exec_queue_destroy(&dev, queues[i]);
  svm_vm_destroy(&dev, vm);
  if (fence) svm_fence_free(fence);
  if (data) free_buf(data, size, flags);
  if (old) munmap(old, size);
  if (news) {
    for (unsigned i = 0; i < f->n_execs; i++) free_buf(news[i], one_size, flags);
    free(news);
  }
}

static void for_each_engine_exec(const struct family *f, unsigned flags) {
  for (unsigned e = 0; e < svm_num_engines(&dev); e++) test_exec(svm_engine(&dev, e), f, flags);
}

/* Partial munmap / remap of a 2 MiB region the GPU has touched: records at
 * the start of each half; the first half is unmapped (or replaced by a
 * fresh mapping) after the GPU wrote both; the second half keeps its data
 * and the GPU can write it (and the replacement) again. */
static void test_partial(bool remap, bool cpu_fault, bool atomic) {
  const struct drm_xe_engine_class_instance *eci = svm_engine(&dev, 0);
  struct svm_session s;
  svm_session_begin(&s, &dev, eci);
  char *region = mmap(NULL, SZ_2M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  igt_assert(region != MAP_FAILED);
  memset(region, 5, SZ_2M);
  struct svm_exec_data *lo = (void *)region, *hi = (void *)(region + SZ_1M);

  svm_write_batch(lo, svm_value(0), atomic);
  svm_write_batch(hi, svm_value(1), atomic);
  uint32_t hi_value = hi->expected_data;
  svm_exec_wait(&dev, s.q, lo->batch, s.fence, XE_FIVE_SEC);
  svm_exec_wait(&dev, s.q, hi->batch, s.fence, XE_FIVE_SEC);
  if (cpu_fault) igt_assert_eq_u32(lo->data, lo->expected_data);

  igt_assert_eq(munmap(region, SZ_1M), 0);
  if (remap) {
    void *p = mmap(region, SZ_1M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    igt_assert(p == region);
    memset(region, 5, SZ_1M);
  }
  igt_assert_f(hi->data == hi_value, "second half lost its data over the partial unmap: %#x, expected %#x\n", hi->data,
               hi_value);
  svm_write_batch(hi, svm_value(2), atomic);
  svm_exec_wait(&dev, s.q, hi->batch, s.fence, XE_FIVE_SEC);
  igt_assert_eq_u32(hi->data, hi->expected_data);
  if (remap) {
    svm_write_batch(lo, svm_value(3), atomic);
    svm_exec_wait(&dev, s.q, lo->batch, s.fence, XE_FIVE_SEC);
    igt_assert_eq_u32(lo->data, lo->expected_data);
  }

  svm_session_end(&s);
  munmap(region + (remap ? 0 : SZ_1M), remap ? SZ_2M : SZ_1M);
}

/* Three 1.5 MiB malloc blocks (not 2 MiB aligned, so each straddles a
 * 2 MiB boundary or shares a 2 MiB range with its neighbour), a record
 * every 4 KiB; the execs of one block carry no fence but the last
 * (in-order queue). Upstream uses nine: three show the same boundaries
 * at a third of the execs. */
static void test_unaligned_alloc(void) {
  const struct drm_xe_engine_class_instance *eci = svm_engine(&dev, 0);
  struct svm_session s;
  svm_session_begin(&s, &dev, eci);
  enum { N = 3 };
  const size_t size = SZ_1M + SZ_1M / 2;
  char *blocks[N];
  for (int b = 0; b < N; b++) {
    blocks[b] = malloc(size);
    igt_assert(blocks[b]);
    char *first = (char *)align_up((uintptr_t)blocks[b], SZ_4K);
    size_t n = (blocks[b] + size - first) / SZ_4K - 1;
    for (size_t k = 0; k < n; k++) {
      struct svm_exec_data *e = (void *)(first + k * SZ_4K);
      svm_write_batch(e, svm_value((unsigned)k), false);
      if (k + 1 < n) {
        igt_assert_eq(xe_exec(dev.fd, s.q, (uintptr_t)e->batch, NULL, 0), 0);
      } else {
        svm_exec_wait(&dev, s.q, e->batch, s.fence, XE_FIVE_SEC);
      }
    }
    for (size_t k = 0; k < n; k++) {
      struct svm_exec_data *e = (void *)(first + k * SZ_4K);
      igt_assert_f(e->data == e->expected_data, "block %d page %zu: %#x, expected %#x\n", b, k, e->data,
                   e->expected_data);
    }
  }
  svm_session_end(&s);
  for (int b = 0; b < N; b++) free(blocks[b]);
}

/* An exec whose batch address has no CPU mapping: the exec is accepted,
 * the fence is never written, the wait fails with -ETIME or -EIO within
 * its 250 ms bound, and the VM still runs work from a new queue. */
static void test_fault(void) {
  const struct drm_xe_engine_class_instance *eci = svm_engine(&dev, 0);
  uint32_t vm = svm_vm_create(&dev);
  uint32_t queues[4];
  for (int i = 0; i < 4; i++) queues[i] = svm_exec_queue_create(&dev, vm, eci);
  uint64_t *fence = svm_fence_alloc();
  /* Last before the exec, so no later mapping of this process lands in it. */
  void *hole = mmap(NULL, SZ_2M, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  igt_assert(hole != MAP_FAILED);
  igt_assert_eq(munmap(hole, SZ_2M), 0);

  igt_assert_eq(xe_exec_with_user_fence(dev.fd, queues[0], (uintptr_t)hole, fence, XE_USER_FENCE_VALUE), 0);
  uint64_t t0 = svm_now_ns();
  int ret = xe_wait_user_fence(dev.fd, fence, XE_USER_FENCE_VALUE, queues[0], XE_QUARTER_SEC);
  uint64_t waited = svm_now_ns() - t0;
  igt_assert_f(ret == -ETIME || ret == -EIO, "wait on a faulting exec returned %d (%s), expected -ETIME or -EIO\n", ret,
               strerror(-ret));
  igt_assert_f(*fence != XE_USER_FENCE_VALUE, "the fence of a faulting batch was written\n");
  /* 250 ms bound plus scheduling slack for a loaded guest. */
  igt_assert_f(waited < 750000000ull, "the wait took %llu ms\n", (unsigned long long)(waited / 1000000));
  igt_info("fault: wait returned %s after %llu ms\n", ret == -EIO ? "-EIO" : "-ETIME",
           (unsigned long long)(waited / 1000000));

  struct svm_exec_data *data = aligned_alloc(SZ_4K, SZ_4K);
  igt_assert(data);
  uint32_t q = svm_exec_queue_create(&dev, vm, eci);
  svm_write_batch(data, svm_value(0), false);
  svm_exec_wait(&dev, q, data->batch, fence, XE_FIVE_SEC);
  igt_assert_eq_u32(data->data, data->expected_data);
  svm_exec_queue_destroy(&dev, q);
  for (int i = 0; i < 4; i++) svm_exec_queue_destroy(&dev, queues[i]);
  svm_vm_destroy(&dev, vm);
  svm_fence_free(fence);
  free(data);
}

struct thread_arg {
  uint32_t q;
  struct svm_exec_data *recs; /* this thread's records */
  uint32_t *shared_counter;   /* same-addr: every exec increments it */
  uint64_t *fence;
  int error; /* first -errno or 1 for a wrong value */
};

enum { THREAD_EXECS = 64 };

static void *shared_vm_thread(void *p) {
  struct thread_arg *a = p;
  for (unsigned i = 0; i < THREAD_EXECS && !a->error; i++) {
    struct svm_exec_data *e = &a->recs[i];
    struct xe_batch b;
    xe_batch_init(&b, e->batch, 32);
    if (a->shared_counter) {
      xe_batch_atomic_inc(&b, (uintptr_t)a->shared_counter);
    } else {
      e->expected_data = svm_value(i);
      xe_batch_store_dword(&b, (uintptr_t)&e->data, e->expected_data);
    }
    xe_batch_end(&b);
    int ret =
        b.error ? b.error : xe_exec_with_user_fence(dev.fd, a->q, (uintptr_t)e->batch, a->fence, XE_USER_FENCE_VALUE);
    if (!ret) ret = xe_wait_user_fence(dev.fd, a->fence, XE_USER_FENCE_VALUE, a->q, XE_FIVE_SEC);
    *a->fence = 0;
    if (ret)
      a->error = ret;
    else if (!a->shared_counter && e->data != e->expected_data)
      a->error = 1;
  }
  return NULL;
}

/* Threads (one per engine, at least two) submit on one VM: to their own
 * records, or all incrementing one counter with MI_ATOMIC. */
static void test_threads_shared_vm(bool same_addr) {
  unsigned n = svm_num_engines(&dev) < 2 ? 2 : svm_num_engines(&dev);
  if (n > 8) n = 8;
  uint32_t vm = svm_vm_create(&dev);
  struct svm_exec_data *recs = aligned_alloc(SZ_2M, align_up((size_t)n * THREAD_EXECS * sizeof(*recs), SZ_2M));
  igt_assert(recs);
  memset(recs, 5, (size_t)n * THREAD_EXECS * sizeof(*recs));
  uint32_t *counter = aligned_alloc(SZ_4K, SZ_4K);
  igt_assert(counter);
  *counter = 0;
  struct thread_arg args[8];
  pthread_t th[8];
  for (unsigned t = 0; t < n; t++) {
    args[t] = (struct thread_arg){
        .q = svm_exec_queue_create(&dev, vm, svm_engine(&dev, t % svm_num_engines(&dev))),
        .recs = recs + (size_t)t * THREAD_EXECS,
        .shared_counter = same_addr ? counter : NULL,
        .fence = svm_fence_alloc(),
    };
  }
  for (unsigned t = 0; t < n; t++) igt_assert_eq(pthread_create(&th[t], NULL, shared_vm_thread, &args[t]), 0);
  for (unsigned t = 0; t < n; t++) pthread_join(th[t], NULL);
  for (unsigned t = 0; t < n; t++) {
    igt_assert_f(args[t].error == 0, "thread %u: %s\n", t,
                 args[t].error == 1 ? "a GPU-written value differs" : strerror(-args[t].error));
    svm_exec_queue_destroy(&dev, args[t].q);
    svm_fence_free(args[t].fence);
  }
  if (same_addr) igt_assert_eq_u32(*counter, n * THREAD_EXECS);
  if (!same_addr)
    for (unsigned t = 0; t < n; t++) check_entries(args[t].recs, THREAD_EXECS, 1);
  svm_vm_destroy(&dev, vm);
  free(recs);
  free(counter);
}

/* One forked process per engine, each with its own fd and VM. */
static void test_processes(const struct family *f) {
  unsigned n = svm_num_engines(&dev);
  igt_fork(child, (int)n) {
    struct svm_device parent = dev;
    char why[128];
    dev.fd = xe_device_open(why, sizeof(why));
    igt_assert_f(dev.fd >= 0, "child %d: xe device reopen failed %s\n", child, why);
    test_exec(svm_engine(&parent, (unsigned)child), f, 0);
    close(dev.fd);
  }
  igt_waitchildren();
}

static int madvise_or_skip(int ret, const char *what) {
  igt_require_f(ret != -ENOTTY, "the kernel has no DRM_IOCTL_XE_MADVISE\n");
  igt_assert_f(ret == 0, "MADVISE %s: %s\n", what, strerror(-ret));
  return ret;
}

/* Preferred location system memory: GPU accesses map the pages where they
 * are; nothing is copied to the device (svm_device_copy_kb unchanged). */
static void test_madvise_preferred_loc_sram(void) {
  const struct drm_xe_engine_class_instance *eci = svm_engine(&dev, 0);
  int64_t before = svm_require_stat(&dev, "svm_device_copy_kb");
  struct svm_session s;
  svm_session_begin(&s, &dev, eci);
  struct svm_exec_data *data = aligned_alloc(SZ_64K, SZ_64K);
  igt_assert(data);
  memset(data, 5, SZ_64K);
  madvise_or_skip(xe_madvise_preferred_loc(dev.fd, s.vm, (uintptr_t)data, SZ_64K, DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM,
                                           DRM_XE_MIGRATE_ALL_PAGES),
                  "preferred location system");
  const unsigned n = SZ_64K / SZ_4K;
  for (unsigned i = 0; i < n; i++) {
    struct svm_exec_data *e = (void *)((char *)data + i * SZ_4K);
    svm_write_batch(e, svm_value(i), false);
    svm_exec_wait(&dev, s.q, e->batch, s.fence, XE_FIVE_SEC);
  }
  for (unsigned i = 0; i < n; i++) {
    struct svm_exec_data *e = (void *)((char *)data + i * SZ_4K);
    igt_assert_eq_u32(e->data, e->expected_data);
  }
  int64_t after = svm_require_stat(&dev, "svm_device_copy_kb");
  igt_assert_f(after == before, "svm_device_copy_kb rose from %lld to %lld with preferred location system\n",
               (long long)before, (long long)after);
  svm_session_end(&s);
  free(data);
}

/* Atomic mode device: the GPU increment works on malloc memory. Atomic mode
 * global: 100 CPU atomics and one GPU atomic make 101 (xe_madvise). */
static void test_madvise_atomic(uint32_t mode) {
  const struct drm_xe_engine_class_instance *eci = svm_engine(&dev, 0);
  struct svm_session s;
  svm_session_begin(&s, &dev, eci);
  struct svm_exec_data *data = aligned_alloc(SZ_64K, SZ_64K);
  igt_assert(data);
  memset(data, 0, SZ_64K);
  madvise_or_skip(xe_madvise_atomic(dev.fd, s.vm, (uintptr_t)data, SZ_64K, mode), "atomic");
  struct xe_batch b;
  xe_batch_init(&b, data->batch, 32);
  xe_batch_atomic_inc(&b, (uintptr_t)&data->data);
  xe_batch_end(&b);
  igt_assert_eq(b.error, 0);
  data->data = 0;
  unsigned cpu_ops = mode == DRM_XE_ATOMIC_GLOBAL ? 100 : 0;
  for (unsigned i = 0; i < cpu_ops; i++) __atomic_fetch_add(&data->data, 1, __ATOMIC_SEQ_CST);
  svm_exec_wait(&dev, s.q, data->batch, s.fence, XE_FIVE_SEC);
  igt_assert_eq_u32(data->data, cpu_ops + 1);
  svm_exec_wait(&dev, s.q, data->batch, s.fence, XE_FIVE_SEC);
  igt_assert_eq_u32(__atomic_add_fetch(&data->data, 1, __ATOMIC_SEQ_CST), cpu_ops + 3);
  svm_session_end(&s);
  free(data);
}

static const struct drm_xe_mem_range_attr *attr_at(const struct drm_xe_mem_range_attr *a, uint32_t n, uint64_t va) {
  for (uint32_t i = 0; i < n; i++)
    if (a[i].start <= va && va < a[i].end) return &a[i];
  return NULL;
}

/* Two overlapping madvise calls split the mirror: [0,32K) system only,
 * [32K,64K) system + atomic device, [64K,96K) atomic device only; the
 * query reads each back. */
static void test_madvise_split(void) {
  uint32_t vm = svm_vm_create(&dev);
  char *buf = aligned_alloc(SZ_2M, SZ_2M);
  igt_assert(buf);
  memset(buf, 5, SZ_2M);
  uint64_t base = (uintptr_t)buf;
  madvise_or_skip(
      xe_madvise_preferred_loc(dev.fd, vm, base, SZ_64K, DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM, DRM_XE_MIGRATE_ALL_PAGES),
      "preferred location system");
  madvise_or_skip(xe_madvise_atomic(dev.fd, vm, base + 32 * 1024, SZ_64K, DRM_XE_ATOMIC_DEVICE), "atomic device");
  struct drm_xe_mem_range_attr *attrs;
  uint32_t n;
  int ret = xe_query_mem_range_attrs(dev.fd, vm, base, 96 * 1024, &attrs, &n);
  igt_require_f(ret != -ENOTTY, "the kernel has no DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS\n");
  igt_assert_f(ret == 0, "VM_QUERY_MEM_RANGE_ATTRS: %s\n", strerror(-ret));
  const uint32_t sys = (uint32_t)DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM;
  const struct {
    uint64_t off;
    bool system, atomic_device;
  } want[] = {{0, true, false}, {32 * 1024, true, true}, {64 * 1024, false, true}};
  for (unsigned i = 0; i < 3; i++) {
    const struct drm_xe_mem_range_attr *a = attr_at(attrs, n, base + want[i].off);
    igt_assert_f(a, "no range covers offset %lluK\n", (unsigned long long)(want[i].off >> 10));
    igt_assert_f((a->preferred_mem_loc.devmem_fd == sys) == want[i].system, "offset %lluK: devmem_fd %d\n",
                 (unsigned long long)(want[i].off >> 10), (int)a->preferred_mem_loc.devmem_fd);
    igt_assert_f((a->atomic.val == DRM_XE_ATOMIC_DEVICE) == want[i].atomic_device, "offset %lluK: atomic %u\n",
                 (unsigned long long)(want[i].off >> 10), a->atomic.val);
  }
  /* The split points are range boundaries. */
  igt_assert(attr_at(attrs, n, base + 32 * 1024 - 1) != attr_at(attrs, n, base + 32 * 1024));
  igt_assert(attr_at(attrs, n, base + 64 * 1024 - 1) != attr_at(attrs, n, base + 64 * 1024));
  free(attrs);
  svm_vm_destroy(&dev, vm);
  free(buf);
}

static void prefetch_wait(uint32_t vm, uint64_t start, uint64_t range, uint32_t region) {
  uint64_t *pf = svm_fence_alloc();
  struct drm_xe_sync sync = xe_user_fence_sync(pf, XE_USER_FENCE_VALUE);
  int ret = xe_vm_prefetch(dev.fd, vm, start, range, region, &sync);
  igt_assert_f(ret == 0, "PREFETCH of %lluK to region %u: %s\n", (unsigned long long)(range >> 10), region,
               strerror(-ret));
  igt_assert_eq(xe_wait_user_fence(dev.fd, pf, XE_USER_FENCE_VALUE, 0, XE_FIVE_SEC), 0);
  svm_fence_free(pf);
}

/* A prefetched record needs no GPU page fault: svm_pagefault_count does
 * not rise while the GPU runs the batch in it and writes its fence. */
static void test_prefetch(void) {
  uint32_t region = svm_require_vram_instance(&dev);
  svm_require_stat(&dev, "svm_pagefault_count");
  const struct drm_xe_engine_class_instance *eci = svm_engine(&dev, 0);
  uint32_t vm = svm_vm_create(&dev);
  uint32_t q = svm_exec_queue_create(&dev, vm, eci);
  struct svm_exec_data *data = aligned_alloc(SZ_2M, SZ_2M);
  igt_assert(data);
  memset(data, 5, SZ_2M);
  /* The exec fence stays in a shared page the CPU polls: bound in place
   * (prefetch to system memory) so that the GPU's fence write needs no
   * fault either, and the kernel's reads of it move nothing. */
  uint64_t *fence = svm_fence_alloc();
  prefetch_wait(vm, (uintptr_t)fence, SZ_4K, 0);
  for (unsigned i = 0; i < 4; i++) {
    struct svm_exec_data *e = (void *)((char *)data + i * SZ_64K);
    svm_write_batch(e, svm_value(i), false);
    prefetch_wait(vm, (uintptr_t)e, SZ_64K, region);
    int64_t before = svm_stat(&dev, "svm_pagefault_count");
    svm_exec_wait(&dev, q, e->batch, fence, XE_FIVE_SEC);
    int64_t after = svm_stat(&dev, "svm_pagefault_count");
    igt_assert_f(after == before, "exec %u after a prefetch faulted: svm_pagefault_count %lld -> %lld\n", i,
                 (long long)before, (long long)after);
    igt_assert_eq_u32(e->data, e->expected_data);
  }
  svm_exec_queue_destroy(&dev, q);
  svm_vm_destroy(&dev, vm);
  svm_fence_free(fence);
  free(data);
}

/* Prefetch to VRAM, GPU writes, prefetch back to system memory (region 0):
 * every value and every untouched byte is intact in system memory. */
static void test_prefetch_both_ways(void) {
  uint32_t region = svm_require_vram_instance(&dev);
  const struct drm_xe_engine_class_instance *eci = svm_engine(&dev, 0);
  struct svm_session s;
  svm_session_begin(&s, &dev, eci);
  const size_t size = 4 * SZ_1M;
  unsigned char *buf = aligned_alloc(SZ_2M, size);
  igt_assert(buf);
  for (size_t i = 0; i < size; i++) buf[i] = (unsigned char)(i * 7 + 3);
  const unsigned n = size / SZ_64K;
  for (unsigned i = 0; i < n; i++) svm_write_batch((void *)(buf + i * SZ_64K), svm_value(i), false);
  prefetch_wait(s.vm, (uintptr_t)buf, size, region);
  for (unsigned i = 0; i < n; i++) {
    struct svm_exec_data *e = (void *)(buf + i * SZ_64K);
    if (i + 1 < n)
      igt_assert_eq(xe_exec(dev.fd, s.q, (uintptr_t)e->batch, NULL, 0), 0);
    else
      svm_exec_wait(&dev, s.q, e->batch, s.fence, XE_FIVE_SEC); /* in order: all done */
  }
  prefetch_wait(s.vm, (uintptr_t)buf, size, 0);
  for (unsigned i = 0; i < n; i++) {
    struct svm_exec_data *e = (void *)(buf + i * SZ_64K);
    igt_assert_f(e->data == e->expected_data, "record %u: %#x, expected %#x\n", i, e->data, e->expected_data);
    for (size_t k = sizeof(*e); k < SZ_64K; k++) {
      size_t at = i * SZ_64K + k;
      igt_assert_f(buf[at] == (unsigned char)(at * 7 + 3), "byte %zu changed\n", at);
    }
  }
  svm_session_end(&s);
  free(buf);
}

/* Unbinding the mirror while a GPU-touched buffer is still allocated is
 * refused with -EBUSY (upstream's *-busy modes). */
static void test_busy(void) {
  const struct drm_xe_engine_class_instance *eci = svm_engine(&dev, 0);
  struct svm_session s;
  svm_session_begin(&s, &dev, eci);
  struct svm_exec_data *data = aligned_alloc(SZ_2M, SZ_2M);
  igt_assert(data);
  memset(data, 5, SZ_2M);
  svm_write_batch(data, svm_value(0), false);
  svm_exec_wait(&dev, s.q, data->batch, s.fence, XE_FIVE_SEC);
  igt_assert_eq_u32(data->data, data->expected_data);
  int ret = xe_vm_unbind(dev.fd, s.vm, 0, 1ull << dev.va_bits, NULL);
  igt_assert_f(ret == -EBUSY, "unbinding a live mirror returned %d (%s), expected -EBUSY\n", ret, strerror(-ret));
  svm_session_end(&s);
  free(data);
}

/* Records [from, to) at a 64 KiB stride in buf: the CPU writes every
 * batch first, then they run in order on the session's queue, the last
 * one with the fence (one CPU/GPU hand-over of the 2 MiB range instead of
 * one per record). */
static void run_records(struct svm_session *s, char *buf, unsigned from, unsigned to) {
  for (unsigned i = from; i < to; i++) svm_write_batch((void *)(buf + i * SZ_64K), svm_value(i), false);
  for (unsigned i = from; i < to; i++) {
    struct svm_exec_data *e = (void *)(buf + i * SZ_64K);
    if (i + 1 < to)
      igt_assert_eq(xe_exec(dev.fd, s->q, (uintptr_t)e->batch, NULL, 0), 0);
    else
      svm_exec_wait(&dev, s->q, e->batch, s->fence, XE_FIVE_SEC);
  }
}

/* MADV_DONTNEED on half of a GPU-written private mapping: that half reads
 * back as zeros, the other half keeps its values, and the GPU can write the
 * dropped half again. */
static void test_dontneed(void) {
  const struct drm_xe_engine_class_instance *eci = svm_engine(&dev, 0);
  struct svm_session s;
  svm_session_begin(&s, &dev, eci);
  char *buf = mmap(NULL, SZ_2M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  igt_assert(buf != MAP_FAILED);
  memset(buf, 5, SZ_2M);
  const unsigned n = SZ_2M / SZ_64K;
  run_records(&s, buf, 0, n);
  igt_assert_eq(madvise(buf + SZ_1M, SZ_1M, MADV_DONTNEED), 0);
  for (unsigned i = 0; i < n; i++) {
    struct svm_exec_data *e = (void *)(buf + i * SZ_64K);
    if (i < n / 2)
      igt_assert_eq_u32(e->data, e->expected_data);
    else
      igt_assert_f(e->data == 0 && e->batch[0] == 0, "record %u survived MADV_DONTNEED\n", i);
  }
  run_records(&s, buf, n / 2, n);
  for (unsigned i = n / 2; i < n; i++) {
    struct svm_exec_data *e = (void *)(buf + i * SZ_64K);
    igt_assert_eq_u32(e->data, e->expected_data);
  }
  svm_session_end(&s);
  munmap(buf, SZ_2M);
}

/* The benchmarks' buffer: 64 MiB, or half the VRAM near GT 0 when that is
 * smaller (the buffer must fit in VRAM next to what else is there, so that
 * the figures measure faults and prefetches, not eviction), or less when
 * XE_SVM_BENCH_MIB asks (a short run under emulation); a multiple of
 * 2 MiB. */
static size_t bench_size(void) {
  uint64_t vram = xe_info_vram_size(&dev.info, 0);
  size_t size = SZ_64M;
  if (vram && vram / 2 < size) size = (size_t)(vram / 2) & ~(size_t)(SZ_2M - 1);
  const char *want = getenv("XE_SVM_BENCH_MIB");
  if (want && *want) {
    char *end = NULL;
    unsigned long mib = strtoul(want, &end, 10);
    igt_assert_f(*end == 0 && mib >= 2 && mib % 2 == 0,
                 "XE_SVM_BENCH_MIB=%s: expected an even number of MiB, at least 2\n", want);
    if ((size_t)mib << 20 < size) size = (size_t)mib << 20;
  }
  igt_require_f(size >= SZ_2M, "VRAM near GT 0 is %llu KiB: too small for a 2 MiB benchmark buffer\n",
                (unsigned long long)(vram >> 10));
  return size;
}

/* GPU touches of one store per 4 KiB page of a buffer, built into one
 * batch; returns the time in ns. */
static uint64_t gpu_touch(uint32_t q, uint32_t *batch, size_t batch_dw, unsigned char *buf, size_t size, uint32_t salt,
                          uint64_t *fence) {
  struct xe_batch b;
  xe_batch_init(&b, batch, batch_dw);
  for (size_t off = 0; off < size; off += SZ_4K) xe_batch_store_dword(&b, (uintptr_t)(buf + off), salt + off);
  xe_batch_end(&b);
  igt_assert_eq(b.error, 0);
  uint64_t t0 = svm_now_ns();
  svm_exec_wait(&dev, q, batch, fence, 60 * XE_NSEC_PER_SEC);
  return svm_now_ns() - t0;
}

static unsigned check_pages(const unsigned char *buf, size_t size, uint32_t salt, size_t first, size_t step) {
  unsigned bad = 0;
  for (size_t off = first * SZ_4K; off < size; off += step * SZ_4K)
    bad += *(const uint32_t *)(buf + off) != (uint32_t)(salt + off);
  return bad;
}

struct reader {
  const unsigned char *buf;
  size_t size, first, step;
  uint32_t salt;
  unsigned bad;
};

static void *reader_thread(void *p) {
  struct reader *r = p;
  r->bad = check_pages(r->buf, r->size, r->salt, r->first, r->step);
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* fault-benchmark: the GPU touches 64 MiB (half the VRAM if that is less;
 * page faults), then 1 reader, 8 threads and 8 processes read it back;
 * medians of 3 runs each. */
static void test_fault_benchmark(void) {
  const struct drm_xe_engine_class_instance *eci = svm_engine(&dev, 0);
  const size_t size = bench_size(), batch_dw = (size / SZ_4K) * XE_STORE_DWORD_DWORDS + 1;
  struct svm_session s;
  svm_session_begin(&s, &dev, eci);
  unsigned char *buf = aligned_alloc(SZ_2M, size);
  uint32_t *batch = aligned_alloc(SZ_4K, align_up(batch_dw * 4, SZ_4K));
  igt_assert(buf && batch);
  memset(buf, 5, size);
  enum { RUNS = 3 };
  uint64_t touch[3][RUNS], read[3][RUNS];
  for (int kind = 0; kind < 3; kind++) {
    for (int r = 0; r < RUNS; r++) {
      uint32_t salt = svm_value((unsigned)(kind * RUNS + r));
      touch[kind][r] = gpu_touch(s.q, batch, batch_dw, buf, size, salt, s.fence);
      uint64_t t0 = svm_now_ns();
      unsigned bad = 0;
      if (kind == 0) {
        bad = check_pages(buf, size, salt, 0, 1);
      } else if (kind == 1) {
        struct reader rd[8];
        pthread_t th[8];
        for (int t = 0; t < 8; t++) {
          rd[t] = (struct reader){.buf = buf, .size = size, .first = (size_t)t, .step = 8, .salt = salt};
          igt_assert_eq(pthread_create(&th[t], NULL, reader_thread, &rd[t]), 0);
        }
        for (int t = 0; t < 8; t++) {
          pthread_join(th[t], NULL);
          bad += rd[t].bad;
        }
      } else {
        igt_fork(child, 8) { igt_assert_eq(check_pages(buf, size, salt, (size_t)child, 8), 0); }
        igt_waitchildren();
      }
      read[kind][r] = svm_now_ns() - t0;
      igt_assert_f(bad == 0, "%u pages read back wrong\n", bad);
    }
    qsort(touch[kind], RUNS, sizeof(uint64_t), cmp_u64);
    qsort(read[kind], RUNS, sizeof(uint64_t), cmp_u64);
  }
  static const char *const names[] = {"1 reader", "8 threads", "8 processes"};
  for (int kind = 0; kind < 3; kind++)
    igt_info("fault-benchmark: GPU touch of %zu MiB %.3f ms, read back by %s %.3f ms (medians of %d)\n", size >> 20,
             touch[kind][RUNS / 2] / 1e6, names[kind], read[kind][RUNS / 2] / 1e6, RUNS);
  svm_session_end(&s);
  free(buf);
  free(batch);
}

/* prefetch-benchmark: 64 MiB (half the VRAM if that is less) prefetched
 * to VRAM and back, bandwidth medians of 5 runs; the bytes survive the
 * round trips. */
static void test_prefetch_benchmark(void) {
  uint32_t region = svm_require_vram_instance(&dev);
  const size_t size = bench_size();
  uint32_t vm = svm_vm_create(&dev);
  uint64_t *buf = aligned_alloc(SZ_2M, size);
  igt_assert(buf);
  for (size_t i = 0; i < size / 8; i++) buf[i] = i * 0x9e3779b97f4a7c15ull;
  enum { RUNS = 5 };
  uint64_t to_vram[RUNS], to_sys[RUNS];
  for (int r = 0; r < RUNS; r++) {
    uint64_t t0 = svm_now_ns();
    prefetch_wait(vm, (uintptr_t)buf, size, region);
    uint64_t t1 = svm_now_ns();
    prefetch_wait(vm, (uintptr_t)buf, size, 0);
    to_sys[r] = svm_now_ns() - t1;
    to_vram[r] = t1 - t0;
  }
  for (size_t i = 0; i < size / 8; i++)
    igt_assert_f(buf[i] == i * 0x9e3779b97f4a7c15ull, "qword %zu changed over prefetch round trips\n", i);
  qsort(to_vram, RUNS, sizeof(uint64_t), cmp_u64);
  qsort(to_sys, RUNS, sizeof(uint64_t), cmp_u64);
  const double mib = (double)(size >> 20);
  igt_info("prefetch-benchmark: %zu MiB to VRAM %.1f MiB/s, to system %.1f MiB/s (medians of %d)\n", size >> 20,
           mib / (to_vram[RUNS / 2] / 1e9), mib / (to_sys[RUNS / 2] / 1e9), RUNS);
  svm_vm_destroy(&dev, vm);
  free(buf);
}

int igt_main() {
  igt_fixture() { svm_device_open(&dev); }

  for (volatile size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++)
    for (volatile size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
      for (volatile int nomemset = 0; nomemset < 2; nomemset++)
        igt_subtest_f("%s-%s%s", families[f].name, modes[m].name, nomemset ? "-nomemset" : "")
            for_each_engine_exec(&families[f], modes[m].flags | (nomemset ? NOMEMSET : 0));

  for (volatile int atomic = 0; atomic < 2; atomic++)
    for (volatile int remap = 0; remap < 2; remap++)
      for (volatile int cpu_fault = 0; cpu_fault < 2; cpu_fault++)
        igt_subtest_f("partial-%s%s-%s", atomic ? "atomic-" : "", remap ? "remap" : "munmap",
                      cpu_fault ? "cpu-fault" : "no-cpu-fault") test_partial(remap, cpu_fault, atomic);

  igt_subtest("unaligned-alloc") test_unaligned_alloc();
  igt_subtest("fault") test_fault();
  igt_subtest("threads-shared-vm-shared-alloc-many-malloc") test_threads_shared_vm(true);
  igt_subtest("threads-shared-vm-many-malloc") test_threads_shared_vm(false);
  igt_subtest("process-many-malloc") test_processes(&families[2]);
  igt_subtest("process-many-stride-malloc") test_processes(&families[3]);
  igt_subtest("madvise-preferred-loc-sram") test_madvise_preferred_loc_sram();
  igt_subtest("madvise-atomic-device") test_madvise_atomic(DRM_XE_ATOMIC_DEVICE);
  igt_subtest("madvise-atomic-global") test_madvise_atomic(DRM_XE_ATOMIC_GLOBAL);
  igt_subtest("madvise-split") test_madvise_split();
  igt_subtest("prefetch") test_prefetch();
  igt_subtest("prefetch-both-ways") test_prefetch_both_ways();
  igt_subtest("once-malloc-busy") test_busy();
  igt_subtest("mmap-dontneed") test_dontneed();
  igt_subtest("fault-benchmark") test_fault_benchmark();
  igt_subtest("prefetch-benchmark") test_prefetch_benchmark();

  igt_fixture() { svm_device_close(&dev); }
}
