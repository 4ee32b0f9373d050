/*
 * xe_svm_evict: SVM under VRAM pressure. Plain malloc'd memory bigger than
 * the device's VRAM is used by the GPU through the CPU address mirror, so
 * GPU page faults migrate pages into VRAM and, when it is full, evict
 * earlier ones back to system memory; the CPU then checks every value or
 * every byte. Follows upstream xe_exec_system_allocator's evict-malloc and
 * processes-evict-malloc (and, for copies, xe_evict's every-buffer check);
 * igt-tests/README.md maps each subtest.
 *
 * Needs an xe device with VRAM near GT 0; skips (exit 77) otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "igt_core_abi.h"
#include "xe_batch.h"
#include "xe_device.h"
#include "xe_exec.h"
#include "xe_svm_common.h"
#include "xe_user_fence.h"

#define LONG_WAIT (120 * XE_NSEC_PER_SEC)

static struct svm_device dev = {.fd = -1};

static uint64_t pattern(uint64_t i) { return (i + 1) * 0x9e3779b97f4a7c15ull; }

/* Fills `total` bytes of VRAM pressure with 8 MiB malloc chunks, each
 * touched by 8 store-dword execs at a 1 MiB stride (one fence per chunk,
 * on its last exec), then checks every record of every chunk, and that
 * data left VRAM while the GPU ran (eviction happened). */
static void evict_malloc(const struct drm_xe_engine_class_instance *eci, uint64_t total) {
  size_t n_chunks = (size_t)(total / SZ_8M);
  if (n_chunks == 0) n_chunks = 1;
  svm_require_ram(n_chunks * SZ_8M);
  struct svm_session s;
  svm_session_begin(&s, &dev, eci);
  char **chunks = calloc(n_chunks, sizeof(*chunks));
  igt_assert(chunks);
  int64_t mark = svm_evict_mark(&dev);
  for (size_t c = 0; c < n_chunks; c++) {
    chunks[c] = aligned_alloc(SZ_2M, SZ_8M);
    igt_assert_f(chunks[c], "allocation %zu of %zu failed\n", c, n_chunks);
    for (unsigned k = 0; k < 8; k++) {
      struct svm_exec_data *e = (void *)(chunks[c] + k * SZ_1M);
      svm_write_batch(e, svm_value((unsigned)(c * 8 + k)), false);
      if (k < 7)
        igt_assert_eq(xe_exec(dev.fd, s.q, (uintptr_t)e->batch, NULL, 0), 0);
      else
        svm_exec_wait(&dev, s.q, e->batch, s.fence, LONG_WAIT);
    }
  }
  int64_t after = svm_evict_mark(&dev);
  for (size_t c = 0; c < n_chunks; c++)
    for (unsigned k = 0; k < 8; k++) {
      struct svm_exec_data *e = (void *)(chunks[c] + k * SZ_1M);
      igt_assert_f(e->data == e->expected_data, "chunk %zu MiB %u: %#x, expected %#x\n", c, k, e->data,
                   e->expected_data);
    }
  char what[96];
  snprintf(what, sizeof(what), "the GPU touched %zu MiB of malloc memory", n_chunks * 8);
  svm_require_evicted(mark, after, what);
  svm_session_end(&s);
  for (size_t c = 0; c < n_chunks; c++) free(chunks[c]);
  free(chunks);
}

/* One process per engine, each with its own fd and VM, filling its share
 * of 9/8 of VRAM at the same time. */
static void processes_evict_malloc(uint64_t vram) {
  unsigned n = svm_num_engines(&dev);
  svm_require_ram(vram / 8 * 9);
  igt_fork(child, (int)n) {
    const struct drm_xe_engine_class_instance *eci = svm_engine(&dev, (unsigned)child);
    char why[128];
    dev.fd = xe_device_open(why, sizeof(why));
    igt_assert_f(dev.fd >= 0, "child %d: xe device reopen failed %s\n", child, why);
    evict_malloc(eci, vram / 8 * 9 / n);
    close(dev.fd);
  }
  igt_waitchildren();
}

