// SPDX-License-Identifier: GPL-2.0
/*
 * Eviction throughput of the dmirror device (lib/test_hmm.c with the xesvm
 * series), in pages per second, as medians over repeated runs:
 *
 *   frames       HMM_DMIRROR_EVICT_FRAMES (allocation path, no mm at all)
 *   range        HMM_DMIRROR_EVICT_RANGE (VA range, VMA-free)
 *   migrate_vma  HMM_DMIRROR_MIGRATE_TO_SYS (migrate_vma_setup on the VMA)
 *   chunk_range  HMM_DMIRROR_EVICT_FRAMES + EVICT_CHUNK_RANGE (the old
 *                per-chunk migrate_device_range() loop, serial copy; no
 *                contention, contiguous layout only)
 *
 * The data belongs to the OWNER process (this one: it opened the mirror,
 * so the mirror's mm is its mm); the evictions are issued by a separate
 * EVICTOR process that inherited the file, as a device memory manager
 * would. Contention, always in the owner's mm, never in the evictor's:
 *
 *   none         the owner sleeps while its pages are evicted
 *   storm        two threads of the owner mmap/touch/mprotect/munmap 64 KiB
 *                regions in a loop; their operations per second during the
 *                timed evictions are reported beside pages/s (storm_ops_s),
 *                with the storm's rate when nothing is evicted (alone_ops_s)
 *   long_writer  one thread of the owner mprotect()s a populated 64 MiB
 *                region in a loop (the mmap_lock held for write while it
 *                rewrites every PTE)
 *   lock_holder  the owner's mmap_lock held for write 20 ms out of every
 *                25 ms (HMM_DMIRROR_HOLD_MMAP_WRITE)
 *
 * and three layouts of the evicted pages:
 *
 *   contiguous   one VMA, every page on the device
 *   scattered    twice as many pages migrated, every other one brought back
 *                by a CPU fault: the evicted frames are interleaved with
 *                free ones and the VA paths walk twice the range
 *   mremapped    one VMA moved by mremap() after the migration (the pages'
 *                index no longer matches their address; MREMAP_DONTUNMAP,
 *                so no hole opens that the storm's mmap()s could take)
 *
 * Evictions are issued in calls of per_call pages (2 MiB by default; the
 * VA paths cover twice that range in the scattered layout). Finally the
 * frames path in one call of all pages (several windows), with the copy
 * pipelined behind the next window's lock and unmap
 * (HMM_DMIRROR_EVICT_PARALLEL) and serial, alternating per repeat.
 * Every run checks every page's data in the owner. Under TCG only ratios
 * within one run mean something.
 *
 * usage: hmm-evict-bench [npages [repeats [per_call [copy]]]]
 * ("copy": the pipelined vs serial comparison only)
 * Output: "BENCH ..." lines, then a one-test TAP result.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lib/test_hmm_uapi.h>

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP	4
#endif

static unsigned long page_size;

enum path { FRAMES, RANGE, MIGRATE_VMA, CHUNK_RANGE, NPATHS };
static const char *const path_name[NPATHS] = {
	"frames", "range", "migrate_vma", "chunk_range",
};
enum storm { NONE, STORM, LONG_WRITER, LOCK_HOLDER, NSTORMS };
static const char *const storm_name[NSTORMS] = {
	"none", "storm", "long_writer", "lock_holder",
};
enum layout { CONTIGUOUS, SCATTERED, MREMAPPED, NLAYOUTS };
static const char *const layout_name[NLAYOUTS] = {
	"contiguous", "scattered", "mremapped",
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

/* Contention threads of the owner. */
struct storm_ctl {
	int stop;
	unsigned long ops;
	char *big;		/* populated region for the long writer */
	unsigned long big_size;
	int fd;			/* for the lock holder */
};

static int stopped(struct storm_ctl *s)
{
	return __atomic_load_n(&s->stop, __ATOMIC_RELAXED);
}

