// SPDX-License-Identifier: GPL-2.0
/*
 * Eviction throughput of the dmirror device (lib/test_hmm.c with the xesvm
 * series), in pages per second, as medians over repeated runs:
 *
 *   frames       HMM_DMIRROR_EVICT_FRAMES (allocation path, no mm at all)
 *   range        HMM_DMIRROR_EVICT_RANGE (VA range, VMA-free)
 *   migrate_vma  HMM_DMIRROR_MIGRATE_TO_SYS (migrate_vma_setup on the VMA)
 *   chunk_range  HMM_DMIRROR_EVICT_FRAMES + EVICT_CHUNK_RANGE (the old
 *                per-chunk migrate_device_range() loop, serial copy)
 *
 * each with no contention, under an mmap storm (two threads of the same
 * process doing mmap/touch/mprotect/munmap of small regions) and under a
 * long writer (one thread doing mprotect() over a populated 64 MiB region,
 * which holds the mmap_lock for write while it rewrites every PTE) and
 * under a lock holder (the mmap_lock held for write 20 ms out of every
 * 25 ms through HMM_DMIRROR_HOLD_MMAP_WRITE); and the
 * frames path with a serial and a parallel copy. Evictions are issued in
 * calls of per_call pages (a 2 MiB range by default), except the old chunk
 * loop, which always evicts whole chunks. Under TCG only ratios mean
 * something.
 *
 * usage: hmm-evict-bench [npages [repeats [per_call]]]
 * Output: "BENCH ..." lines, then a one-test TAP result.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <lib/test_hmm_uapi.h>

static unsigned long page_size;

enum path { FRAMES, RANGE, MIGRATE_VMA, CHUNK_RANGE };
static const char *const path_name[] = {
	"frames", "range", "migrate_vma", "chunk_range",
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmd_ioctl(int fd, unsigned long req, void *addr, void *mirror,
		     unsigned long npages, __u64 *cpages)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = (uintptr_t)addr, .ptr = (uintptr_t)mirror,
		.npages = npages,
	};
	int ret;

	do {
		ret = ioctl(fd, req, &cmd);
	} while (ret && errno == EINTR);
	if (cpages)
		*cpages = cmd.cpages;
	return ret ? -errno : 0;
}

static int evict_ioctl(int fd, unsigned long req, void *addr,
		       unsigned long npages, __u64 flags, __u64 *evicted)
{
	struct hmm_dmirror_evict ev = {
		.addr = (uintptr_t)addr, .npages = npages, .flags = flags,
	};
	int ret;

	do {
		ret = ioctl(fd, req, &ev);
	} while (ret && errno == EINTR);
	*evicted = ev.evicted;
	return ret ? -errno : 0;
}

struct storm {
	int stop;
	unsigned long ops;
	char *big;		/* populated region for the long writer */
	unsigned long big_size;
	int fd;			/* for the lock holder */
};

static int stopped(struct storm *s)
{
	return __atomic_load_n(&s->stop, __ATOMIC_RELAXED);
}

