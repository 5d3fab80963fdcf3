/* SPDX-License-Identifier: MIT */
/*
 * shmkit-bench-heap: alloc+free pairs of 16-512 bytes with 10,000 live
 * blocks, in one process and in two processes sharing one heap, for the
 * shmkit heap (with and without its per-handle cache) side by side with
 * glibc malloc/free and Boost.Interprocess managed_shared_memory (run
 * through the C++ helper shmkit-bench-boost when it was built). Public
 * API only. Prints medians of several runs and the ratios to the targets.
 */
#define _GNU_SOURCE
#include <shmkit.h>

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LIVE 10000
#define NRAND (1u << 20)
#define MAX_RUNS 15
#define HEAP_BYTES (64u << 20)

static long ops = 4000000;
static int runs = 5;
static uint32_t *rnd; /* slot (high bits) and size (low 9 bits) */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "shmkit-bench-heap: %s: %s\n", what,
		shmkit_strerror(rc < 0 ? rc : -rc));
	exit(1);
}

static void make_random(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;

	rnd = malloc(NRAND * sizeof(*rnd));
	if (!rnd)
		die("malloc", -ENOMEM);
	for (uint32_t i = 0; i < NRAND; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* slot < LIVE in the high half, size 16..512 below */
		rnd[i] = (uint32_t)((x >> 32) % LIVE) << 10 |
			 (uint32_t)(16 + (x & 0xffff) % 497);
	}
}

/* ---- the implementations: one loop each, ops pairs, 0 or -errno ---- */

static int run_glibc(long n, int seed)
{
	void **live = calloc(LIVE, sizeof(*live));

	if (!live)
		return -ENOMEM;
	for (long i = 0; i < n; i++) {
		uint32_t r = rnd[(i + seed * 7919) & (NRAND - 1)];
		uint32_t s = r >> 10;

		free(live[s]);
		live[s] = malloc(r & 1023);
		if (!live[s])
			return -ENOMEM;
		*(volatile char *)live[s] = 1;
	}
	for (int i = 0; i < LIVE; i++)
		free(live[i]);
	free(live);
	return 0;
}

static struct shmkit_seg *heap_seg;
static uint32_t heap_flags;

static int run_shmkit(long n, int seed)
{
	struct shmkit_heap_opts o = {.sz = sizeof(o), .flags = heap_flags};
	uint64_t *live = calloc(LIVE, sizeof(*live));
	struct shmkit_heap *h;
	char *base = shmkit_seg_base(heap_seg);
	int rc;

	if (!live)
		return -ENOMEM;
	rc = shmkit_heap_open(heap_seg, &o, &h);
	if (rc < 0)
		return rc;
	for (long i = 0; i < n; i++) {
		uint32_t r = rnd[(i + seed * 7919) & (NRAND - 1)];
		uint32_t s = r >> 10;

		if (live[s] && (rc = shmkit_heap_free(h, live[s])) < 0)
			break;
		rc = shmkit_heap_alloc(h, r & 1023, 0, &live[s]);
		if (rc < 0)
			break;
		base[live[s]] = 1;
	}
	for (int i = 0; i < LIVE; i++)
		if (live[i])
			shmkit_heap_free(h, live[i]);
	shmkit_heap_close(h);
	free(live);
	return rc < 0 ? rc : 0;
}

/* ---- measuring: one process, or two started together ---------------- */

struct sync_area {
	_Atomic int ready;
	_Atomic int go;
	_Atomic uint64_t end[2];
	_Atomic int err;
};

