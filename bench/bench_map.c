/* SPDX-License-Identifier: MIT */
/*
 * shmkit-bench-map: gets and puts of random keys (16-byte keys, 64-byte
 * values, 100,000 keys) in one process and in two, for the shmkit map
 * side by side with a boost::unordered_map in shared memory under an
 * interprocess_mutex (the C++ helper shmkit-bench-boost), LMDB on tmpfs
 * without sync, and Redis on a Unix socket. A baseline that was not built
 * or is not installed is skipped with a note. Public API only.
 */
#define _GNU_SOURCE
#include <shmkit.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef SHMKIT_BENCH_LMDB
#include <lmdb.h>
#endif
#ifdef SHMKIT_BENCH_HIREDIS
#include <hiredis/hiredis.h>
#endif

#define NKEYS 100000
#define KLEN 16
#define VLEN 64
#define NRAND (1u << 20)
#define MAX_RUNS 15

static long ops = 2000000, redis_ops = 20000;
static int runs = 5;
static uint32_t *rnd;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "shmkit-bench-map: %s: %s\n", what,
		shmkit_strerror(rc < 0 ? rc : -rc));
	exit(1);
}

static char (*keys)[KLEN]; /* "key" and 13 digits, no NUL */

static inline void make_key(char *k, uint32_t i)
{
	memcpy(k, keys[i], KLEN);
}

static inline uint32_t key_at(long i, int seed)
{
	return rnd[(i + seed * 7919) & (NRAND - 1)];
}

/* ---- shmkit -------------------------------------------------------- */

static struct shmkit_map *smap;

static int shmkit_get(long n, int seed)
{
	char k[KLEN], v[VLEN];

	for (long i = 0; i < n; i++) {
		make_key(k, key_at(i, seed));
		if (shmkit_map_get(smap, k, KLEN, v, sizeof(v)) != VLEN)
			return -1;
	}
	return 0;
}

static int shmkit_put(long n, int seed)
{
	char k[KLEN], v[VLEN];

	memset(v, 'v', sizeof(v));
	for (long i = 0; i < n; i++) {
		make_key(k, key_at(i, seed));
		v[0] = (char)i;
		if (shmkit_map_put(smap, k, KLEN, v, VLEN, 0) < 0)
			return -1;
	}
	return 0;
}

/* ---- LMDB ----------------------------------------------------------- */

#ifdef SHMKIT_BENCH_LMDB
static char lmdb_dir[64];

static int lmdb_open(MDB_env **env, MDB_dbi *dbi)
{
	MDB_txn *t;

	if (mdb_env_create(env) || mdb_env_set_mapsize(*env, 256u << 20) ||
	    mdb_env_open(*env, lmdb_dir, MDB_NOSYNC | MDB_NOTLS, 0600))
		return -1;
	if (mdb_txn_begin(*env, NULL, 0, &t) || mdb_dbi_open(t, NULL, 0, dbi) ||
	    mdb_txn_commit(t))
		return -1;
	return 0;
}

static int lmdb_get(long n, int seed)
{
	MDB_env *env;
	MDB_txn *t;
	MDB_dbi dbi;
	char k[KLEN], v[VLEN];
	int rc = 0;

	if (lmdb_open(&env, &dbi) || mdb_txn_begin(env, NULL, MDB_RDONLY, &t))
		return -1;
	mdb_txn_reset(t);
	for (long i = 0; i < n && !rc; i++) {
		MDB_val key = {KLEN, k}, val;

		make_key(k, key_at(i, seed));
		/* One read transaction per get. */
		if (mdb_txn_renew(t) || mdb_get(t, dbi, &key, &val) ||
		    val.mv_size != VLEN)
			rc = -1;
		else
			memcpy(v, val.mv_data, VLEN);
		mdb_txn_reset(t);
	}
	mdb_txn_abort(t);
	mdb_env_close(env);
	return rc;
}

