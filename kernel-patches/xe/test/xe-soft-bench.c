// SPDX-License-Identifier: GPL-2.0
/*
 * GPU page-fault service time of the software Xe device for one 2 MiB
 * chunk, against a memcpy() of 2 MiB of cold memory in the same guest,
 * as medians over repeated runs:
 *
 *   fault_vram    a one-dword GPU store into a 2 MiB chunk the GPU has not
 *                 touched: GPU fault, range of 2 MiB, migration of its 512
 *                 pages to VRAM, get_pages, bind, the store
 *   fault_system  the same with the preferred location set to system
 *                 memory (no migration: hmm_range_fault + DMA map + bind)
 *   exec_bound    a second store into the chunk of fault_vram, still
 *                 bound (an exec and its fence without any fault)
 *   memcpy_cold   memcpy() of 2 MiB from a freshly populated chunk into
 *                 another one
 *
 * and the eviction throughput of the allocation path, 256 MiB (the VRAM
 * size) against a memcpy() of the same bytes:
 *
 *   fill_empty    OP_PREFETCH of a VRAM-sized buffer A to VRAM while VRAM
 *                 is empty (migration only)
 *   fill_full     OP_PREFETCH of another VRAM-sized buffer B to VRAM right
 *                 after: every range first evicts frames of A by device
 *                 allocation (drm_gpusvm_evict_pfns()), then migrates
 *   evict         fill_full - fill_empty: the eviction of VRAM's worth
 *   memcpy_vram   memcpy() of VRAM's worth of populated memory
 *
 * each with debugfs gt0/evict_parallel = Y and = N, alternating per
 * repeat (the fault path evicts one helper window per call, which the
 * helper copies in the caller either way: a check that the knob costs
 * nothing there); and
 * eviction while ANOTHER process holds the owner's mmap_lock for write
 * (lib/test_hmm's HMM_DMIRROR_HOLD_MMAP_WRITE on a mirror of the owner's
 * mm, passed to this process; LOCK_HOLD_MS):
 *
 *   va_wait       OP_PREFETCH of the owner's LOCK_BYTES to system memory
 *                 (the helper's VA path, drm_gpusvm_range_evict()): it
 *                 needs the mmap_lock for its hmm_range_fault(), so waits
 *   alloc_evict   device removal (driver unbind: every frame evicted by
 *                 drm_gpusvm_evict_pfns(), no mm, no mmap_lock) of the
 *                 same bytes in VRAM under the same hold: it finishes
 *
 * and device removal (driver unbind) of half the VRAM: eviction by
 * allocation in calls of several windows, with the copy of one window
 * pipelined behind the next window's lock and unmap (gt0/evict_parallel
 * = Y) and serial, alternating, against a memcpy() of the same bytes.
 *
 * The device is bound again after each removal (these parts run last).
 *
 * usage: xe-soft-bench [repeats [lock]]   ("lock": the mmap_lock part only)
 * Output: "BENCH ..." lines; exit status 0 on success.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <drm/drm.h>
#include <drm/xe_drm.h>

#define CHUNK		(2ul << 20)
#define FENCE_VALUE	0xdeadbeefdeadbeefull
#define LOCK_BYTES	(32ul << 20)
#define LOCK_HOLD_MS	10000
#define LOCK_START_MS	300
#define XE_SOFT_DRIVER	"/sys/bus/platform/drivers/xe_soft"

/* lib/test_hmm_uapi.h of the series: hold the mirrored mm's mmap_lock. */
struct hmm_dmirror_cmd {
	uint64_t addr;
	uint64_t ptr;
	uint64_t npages;
	uint64_t cpages;
	uint64_t faults;
};

#define HMM_DMIRROR_HOLD_MMAP_WRITE	_IOWR('H', 0x12, struct hmm_dmirror_cmd)

static int fd;
static uint32_t vm, queue;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int open_xe(void)
{
	char name[16], path[64];
	struct drm_version v;
	int i, f;

	for (i = 128; i < 192; i++) {
		snprintf(path, sizeof(path), "/dev/dri/renderD%d", i);
		f = open(path, O_RDWR | O_CLOEXEC);
		if (f < 0)
			continue;
		memset(&v, 0, sizeof(v));
		memset(name, 0, sizeof(name));
		v.name = name;
		v.name_len = sizeof(name) - 1;
		if (!ioctl(f, DRM_IOCTL_VERSION, &v) && !strcmp(name, "xe"))
			return f;
		close(f);
	}
	return -1;
}

