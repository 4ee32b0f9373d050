/*
 * xe_svm_common.h - what the SVM test programs share: opening the xe
 * device with a clear skip, a VM with the CPU address mirror over the whole
 * VA space, the per-exec data layout of upstream xe_exec_system_allocator
 * (batch and target in the test's own memory, executed from there), exec
 * and wait with asserts, and the debugfs counters.
 *
 * Everything here asserts through the IGT framework (failures leave the
 * subtest), so it is called from subtests, fixtures or igt_fork() children,
 * never from other threads.
 */
#ifndef XESVM_IGT_XE_SVM_COMMON_H_
#define XESVM_IGT_XE_SVM_COMMON_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xe_query.h"

#define SZ_4K (4096ull)
#define SZ_64K (64ull << 10)
#define SZ_1M (1ull << 20)
#define SZ_2M (2ull << 20)
#define SZ_8M (8ull << 20)
#define SZ_64M (64ull << 20)

struct svm_device {
  int fd;
  struct xe_device_info info;
  unsigned va_bits;
  uint16_t pat_wb;
};

/* Opens the first xe render node, loads its queries and requires SVM
 * (an LR | FAULT_MODE VM and the HAS_CPU_ADDR_MIRROR config flag); skips
 * with the reason otherwise. */
void svm_device_open(struct svm_device *d);
void svm_device_close(struct svm_device *d);

/* Engines that run batches (every class but VM_BIND), in query order. */
unsigned svm_num_engines(const struct svm_device *d);
const struct drm_xe_engine_class_instance *svm_engine(const struct svm_device *d, unsigned i);
/* The first engine of engine_class; skips when there is none. */
const struct drm_xe_engine_class_instance *svm_require_engine(const struct svm_device *d, uint16_t engine_class);

/* VRAM size near GT 0; skips without VRAM. */
uint64_t svm_require_vram(const struct svm_device *d);
/* Instance of the VRAM region near GT 0, for OP_PREFETCH; skips without. */
uint32_t svm_require_vram_instance(const struct svm_device *d);
/* Skips unless MemAvailable + SwapFree holds `bytes` with 25 % spare. */
void svm_require_ram(uint64_t bytes);

/* A fault-mode VM with the mirror bound over [0, 1 << va_bits); the bind is
 * waited on through a user fence. Asserts success. */
uint32_t svm_vm_create(const struct svm_device *d);
void svm_vm_destroy(const struct svm_device *d, uint32_t vm);
uint32_t svm_exec_queue_create(const struct svm_device *d, uint32_t vm, const struct drm_xe_engine_class_instance *e);
void svm_exec_queue_destroy(const struct svm_device *d, uint32_t q);

/* The common setup of a subtest: a VM with the mirror (svm_vm_create), one
 * exec queue on engine eci, and an exec fence page (svm_fence_alloc). */
struct svm_session {
  const struct svm_device *d;
  uint32_t vm;
  uint32_t q;
  uint64_t *fence;
};
void svm_session_begin(struct svm_session *s, const struct svm_device *d,
                       const struct drm_xe_engine_class_instance *eci);
/* Destroys the queue and the VM (asserting both succeed), frees the fence. */
void svm_session_end(struct svm_session *s);

/* Upstream's per-exec record: the batch, fences and the target dword live
 * together in the test's memory (160 bytes; exec_sync 8-byte aligned). */
struct svm_exec_data {
  uint32_t batch[32];
  uint64_t pad;
  uint64_t vm_sync;
  uint64_t exec_sync;
  uint32_t data;
  uint32_t expected_data;
};
_Static_assert(sizeof(struct svm_exec_data) == 160, "upstream's test_exec_data is 160 bytes");

/* Writes into e->batch a batch that stores `value` to e->data (or, atomic,
 * sets e->data = value - 1 on the CPU and increments it on the GPU), then
 * MI_BATCH_BUFFER_END; records value in e->expected_data. */
void svm_write_batch(struct svm_exec_data *e, uint32_t value, bool atomic);

/* Submits the batch at `batch` on q with a user fence at *fence, waits up
 * to timeout_ns, asserts the wait succeeded and clears *fence. */
void svm_exec_wait(const struct svm_device *d, uint32_t q, const void *batch, uint64_t *fence, int64_t timeout_ns);

/* An 8-byte fence in its own shared anonymous page (munmap with
 * svm_fence_free). */
uint64_t *svm_fence_alloc(void);
void svm_fence_free(uint64_t *fence);

/* A debugfs counter of GT 0, or -1 when it cannot be read (no debugfs, no
 * root, counter missing). */
int64_t svm_stat(const struct svm_device *d, const char *name);
/* The counter; skips with the reason when it cannot be read. */
int64_t svm_require_stat(const struct svm_device *d, const char *name);

/* Upstream's gt0/stats counter of the KiB copied out of VRAM into system
 * memory (evictions, CPU faults on VRAM pages, prefetch to system). */
#define SVM_STAT_CPU_COPY_KB "svm_cpu_copy_kb"

/* Reads SVM_STAT_CPU_COPY_KB (-1 if it cannot be read) to start an
 * eviction measurement. */
int64_t svm_evict_mark(const struct svm_device *d);
/* Skips with the reason unless the counter rose from `mark` (read before
 * the GPU phase) to `after` (read right after it, before the CPU touches
 * the data), i.e. unless the device moved data out of VRAM while `what`
 * ran with no CPU access: eviction was really exercised. Returns the KiB
 * moved. Called after the data checks, so wrong data fails first. */
int64_t svm_require_evicted(int64_t mark, int64_t after, const char *what);

/* A value unique to (i) with random high bits, as upstream's WRITE_VALUE. */
uint32_t svm_value(unsigned i);

/* Monotonic time in ns. */
uint64_t svm_now_ns(void);

#endif /* XESVM_IGT_XE_SVM_COMMON_H_ */