static int lmdb_put(long n, int seed)
{
	MDB_env *env;
	MDB_dbi dbi;
	char k[KLEN], v[VLEN];
	int rc = 0;

	if (lmdb_open(&env, &dbi))
		return -1;
	memset(v, 'v', sizeof(v));
	for (long i = 0; i < n && !rc; i++) {
		MDB_val key = {KLEN, k}, val = {VLEN, v};
		MDB_txn *t;

		make_key(k, key_at(i, seed));
		v[0] = (char)i;
		/* One write transaction per put. */
		if (mdb_txn_begin(env, NULL, 0, &t) ||
		    mdb_put(t, dbi, &key, &val, 0) || mdb_txn_commit(t))
			rc = -1;
	}
	mdb_env_close(env);
	return rc;
}

static int lmdb_setup(void)
{
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *t;
	char k[KLEN], v[VLEN];

	snprintf(lmdb_dir, sizeof(lmdb_dir), "/dev/shm/shmkit-bench-lmdb-%d",
		 (int)getpid());
	if (mkdir(lmdb_dir, 0700) || lmdb_open(&env, &dbi) ||
	    mdb_txn_begin(env, NULL, 0, &t))
		return -1;
	memset(v, 'v', sizeof(v));
	for (uint32_t i = 0; i < NKEYS; i++) {
		MDB_val key = {KLEN, k}, val = {VLEN, v};

		make_key(k, i);
		if (mdb_put(t, dbi, &key, &val, 0))
			return -1;
	}
	if (mdb_txn_commit(t))
		return -1;
	mdb_env_close(env);
	return 0;
}

static void lmdb_cleanup(void)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/data.mdb", lmdb_dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/lock.mdb", lmdb_dir);
	unlink(p);
	rmdir(lmdb_dir);
}
#endif

/* ---- Redis ---------------------------------------------------------- */

#ifdef SHMKIT_BENCH_HIREDIS
static char redis_dir[64], redis_sock[128];
static pid_t redis_pid;

static int redis_get(long n, int seed)
{
	redisContext *c = redisConnectUnix(redis_sock);
	char k[KLEN];
	int rc = 0;

	if (!c || c->err)
		return -1;
	for (long i = 0; i < n && !rc; i++) {
		redisReply *r;

		make_key(k, key_at(i, seed));
		r = redisCommand(c, "GET %b", k, (size_t)KLEN);
		if (!r || r->type != REDIS_REPLY_STRING || r->len != VLEN)
			rc = -1;
		if (r)
			freeReplyObject(r);
	}
	redisFree(c);
	return rc;
}

static int redis_put(long n, int seed)
{
	redisContext *c = redisConnectUnix(redis_sock);
	char k[KLEN], v[VLEN];
	int rc = 0;

	if (!c || c->err)
		return -1;
	memset(v, 'v', sizeof(v));
	for (long i = 0; i < n && !rc; i++) {
		redisReply *r;

		make_key(k, key_at(i, seed));
		r = redisCommand(c, "SET %b %b", k, (size_t)KLEN, v,
				 (size_t)VLEN);
		if (!r || r->type == REDIS_REPLY_ERROR)
			rc = -1;
		if (r)
			freeReplyObject(r);
	}
	redisFree(c);
	return rc;
}