static uint8_t *alloc_chunk(void)
{
	uint8_t *p = mmap(NULL, 2 * CHUNK, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *a;

	if (p == MAP_FAILED)
		return NULL;
	a = (uint8_t *)(((uintptr_t)p + CHUNK - 1) & ~(CHUNK - 1));
	if (a > p)
		munmap(p, a - p);
	munmap(a + CHUNK, p + CHUNK - a);
	return a;
}

/* The batch and its fence live in a page advised to stay in system memory. */
struct job {
	uint32_t batch[8];
	uint64_t fence;
};

static int store(struct job *job, uint32_t *dst)
{
	struct drm_xe_sync sync = {
		.type = DRM_XE_SYNC_TYPE_USER_FENCE,
		.flags = DRM_XE_SYNC_FLAG_SIGNAL,
		.addr = (uintptr_t)&job->fence,
		.timeline_value = FENCE_VALUE,
	};
	struct drm_xe_exec e = {
		.exec_queue_id = queue, .num_syncs = 1, .syncs = (uintptr_t)&sync,
		.address = (uintptr_t)job->batch, .num_batch_buffer = 1,
	};
	struct drm_xe_wait_user_fence w = {
		.addr = (uintptr_t)&job->fence, .op = DRM_XE_UFENCE_WAIT_OP_EQ,
		.value = FENCE_VALUE, .mask = ~0ull, .timeout = 10000000000ll,
		.exec_queue_id = queue,
	};

	job->batch[0] = 0x10000002;
	job->batch[1] = (uint32_t)(uintptr_t)dst;
	job->batch[2] = (uint32_t)((uintptr_t)dst >> 32);
	job->batch[3] = 0xc0ffee;
	job->batch[4] = 0x05000000;
	job->fence = 0;
	/* The caller checks *dst after timing: a CPU read moves VRAM back. */
	return ioctl(fd, DRM_IOCTL_XE_EXEC, &e) || ioctl(fd, DRM_IOCTL_XE_WAIT_USER_FENCE, &w);
}

static int prefetch_vram(void *p, size_t n, uint64_t *fence)
{
	struct drm_xe_sync sync = {
		.type = DRM_XE_SYNC_TYPE_USER_FENCE,
		.flags = DRM_XE_SYNC_FLAG_SIGNAL,
		.addr = (uintptr_t)fence,
		.timeline_value = FENCE_VALUE,
	};
	struct drm_xe_vm_bind b = {
		.vm_id = vm, .num_binds = 1, .bind.range = n,
		.bind.addr = (uintptr_t)p, .bind.op = DRM_XE_VM_BIND_OP_PREFETCH,
		.bind.prefetch_mem_region_instance = 1,
		.num_syncs = 1, .syncs = (uintptr_t)&sync,
	};

	*fence = 0;
	/* Binds are synchronous on the device: the fence is written on return. */
	return ioctl(fd, DRM_IOCTL_XE_VM_BIND, &b) || *fence != FENCE_VALUE;
}

static uint64_t vram_size(void)
{
	struct drm_xe_device_query q = { .query = DRM_XE_DEVICE_QUERY_MEM_REGIONS };
	struct drm_xe_query_mem_regions *r;
	uint64_t size = 0;

	if (ioctl(fd, DRM_IOCTL_XE_DEVICE_QUERY, &q))
		return 0;
	r = calloc(1, q.size);
	if (!r)
		return 0;
	q.data = (uintptr_t)r;
	if (!ioctl(fd, DRM_IOCTL_XE_DEVICE_QUERY, &q) && r->num_mem_regions > 1)
		size = r->mem_regions[1].total_size;
	free(r);
	return size;
}

static uint8_t *alloc_big(size_t n)
{
	uint8_t *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Set debugfs gt0/evict_parallel; 0 on success. */
static int set_parallel(int on)
{
	char path[96];
	struct stat st;
	FILE *f;

	if (fstat(fd, &st))
		return -1;
	snprintf(path, sizeof(path), "/sys/kernel/debug/dri/%u/gt0/evict_parallel",
		 minor(st.st_rdev));
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(on ? "Y\n" : "N\n", f);
	return fclose(f);
}

/* One measurement of each quantity; 0 on success. */
static int evict_once(size_t size, struct job *job, double *fe, double *ff,
		      double *mc)
{
	uint8_t *a = alloc_big(size), *b = alloc_big(size), *d = alloc_big(size);
	int failed = 0;
	double t;
	size_t i;

	if (!a || !b || !d)
		return 1;
	memset(a, 5, size);
	memset(b, 6, size);
	memset(d, 7, size);
	t = now();
	memcpy(d, a, size);
	*mc = now() - t;
	t = now();
	failed |= prefetch_vram(a, size, &job->fence);
	*fe = now() - t;
	t = now();
	failed |= prefetch_vram(b, size, &job->fence);
	*ff = now() - t;
	/* Every page of both came through (a from system memory again). */
	for (i = 0; i < size; i += 4096)
		failed |= a[i] != 5 || b[i] != 6;
	munmap(a, size);
	munmap(b, size);
	munmap(d, size);
	return failed;
}

/* Eviction by allocation of VRAM's worth of pages vs memcpy of as many. */
static int bench_evict(int repeats, struct job *job)
{
	double fe[64], ff[64], ev[64], mc[64], sfe[64], sff[64], sev[64], smc[64];
	size_t size = vram_size();
	int r, failed = 0;

	if (!size) {
		printf("BENCH xe_soft_evict skipped: no VRAM\n");
		return 0;
	}
	for (r = 0; r < repeats; r++) {
		failed |= set_parallel(1) ||
			  evict_once(size, job, &fe[r], &ff[r], &mc[r]);
		ev[r] = ff[r] - fe[r];
		failed |= set_parallel(0) ||
			  evict_once(size, job, &sfe[r], &sff[r], &smc[r]);
		sev[r] = sff[r] - sfe[r];
	}
	set_parallel(1);
	if (failed)
		return 1;
	printf("BENCH xe_soft_evict repeats=%d bytes=%zu median seconds: parallel: fill_empty=%.4f fill_full=%.4f evict=%.4f memcpy_vram=%.4f; serial: fill_empty=%.4f fill_full=%.4f evict=%.4f memcpy_vram=%.4f\n",
	       repeats, size, median(fe, repeats), median(ff, repeats),
	       median(ev, repeats), median(mc, repeats), median(sfe, repeats),
	       median(sff, repeats), median(sev, repeats), median(smc, repeats));
	printf("BENCH xe_soft_evict ratios: eviction/memcpy throughput parallel=%.2f serial=%.2f; serial/parallel eviction time=%.2f\n",
	       median(mc, repeats) / median(ev, repeats),
	       median(smc, repeats) / median(sev, repeats),
	       median(sev, repeats) / median(ev, repeats));
	return 0;
}

static int sysfs_write(const char *path, const char *str)
{
	int f = open(path, O_WRONLY), err = 0;

	if (f < 0)
		return -1;
	if (write(f, str, strlen(str)) != (ssize_t)strlen(str))
		err = -1;
	close(f);
	return err;
}

/* The platform device name of the render node of @xefd ("xe_soft"). */
static int device_name(int xefd, char *name, size_t len)
{
	char path[96], target[256], *base;
	struct stat st;
	ssize_t n;

	if (fstat(xefd, &st))
		return -1;
	snprintf(path, sizeof(path), "/sys/class/drm/renderD%u/device", minor(st.st_rdev));
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return -1;
	target[n] = 0;
	base = strrchr(target, '/');
	snprintf(name, len, "%.63s", base ? base + 1 : target);
	return 0;
}

/* The driver is not bound to device @name. */
static int device_gone(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", XE_SOFT_DRIVER, name);
	return access(path, F_OK) != 0;
}

/* One HMM_DMIRROR_HOLD_MMAP_WRITE call of the hold thread, timed. */
struct hold {
	int dm;			/* the owner's mirror file */
	volatile int entered;	/* set right before the ioctl */
	double start, end;	/* CLOCK_MONOTONIC around the ioctl */
	int ret, err;		/* its return value and errno */
};

static void *hold_thread(void *arg)
{
	struct hmm_dmirror_cmd cmd = { .npages = LOCK_HOLD_MS };
	struct hold *h = arg;

	/* The mirror is the owner's: its mmap_lock, held for write here. */
	h->start = now();
	h->entered = 1;
	h->ret = ioctl(h->dm, HMM_DMIRROR_HOLD_MMAP_WRITE, &cmd);
	h->err = h->ret ? errno : 0;
	h->end = now();
	return NULL;
}

/*
 * Start a hold of the owner's mmap_lock on @h and return once the ioctl
 * has been entered LOCK_START_MS ago (it takes the lock right away).
 */
static int hold_start(pthread_t *t, struct hold *h)
{
	h->entered = 0;
	h->ret = -1;
	h->err = 0;
	if (pthread_create(t, NULL, hold_thread, h))
		return -1;
	while (!h->entered)
		usleep(1000);
	usleep(LOCK_START_MS * 1000);
	return 0;
}

/* Join the hold; report it and fail loudly if its ioctl failed. */
static int hold_join(pthread_t t, struct hold *h, const char *what, double t0)
{
	pthread_join(t, NULL);
	printf("BENCH xe_soft_lock %s: hold ioctl [%.3f, %.3f] s ret=%d errno=%d (%s)\n",
	       what, h->start - t0, h->end - t0, h->ret, h->err,
	       h->ret ? strerror(h->err) : "held");
	if (h->ret) {
		printf("BENCH xe_soft_lock failed: HMM_DMIRROR_HOLD_MMAP_WRITE returned %d, errno %d (%s): the owner's mmap_lock was not held\n",
		       h->ret, h->err, strerror(h->err));
		return -1;
	}
	if (h->end - h->start < LOCK_HOLD_MS / 1000.0) {
		printf("BENCH xe_soft_lock failed: the hold returned after %.3f s, not %d ms\n",
		       h->end - h->start, LOCK_HOLD_MS);
		return -1;
	}
	return 0;
}

static int send_fd(int sock, int f)
{
	char buf[CMSG_SPACE(sizeof(int))] = { 0 }, c = 'f';
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = buf, .msg_controllen = sizeof(buf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &f, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char buf[CMSG_SPACE(sizeof(int))], c;
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = buf, .msg_controllen = sizeof(buf),
	};
	struct cmsghdr *cm;
	int f;

	if (recvmsg(sock, &msg, 0) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&f, CMSG_DATA(cm), sizeof(int));
	return f;
}

/*
 * Pages of [p, p + n) of this process that are not present and have a
 * swap-type entry in /proc/self/pagemap: with no swap in the guest, the
 * device-private entries of pages in VRAM. -1 on error.
 */
static long pages_in_vram(const void *p, size_t n)
{
	uint64_t e[512];
	size_t i, k, left = n / 4096;
	off_t off = (uintptr_t)p / 4096 * sizeof(e[0]);
	long count = 0;
	int f = open("/proc/self/pagemap", O_RDONLY);

	if (f < 0)
		return -1;
	while (left) {
		k = left < 512 ? left : 512;
		if (pread(f, e, k * sizeof(e[0]), off) != (ssize_t)(k * sizeof(e[0]))) {
			close(f);
			return -1;
		}
		for (i = 0; i < k; i++)
			count += (e[i] >> 62) == 1;	/* swapped, not present */
		off += k * sizeof(e[0]);
		left -= k;
	}
	close(f);
	return count;
}

/*
 * Where task @pid sleeps: /proc/PID/wchan and the top frames of
 * /proc/PID/stack (neither takes its mmap_lock), in @buf.
 */
static void owner_where(pid_t pid, char *buf, size_t len)
{
	char path[64], line[128];
	size_t n;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/wchan", pid);
	f = fopen(path, "r");
	n = snprintf(buf, len, "wchan ");
	if (f) {
		if (fgets(line, sizeof(line), f))
			n += snprintf(buf + n, len - n, "%s", line);
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/stack", pid);
	f = fopen(path, "r");
	for (i = 0; f && i < 6 && n < len - 1 && fgets(line, sizeof(line), f); i++) {
		line[strcspn(line, "\n")] = 0;
		n += snprintf(buf + n, len - n, " |%s", line);
	}
	if (f)
		fclose(f);
}

/* What the owner reports of its timed prefetch to system memory. */
struct va_time {
	double start, end;	/* CLOCK_MONOTONIC around the ioctl */
	int ret, err;
};

/*
 * The owners' set-up: open the device, mirror the whole address space on a
 * new VM (the globals fd and vm), fill @size bytes with @value and prefetch
 * them to VRAM. Returns 0, or the owner's exit code for the step that failed
 * (10 device or VM, 11 the mirror bind, 12 the prefetch).
 */
static int owner_fill_vram(size_t size, uint8_t value, uint8_t **out)
{
	struct drm_xe_vm_create c = {
		.flags = DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE,
	};
	struct drm_xe_vm_bind b = {
		.num_binds = 1, .bind.range = 1ull << 48,
		.bind.flags = DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR,
	};
	uint64_t fence;
	uint8_t *a;

	fd = open_xe();
	a = alloc_big(size);
	if (fd < 0 || !a || ioctl(fd, DRM_IOCTL_XE_VM_CREATE, &c))
		return 10;
	vm = c.vm_id;
	b.vm_id = vm;
	if (ioctl(fd, DRM_IOCTL_XE_VM_BIND, &b))
		return 11;
	memset(a, value, size);
	if (prefetch_vram(a, size, &fence))
		return 12;
	*out = a;
	return 0;
}

/*
 * The data owner: LOCK_BYTES in VRAM on its own VM; its mirror on
 * lib/test_hmm goes to the parent, which holds the owner's mmap_lock
 * with it. Sends the number of its pages in VRAM once set up. Commands:
 * 'p' time a prefetch to system memory (VA path) and send a struct
 * va_time, 'v' prefetch to VRAM again and send the pages in VRAM, 'c'
 * check every byte and exit. Everything it touches while the lock is held
 * is populated.
 */
static int lock_owner(int sock)
{
	struct drm_xe_sync sync = {
		.type = DRM_XE_SYNC_TYPE_USER_FENCE, .flags = DRM_XE_SYNC_FLAG_SIGNAL,
		.timeline_value = FENCE_VALUE,
	};
	struct drm_xe_vm_bind p = {
		.num_binds = 1, .bind.op = DRM_XE_VM_BIND_OP_PREFETCH,
		.num_syncs = 1, .syncs = (uintptr_t)&sync,
	};
	struct va_time vt;
	uint64_t fence;
	uint8_t *a;
	long nv;
	char cmd;
	size_t i;
	int dm, err;

	err = owner_fill_vram(LOCK_BYTES, 9, &a);
	if (err)
		return err;
	dm = open("/dev/hmm_dmirror0", O_RDWR);
	if (dm < 0 || send_fd(sock, dm))
		return 13;
	nv = pages_in_vram(a, LOCK_BYTES);
	/*
	 * Nothing this process runs between a command and its ioctl may
	 * fault while the lock is held: fork() does not copy the vDSO's
	 * PTEs, and the first clock_gettime() of the child faults the vDSO
	 * in under the mmap_lock (a special mapping has no per-VMA-lock
	 * fault), so the child would block before its timer starts.
	 */
	vt.start = vt.end = now();	/* warm-up */
	if (write(sock, &nv, sizeof(nv)) != sizeof(nv))
		return 13;
	p.vm_id = vm;
	p.bind.addr = (uintptr_t)a;
	p.bind.range = LOCK_BYTES;
	sync.addr = (uintptr_t)&fence;
	while (read(sock, &cmd, 1) == 1) {
		if (cmd == 'p') {
			p.bind.prefetch_mem_region_instance = 0;
			vt.start = now();
			vt.ret = ioctl(fd, DRM_IOCTL_XE_VM_BIND, &p);
			vt.err = vt.ret ? errno : 0;
			vt.end = now();
			if (write(sock, &vt, sizeof(vt)) != sizeof(vt))
				return 15;
		} else if (cmd == 'v') {
			if (prefetch_vram(a, LOCK_BYTES, &fence))
				return 16;
			nv = pages_in_vram(a, LOCK_BYTES);
			if (write(sock, &nv, sizeof(nv)) != sizeof(nv))
				return 16;
		} else if (cmd == 'c') {
			for (i = 0; i < LOCK_BYTES; i++)
				if (a[i] != 9)
					return 17;
			return 0;
		}
	}
	return 18;
}

/*
 * Eviction while another process holds the owner's mmap_lock for write:
 * the VA path waits for the lock, the allocation path (device removal)
 * does not. Each path starts LOCK_START_MS after its hold's ioctl was
 * entered, with the owner's data in VRAM (checked through its pagemap);
 * the hold's and the path's start and end are printed (seconds from the
 * first hold's start) and the benchmark fails if a hold failed or if
 * either property is not shown. Opens and closes the global fd (the device is
 * removed and bound again).
 */
static int lock_once(double *va_s, double *alloc_s)
{
	int sv[2], status = 0, err = 0, va_waited, alloc_inside;
	struct va_time vt = { .start = -1, .end = -1, .ret = -1 };
	double alloc_start = -1, alloc_end = -1, t0;
	struct hold h1 = { 0 }, h2 = { 0 };
	long nv1 = -1, nv2 = -1;
	char name[64], wchan[256], cmd;
	pthread_t holder;
	pid_t owner;

	fd = open_xe();
	if (fd < 0 || device_name(fd, name, sizeof(name)))
		return 1;
	/* Serial eviction copies (the device's default), whatever the kernel's default. */
	if (set_parallel(0)) {
		printf("BENCH xe_soft_lock failed: cannot set gt0/evict_parallel\n");
		return 1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return 1;
	owner = fork();
	if (owner < 0)
		return 1;
	if (!owner) {
		close(sv[0]);
		close(fd);
		_exit(lock_owner(sv[1]));
	}
	close(sv[1]);
	/* This process must not keep the device to be removed alive. */
	close(fd);
	fd = -1;
	h1.dm = h2.dm = recv_fd(sv[0]);
	if (h1.dm < 0 || read(sv[0], &nv1, sizeof(nv1)) != sizeof(nv1)) {
		err = 1;
		goto out;
	}

	/* VA path: the owner's own prefetch to system memory. */
	if (nv1 <= 0) {
		printf("BENCH xe_soft_lock failed: none of the owner's pages in VRAM before the VA path (%ld)\n",
		       nv1);
		err = 1;
		goto out;
	}
	if (hold_start(&holder, &h1)) {
		err = 1;
		goto out;
	}
	t0 = h1.start;
	cmd = 'p';
	if (write(sv[0], &cmd, 1) != 1)
		err = 1;
	usleep(LOCK_START_MS * 1000);
	owner_where(owner, wchan, sizeof(wchan));
	if (err || read(sv[0], &vt, sizeof(vt)) != sizeof(vt))
		err = 1;
	err |= hold_join(holder, &h1, "va_path", t0) != 0;
	printf("BENCH xe_soft_lock va_path: %.0f ms after the request the owner was in: %s\n",
	       LOCK_START_MS * 1.0, wchan);
	printf("BENCH xe_soft_lock va_path: prefetch to system, %ld pages in VRAM before, [%.3f, %.3f] s ret=%d errno=%d\n",
	       nv1, vt.start - t0, vt.end - t0, vt.ret, vt.err);
	cmd = 'v';
	if (err || vt.ret || write(sv[0], &cmd, 1) != 1 ||
	    read(sv[0], &nv2, sizeof(nv2)) != sizeof(nv2)) {
		err = 1;
		goto out;
	}
	if (nv2 <= 0) {
		printf("BENCH xe_soft_lock failed: none of the owner's pages in VRAM before the allocation path (%ld)\n",
		       nv2);
		err = 1;
		goto out;
	}

	/* Allocation path: device removal evicts every frame by pfn. */
	if (hold_start(&holder, &h2)) {
		err = 1;
		goto out;
	}
	alloc_start = now();
	err = sysfs_write(XE_SOFT_DRIVER "/unbind", name);
	alloc_end = now();
	err |= hold_join(holder, &h2, "alloc_path", t0) != 0;
	printf("BENCH xe_soft_lock alloc_path: device removal, %ld pages in VRAM before, [%.3f, %.3f] s ret=%d\n",
	       nv2, alloc_start - t0, alloc_end - t0, err);
	cmd = 'c';
	if (write(sv[0], &cmd, 1) != 1)
		err = 1;
out:
	close(sv[0]);
	if (waitpid(owner, &status, 0) != owner || !WIFEXITED(status) || WEXITSTATUS(status))
		err = 1;
	/* Bound again once no file keeps the old device (and its minor). */
	if (access(XE_SOFT_DRIVER "/bind", W_OK) == 0 && device_gone(name))
		err |= sysfs_write(XE_SOFT_DRIVER "/bind", name);
	if (err || vt.ret || alloc_end < 0) {
		printf("BENCH xe_soft_lock failed (owner status %d)\n", status);
		return 1;
	}
	/*
	 * The VA path was entered while the lock was held (not blocked
	 * before its ioctl) and returned only after the hold released it.
	 */
	va_waited = vt.start < h1.end - LOCK_START_MS / 1000.0 && vt.end >= h1.end;
	/* The allocation path returned while the lock was still held. */
	alloc_inside = alloc_end < h2.end;
	printf("BENCH xe_soft_lock bytes=%lu hold_ms=%d start_ms=%d (mmap_lock of the owner held for write by another process): va_path_prefetch_to_system=%.3f s (%s) alloc_path_unbind_evict=%.3f s (%.0f pages/s, %s)\n",
	       LOCK_BYTES, LOCK_HOLD_MS, LOCK_START_MS, vt.end - vt.start,
	       va_waited ? "waited for the lock" : "DID NOT WAIT for the lock",
	       alloc_end - alloc_start, nv2 / (alloc_end - alloc_start),
	       alloc_inside ? "finished while the lock was held" :
			      "DID NOT FINISH while the lock was held");
	if (!va_waited || !alloc_inside) {
		printf("BENCH xe_soft_lock failed: property not shown\n");
		return 1;
	}
	*va_s = vt.end - vt.start;
	*alloc_s = alloc_end - alloc_start;
	return 0;
}

/*
 * lock_once() @repeats times; medians. Closes the global fd (the device
 * is removed and bound again).
 */
static int bench_lock(int repeats)
{
	double va[64], al[64];
	char name[64];
	int r;

	if (device_name(fd, name, sizeof(name)) || access(XE_SOFT_DRIVER "/unbind", W_OK) ||
	    access("/dev/hmm_dmirror0", R_OK)) {
		printf("BENCH xe_soft_lock skipped: no xe_soft driver binding or no /dev/hmm_dmirror0\n");
		return 0;
	}
	close(fd);
	fd = -1;
	for (r = 0; r < repeats; r++)
		if (lock_once(&va[r], &al[r]))
			return 1;
	printf("BENCH xe_soft_lock repeats=%d bytes=%lu hold_ms=%d median seconds: va_path_prefetch_to_system=%.3f (waits for the hold) alloc_path_unbind_evict=%.3f (inside the hold); alloc/hold=%.3f\n",
	       repeats, LOCK_BYTES, LOCK_HOLD_MS, median(va, repeats), median(al, repeats),
	       median(al, repeats) / (LOCK_HOLD_MS / 1000.0));
	return 0;
}

/*
 * Owner for bench_removal: @size bytes of value 11 in VRAM on its own VM;
 * tells the parent, waits for the removal, then checks every byte.
 */
static int removal_owner(int sock, size_t size)
{
	uint8_t *a;
	char cmd = 'r';
	size_t i;
	int err;

	err = owner_fill_vram(size, 11, &a);
	if (err)
		return err;
	if (write(sock, &cmd, 1) != 1 || read(sock, &cmd, 1) != 1)
		return 13;
	for (i = 0; i < size; i++)
		if (a[i] != 11)
			return 14;
	return 0;
}

/* One device removal of @size bytes in VRAM; its seconds or -1. */
static double removal_once(const char *name, size_t size, int pipelined)
{
	int sv[2], status = 0, err;
	double t, dt;
	pid_t owner;
	char cmd;

	fd = open_xe();
	if (fd < 0)
		return -1;
	err = set_parallel(pipelined);
	close(fd);
	fd = -1;
	if (err || socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return -1;
	owner = fork();
	if (owner < 0)
		return -1;
	if (!owner) {
		close(sv[0]);
		_exit(removal_owner(sv[1], size));
	}
	close(sv[1]);
	err = read(sv[0], &cmd, 1) != 1;
	t = now();
	if (!err)
		err = sysfs_write(XE_SOFT_DRIVER "/unbind", name);
	dt = now() - t;
	cmd = 'c';
	if (write(sv[0], &cmd, 1) != 1)
		err = 1;
	close(sv[0]);
	if (waitpid(owner, &status, 0) != owner || !WIFEXITED(status) || WEXITSTATUS(status))
		err = 1;
	if (device_gone(name))
		err |= sysfs_write(XE_SOFT_DRIVER "/bind", name);
	return err ? -1 : dt;
}

/*
 * Eviction by allocation in calls of several windows (device removal of
 * half the VRAM), pipelined (gt0/evict_parallel = Y) and serial,
 * alternating per repeat, against a memcpy() of the same bytes.
 */
static int bench_removal(int repeats)
{
	double pl[64], se[64], mc[64], t;
	char name[64];
	uint8_t *s, *d;
	size_t size;
	int r;

	fd = open_xe();
	if (fd < 0 || device_name(fd, name, sizeof(name)) ||
	    access(XE_SOFT_DRIVER "/unbind", W_OK)) {
		printf("BENCH xe_soft_removal skipped: no xe_soft driver binding\n");
		return 0;
	}
	size = (vram_size() / 2) & ~(CHUNK - 1);
	close(fd);
	fd = -1;
	if (!size) {
		printf("BENCH xe_soft_removal skipped: no VRAM\n");
		return 0;
	}
	for (r = 0; r < repeats; r++) {
		s = alloc_big(size);
		d = alloc_big(size);
		if (!s || !d)
			return 1;
		memset(s, 1, size);
		memset(d, 2, size);
		t = now();
		memcpy(d, s, size);
		mc[r] = now() - t;
		munmap(s, size);
		munmap(d, size);
		pl[r] = removal_once(name, size, r & 1 ? 0 : 1);
		se[r] = removal_once(name, size, r & 1 ? 1 : 0);
		if (r & 1) {
			t = pl[r];
			pl[r] = se[r];
			se[r] = t;
		}
		if (pl[r] < 0 || se[r] < 0)
			return 1;
	}
	printf("BENCH xe_soft_removal repeats=%d bytes=%zu (device removal: eviction by allocation, 4096 frames per call) median seconds: pipelined=%.4f serial=%.4f memcpy=%.4f\n",
	       repeats, size, median(pl, repeats), median(se, repeats), median(mc, repeats));
	printf("BENCH xe_soft_removal ratios: eviction/memcpy throughput pipelined=%.3f serial=%.3f; serial/pipelined eviction time=%.2f\n",
	       median(mc, repeats) / median(pl, repeats),
	       median(mc, repeats) / median(se, repeats),
	       median(se, repeats) / median(pl, repeats));
	return 0;
}

static int advise_system(void *p, size_t n)
{
	struct drm_xe_madvise m = {
		.start = (uintptr_t)p, .range = n, .vm_id = vm,
		.type = DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC,
		.preferred_mem_loc.devmem_fd = (uint32_t)DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM,
	};

	return ioctl(fd, DRM_IOCTL_XE_MADVISE, &m);
}

int main(int argc, char **argv)
{
	int repeats = argc > 1 ? atoi(argv[1]) : 9, i, failed = 0;
	double fv[64], fs[64], eb[64], mc[64], t;
	struct drm_xe_vm_create c = {
		.flags = DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE,
	};
	struct drm_xe_engine_class_instance eci = { .engine_class = DRM_XE_ENGINE_CLASS_COPY };
	struct drm_xe_exec_queue_create q = {
		.width = 1, .num_placements = 1, .instances = (uintptr_t)&eci,
	};
	struct drm_xe_vm_bind b = {
		.num_binds = 1, .bind.range = 1ull << 48,
		.bind.flags = DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR,
	};
	struct job *job;

	if (repeats < 1 || repeats > 64)
		repeats = 9;
	fd = open_xe();
	if (fd < 0) {
		printf("BENCH xe_soft skipped: no render node named \"xe\"\n");
		return 0;
	}
	if (argc > 2 && !strcmp(argv[2], "lock"))
		return bench_lock(repeats) ? 1 : 0;
	if (ioctl(fd, DRM_IOCTL_XE_VM_CREATE, &c))
		goto fail;
	vm = c.vm_id;
	q.vm_id = vm;
	b.vm_id = vm;
	if (ioctl(fd, DRM_IOCTL_XE_VM_BIND, &b) || ioctl(fd, DRM_IOCTL_XE_EXEC_QUEUE_CREATE, &q))
		goto fail;
	queue = q.exec_queue_id;
	job = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (job == MAP_FAILED || advise_system(job, 4096))
		goto fail;

	for (i = 0; i < repeats; i++) {
		uint8_t *a = alloc_chunk(), *s = alloc_chunk(), *d = alloc_chunk();

		if (!a || !s || !d)
			goto fail;
		memset(a, 1, CHUNK);
		memset(s, 2, CHUNK);
		memset(d, 3, CHUNK);
		/* cold: populated, then 4 MiB of other data through the caches */
		memset(d, 4, CHUNK);
		t = now();
		memcpy(d, s, CHUNK);
		mc[i] = now() - t;

		t = now();
		failed |= store(job, (uint32_t *)(a + 4096));
		fv[i] = now() - t;
		/* same chunk, still bound: no fault */
		t = now();
		failed |= store(job, (uint32_t *)(a + 8192));
		eb[i] = now() - t;
		failed |= *(uint32_t *)(a + 4096) != 0xc0ffee ||
			  *(uint32_t *)(a + 8192) != 0xc0ffee;

		if (advise_system(s, CHUNK))
			goto fail;
		t = now();
		failed |= store(job, (uint32_t *)(s + 4096));
		fs[i] = now() - t;
		failed |= *(uint32_t *)(s + 4096) != 0xc0ffee;
		munmap(a, CHUNK);
		munmap(s, CHUNK);
		munmap(d, CHUNK);
	}
	if (failed)
		goto fail;
	printf("BENCH xe_soft repeats=%d chunk=2MiB median seconds: fault_vram=%.6f fault_system=%.6f exec_bound=%.6f memcpy_cold=%.6f\n",
	       repeats, median(fv, repeats), median(fs, repeats), median(eb, repeats),
	       median(mc, repeats));
	printf("BENCH xe_soft ratios: fault_vram/memcpy=%.1f fault_system/memcpy=%.1f (fault_vram-exec_bound)/memcpy=%.1f\n",
	       median(fv, repeats) / median(mc, repeats),
	       median(fs, repeats) / median(mc, repeats),
	       (median(fv, repeats) - median(eb, repeats)) / median(mc, repeats));
	if (bench_evict(repeats < 3 ? repeats : 3, job))
		goto fail;
	if (bench_lock(repeats < 3 ? repeats : 3))
		goto fail;
	if (bench_removal(repeats < 5 ? repeats : 5))
		goto fail;
	return 0;
fail:
	printf("BENCH xe_soft failed (errno %d)\n", errno);
	return 1;
}
