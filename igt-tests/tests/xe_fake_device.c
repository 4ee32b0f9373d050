/*
 * xe_fake_device.c - an in-process test double of an xe device, preloaded
 * (LD_PRELOAD) into the device test programs on a host without one, so that
 * their own logic (batch placement, fences, checks, mremap/fork/threads
 * handling) runs end to end before they meet a real device.
 *
 * It is not a model of Xe and proves nothing about a device: opening
 * /dev/dri/renderD128 returns a memfd that answers the Xe ioctls the tests
 * use. Because a CPU-address-mirror VM makes GPU VA == CPU VA, an exec is
 * run synchronously by the calling thread, which interprets the batch
 * (MI_BATCH_BUFFER_END, MI_NOOP, MI_STORE_DWORD_IMM, MI_ATOMIC inc, and on
 * the copy engine MEM_COPY / MEM_SET) directly on the process's memory.
 * An access to an address that is not mapped (probed with process_vm_readv)
 * or outside the mirror, or an unknown command, bans the queue and leaves
 * the fence unwritten, as a GPU page fault that cannot be served would.
 * Unbinding the mirror after any exec returns -EBUSY. MADVISE attributes
 * are kept per range and read back by VM_QUERY_MEM_RANGE_ATTRS. There is no
 * debugfs, no migration and no VRAM behind the reported region
 * (XE_FAKE_VRAM_MB, default 64): subtests needing stats skip.
 *
 * XE_FAKE_BREAK=<what> makes the double wrong in one way, so that ctest can
 * prove the tests notice: "store" (MI_STORE_DWORD_IMM writes value + 1),
 * "atomic" (MI_ATOMIC does nothing), "copy" (MEM_COPY drops the last byte of
 * each row), "fill" (MEM_SET leaves the last byte of each row), "fault" (a
 * faulting batch still signals its fence), "busy" (a live mirror unbinds),
 * "madvise" (MADVISE is accepted and ignored).
 *
 * Thread safety: one mutex serialises every ioctl; waits poll without it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <drm.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "xe_batch.h"
#include "xe_uapi.h"

#define FAKE_NODE "/dev/dri/renderD128"
#define MAX_FDS 64
#define MAX_OBJS 256
#define MAX_ATTRS 512

struct fake_attr {
  uint64_t start, end;
  uint32_t devmem_fd, policy, atomic, pat;
};

struct fake_vm {
  bool used;
  uint32_t flags;
  bool mirror, touched;
  uint64_t mirror_start, mirror_end;
  unsigned n_attrs;
  struct fake_attr attrs[MAX_ATTRS];
};

struct fake_queue {
  bool used, banned;
  uint32_t vm;
  uint16_t engine_class;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int fds[MAX_FDS];
static int n_fds;
static struct fake_vm vms[MAX_OBJS];
static struct fake_queue queues[MAX_OBJS];

static bool broken(const char *what) {
  const char *b = getenv("XE_FAKE_BREAK");
  return b && strcmp(b, what) == 0;
}

static int (*real_open)(const char *, int, ...);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);

static void resolve(void) {
  if (!real_open) real_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
  if (!real_close) real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
  if (!real_ioctl) real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
}

static bool is_fake(int fd) {
  for (int i = 0; i < n_fds; i++)
    if (fds[i] == fd) return true;
  return false;
}

static int open_impl(const char *path, int flags, mode_t mode) {
  resolve();
  if (strcmp(path, FAKE_NODE) != 0) return real_open(path, flags, mode);
  int fd = memfd_create("xe-fake-device", MFD_CLOEXEC);
  if (fd < 0) return fd;
  pthread_mutex_lock(&lock);
  if (n_fds < MAX_FDS) fds[n_fds++] = fd;
  pthread_mutex_unlock(&lock);
  return fd;
}

int open(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = (flags & O_CREAT) ? (mode_t)va_arg(ap, int) : 0;
  va_end(ap);
  return open_impl(path, flags, mode);
}

int open64(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = (flags & O_CREAT) ? (mode_t)va_arg(ap, int) : 0;
  va_end(ap);
  return open_impl(path, flags, mode);
}

int close(int fd) {
  resolve();
  pthread_mutex_lock(&lock);
  for (int i = 0; i < n_fds; i++)
    if (fds[i] == fd) fds[i] = fds[--n_fds];
  pthread_mutex_unlock(&lock);
  return real_close(fd);
}

/* True when [addr, addr + len) is mapped readable in this process. */
static bool mapped(uint64_t addr, uint64_t len) {
  for (uint64_t p = addr & ~4095ull; p < addr + len; p += 4096) {
    char c;
    struct iovec local = {&c, 1}, remote = {(void *)(uintptr_t)(p < addr ? addr : p), 1};
    if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != 1) return false;
  }
  return true;
}

