/*
 * xe_svm_common.c - shared parts of the SVM test programs.
 */
#include "xe_svm_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "igt_core_abi.h"
#include "xe_batch.h"
#include "xe_device.h"
#include "xe_exec.h"
#include "xe_exec_queue.h"
#include "xe_gt_stats.h"
#include "xe_user_fence.h"
#include "xe_vm.h"

void svm_device_open(struct svm_device *d) {
  char why[256];
  memset(d, 0, sizeof(*d));
  d->fd = xe_device_open(why, sizeof(why));
  igt_require_f(d->fd >= 0, "no xe device: no DRM render node %s/renderD%d..%d has driver name \"xe\"%s%s\n",
                XE_DEVICE_DRI_DIR, XE_DEVICE_RENDER_MINOR_FIRST, XE_DEVICE_RENDER_MINOR_LAST, why[0] ? "; " : "", why);
  int ret = xe_device_info_load(d->fd, &d->info);
  igt_assert_f(ret == 0, "DEVICE_QUERY failed: %s\n", strerror(-ret));
  d->va_bits = xe_info_va_bits(&d->info);
  igt_assert_f(d->va_bits >= 32 && d->va_bits <= 57, "CONFIG VA_BITS %u out of range\n", d->va_bits);
  d->pat_wb = xe_info_pat_index_wb(&d->info);
  ret = xe_vm_supports_faults(d->fd);
  igt_require_f(ret == 0, "the xe device cannot create an LR | FAULT_MODE VM: %s\n", strerror(-ret));
  igt_require_f(xe_info_has_cpu_addr_mirror(&d->info), "the xe device does not report HAS_CPU_ADDR_MIRROR\n");
  igt_require_f(svm_num_engines(d) > 0, "the xe device reports no engine\n");
}

void svm_device_close(struct svm_device *d) {
  if (d->fd >= 0) close(d->fd);
  xe_device_info_free(&d->info);
  d->fd = -1;
}

unsigned svm_num_engines(const struct svm_device *d) { return xe_info_num_exec_engines(&d->info); }

const struct drm_xe_engine_class_instance *svm_engine(const struct svm_device *d, unsigned i) {
  for (uint32_t k = 0; k < d->info.engines->num_engines; k++) {
    const struct drm_xe_engine_class_instance *e = &d->info.engines->engines[k].instance;
    if (e->engine_class == DRM_XE_ENGINE_CLASS_VM_BIND) continue;
    if (i-- == 0) return e;
  }
  igt_assert_f(false, "engine index out of range\n");
  return NULL;
}

const struct drm_xe_engine_class_instance *svm_require_engine(const struct svm_device *d, uint16_t engine_class) {
  const struct drm_xe_engine_class_instance *e = xe_info_engine(&d->info, engine_class);
  igt_require_f(e, "the xe device has no engine of class %u\n", engine_class);
  return e;
}

uint64_t svm_require_vram(const struct svm_device *d) {
  uint64_t vram = xe_info_vram_size(&d->info, 0);
  igt_require_f(vram > 0, "no VRAM region near GT 0 (integrated device): nothing to migrate to or evict from\n");
  return vram;
}

uint32_t svm_require_vram_instance(const struct svm_device *d) {
  const struct drm_xe_mem_region *r = xe_info_near_vram(&d->info, 0);
  igt_require_f(r, "no VRAM region near GT 0: nothing to prefetch to\n");
  return r->instance;
}

/* MemAvailable + SwapFree from /proc/meminfo, in MiB; 0 if unreadable.
 * (libigt's igt_get_avail_ram_mb() opens a DRM device first and skips the
 * subtest when it finds no GPU it knows, e.g. on the software device.) */
static uint64_t avail_ram_mb(void) {
  FILE *f = fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[128];
  unsigned long long kb, total = 0;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1 || sscanf(line, "SwapFree: %llu kB", &kb) == 1) total += kb;
  fclose(f);
  return total >> 10;
}

void svm_require_ram(uint64_t bytes) {
  uint64_t avail_mb = avail_ram_mb();
  uint64_t need_mb = (bytes + bytes / 4) >> 20;
  igt_require_f(avail_mb >= need_mb, "needs %llu MiB of RAM, %llu MiB available\n", (unsigned long long)need_mb,
                (unsigned long long)avail_mb);
}