/* Start a private redis-server on a Unix socket; load the keys. */
static int redis_setup(void)
{
	redisContext *c = NULL;
	char k[KLEN], v[VLEN];

	snprintf(redis_dir, sizeof(redis_dir), "/tmp/shmkit-bench-redis-%d",
		 (int)getpid());
	snprintf(redis_sock, sizeof(redis_sock), "%s/sock", redis_dir);
	if (mkdir(redis_dir, 0700))
		return -1;
	redis_pid = fork();
	if (redis_pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(devnull, 1);
		dup2(devnull, 2);
		execlp("redis-server", "redis-server", "--port", "0",
		       "--unixsocket", redis_sock, "--save", "", "--appendonly",
		       "no", "--dir", redis_dir, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		c = redisConnectUnix(redis_sock);
		if (c && !c->err)
			break;
		if (c)
			redisFree(c);
		c = NULL;
		if (waitpid(redis_pid, NULL, WNOHANG) == redis_pid) {
			redis_pid = 0;
			return -1;
		}
		usleep(20000);
	}
	if (!c)
		return -1;
	memset(v, 'v', sizeof(v));
	for (uint32_t i = 0; i < NKEYS; i++) {
		make_key(k, i);
		redisAppendCommand(c, "SET %b %b", k, (size_t)KLEN, v,
				   (size_t)VLEN);
	}
	for (uint32_t i = 0; i < NKEYS; i++) {
		redisReply *r;

		if (redisGetReply(c, (void **)&r) != REDIS_OK) {
			redisFree(c);
			return -1;
		}
		freeReplyObject(r);
	}
	redisFree(c);
	return 0;
}

static void redis_cleanup(void)
{
	if (redis_pid > 0) {
		kill(redis_pid, SIGKILL);
		waitpid(redis_pid, NULL, 0);
	}
	unlink(redis_sock);
	rmdir(redis_dir);
}
#endif

/* Row entry points; stand-ins when a baseline is not compiled in. */
#ifdef SHMKIT_BENCH_LMDB
#define lmdb_get_fn lmdb_get
#define lmdb_put_fn lmdb_put
#else
static int lmdb_get_fn(long n, int seed)
{
	(void)n;
	(void)seed;
	return -1;
}
#define lmdb_put_fn lmdb_get_fn
#endif
#ifdef SHMKIT_BENCH_HIREDIS
#define redis_get_fn redis_get
#define redis_put_fn redis_put
#else
static int redis_get_fn(long n, int seed)
{
	(void)n;
	(void)seed;
	return -1;
}
#define redis_put_fn redis_get_fn
#endif

/* ---- measuring -------------------------------------------------------- */

struct sync_area {
	_Atomic int ready;
	_Atomic int go;
	_Atomic uint64_t end[2];
	_Atomic int err;
};

/* CPU seconds (user + system) used by the measured code in the last
 * measure(): this process for one, the children for two. */
static double last_cpu_s;

static double cpu_s(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double measure(int (*fn)(long, int), int procs, long n)
{
	struct sync_area *sa;
	uint64_t t0, t1 = 0;
	pid_t pid[2];
	double r, c0;

	if (procs == 1) {
		c0 = cpu_s(RUSAGE_SELF);
		t0 = now_ns();
		if (fn(n, 0) < 0)
			return -1;
		r = (double)n / ((double)(now_ns() - t0) / 1e9);
		last_cpu_s = cpu_s(RUSAGE_SELF) - c0;
		return r;
	}
	c0 = cpu_s(RUSAGE_CHILDREN);
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
			if (fn(n, p + 1) < 0)
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
	/* The children spin on go before t0: a few microseconds. */
	last_cpu_s = cpu_s(RUSAGE_CHILDREN) - c0;
	r = atomic_load(&sa->err)
		    ? -1
		    : (double)n * procs / ((double)(t1 - t0) / 1e9);
	munmap(sa, sizeof(*sa));
	return r;
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

/* One row of the table: an implementation, an operation, processes. */
struct row {
	const char *name;
	int (*fn)(long, int); /* NULL: the Boost helper, mode */
	const char *mode;
	int procs;
	long n;
	int state; /* 0 measuring, 1 done, -1 skipped, -2 failed */
	const char *why;
	double v[MAX_RUNS];
	double c[MAX_RUNS]; /* operations per CPU second */
};

#define ROW(nm, f, md, p, cnt)                                        \
	{                                                             \
		.name = nm, .fn = f, .mode = md, .procs = p, .n = cnt \
	}

static char boost_path[PATH_MAX];

static void find_boost(void)
{
	ssize_t n =
		readlink("/proc/self/exe", boost_path, sizeof(boost_path) - 32);
	char *slash;

	boost_path[n > 0 ? n : 0] = '\0';
	slash = strrchr(boost_path, '/');
	if (!slash) {
		boost_path[0] = '\0';
		return;
	}
	strcpy(slash + 1, "shmkit-bench-boost");
	if (access(boost_path, X_OK) != 0)
		boost_path[0] = '\0';
}

/* One run of the Boost helper: its rate or -1. */
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

static void skip_row(struct row *w, const char *why)
{
	w->state = -1;
	w->why = why;
}

/* Every row once per round, rounds interleaved (drift hits all alike). */
static void run_rows(struct row *rows, int nrows)
{
	for (int r = 0; r < runs; r++) {
		for (int i = 0; i < nrows; i++) {
			struct row *w = &rows[i];

			if (w->state < 0)
				continue;
			last_cpu_s = 0;
			w->v[r] = w->fn ? measure(w->fn, w->procs, w->n)
					: boost_once(w->mode, w->procs, w->n);
			w->c[r] = last_cpu_s > 0
					  ? (double)w->n * w->procs / last_cpu_s
					  : 0;
			if (w->v[r] < 0)
				w->state = -2;
		}
	}
	for (int i = 0; i < nrows; i++) {
		struct row *w = &rows[i];

		if (w->state == -1) {
			printf("%-36s %5d   skipped: %s\n", w->name, w->procs,
			       w->why);
		} else if (w->state == -2) {
			printf("%-36s %5d   failed\n", w->name, w->procs);
		} else {
			double m = median(w->v, runs); /* sorts v */
			double c = median(w->c, runs);
			char cs[32] = "-";

			if (c > 0)
				snprintf(cs, sizeof(cs), "%.3f", c / 1e6);
			w->state = 1;
			printf("%-36s %5d %11.3f %9s   (min %.3f, max %.3f)\n",
			       w->name, w->procs, m / 1e6, cs, w->v[0] / 1e6,
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
		printf("  %-58s n/a\n", what);
		return;
	}
	printf("  %-58s %.2fx, target %.1fx: %s\n", what, got / ref, factor,
	       got >= factor * ref ? "met" : "MISSED");
}

int main(int argc, char **argv)
{
	struct shmkit_heap_opts ho = {.sz = sizeof(ho),
				      .flags = SHMKIT_HEAP_CREATE};
	struct shmkit_map_opts mo = {.sz = sizeof(mo),
				     .flags = SHMKIT_MAP_CREATE,
				     .capacity = NKEYS,
				     .key_max = KLEN,
				     .val_max = VLEN};
	double sg1 = -1, sg2 = -1, sp1 = -1, sp2 = -1, bg1 = -1, bp2 = -1;
	double lg2 = -1, lp1 = -1;
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	char k[KLEN], v[VLEN];
	uint64_t x = 0x9e3779b97f4a7c15ull;
	int rc, c;

	while ((c = getopt(argc, argv, "n:R:r:h")) != -1) {
		switch (c) {
		case 'n':
			ops = atol(optarg);
			break;
		case 'R':
			redis_ops = atol(optarg);
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-n ops] [-R redis-ops] [-r runs]\n",
				argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	if (ops < 1000 || redis_ops < 100 || runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "bad -n, -R or -r\n");
		return 2;
	}
	(void)redis_ops;
	rnd = malloc(NRAND * sizeof(*rnd));
	if (!rnd)
		die("malloc", -ENOMEM);
	keys = malloc(NKEYS * sizeof(*keys));
	if (!keys)
		die("malloc", -ENOMEM);
	for (uint32_t i = 0; i < NKEYS; i++) {
		char tmp[24];

		snprintf(tmp, sizeof(tmp), "key%013u", i);
		memcpy(keys[i], tmp, KLEN);
	}
	for (uint32_t i = 0; i < NRAND; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		rnd[i] = (uint32_t)(x >> 33) % NKEYS;
	}
	rc = shmkit_seg_create_anon(64u << 20, NULL, &seg);
	if (rc == 0)
		rc = shmkit_heap_open(seg, &ho, &h);
	if (rc == 0)
		rc = shmkit_map_open(h, "bench", &mo, &smap);
	if (rc < 0)
		die("map", rc);
	memset(v, 'v', sizeof(v));
	for (uint32_t i = 0; i < NKEYS; i++) {
		make_key(k, i);
		rc = shmkit_map_put(smap, k, KLEN, v, VLEN, 0);
		if (rc < 0)
			die("load", rc);
	}
	printf("shmkit-bench-map: %d keys of %d bytes, values of %d bytes, "
	       "random keys, %ld operations per process (Redis %ld), median "
	       "of %d runs\n\n",
	       NKEYS, KLEN, VLEN, ops, redis_ops, runs);
	printf("%-36s %5s %11s %9s\n", "implementation", "procs", "M ops/s",
	       "per CPU-s");
	{
		long n = ops;
		struct row rows[] = {
			ROW("shmkit map get", shmkit_get, NULL, 1, n),
			ROW("shmkit map get", shmkit_get, NULL, 2, n),
			ROW("boost unordered_map+mutex get", NULL, "map-get", 1,
			    n),
			ROW("boost unordered_map+mutex get", NULL, "map-get", 2,
			    n / 4),
			ROW("lmdb get (txn per get)", lmdb_get_fn, NULL, 1,
			    n / 2),
			ROW("lmdb get (txn per get)", lmdb_get_fn, NULL, 2,
			    n / 2),
			ROW("redis GET (unix socket)", redis_get_fn, NULL, 1,
			    redis_ops),
			ROW("redis GET (unix socket)", redis_get_fn, NULL, 2,
			    redis_ops),
			ROW("shmkit map put", shmkit_put, NULL, 1, n),
			ROW("shmkit map put", shmkit_put, NULL, 2, n),
			ROW("boost unordered_map+mutex put", NULL, "map-put", 1,
			    n),
			ROW("boost unordered_map+mutex put", NULL, "map-put", 2,
			    n / 4),
			ROW("lmdb put (txn per put, nosync)", lmdb_put_fn, NULL,
			    1, n / 4),
			ROW("lmdb put (txn per put, nosync)", lmdb_put_fn, NULL,
			    2, n / 4),
			ROW("redis SET (unix socket)", redis_put_fn, NULL, 1,
			    redis_ops),
			ROW("redis SET (unix socket)", redis_put_fn, NULL, 2,
			    redis_ops),
		};
		int nrows = (int)(sizeof(rows) / sizeof(rows[0]));
		int lmdb_ok = 0, redis_ok = 0;

		find_boost();
#ifdef SHMKIT_BENCH_LMDB
		lmdb_ok = lmdb_setup() == 0;
#endif
#ifdef SHMKIT_BENCH_HIREDIS
		redis_ok = redis_setup() == 0;
#endif
		for (int i = 0; i < nrows; i++) {
			struct row *w = &rows[i];

			if (!w->fn && !boost_path[0])
				skip_row(w, "shmkit-bench-boost not built "
					    "(libboost-dev, a C++ compiler)");
			if (w->fn == lmdb_get_fn || w->fn == lmdb_put_fn) {
#ifdef SHMKIT_BENCH_LMDB
				if (!lmdb_ok)
					skip_row(w, "lmdb setup failed");
#else
				skip_row(w, "not built (liblmdb-dev)");
#endif
			}
			if (w->fn == redis_get_fn || w->fn == redis_put_fn) {
#ifdef SHMKIT_BENCH_HIREDIS
				if (!redis_ok)
					skip_row(w, "redis-server did not "
						    "start");
#else
				skip_row(w, "not built (libhiredis-dev)");
#endif
			}
		}
		run_rows(rows, nrows);
#ifdef SHMKIT_BENCH_LMDB
		if (lmdb_ok)
			lmdb_cleanup();
#endif
#ifdef SHMKIT_BENCH_HIREDIS
		redis_cleanup();
#endif
		(void)lmdb_ok;
		(void)redis_ok;
		sg1 = med(&rows[0]);
		sg2 = med(&rows[1]);
		bg1 = med(&rows[2]);
		lg2 = med(&rows[5]);
		sp1 = med(&rows[8]);
		sp2 = med(&rows[9]);
		lp1 = med(&rows[12]);
		bp2 = med(&rows[11]);
	}
	printf("\ntargets:\n");
	target("get, 1 process vs boost map, 1 process (>= 1x)", sg1, bg1, 1);
	target("get, 2 processes vs shmkit 1 process (>= 1.8x)", sg2, sg1, 1.8);
	target("get, 2 processes vs lmdb 2 processes (>= 2x)", sg2, lg2, 2);
	target("put, 1 process vs lmdb 1 process (>= 1x)", sp1, lp1, 1);
	target("put, 2 processes vs boost map 2 processes (>= 1x)", sp2, bp2,
	       1);
	if (shmkit_map_check(smap) < 0)
		die("map check after the runs", -EBADMSG);
	shmkit_map_close(smap);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return 0;
}