static bool gpu_ok(const struct fake_vm *vm, uint64_t addr, uint64_t len) {
  return vm->mirror && addr >= vm->mirror_start && addr + len <= vm->mirror_end && mapped(addr, len);
}

static int copy_out(void *dst, const char *src, size_t *len, size_t want) {
  if (*len && dst) memcpy(dst, src, *len < want ? *len : want);
  *len = want;
  return 0;
}

static int do_version(struct drm_version *v) {
  v->version_major = 1;
  v->version_minor = 0;
  v->version_patchlevel = 0;
  copy_out(v->name, "xe", &v->name_len, 2);
  copy_out(v->date, "0", &v->date_len, 1);
  copy_out(v->desc, "host test double", &v->desc_len, 16);
  return 0;
}

static size_t query_payload(uint32_t query, void *out) {
  uint64_t vram_mb = getenv("XE_FAKE_VRAM_MB") ? strtoull(getenv("XE_FAKE_VRAM_MB"), NULL, 0) : 64;
  switch (query) {
    case DRM_XE_DEVICE_QUERY_CONFIG: {
      size_t size = sizeof(struct drm_xe_query_config) + 5 * sizeof(uint64_t);
      struct drm_xe_query_config *c = out;
      if (c) {
        c->num_params = 5;
        c->info[DRM_XE_QUERY_CONFIG_FLAGS] =
            DRM_XE_QUERY_CONFIG_FLAG_HAS_VRAM | DRM_XE_QUERY_CONFIG_FLAG_HAS_CPU_ADDR_MIRROR;
        c->info[DRM_XE_QUERY_CONFIG_MIN_ALIGNMENT] = 4096;
        c->info[DRM_XE_QUERY_CONFIG_VA_BITS] = 48;
      }
      return size;
    }
    case DRM_XE_DEVICE_QUERY_ENGINES: {
      struct drm_xe_query_engines *e = out;
      if (e) {
        e->num_engines = 2;
        e->engines[0].instance.engine_class = DRM_XE_ENGINE_CLASS_COPY;
        e->engines[1].instance.engine_class = DRM_XE_ENGINE_CLASS_COMPUTE;
      }
      return sizeof(*e) + 2 * sizeof(struct drm_xe_engine);
    }
    case DRM_XE_DEVICE_QUERY_GT_LIST: {
      struct drm_xe_query_gt_list *g = out;
      if (g) {
        g->num_gt = 1;
        g->gt_list[0].near_mem_regions = 0x2;
        g->gt_list[0].far_mem_regions = 0x1;
      }
      return sizeof(*g) + sizeof(struct drm_xe_gt);
    }
    case DRM_XE_DEVICE_QUERY_MEM_REGIONS: {
      struct drm_xe_query_mem_regions *m = out;
      if (m) {
        m->num_mem_regions = 2;
        m->mem_regions[0] = (struct drm_xe_mem_region){
            .mem_class = DRM_XE_MEM_REGION_CLASS_SYSMEM, .min_page_size = 4096, .total_size = 1ull << 34};
        m->mem_regions[1] = (struct drm_xe_mem_region){.mem_class = DRM_XE_MEM_REGION_CLASS_VRAM,
                                                       .instance = 1,
                                                       .min_page_size = 4096,
                                                       .total_size = vram_mb << 20,
                                                       .cpu_visible_size = vram_mb << 20};
      }
      return sizeof(*m) + 2 * sizeof(struct drm_xe_mem_region);
    }
    default:
      return 0;
  }
}

static int do_query(struct drm_xe_device_query *q) {
  size_t size = query_payload(q->query, NULL);
  if (!size) return -EINVAL;
  if (q->size == 0) {
    q->size = (uint32_t)size;
    return 0;
  }
  if (q->size != size || !q->data) return -EINVAL;
  memset((void *)(uintptr_t)q->data, 0, size);
  query_payload(q->query, (void *)(uintptr_t)q->data);
  return 0;
}

static struct fake_vm *vm_get(uint32_t id) { return id && id < MAX_OBJS && vms[id].used ? &vms[id] : NULL; }

