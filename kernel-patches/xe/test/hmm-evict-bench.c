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
 * each without and with a concurrent mmap/mprotect/munmap storm (two
 * threads of the same process), and the frames path with a serial and a
 * parallel copy. Under TCG only the ratios mean something.
 *
 * usage: hmm-evict-bench [npages] [repeats]
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
	volatile int stop;
	unsigned long ops;
};

static void *storm_fn(void *arg)
{
	struct storm *s = arg;

	while (!s->stop) {
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

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One timed eviction of npages device pages; returns pages/s or < 0. */
static double one_run(int fd, char *p, char *mirror, unsigned long npages,
		      enum path path, __u64 flags)
{
	unsigned long i;
	__u64 n = 0;
	double t0, t1;
	int ret;

	for (i = 0; i < npages; i++)
		p[i * page_size] = (char)i;
	ret = cmd_ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, mirror, npages, &n);
	if (ret || n != npages) {
		fprintf(stderr, "migrate to device: %d, %llu pages\n", ret,
			(unsigned long long)n);
		return -1;
	}
	t0 = now();
	switch (path) {
	case FRAMES:
		ret = evict_ioctl(fd, HMM_DMIRROR_EVICT_FRAMES, NULL, 0, flags, &n);
		break;
	case RANGE:
		ret = evict_ioctl(fd, HMM_DMIRROR_EVICT_RANGE, p, npages, flags, &n);
		break;
	case MIGRATE_VMA:
		ret = cmd_ioctl(fd, HMM_DMIRROR_MIGRATE_TO_SYS, p, mirror, npages, &n);
		break;
	case CHUNK_RANGE:
		ret = evict_ioctl(fd, HMM_DMIRROR_EVICT_FRAMES, NULL, 0,
				  HMM_DMIRROR_EVICT_CHUNK_RANGE, &n);
		break;
	}
	t1 = now();
	if (ret || n != npages) {
		fprintf(stderr, "%s: %d, %llu of %lu pages\n", path_name[path],
			ret, (unsigned long long)n, npages);
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
			 enum path path, __u64 flags, int storm_on,
			 int repeats, const char *label)
{
	struct storm s = { 0 };
	pthread_t t[2];
	double *v = calloc(repeats, sizeof(*v)), med;
	int i, k = 0;

	if (storm_on) {
		pthread_create(&t[0], NULL, storm_fn, &s);
		pthread_create(&t[1], NULL, storm_fn, &s);
	}
	for (i = 0; i < repeats; i++) {
		double r = one_run(fd, p, mirror, npages, path, flags);

		if (r < 0) {
			k = -1;
			break;
		}
		v[k++] = r;
	}
	if (storm_on) {
		s.stop = 1;
		pthread_join(t[0], NULL);
		pthread_join(t[1], NULL);
	}
	if (k <= 0) {
		free(v);
		return -1;
	}
	qsort(v, k, sizeof(*v), cmp_double);
	med = v[k / 2];
	printf("BENCH %-22s storm=%d pages=%lu runs=%d median_pages_per_s=%.0f min=%.0f max=%.0f storm_ops=%lu\n",
	       label, storm_on, npages, k, med, v[0], v[k - 1], s.ops);
	fflush(stdout);
	free(v);
	return med;
}

int main(int argc, char **argv)
{
	unsigned long npages = argc > 1 ? strtoul(argv[1], NULL, 0) : 4096;
	int repeats = argc > 2 ? atoi(argv[2]) : 5;
	double r[4][2], serial, parallel;
	int fd, path, storm, fail = 0;
	char *p, *mirror;

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
	if (p == MAP_FAILED || !mirror) {
		printf("not ok 1 bench # out of memory\n");
		return 1;
	}
	/* warm up: fault in the buffer and the device chunk */
	one_run(fd, p, mirror, npages, FRAMES, 0);

	for (storm = 0; storm < 2; storm++)
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
		for (storm = 0; storm < 2; storm++)
			printf("BENCH ratio storm=%d frames/migrate_vma=%.2f range/migrate_vma=%.2f frames/chunk_range=%.2f frames/range=%.2f\n",
			       storm, r[FRAMES][storm] / r[MIGRATE_VMA][storm],
			       r[RANGE][storm] / r[MIGRATE_VMA][storm],
			       r[FRAMES][storm] / r[CHUNK_RANGE][storm],
			       r[FRAMES][storm] / r[RANGE][storm]);
		printf("BENCH ratio parallel/serial copy=%.2f\n",
		       parallel / serial);
		printf("BENCH goal frames >= 2x migrate_vma under storm: %s (%.2fx)\n",
		       r[FRAMES][1] >= 2 * r[MIGRATE_VMA][1] ? "met" : "NOT met",
		       r[FRAMES][1] / r[MIGRATE_VMA][1]);
	}
	printf("%sok 1 bench\n", fail ? "not " : "");
	return fail;
}