/* Runs the batch at `batch` on the copy engine and waits for it. */
static void run_copy_engine_batch(uint32_t *batch) {
  const struct drm_xe_engine_class_instance *eci = svm_require_engine(&dev, DRM_XE_ENGINE_CLASS_COPY);
  struct svm_session s;
  svm_session_begin(&s, &dev, eci);
  svm_exec_wait(&dev, s.q, batch, s.fence, LONG_WAIT);
  svm_session_end(&s);
}

static uint32_t *alloc_batch(size_t dwords) {
  uint32_t *b = aligned_alloc(SZ_4K, (dwords * 4 + SZ_4K - 1) / SZ_4K * SZ_4K);
  igt_assert(b);
  return b;
}

/* MEM_COPY between two malloc'd buffers each 9/8 of VRAM: the destination
 * holds every byte of the source, and the source is unchanged. */
static void evict_copy(uint64_t vram) {
  svm_require_engine(&dev, DRM_XE_ENGINE_CLASS_COPY);
  size_t size = (size_t)(vram / 8 * 9);
  svm_require_ram(2 * size);
  uint64_t *src = aligned_alloc(SZ_2M, size), *dst = aligned_alloc(SZ_2M, size);
  igt_assert(src && dst);
  for (size_t i = 0; i < size / 8; i++) src[i] = pattern(i);
  memset(dst, 0, size);
  size_t dw = xe_batch_mem_copy_dwords(size) + 1;
  uint32_t *batch = alloc_batch(dw);
  struct xe_batch b;
  xe_batch_init(&b, batch, dw);
  xe_batch_mem_copy(&b, (uintptr_t)src, (uintptr_t)dst, size);
  xe_batch_end(&b);
  igt_assert_eq(b.error, 0);
  int64_t mark = svm_evict_mark(&dev);
  run_copy_engine_batch(batch);
  int64_t after = svm_evict_mark(&dev);
  for (size_t i = 0; i < size / 8; i++) {
    igt_assert_f(dst[i] == pattern(i), "dst qword %zu: %#llx, expected %#llx\n", i, (unsigned long long)dst[i],
                 (unsigned long long)pattern(i));
    igt_assert_f(src[i] == pattern(i), "src qword %zu changed\n", i);
  }
  svm_require_evicted(mark, after, "MEM_COPY ran between two buffers of 9/8 VRAM");
  free(batch);
  free(src);
  free(dst);
}

/* MEM_SET over a malloc'd buffer of 5/4 VRAM (more than VRAM holds, so
 * the fill evicts its own first part): every byte is the fill byte, and
 * the bytes around it are untouched. */
static void evict_fill(uint64_t vram) {
  svm_require_engine(&dev, DRM_XE_ENGINE_CLASS_COPY);
  size_t size = (size_t)(vram / 4 * 5);
  svm_require_ram(size + SZ_2M);
  unsigned char *buf = aligned_alloc(SZ_2M, size + SZ_2M);
  igt_assert(buf);
  memset(buf, 0x5a, size + SZ_2M);
  unsigned char *fill = buf + SZ_1M;
  size_t dw = xe_batch_mem_set_dwords(size) + 1;
  uint32_t *batch = alloc_batch(dw);
  struct xe_batch b;
  xe_batch_init(&b, batch, dw);
  xe_batch_mem_set(&b, (uintptr_t)fill, size, 0xa5);
  xe_batch_end(&b);
  igt_assert_eq(b.error, 0);
  int64_t mark = svm_evict_mark(&dev);
  run_copy_engine_batch(batch);
  int64_t after = svm_evict_mark(&dev);
  for (size_t i = 0; i < size + SZ_2M; i++) {
    unsigned char want = (buf + i >= fill && buf + i < fill + size) ? 0xa5 : 0x5a;
    igt_assert_f(buf[i] == want, "byte %zu: %#x, expected %#x\n", i, buf[i], want);
  }
  svm_require_evicted(mark, after, "MEM_SET filled 5/4 VRAM");
  free(batch);
  free(buf);
}

struct cpu_racer {
  unsigned char *buf;
  size_t n_blocks;
  atomic_bool stop;
  uint32_t pass;  /* the last pass fully written */
  unsigned wrong; /* GPU records seen with a value neither old nor new */
};