static int do_vm_create(struct drm_xe_vm_create *c) {
  const uint32_t known = DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE;
  if ((c->flags & ~known) ||
      ((c->flags & DRM_XE_VM_CREATE_FLAG_FAULT_MODE) && !(c->flags & DRM_XE_VM_CREATE_FLAG_LR_MODE)))
    return -EINVAL;
  for (uint32_t id = 1; id < MAX_OBJS; id++)
    if (!vms[id].used) {
      memset(&vms[id], 0, sizeof(vms[id]));
      vms[id].used = true;
      vms[id].flags = c->flags;
      vms[id].n_attrs = 1;
      vms[id].attrs[0] = (struct fake_attr){.start = 0, .end = 1ull << 48};
      c->vm_id = id;
      return 0;
    }
  return -ENOSPC;
}

static int signal_syncs(uint64_t syncs, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    struct drm_xe_sync *s = (struct drm_xe_sync *)(uintptr_t)syncs + i;
    if (s->type != DRM_XE_SYNC_TYPE_USER_FENCE || (s->addr & 7)) return -EINVAL;
  }
  for (uint32_t i = 0; i < n; i++) {
    struct drm_xe_sync *s = (struct drm_xe_sync *)(uintptr_t)syncs + i;
    __atomic_store_n((uint64_t *)(uintptr_t)s->addr, s->timeline_value, __ATOMIC_RELEASE);
  }
  return 0;
}

static int do_vm_bind(struct drm_xe_vm_bind *b) {
  struct fake_vm *vm = vm_get(b->vm_id);
  if (!vm) return -ENOENT;
  if (b->num_binds != 1) return -EINVAL;
  const struct drm_xe_vm_bind_op *op = &b->bind;
  switch (op->op) {
    case DRM_XE_VM_BIND_OP_MAP:
      if (!(op->flags & DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR) || op->obj || op->obj_offset) return -EINVAL;
      if (!(vm->flags & DRM_XE_VM_CREATE_FLAG_FAULT_MODE)) return -EINVAL;
      vm->mirror = true;
      vm->mirror_start = op->addr;
      vm->mirror_end = op->addr + op->range;
      break;
    case DRM_XE_VM_BIND_OP_UNMAP:
      if (vm->mirror && vm->touched && !broken("busy")) return -EBUSY;
      vm->mirror = false;
      break;
    case DRM_XE_VM_BIND_OP_PREFETCH:
      if (op->prefetch_mem_region_instance > 1 && op->prefetch_mem_region_instance != 0xffffffffu) return -EINVAL;
      if (!vm->mirror || op->addr < vm->mirror_start || op->addr + op->range > vm->mirror_end) return -EINVAL;
      if ((op->addr | op->range) & 4095) return -EINVAL;
      break;
    default:
      return -EINVAL;
  }
  return signal_syncs(b->syncs, b->num_syncs);
}

/* Runs the batch at `pc`; false on a fault or an unknown command. */
static bool run_batch(struct fake_vm *vm, uint16_t engine_class, uint64_t pc) {
  for (unsigned n = 0; n < (1u << 22); n++) {
    if (!gpu_ok(vm, pc, 4)) return false;
    const uint32_t *dw = (const uint32_t *)(uintptr_t)pc;
    uint32_t cmd = dw[0];
    if (cmd == XE_MI_BATCH_BUFFER_END) return true;
    if (cmd == XE_MI_NOOP) {
      pc += 4;
      continue;
    }
    if (cmd == XE_MI_STORE_DWORD_IMM_GEN4) {
      if (!gpu_ok(vm, pc, 16)) return false;
      uint64_t a = dw[1] | (uint64_t)dw[2] << 32;
      if ((a & 3) || !gpu_ok(vm, a, 4)) return false;
      __atomic_store_n((uint32_t *)(uintptr_t)a, dw[3] + broken("store"), __ATOMIC_RELAXED);
      pc += 16;
    } else if (cmd == (XE_MI_ATOMIC | XE_MI_ATOMIC_INC)) {
      if (!gpu_ok(vm, pc, 12)) return false;
      uint64_t a = dw[1] | (uint64_t)dw[2] << 32;
      if ((a & 3) || !gpu_ok(vm, a, 4)) return false;
      if (!broken("atomic")) __atomic_fetch_add((uint32_t *)(uintptr_t)a, 1, __ATOMIC_SEQ_CST);
      pc += 12;
    } else if (cmd == XE_MEM_COPY_CMD && engine_class == DRM_XE_ENGINE_CLASS_COPY) {
      if (!gpu_ok(vm, pc, 40)) return false;
      uint64_t w = dw[1] + 1ull, h = dw[2] + 1ull, sp = dw[3] + 1ull, dp = dw[4] + 1ull;
      uint64_t src = dw[5] | (uint64_t)dw[6] << 32, dst = dw[7] | (uint64_t)dw[8] << 32;
      for (uint64_t r = 0; r < h; r++) {
        if (!gpu_ok(vm, src + r * sp, w) || !gpu_ok(vm, dst + r * dp, w)) return false;
        memmove((void *)(uintptr_t)(dst + r * dp), (void *)(uintptr_t)(src + r * sp), w - broken("copy"));
      }
      pc += 40;
    } else if (cmd == XE_MEM_SET_CMD && engine_class == DRM_XE_ENGINE_CLASS_COPY) {
      if (!gpu_ok(vm, pc, 28)) return false;
      uint64_t w = dw[1] + 1ull, h = dw[2] + 1ull, p = dw[3] + 1ull, dst = dw[4] | (uint64_t)dw[5] << 32;
      for (uint64_t r = 0; r < h; r++) {
        if (!gpu_ok(vm, dst + r * p, w)) return false;
        memset((void *)(uintptr_t)(dst + r * p), (int)(dw[6] >> 24), w - broken("fill"));
      }
      pc += 28;
    } else {
      return false;
    }
  }
  return false;
}