/* Short writers: mmap, touch, mprotect, munmap of a small region. */
static void *storm_fn(void *arg)
{
	struct storm *s = arg;

	while (!stopped(s)) {
		char *q = mmap(NULL, 16 * page_size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (q == MAP_FAILED)
			continue;
		q[0] = 1;
		mprotect(q, 16 * page_size, PROT_READ);
		munmap(q, 16 * page_size);
		__atomic_add_fetch(&s->ops, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/*
 * Long writer: mprotect() over a large populated region holds the
 * mmap_lock for write while it rewrites every PTE.
 */
static void *writer_fn(void *arg)
{
	struct storm *s = arg;
	int i = 0;

	while (!stopped(s)) {
		mprotect(s->big, s->big_size,
			 (i++ & 1) ? PROT_READ | PROT_WRITE : PROT_READ);
		__atomic_add_fetch(&s->ops, 1, __ATOMIC_RELAXED);
		usleep(1000);
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * Lock holder: the mmap_lock is held for write 20 ms at a time with 5 ms
 * gaps (HMM_DMIRROR_HOLD_MMAP_WRITE), like a long mmap/munmap/mprotect in
 * another thread of the process.
 */
static void *holder_fn(void *arg)
{
	struct storm *s = arg;

	while (!stopped(s)) {
		cmd_ioctl(s->fd, HMM_DMIRROR_HOLD_MMAP_WRITE, NULL, NULL, 20,
			  NULL);
		__atomic_add_fetch(&s->ops, 1, __ATOMIC_RELAXED);
		usleep(5000);
	}
	return NULL;
}

#define NSTORMS 4
static const char *const storm_name[NSTORMS] = {
	"none", "mmap_storm", "long_writer", "lock_holder",
};
static unsigned long call_pages;		/* pages per eviction call */
static char *big;
static unsigned long big_size;

/*
 * Migrate npages to the device, then evict them in calls of call_pages
 * pages (the old chunk loop always evicts whole chunks in one call).
 * Returns pages/s of the timed eviction, or < 0.
 */
static double one_run(int fd, char *p, char *mirror, unsigned long npages,
		      enum path path, __u64 flags)
{
	unsigned long i, off, total = 0;
	__u64 n = 0;
	double t0, t1;
	int ret = 0;

	for (i = 0; i < npages; i++)
		p[i * page_size] = (char)i;
	ret = cmd_ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, mirror, npages, &n);
	if (ret || n != npages) {
		fprintf(stderr, "migrate to device: %d, %llu pages\n", ret,
			(unsigned long long)n);
		return -1;
	}
	t0 = now();
	for (off = 0; off < npages && !ret; off += call_pages) {
		unsigned long cnt = npages - off < call_pages ?
				    npages - off : call_pages;
		char *a = p + off * page_size;

		n = 0;
		switch (path) {
		case FRAMES:
			ret = evict_ioctl(fd, HMM_DMIRROR_EVICT_FRAMES, NULL,
					  cnt, flags, &n);
			break;
		case RANGE:
			ret = evict_ioctl(fd, HMM_DMIRROR_EVICT_RANGE, a, cnt,
					  flags, &n);
			break;
		case MIGRATE_VMA:
			ret = cmd_ioctl(fd, HMM_DMIRROR_MIGRATE_TO_SYS, a,
					mirror, cnt, &n);
			break;
		case CHUNK_RANGE:
			ret = evict_ioctl(fd, HMM_DMIRROR_EVICT_FRAMES, NULL, 0,
					  HMM_DMIRROR_EVICT_CHUNK_RANGE, &n);
			off = npages;
			break;
		}
		total += n;
	}
	t1 = now();
	if (ret || total != npages) {
		fprintf(stderr, "%s: %d, %lu of %lu pages\n", path_name[path],
			ret, total, npages);
		return -1;
	}
	for (i = 0; i < npages; i++)
		if (p[i * page_size] != (char)i) {
			fprintf(stderr, "%s: bad data at page %lu\n",
				path_name[path], i);
			return -1;
		}
	return npages / (t1 - t0);
}

static double median_run(int fd, char *p, char *mirror, unsigned long npages,
			 enum path path, __u64 flags, int storm,
			 int repeats, const char *label)
{
	struct storm s = { .big = big, .big_size = big_size, .fd = fd };
	double *v = calloc(repeats, sizeof(*v)), med;
	pthread_t t[2];
	int i, k = 0;

	if (storm == 1) {
		pthread_create(&t[0], NULL, storm_fn, &s);
		pthread_create(&t[1], NULL, storm_fn, &s);
	} else if (storm == 2) {
		pthread_create(&t[0], NULL, writer_fn, &s);
	} else if (storm == 3) {
		pthread_create(&t[0], NULL, holder_fn, &s);
	}
	for (i = 0; i < repeats; i++) {
		double r = one_run(fd, p, mirror, npages, path, flags);

		if (r < 0) {
			k = -1;
			break;
		}
		v[k++] = r;
	}
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELAXED);
	if (storm == 1) {
		pthread_join(t[0], NULL);
		pthread_join(t[1], NULL);
	} else if (storm >= 2) {
		pthread_join(t[0], NULL);
	}
	if (k <= 0) {
		free(v);
		return -1;
	}
	qsort(v, k, sizeof(*v), cmp_double);
	med = v[k / 2];
	printf("BENCH %-20s storm=%-11s pages=%lu per_call=%lu runs=%d median_pages_per_s=%.0f min=%.0f max=%.0f storm_ops=%lu\n",
	       label, storm_name[storm], npages, call_pages, k, med, v[0],
	       v[k - 1], s.ops);
	fflush(stdout);
	free(v);
	return med;
}

int main(int argc, char **argv)
{
	unsigned long npages = argc > 1 ? strtoul(argv[1], NULL, 0) : 4096;
	int repeats = argc > 2 ? atoi(argv[2]) : 5;
	double r[4][NSTORMS], serial, parallel;
	int fd, path, storm, fail = 0;
	char *p, *mirror;
	unsigned long i;

	call_pages = argc > 3 ? strtoul(argv[3], NULL, 0) : 512;
	page_size = sysconf(_SC_PAGE_SIZE);
	printf("TAP version 13\n1..1\n");
	fd = open("/dev/hmm_dmirror0", O_RDWR);
	if (fd < 0) {
		printf("ok 1 bench # SKIP no /dev/hmm_dmirror0\n");
		return 0;
	}
	p = mmap(NULL, npages * page_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mirror = malloc(npages * page_size);
	big_size = 64UL << 20;
	big = mmap(NULL, big_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || !mirror || big == MAP_FAILED) {
		printf("not ok 1 bench # out of memory\n");
		return 1;
	}
	for (i = 0; i < big_size; i += page_size)
		big[i] = 1;
	/* warm up: fault in the buffer and the device chunk */
	one_run(fd, p, mirror, npages, FRAMES, 0);

	for (storm = 0; storm < NSTORMS; storm++)
		for (path = 0; path < 4; path++) {
			r[path][storm] = median_run(fd, p, mirror, npages, path,
						    0, storm, repeats,
						    path_name[path]);
			if (r[path][storm] < 0)
				fail = 1;
		}
	serial = median_run(fd, p, mirror, npages, FRAMES,
			    HMM_DMIRROR_EVICT_SERIAL, 0, repeats,
			    "frames_serial_copy");
	parallel = median_run(fd, p, mirror, npages, FRAMES,
			      HMM_DMIRROR_EVICT_PARALLEL, 0, repeats,
			      "frames_parallel_copy");
	if (serial < 0 || parallel < 0)
		fail = 1;

	if (!fail) {
		for (storm = 0; storm < NSTORMS; storm++)
			printf("BENCH ratio storm=%-11s frames/migrate_vma=%.2f range/migrate_vma=%.2f frames/chunk_range=%.2f frames/range=%.2f\n",
			       storm_name[storm],
			       r[FRAMES][storm] / r[MIGRATE_VMA][storm],
			       r[RANGE][storm] / r[MIGRATE_VMA][storm],
			       r[FRAMES][storm] / r[CHUNK_RANGE][storm],
			       r[FRAMES][storm] / r[RANGE][storm]);
		printf("BENCH ratio parallel/serial copy=%.2f\n",
		       parallel / serial);
		for (storm = 1; storm < NSTORMS; storm++)
			printf("BENCH goal frames >= 2x migrate_vma under %s: %s (%.2fx)\n",
			       storm_name[storm],
			       r[FRAMES][storm] >= 2 * r[MIGRATE_VMA][storm] ?
			       "met" : "NOT met",
			       r[FRAMES][storm] / r[MIGRATE_VMA][storm]);
	}
	printf("%sok 1 bench\n", fail ? "not " : "");
	return fail;
}