static void *storm_fn(void *arg)
{
	struct storm_ctl *s = arg;

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

static void *writer_fn(void *arg)
{
	struct storm_ctl *s = arg;
	int i = 0;

	while (!stopped(s)) {
		mprotect(s->big, s->big_size,
			 (i++ & 1) ? PROT_READ | PROT_WRITE : PROT_READ);
		__atomic_add_fetch(&s->ops, 1, __ATOMIC_RELAXED);
		usleep(1000);
	}
	return NULL;
}

static void *holder_fn(void *arg)
{
	struct storm_ctl *s = arg;

	while (!stopped(s)) {
		cmd_ioctl(s->fd, HMM_DMIRROR_HOLD_MMAP_WRITE, NULL, NULL, 20,
			  NULL);
		__atomic_add_fetch(&s->ops, 1, __ATOMIC_RELAXED);
		usleep(5000);
	}
	return NULL;
}

static int start_storm(struct storm_ctl *s, enum storm storm, pthread_t *t)
{
	s->stop = 0;
	s->ops = 0;
	switch (storm) {
	case STORM:
		return pthread_create(&t[0], NULL, storm_fn, s) ||
		       pthread_create(&t[1], NULL, storm_fn, s);
	case LONG_WRITER:
		return pthread_create(&t[0], NULL, writer_fn, s);
	case LOCK_HOLDER:
		return pthread_create(&t[0], NULL, holder_fn, s);
	default:
		return 0;
	}
}

static void stop_storm(struct storm_ctl *s, enum storm storm, pthread_t *t)
{
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
	if (storm != NONE)
		pthread_join(t[0], NULL);
	if (storm == STORM)
		pthread_join(t[1], NULL);
}

/* A request from the owner to the evictor, and its answer. */
struct request {
	int path;
	__u64 flags;
	char *addr;		/* in the owner's address space */
	unsigned long npages;	/* pages to evict */
	unsigned long span;	/* pages of VA the VA paths walk */
	unsigned long per_call;
};

struct answer {
	double seconds;
	unsigned long evicted;
	int err;
};

/*
 * The evictor: a process of its own (its mm is not the owner's) holding
 * the owner's mirror file. Evicts what it is asked to, in calls of
 * per_call pages, and answers with the time it took.
 */
static int evictor(int fd, int rd, int wr)
{
	struct request q;
	struct answer a;

	while (read(rd, &q, sizeof(q)) == sizeof(q)) {
		unsigned long off, total = 0, step;
		double t0;
		__u64 n;
		int ret = 0;

		step = q.span > q.npages ? 2 * q.per_call : q.per_call;
		t0 = now();
		if (q.path == FRAMES) {
			while (total < q.npages && !ret) {
				unsigned long cnt = q.npages - total;

				if (cnt > q.per_call)
					cnt = q.per_call;
				n = 0;
				ret = evict_ioctl(fd, HMM_DMIRROR_EVICT_FRAMES,
						  NULL, cnt, q.flags, &n);
				if (!n)
					break;
				total += n;
			}
		} else if (q.path == CHUNK_RANGE) {
			n = 0;
			ret = evict_ioctl(fd, HMM_DMIRROR_EVICT_FRAMES, NULL, 0,
					  HMM_DMIRROR_EVICT_CHUNK_RANGE, &n);
			total = n;
		} else {
			for (off = 0; off < q.span && !ret; off += step) {
				unsigned long cnt = q.span - off < step ?
						    q.span - off : step;
				char *a0 = q.addr + off * page_size;

				n = 0;
				if (q.path == RANGE)
					ret = evict_ioctl(fd, HMM_DMIRROR_EVICT_RANGE,
							  a0, cnt, q.flags, &n);
				else
					ret = cmd_ioctl(fd, HMM_DMIRROR_MIGRATE_TO_SYS,
							a0, NULL, cnt, &n);
				total += n;
			}
		}
		a.seconds = now() - t0;
		a.evicted = total;
		a.err = ret;
		if (write(wr, &a, sizeof(a)) != sizeof(a))
			return 1;
	}
	return 0;
}

static int to_evictor, from_evictor;
static struct storm_ctl ctl;
static char *buf, *moved, *mirror;	/* 2 * npages each */
static unsigned long npages, per_call;

static void fill(char *p, unsigned long n, int seed)
{
	unsigned long i;

	for (i = 0; i < n; i++)
		*(unsigned long *)(p + i * page_size) = i * 977 + seed;
}

static long check(const char *p, unsigned long n, int seed)
{
	unsigned long i;

	for (i = 0; i < n; i++)
		if (*(const unsigned long *)(p + i * page_size) != i * 977 + seed)
			return i;
	return -1;
}

/*
 * Put npages of the owner's data on the device in @layout, have the
 * evictor evict them by @path, check every page. Returns pages/s, or < 0;
 * adds the storm's operations and the seconds of the timed eviction.
 */
static double one_run(enum path path, enum layout layout, __u64 flags,
		      unsigned long call, unsigned long *ops, double *secs)
{
	unsigned long n = layout == SCATTERED ? 2 * npages : npages, i, before;
	char *p = buf;
	struct request q = {
		.path = path, .flags = flags, .npages = npages, .span = n,
		.per_call = call,
	};
	struct answer a;
	__u64 got = 0;
	int seed = rand() & 0xffff;
	volatile unsigned long sink = 0;

	fill(p, n, seed);
	if (cmd_ioctl(ctl.fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, mirror, n, &got) ||
	    got != n) {
		fprintf(stderr, "migrate to device: %llu of %lu pages\n",
			(unsigned long long)got, n);
		return -1;
	}
	if (layout == SCATTERED)
		for (i = 1; i < n; i += 2)
			sink += *(volatile unsigned long *)(p + i * page_size);
	if (layout == MREMAPPED) {
		p = mremap(buf, n * page_size, n * page_size, MREMAP_MAYMOVE |
			   MREMAP_FIXED | MREMAP_DONTUNMAP, moved);
		if (p == MAP_FAILED) {
			perror("mremap");
			return -1;
		}
	}
	q.addr = p;
	before = __atomic_load_n(&ctl.ops, __ATOMIC_RELAXED);
	if (write(to_evictor, &q, sizeof(q)) != sizeof(q) ||
	    read(from_evictor, &a, sizeof(a)) != sizeof(a))
		return -1;
	*ops += __atomic_load_n(&ctl.ops, __ATOMIC_RELAXED) - before;
	*secs += a.seconds;
	if (a.err || a.evicted != npages) {
		fprintf(stderr, "%s %s: error %d, %lu of %lu pages\n",
			path_name[path], layout_name[layout], a.err, a.evicted,
			npages);
		return -1;
	}
	if (check(p, n, seed) >= 0) {
		fprintf(stderr, "%s %s: bad data at page %ld\n", path_name[path],
			layout_name[layout], check(p, n, seed));
		return -1;
	}
	if (layout == MREMAPPED &&
	    mremap(p, n * page_size, n * page_size, MREMAP_MAYMOVE |
		   MREMAP_FIXED | MREMAP_DONTUNMAP, buf) == MAP_FAILED)
		return -1;
	(void)sink;
	return npages / a.seconds;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

/* The storm's operations per second with nothing being evicted. */
static double storm_alone(void)
{
	pthread_t t[2];
	unsigned long ops;
	double t0;

	if (start_storm(&ctl, STORM, t))
		return -1;
	t0 = now();
	usleep(1000000);
	ops = __atomic_load_n(&ctl.ops, __ATOMIC_RELAXED);
	t0 = now() - t0;
	stop_storm(&ctl, STORM, t);
	return ops / t0;
}

/* Median pages/s of @repeats runs; *ops_s: the storm's rate meanwhile. */
static double median_run(enum path path, enum storm storm, enum layout layout,
			 int repeats, double *ops_s)
{
	double v[64], secs = 0, med;
	unsigned long ops = 0;
	pthread_t t[2];
	int i, k = 0;

	if (start_storm(&ctl, storm, t))
		return -1;
	for (i = 0; i < repeats; i++) {
		double r = one_run(path, layout, 0, per_call, &ops, &secs);

		if (r < 0) {
			k = -1;
			break;
		}
		v[k++] = r;
	}
	stop_storm(&ctl, storm, t);
	if (k <= 0)
		return -1;
	med = median(v, k);
	*ops_s = secs > 0 ? ops / secs : 0;
	printf("BENCH %-12s storm=%-11s layout=%-10s pages=%lu per_call=%lu runs=%d median_pages_per_s=%.0f min=%.0f max=%.0f storm_ops_s=%.0f\n",
	       path_name[path], storm_name[storm], layout_name[layout], npages,
	       per_call, k, med, v[0], v[k - 1], *ops_s);
	fflush(stdout);
	return med;
}

int main(int argc, char **argv)
{
	double r[NPATHS][NSTORMS][NLAYOUTS], ops[NPATHS][NSTORMS][NLAYOUTS];
	double pl[64], se[64], alone[2], dummy;
	int repeats, path, storm, layout, i, fail = 0, status, copy_only;
	int req[2], ans[2];
	unsigned long secs_ops;
	pid_t child;

	npages = argc > 1 ? strtoul(argv[1], NULL, 0) : 4096;
	repeats = argc > 2 ? atoi(argv[2]) : 5;
	per_call = argc > 3 ? strtoul(argv[3], NULL, 0) : 512;
	copy_only = argc > 4 && !strcmp(argv[4], "copy");
	if (repeats < 1 || repeats > 64)
		repeats = 5;
	page_size = sysconf(_SC_PAGE_SIZE);
	printf("TAP version 13\n1..1\n");
	ctl.fd = open("/dev/hmm_dmirror0", O_RDWR);
	if (ctl.fd < 0) {
		printf("ok 1 bench # SKIP no /dev/hmm_dmirror0\n");
		return 0;
	}
	/* The evictor: forked before the owner's data exists (no COW). */
	if (pipe(req) || pipe(ans))
		return 1;
	child = fork();
	if (child < 0)
		return 1;
	if (!child) {
		close(req[1]);
		close(ans[0]);
		_exit(evictor(ctl.fd, req[0], ans[1]));
	}
	close(req[0]);
	close(ans[1]);
	to_evictor = req[1];
	from_evictor = ans[0];

	buf = mmap(NULL, 2 * npages * page_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	moved = mmap(NULL, 2 * npages * page_size, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mirror = malloc(2 * npages * page_size);
	ctl.big_size = 64UL << 20;
	ctl.big = mmap(NULL, ctl.big_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED || moved == MAP_FAILED || !mirror ||
	    ctl.big == MAP_FAILED) {
		printf("not ok 1 bench # out of memory\n");
		return 1;
	}
	for (secs_ops = 0; secs_ops < ctl.big_size; secs_ops += page_size)
		ctl.big[secs_ops] = 1;
	/* warm up: fault in the buffer and the device chunk */
	secs_ops = 0;
	one_run(FRAMES, SCATTERED, 0, per_call, &secs_ops, &dummy);

	alone[0] = copy_only ? 0 : storm_alone();
	for (layout = 0; layout < NLAYOUTS && !fail && !copy_only; layout++)
		for (storm = 0; storm < NSTORMS && !fail; storm++) {
			/* same-mm writers: contiguous layout only */
			if (layout != CONTIGUOUS && storm >= LONG_WRITER)
				continue;
			for (path = 0; path < NPATHS; path++) {
				if (path == CHUNK_RANGE &&
				    (layout != CONTIGUOUS || storm != NONE))
					continue;
				r[path][storm][layout] =
					median_run(path, storm, layout, repeats,
						   &ops[path][storm][layout]);
				if (r[path][storm][layout] < 0)
					fail = 1;
			}
		}
	alone[1] = copy_only ? 0 : storm_alone();

	/* Pipelined vs serial copy: all pages in one call, alternating. */
	for (i = 0; i < repeats && !fail; i++) {
		double a = one_run(FRAMES, CONTIGUOUS, HMM_DMIRROR_EVICT_PARALLEL,
				   npages, &secs_ops, &dummy);
		double b = one_run(FRAMES, CONTIGUOUS, HMM_DMIRROR_EVICT_SERIAL,
				   npages, &secs_ops, &dummy);

		if (a < 0 || b < 0)
			fail = 1;
		pl[i] = a;
		se[i] = b;
	}

	close(to_evictor);
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		fail = 1;
	if (!fail) {
		double a = median(pl, repeats), b = median(se, repeats);
		double alone_s = (alone[0] + alone[1]) / 2;

		printf("BENCH frames_copy  storm=none        layout=contiguous pages=%lu per_call=%lu runs=%d median_pages_per_s: pipelined=%.0f serial=%.0f\n",
		       npages, npages, repeats, a, b);
		printf("BENCH ratio pipelined/serial copy=%.2f\n", a / b);
		if (copy_only)
			goto out;
		printf("BENCH storm alone_ops_s=%.0f (before %.0f, after %.0f)\n",
		       alone_s, alone[0], alone[1]);
		for (layout = 0; layout < NLAYOUTS; layout++)
			for (storm = 0; storm < NSTORMS; storm++) {
				if (layout != CONTIGUOUS && storm >= LONG_WRITER)
					continue;
				printf("BENCH ratio layout=%-10s storm=%-11s frames/migrate_vma=%.2f range/migrate_vma=%.2f frames/range=%.2f",
				       layout_name[layout], storm_name[storm],
				       r[FRAMES][storm][layout] / r[MIGRATE_VMA][storm][layout],
				       r[RANGE][storm][layout] / r[MIGRATE_VMA][storm][layout],
				       r[FRAMES][storm][layout] / r[RANGE][storm][layout]);
				if (storm == STORM)
					printf(" storm_progress frames=%.2f range=%.2f migrate_vma=%.2f",
					       ops[FRAMES][storm][layout] / alone_s,
					       ops[RANGE][storm][layout] / alone_s,
					       ops[MIGRATE_VMA][storm][layout] / alone_s);
				if (layout == CONTIGUOUS && storm == NONE)
					printf(" frames/chunk_range=%.2f",
					       r[FRAMES][NONE][CONTIGUOUS] /
					       r[CHUNK_RANGE][NONE][CONTIGUOUS]);
				printf("\n");
			}
		for (layout = 0; layout < NLAYOUTS; layout++) {
			double idle = r[FRAMES][NONE][layout] / r[MIGRATE_VMA][NONE][layout];
			double st = r[FRAMES][STORM][layout] / r[MIGRATE_VMA][STORM][layout];

			printf("BENCH goal layout=%-10s frames >= 1.0x migrate_vma idle: %s (%.2fx); >= 1.5x under the storm: %s (%.2fx); storm progress >= 0.5 with frames: %s (%.2f)\n",
			       layout_name[layout], idle >= 1.0 ? "met" : "NOT met", idle,
			       st >= 1.5 ? "met" : "NOT met", st,
			       ops[FRAMES][STORM][layout] / alone_s >= 0.5 ? "met" : "NOT met",
			       ops[FRAMES][STORM][layout] / alone_s);
		}
	}
out:
	printf("%sok 1 bench\n", fail ? "not " : "");
	return fail;
}