static int do_exec(struct drm_xe_exec *e) {
  if (!e->exec_queue_id || e->exec_queue_id >= MAX_OBJS || !queues[e->exec_queue_id].used) return -ENOENT;
  struct fake_queue *q = &queues[e->exec_queue_id];
  if (q->banned) return -ECANCELED;
  if (e->num_batch_buffer != 1) return -EINVAL;
  struct fake_vm *vm = vm_get(q->vm);
  vm->touched = true;
  if (!run_batch(vm, q->engine_class, e->address) && !broken("fault")) {
    q->banned = true;
    return 0; /* accepted; the fence is never written */
  }
  return signal_syncs(e->syncs, e->num_syncs);
}

static int do_queue_create(struct drm_xe_exec_queue_create *c) {
  const struct drm_xe_engine_class_instance *inst = (const void *)(uintptr_t)c->instances;
  if (!vm_get(c->vm_id) || c->width != 1 || c->num_placements != 1 || !inst) return -EINVAL;
  if ((inst->engine_class != DRM_XE_ENGINE_CLASS_COPY && inst->engine_class != DRM_XE_ENGINE_CLASS_COMPUTE) ||
      inst->engine_instance || inst->gt_id)
    return -EINVAL;
  for (uint32_t id = 1; id < MAX_OBJS; id++)
    if (!queues[id].used) {
      queues[id] = (struct fake_queue){.used = true, .vm = c->vm_id, .engine_class = inst->engine_class};
      c->exec_queue_id = id;
      return 0;
    }
  return -ENOSPC;
}

/* Splits the attribute list at va (no-op at an existing boundary). */
static int split_at(struct fake_vm *vm, uint64_t va) {
  for (unsigned i = 0; i < vm->n_attrs; i++) {
    struct fake_attr *a = &vm->attrs[i];
    if (va <= a->start || va >= a->end) continue;
    if (vm->n_attrs == MAX_ATTRS) return -ENOSPC;
    memmove(&vm->attrs[i + 1], &vm->attrs[i], (vm->n_attrs - i) * sizeof(*a));
    vm->n_attrs++;
    vm->attrs[i].end = va;
    vm->attrs[i + 1].start = va;
    return 0;
  }
  return 0;
}

static int do_madvise(struct drm_xe_madvise *m) {
  struct fake_vm *vm = vm_get(m->vm_id);
  if (!vm) return -ENOENT;
  if (!m->range || ((m->start | m->range) & 4095) || m->type > DRM_XE_MEM_RANGE_ATTR_PAT) return -EINVAL;
  if (broken("madvise")) return 0;
  int ret = split_at(vm, m->start);
  if (!ret) ret = split_at(vm, m->start + m->range);
  if (ret) return ret;
  for (unsigned i = 0; i < vm->n_attrs; i++) {
    struct fake_attr *a = &vm->attrs[i];
    if (a->start < m->start || a->end > m->start + m->range) continue;
    if (m->type == DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC) {
      a->devmem_fd = m->preferred_mem_loc.devmem_fd;
      a->policy = m->preferred_mem_loc.migration_policy;
    } else if (m->type == DRM_XE_MEM_RANGE_ATTR_ATOMIC) {
      a->atomic = m->atomic.val;
    } else {
      a->pat = m->pat_index.val;
    }
  }
  return 0;
}