uint32_t svm_vm_create(const struct svm_device *d) {
  uint32_t vm;
  int ret = xe_vm_create(d->fd, XE_VM_FLAGS_SVM, &vm);
  igt_assert_f(ret == 0, "VM_CREATE(LR | FAULT_MODE): %s\n", strerror(-ret));
  uint64_t *fence = svm_fence_alloc();
  struct drm_xe_sync sync = xe_user_fence_sync(fence, XE_USER_FENCE_VALUE);
  ret = xe_vm_bind_cpu_addr_mirror(d->fd, vm, 0, 1ull << d->va_bits, d->pat_wb, &sync);
  igt_assert_f(ret == 0, "VM_BIND of the CPU address mirror over [0, 1 << %u): %s\n", d->va_bits, strerror(-ret));
  ret = xe_wait_user_fence(d->fd, fence, XE_USER_FENCE_VALUE, 0, XE_FIVE_SEC);
  igt_assert_f(ret == 0, "mirror bind fence: %s\n", strerror(-ret));
  svm_fence_free(fence);
  return vm;
}

void svm_vm_destroy(const struct svm_device *d, uint32_t vm) { igt_assert_eq(xe_vm_destroy(d->fd, vm), 0); }

uint32_t svm_exec_queue_create(const struct svm_device *d, uint32_t vm, const struct drm_xe_engine_class_instance *e) {
  uint32_t q;
  int ret = xe_exec_queue_create(d->fd, vm, e, &q);
  igt_assert_f(ret == 0, "EXEC_QUEUE_CREATE on engine class %u instance %u: %s\n", e->engine_class, e->engine_instance,
               strerror(-ret));
  return q;
}

void svm_exec_queue_destroy(const struct svm_device *d, uint32_t q) {
  igt_assert_eq(xe_exec_queue_destroy(d->fd, q), 0);
}

void svm_session_begin(struct svm_session *s, const struct svm_device *d,
                       const struct drm_xe_engine_class_instance *eci) {
  s->d = d;
  s->vm = svm_vm_create(d);
  s->q = svm_exec_queue_create(d, s->vm, eci);
  s->fence = svm_fence_alloc();
}

void svm_session_end(struct svm_session *s) {
  svm_exec_queue_destroy(s->d, s->q);
  svm_vm_destroy(s->d, s->vm);
  svm_fence_free(s->fence);
}

void svm_write_batch(struct svm_exec_data *e, uint32_t value, bool atomic) {
  struct xe_batch b;
  xe_batch_init(&b, e->batch, sizeof(e->batch) / sizeof(e->batch[0]));
  if (atomic) {
    e->data = value - 1;
    xe_batch_atomic_inc(&b, (uintptr_t)&e->data);
  } else {
    xe_batch_store_dword(&b, (uintptr_t)&e->data, value);
  }
  xe_batch_end(&b);
  igt_assert_eq(b.error, 0);
  e->expected_data = value;
}

void svm_exec_wait(const struct svm_device *d, uint32_t q, const void *batch, uint64_t *fence, int64_t timeout_ns) {
  int ret = xe_exec_with_user_fence(d->fd, q, (uintptr_t)batch, fence, XE_USER_FENCE_VALUE);
  igt_assert_f(ret == 0, "EXEC of the batch at %p: %s\n", batch, strerror(-ret));
  ret = xe_wait_user_fence(d->fd, fence, XE_USER_FENCE_VALUE, q, timeout_ns);
  igt_assert_f(ret == 0, "exec fence of the batch at %p: %s\n", batch, strerror(-ret));
  *fence = 0;
}

uint64_t *svm_fence_alloc(void) {
  void *p = mmap(NULL, SZ_4K, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  igt_assert(p != MAP_FAILED);
  return p;
}

void svm_fence_free(uint64_t *fence) { munmap(fence, SZ_4K); }

int64_t svm_stat(const struct svm_device *d, const char *name) {
  int64_t v;
  return xe_gt_stats_get(d->fd, 0, name, &v) == 0 ? v : -1;
}

int64_t svm_require_stat(const struct svm_device *d, const char *name) {
  int64_t v = svm_stat(d, name);
  igt_require_f(v >= 0, "debugfs gt0/stats counter %s cannot be read (debugfs mounted? root?)\n", name);
  return v;
}

int64_t svm_evict_mark(const struct svm_device *d) { return svm_stat(d, SVM_STAT_CPU_COPY_KB); }

int64_t svm_require_evicted(int64_t mark, int64_t now, const char *what) {
  igt_require_f(mark >= 0 && now >= 0,
                "cannot tell whether anything was evicted: debugfs gt0/stats counter %s (KiB copied out of VRAM) "
                "cannot be read\n",
                SVM_STAT_CPU_COPY_KB);
  igt_require_f(now > mark,
                "the device evicted nothing from VRAM while %s: %s stayed at %lld (no eviction under VRAM pressure; "
                "the data checks passed)\n",
                what, SVM_STAT_CPU_COPY_KB, (long long)now);
  igt_info("%s: %lld KiB copied out of VRAM\n", what, (long long)(now - mark));
  return now - mark;
}

uint32_t svm_value(unsigned i) { return ((uint32_t)rand() << 12) | (i & 0xfff); }

uint64_t svm_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