enum { RACE_BLOCK = 1 << 20, RACE_CPU_SLOT = 512 << 10 };

/* Writes the CPU slot of every block with the pass number and reads every
 * GPU record while the GPU faults and evicts the same buffer. */
static void *cpu_race_thread(void *p) {
  struct cpu_racer *r = p;
  uint32_t pass = 0;
  do { /* at least one full pass, however fast the GPU is */
    pass++;
    for (size_t k = 0; k < r->n_blocks; k++) {
      volatile uint32_t *slot = (volatile uint32_t *)(r->buf + k * RACE_BLOCK + RACE_CPU_SLOT);
      *slot = pass;
      volatile struct svm_exec_data *e = (volatile struct svm_exec_data *)(r->buf + k * RACE_BLOCK);
      uint32_t v = e->data;
      if (v != 0x05050505u && v != e->expected_data) r->wrong++;
    }
    r->pass = pass;
  } while (!atomic_load(&r->stop));
  return NULL;
}

/* The CPU reads and writes pages of a buffer of 5/4 VRAM while the GPU's
 * faults migrate and evict them: no write of either side is lost. */
static void evict_cpu_race(uint64_t vram) {
  size_t size = (size_t)(vram / 4 * 5) & ~(size_t)(RACE_BLOCK - 1);
  svm_require_ram(size);
  unsigned char *buf = aligned_alloc(SZ_2M, size);
  igt_assert(buf);
  memset(buf, 5, size);
  struct cpu_racer r = {.buf = buf, .n_blocks = size / RACE_BLOCK};
  for (size_t k = 0; k < r.n_blocks; k++)
    svm_write_batch((void *)(buf + k * RACE_BLOCK), svm_value((unsigned)k), false);
  /* The batches are written; the records' data fields still hold 0x05050505. */
  for (size_t k = 0; k < r.n_blocks; k++) ((struct svm_exec_data *)(buf + k * RACE_BLOCK))->data = 0x05050505u;
  struct svm_session s;
  svm_session_begin(&s, &dev, svm_engine(&dev, 0));
  pthread_t th;
  igt_assert_eq(pthread_create(&th, NULL, cpu_race_thread, &r), 0);
  for (size_t k = 0; k < r.n_blocks; k++) {
    struct svm_exec_data *e = (void *)(buf + k * RACE_BLOCK);
    if (k + 1 < r.n_blocks)
      igt_assert_eq(xe_exec(dev.fd, s.q, (uintptr_t)e->batch, NULL, 0), 0);
    else
      svm_exec_wait(&dev, s.q, e->batch, s.fence, LONG_WAIT);
  }
  atomic_store(&r.stop, true);
  pthread_join(th, NULL);
  igt_assert_f(r.wrong == 0, "the CPU saw %u GPU records with a value that was never written\n", r.wrong);
  for (size_t k = 0; k < r.n_blocks; k++) {
    struct svm_exec_data *e = (void *)(buf + k * RACE_BLOCK);
    igt_assert_f(e->data == e->expected_data, "block %zu: GPU value %#x, expected %#x\n", k, e->data, e->expected_data);
    uint32_t slot = *(uint32_t *)(buf + k * RACE_BLOCK + RACE_CPU_SLOT);
    igt_assert_f(slot == r.pass, "block %zu: CPU value %u, expected %u\n", k, slot, r.pass);
  }
  igt_info("evict-cpu-race: %u CPU passes over %zu blocks during the GPU run\n", r.pass, r.n_blocks);
  svm_session_end(&s);
  free(buf);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* evict-benchmark: the GPU touches every 64 KiB of a twice-VRAM buffer, so
 * each pass migrates it in and evicts as much out; the bandwidth is
 * reported against a memcpy of the same bytes in the same run (medians of
 * 3). Every touched value is checked. */
static void evict_benchmark(uint64_t vram) {
  size_t size = (size_t)(2 * vram);
  svm_require_ram(2 * size);
  unsigned char *buf = aligned_alloc(SZ_2M, size);
  unsigned char *copy = aligned_alloc(SZ_2M, size);
  igt_assert(buf && copy);
  memset(buf, 5, size);
  memset(copy, 0, size);
  size_t stores = size / SZ_64K, dw = stores * XE_STORE_DWORD_DWORDS + 1;
  uint32_t *batch = alloc_batch(dw);
  struct svm_session s;
  svm_session_begin(&s, &dev, svm_engine(&dev, 0));
  enum { RUNS = 3 };
  uint64_t gpu[RUNS], cpu[RUNS];
  int64_t evicted = 0; /* KiB moved out of VRAM during the GPU passes */
  bool counted = true;
  for (int r = 0; r < RUNS; r++) {
    uint32_t salt = svm_value((unsigned)r);
    struct xe_batch b;
    xe_batch_init(&b, batch, dw);
    for (size_t i = 0; i < stores; i++) xe_batch_store_dword(&b, (uintptr_t)(buf + i * SZ_64K), salt + (uint32_t)i);
    xe_batch_end(&b);
    igt_assert_eq(b.error, 0);
    int64_t mark = svm_evict_mark(&dev);
    uint64_t t0 = svm_now_ns();
    svm_exec_wait(&dev, s.q, batch, s.fence, LONG_WAIT);
    gpu[r] = svm_now_ns() - t0;
    int64_t after = svm_evict_mark(&dev);
    counted = counted && mark >= 0 && after >= 0;
    if (counted) evicted += after - mark;
    for (size_t i = 0; i < stores; i++)
      igt_assert_f(*(uint32_t *)(buf + i * SZ_64K) == salt + (uint32_t)i, "run %d store %zu lost\n", r, i);
    /* Baseline: a memcpy of the same bytes, now resident in system memory. */
    t0 = svm_now_ns();
    memcpy(copy, buf, size);
    cpu[r] = svm_now_ns() - t0;
    igt_assert(memcmp(copy, buf, SZ_64K) == 0);
  }
  qsort(gpu, RUNS, sizeof(uint64_t), cmp_u64);
  qsort(cpu, RUNS, sizeof(uint64_t), cmp_u64);
  double mib = (double)size / (1 << 20);
  igt_info(
      "evict-benchmark: GPU touch of %.0f MiB (2x VRAM) %.1f MiB/s; memcpy of the same bytes %.1f MiB/s; "
      "GPU/memcpy bandwidth ratio %.3f (medians of %d)\n",
      mib, mib / (gpu[RUNS / 2] / 1e9), mib / (cpu[RUNS / 2] / 1e9), (double)cpu[RUNS / 2] / gpu[RUNS / 2], RUNS);
  igt_require_f(counted, "cannot tell whether anything was evicted: debugfs gt0/stats counter %s cannot be read\n",
                SVM_STAT_CPU_COPY_KB);
  igt_require_f(evicted > 0,
                "the device evicted nothing from VRAM during the GPU passes over 2x VRAM (%s unchanged): "
                "the figure above is not an eviction bandwidth\n",
                SVM_STAT_CPU_COPY_KB);
  igt_info("evict-benchmark: %lld KiB evicted over %d GPU passes\n", (long long)evicted, RUNS);
  svm_session_end(&s);
  free(batch);
  free(buf);
  free(copy);
}

static uint64_t vram_bytes; /* VRAM near GT 0, set by the fixture */

int igt_main() {
  igt_fixture() {
    svm_device_open(&dev);
    vram_bytes = svm_require_vram(&dev);
    igt_info("VRAM near GT 0: %llu MiB\n", (unsigned long long)(vram_bytes >> 20));
  }

  igt_subtest("evict-malloc") evict_malloc(svm_engine(&dev, 0), vram_bytes / 8 * 9);
  igt_subtest("evict-malloc-4x") evict_malloc(svm_engine(&dev, 0), 4 * vram_bytes);
  igt_subtest("processes-evict-malloc") processes_evict_malloc(vram_bytes);
  igt_subtest("evict-copy") evict_copy(vram_bytes);
  igt_subtest("evict-fill") evict_fill(vram_bytes);
  igt_subtest("evict-cpu-race") evict_cpu_race(vram_bytes);
  igt_subtest("evict-benchmark") evict_benchmark(vram_bytes);

  igt_fixture() { svm_device_close(&dev); }
}