static int do_query_attrs(struct drm_xe_vm_query_mem_range_attr *q) {
  struct fake_vm *vm = vm_get(q->vm_id);
  if (!vm) return -ENOENT;
  uint32_t n = 0;
  for (unsigned i = 0; i < vm->n_attrs; i++)
    if (vm->attrs[i].end > q->start && vm->attrs[i].start < q->start + q->range) n++;
  if (!q->vector_of_mem_attr) {
    q->num_mem_ranges = n;
    q->sizeof_mem_range_attr = sizeof(struct drm_xe_mem_range_attr);
    return 0;
  }
  if (q->num_mem_ranges < n || q->sizeof_mem_range_attr != sizeof(struct drm_xe_mem_range_attr)) return -ENOSPC;
  struct drm_xe_mem_range_attr *out = (void *)(uintptr_t)q->vector_of_mem_attr;
  n = 0;
  for (unsigned i = 0; i < vm->n_attrs; i++) {
    const struct fake_attr *a = &vm->attrs[i];
    if (a->end <= q->start || a->start >= q->start + q->range) continue;
    out[n] = (struct drm_xe_mem_range_attr){.start = a->start, .end = a->end};
    out[n].preferred_mem_loc.devmem_fd = a->devmem_fd;
    out[n].preferred_mem_loc.migration_policy = a->policy;
    out[n].atomic.val = a->atomic;
    out[n].pat_index.val = a->pat;
    n++;
  }
  q->num_mem_ranges = n;
  return 0;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int do_wait(struct drm_xe_wait_user_fence *w) {
  if ((w->addr & 7) || w->op != DRM_XE_UFENCE_WAIT_OP_EQ || w->flags) return -EINVAL;
  if (!mapped(w->addr, 8)) return -EFAULT;
  uint64_t deadline = now_ns() + (uint64_t)(w->timeout < 0 ? 1ll << 62 : w->timeout);
  for (;;) {
    uint64_t v = __atomic_load_n((uint64_t *)(uintptr_t)w->addr, __ATOMIC_ACQUIRE);
    if ((v & w->mask) == (w->value & w->mask)) return 0;
    pthread_mutex_lock(&lock);
    bool banned = w->exec_queue_id && w->exec_queue_id < MAX_OBJS && queues[w->exec_queue_id].banned;
    pthread_mutex_unlock(&lock);
    if (banned) return -EIO;
    if (now_ns() >= deadline) return -ETIME;
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
  }
}

static int dispatch(unsigned long req, void *arg) {
  switch (req) {
    case DRM_IOCTL_VERSION:
      return do_version(arg);
    case DRM_IOCTL_XE_DEVICE_QUERY:
      return do_query(arg);
    case DRM_IOCTL_XE_VM_CREATE:
      return do_vm_create(arg);
    case DRM_IOCTL_XE_VM_DESTROY: {
      struct fake_vm *vm = vm_get(((struct drm_xe_vm_destroy *)arg)->vm_id);
      if (!vm) return -ENOENT;
      vm->used = false;
      return 0;
    }
    case DRM_IOCTL_XE_VM_BIND:
      return do_vm_bind(arg);
    case DRM_IOCTL_XE_EXEC_QUEUE_CREATE:
      return do_queue_create(arg);
    case DRM_IOCTL_XE_EXEC_QUEUE_DESTROY: {
      uint32_t id = ((struct drm_xe_exec_queue_destroy *)arg)->exec_queue_id;
      if (!id || id >= MAX_OBJS || !queues[id].used) return -ENOENT;
      queues[id].used = false;
      return 0;
    }
    case DRM_IOCTL_XE_EXEC:
      return do_exec(arg);
    case DRM_IOCTL_XE_MADVISE:
      return do_madvise(arg);
    case DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS:
      return do_query_attrs(arg);
    default:
      return -ENOTTY;
  }
}

int ioctl(int fd, unsigned long req, ...) {
  va_list ap;
  va_start(ap, req);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  resolve();
  pthread_mutex_lock(&lock);
  bool fake = is_fake(fd);
  pthread_mutex_unlock(&lock);
  if (!fake) return real_ioctl(fd, req, arg);
  int ret;
  if (req == DRM_IOCTL_XE_WAIT_USER_FENCE) {
    ret = do_wait(arg);
  } else {
    pthread_mutex_lock(&lock);
    ret = dispatch(req, arg);
    pthread_mutex_unlock(&lock);
  }
  if (ret) {
    errno = -ret;
    return -1;
  }
  return 0;
}
