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
 * each with the eviction copies in parallel batches (the default) and
 * serial (debugfs gt0/evict_parallel = N), alternating per repeat.
 *
 * usage: xe-soft-bench [repeats]
 * Output: "BENCH ..." lines; exit status 0 on success.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <drm/drm.h>
#include <drm/xe_drm.h>

#define CHUNK		(2ul << 20)
#define FENCE_VALUE	0xdeadbeefdeadbeefull

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
	return 0;
fail:
	printf("BENCH xe_soft failed (errno %d)\n", errno);
	return 1;
}
