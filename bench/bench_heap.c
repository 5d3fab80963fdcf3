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

/* One row of the table: an implementation and a number of processes. */
struct row {
	const char *name;
	int (*fn)(long, int); /* NULL: the Boost helper, mode */
	const char *mode;
	int procs;
	long n;
	uint32_t flags; /* shmkit heap open flags */
	int state;	/* 0 measuring, 1 done, -1 skipped, -2 failed */
	const char *why;
	double v[MAX_RUNS];
};

#define ROW(nm, f, md, p, cnt, fl)                                     \
	{                                                              \
		.name = nm, .fn = f, .mode = md, .procs = p, .n = cnt, \
		.flags = fl                                            \
	}

static char boost_path[PATH_MAX];

/* One run of the Boost helper next to this binary: its rate or -1. */
static double boost_once(const char *mode, int procs, long n)
{
	char cmd[PATH_MAX + 128], line[128];
	double v = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "%s %s %d %ld 1", boost_path, mode, procs,
		 n);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (fgets(line, sizeof(line), f))
		v = strtod(line, NULL);
	if (pclose(f) != 0)
		return -1;
	return v > 0 ? v : -1;
}

static void find_boost(void)
{
	ssize_t n =
		readlink("/proc/self/exe", boost_path, sizeof(boost_path) - 32);
	char *slash;

	if (n <= 0) {
		boost_path[0] = '\0';
		return;
	}
	boost_path[n] = '\0';
	slash = strrchr(boost_path, '/');
	if (!slash) {
		boost_path[0] = '\0';
		return;
	}
	strcpy(slash + 1, "shmkit-bench-boost");
	if (access(boost_path, X_OK) != 0)
		boost_path[0] = '\0';
}

/*
 * Run every row once per round, rounds interleaved, so that the drift of
 * a shared machine hits all implementations alike; then print medians.
 */
static void run_rows(struct row *rows, int nrows)
{
	for (int i = 0; i < nrows; i++)
		if (!rows[i].fn && !boost_path[0]) {
			rows[i].state = -1;
			rows[i].why = "shmkit-bench-boost not built "
				      "(libboost-dev, a C++ compiler)";
		}
	for (int r = 0; r < runs; r++) {
		for (int i = 0; i < nrows; i++) {
			struct row *w = &rows[i];

			if (w->state < 0)
				continue;
			heap_flags = w->flags;
			ops = w->n;
			w->v[r] = w->fn ? measure(w->fn, w->procs)
					: boost_once(w->mode, w->procs, w->n);
			if (w->v[r] < 0)
				w->state = -2;
		}
	}
	for (int i = 0; i < nrows; i++) {
		struct row *w = &rows[i];

		if (w->state == -1) {
			printf("%-34s %5d   skipped: %s\n", w->name, w->procs,
			       w->why);
		} else if (w->state == -2) {
			printf("%-34s %5d   failed\n", w->name, w->procs);
		} else {
			double m = median(w->v, runs); /* sorts v */

			w->state = 1;
			printf("%-34s %5d %11.2f   (min %.2f, max %.2f)\n",
			       w->name, w->procs, m / 1e6, w->v[0] / 1e6,
			       w->v[runs - 1] / 1e6);
		}
	}
}

static double med(const struct row *w)
{
	return w->state == 1
		       ? (runs % 2 ? w->v[runs / 2]
				   : (w->v[runs / 2 - 1] + w->v[runs / 2]) / 2)
		       : -1;
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
	{
		long n = ops;
		/* Boost is an order of magnitude slower: fewer pairs. */
		struct row rows[] = {
			ROW("glibc malloc/free", run_glibc, NULL, 1, n, 0),
			ROW("glibc malloc/free (private heaps)", run_glibc,
			    NULL, 2, n, 0),
			ROW("shmkit heap", run_shmkit, NULL, 1, n, 0),
			ROW("shmkit heap", run_shmkit, NULL, 2, n, 0),
			ROW("shmkit heap, no cache", run_shmkit, NULL, 1, n / 4,
			    SHMKIT_HEAP_NOCACHE),
			ROW("shmkit heap, no cache", run_shmkit, NULL, 2, n / 4,
			    SHMKIT_HEAP_NOCACHE),
			ROW("boost managed_shared_memory", NULL, "heap", 1,
			    n / 8, 0),
			ROW("boost managed_shared_memory", NULL, "heap", 2,
			    n / 16, 0),
		};

		find_boost();
		run_rows(rows, (int)(sizeof(rows) / sizeof(rows[0])));
		g1 = med(&rows[0]);
		s1 = med(&rows[2]);
		s2 = med(&rows[3]);
		sn1 = med(&rows[4]);
		b2 = med(&rows[7]);
	}
	printf("\ntargets:\n");
	target("shmkit heap, 1 process vs glibc (>= 0.5x)", s1, g1, 0.5);
	target("shmkit heap, 2 processes vs boost's 2 (>= 5x)", s2, b2, 5);
	/* Not a target: what the per-handle cache is worth. */
	if (sn1 > 0 && g1 > 0)
		printf("\nfor comparison (no target): shmkit heap without its "
		       "cache, 1 process: %.2fx glibc\n",
		       sn1 / g1);
	shmkit_seg_close(heap_seg);
	return 0;
}