static double measure(int (*fn)(long, int), int procs)
{
	struct sync_area *sa;
	uint64_t t0, t1 = 0;
	pid_t pid[2];

	if (procs == 1) {
		t0 = now_ns();
		if (fn(ops, 0) < 0)
			return -1;
		return (double)ops / ((double)(now_ns() - t0) / 1e9);
	}
	sa = mmap(NULL, sizeof(*sa), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sa == MAP_FAILED)
		return -1;
	memset(sa, 0, sizeof(*sa));
	for (int p = 0; p < procs; p++) {
		pid[p] = fork();
		if (pid[p] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			atomic_fetch_add(&sa->ready, 1);
			while (!atomic_load(&sa->go))
				;
			if (fn(ops, p + 1) < 0)
				atomic_store(&sa->err, 1);
			atomic_store(&sa->end[p], now_ns());
			_exit(0);
		}
	}
	while (atomic_load(&sa->ready) < procs)
		usleep(100);
	t0 = now_ns();
	atomic_store(&sa->go, 1);
	for (int p = 0; p < procs; p++)
		waitpid(pid[p], NULL, 0);
	for (int p = 0; p < procs; p++)
		if (atomic_load(&sa->end[p]) > t1)
			t1 = atomic_load(&sa->end[p]);
	if (atomic_load(&sa->err)) {
		munmap(sa, sizeof(*sa));
		return -1;
	}
	munmap(sa, sizeof(*sa));
	return (double)ops * procs / ((double)(t1 - t0) / 1e9);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Median over runs, interleaving implementations would need a table;
 * the runs of one row are back to back. */
static double row(const char *name, int (*fn)(long, int), int procs)
{
	double v[MAX_RUNS], m;

	for (int r = 0; r < runs; r++) {
		v[r] = measure(fn, procs);
		if (v[r] < 0) {
			printf("%-34s %5d   failed\n", name, procs);
			return -1;
		}
	}
	m = median(v, runs);
	printf("%-34s %5d %11.2f   (min %.2f, max %.2f)\n", name, procs,
	       m / 1e6, v[0] / 1e6, v[runs - 1] / 1e6); /* v is sorted */
	fflush(stdout);
	return m;
}

/* Run the Boost helper next to this binary: prints one rate per line. */
static double boost_row(const char *mode, int procs, long count)
{
	char self[PATH_MAX], cmd[PATH_MAX + 128], line[128];
	double v[MAX_RUNS], m;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;
	FILE *f;
	int got = 0;

	if (n <= 0)
		return -1;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	snprintf(cmd, sizeof(cmd), "%s/shmkit-bench-boost", self);
	if (access(cmd, X_OK) != 0) {
		printf("%-34s %5d   skipped: shmkit-bench-boost not built "
		       "(install libboost-dev and a C++ compiler)\n",
		       "boost managed_shared_memory", procs);
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "%s/shmkit-bench-boost %s %d %ld %d", self,
		 mode, procs, count, runs);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (got < runs && fgets(line, sizeof(line), f))
		v[got++] = strtod(line, NULL);
	if (pclose(f) != 0 || got < runs) {
		printf("%-34s %5d   failed\n", "boost managed_shared_memory",
		       procs);
		return -1;
	}
	m = median(v, runs);
	printf("%-34s %5d %11.2f   (min %.2f, max %.2f)\n",
	       "boost managed_shared_memory", procs, m / 1e6, v[0] / 1e6,
	       v[runs - 1] / 1e6);
	fflush(stdout);
	return m;
}

static void target(const char *what, double got, double ref, double factor)
{
	if (got <= 0 || ref <= 0) {
		printf("  %-52s n/a\n", what);
		return;
	}
	printf("  %-52s %.2fx of the baseline, target %.1fx: %s\n", what,
	       got / ref, factor, got >= factor * ref ? "met" : "MISSED");
}

int main(int argc, char **argv)
{
	double g1, s1, s2, b2, sn1;
	int rc, c;

	while ((c = getopt(argc, argv, "n:r:h")) != -1) {
		switch (c) {
		case 'n':
			ops = atol(optarg);
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: %s [-n pairs] [-r runs]\n",
				argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	if (ops < 1000 || runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "bad -n or -r\n");
		return 2;
	}
	make_random();
	rc = shmkit_seg_create_anon(HEAP_BYTES + (1u << 20), NULL, &heap_seg);
	if (rc < 0)
		die("segment", rc);
	{
		struct shmkit_heap_opts o = {.sz = sizeof(o),
					     .flags = SHMKIT_HEAP_CREATE};
		struct shmkit_heap *h;

		rc = shmkit_heap_open(heap_seg, &o, &h);
		if (rc < 0)
			die("heap", rc);
		shmkit_heap_close(h);
	}
	printf("shmkit-bench-heap: alloc+free pairs of 16-512 B, %d live "
	       "blocks, %ld pairs per process, median of %d runs\n\n",
	       LIVE, ops, runs);
	printf("%-34s %5s %11s\n", "implementation", "procs", "M pairs/s");
	g1 = row("glibc malloc/free", run_glibc, 1);
	row("glibc malloc/free (private heaps)", run_glibc, 2);
	heap_flags = 0;
	s1 = row("shmkit heap", run_shmkit, 1);
	s2 = row("shmkit heap", run_shmkit, 2);
	heap_flags = SHMKIT_HEAP_NOCACHE;
	sn1 = row("shmkit heap, no cache", run_shmkit, 1);
	row("shmkit heap, no cache", run_shmkit, 2);
	/* Boost is an order of magnitude slower: fewer pairs. */
	boost_row("heap", 1, ops / 4);
	b2 = boost_row("heap", 2, ops / 16);
	printf("\ntargets:\n");
	target("shmkit heap, 1 process vs glibc (>= 0.5x)", s1, g1, 0.5);
	target("shmkit heap, 2 processes vs boost's 2 (>= 5x)", s2, b2, 5);
	target("shmkit heap without cache, 1 process vs glibc", sn1, g1, 0.5);
	shmkit_seg_close(heap_seg);
	return 0;
}
