/* SPDX-License-Identifier: MIT */
/*
 * Channel benchmark: shmkit channels against, in the same run, the
 * cache-line ping-pong floor, a plain busy-polling SPSC ring, a pipe, a
 * Unix socket and eventfd, between two processes. Ping-pong latency,
 * 64-byte streaming, 1 MiB messages against memcpy, zero-copy across
 * sizes, idle receiver CPU, the CPU cost of one call, and ping-pong next
 * to a compute-bound process.
 * Public API only. Run: shmkit-bench-chan [--quick] [--runs N]
 */
#define _GNU_SOURCE
#include <shmkit.h>

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG 64

static int runs = 5;
static int quick;
static const char *only; /* run one section */
static int ncpu;

/* Shared between the two processes of a test (anonymous, across fork). */
struct shared {
	_Alignas(64) _Atomic uint64_t a;
	_Alignas(64) _Atomic uint64_t b;
	_Alignas(64) _Atomic uint64_t go;
	_Alignas(64) _Atomic uint64_t ring_head;
	_Alignas(64) _Atomic uint64_t ring_tail;
	_Alignas(64) double child_result;
	unsigned char ring[4096 * MSG];
};

static struct shared *sh;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_chan: %s: %s\n", what,
		shmkit_strerror(rc < 0 ? rc : -errno));
	exit(1);
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0 || ncpu < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu % ncpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void unpin(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	for (int i = 0; i < ncpu; i++)
		CPU_SET(i, &set);
	sched_setaffinity(0, sizeof(set), &set);
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

/*
 * Run parent() here and child() in a forked process, pinned to CPUs pa
 * and pb (-1: not pinned). Returns what parent() returns.
 */
static double pair(double (*parent)(void *), void (*child)(void *), void *arg,
		   int pa, int pb)
{
	pid_t pid;
	double r;
	int st;

	atomic_store(&sh->a, 0);
	atomic_store(&sh->b, 0);
	atomic_store(&sh->go, 0);
	atomic_store(&sh->ring_head, 0);
	atomic_store(&sh->ring_tail, 0);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork", -errno);
	if (pid == 0) {
		if (pb >= 0)
			pin(pb);
		else
			unpin();
		child(arg);
		_exit(0);
	}
	if (pa >= 0)
		pin(pa);
	else
		unpin();
	r = parent(arg);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bench_chan: child failed\n");
		exit(1);
	}
	unpin();
	return r;
}

/*
 * Both sides attached before either starts (a producer that finds its
 * lane full while the consumer of the previous run is gone and the new
 * one not yet there would rightly get -EPIPE): each side arrives, then
 * waits for the other. The parent starts the clock after it.
 */
static void child_ready(void)
{
	atomic_fetch_add(&sh->go, 1);
	while (atomic_load(&sh->go) < 2)
		relax();
}

static void wait_child(void)
{
	atomic_fetch_add(&sh->go, 1);
	while (atomic_load(&sh->go) < 2)
		relax();
}

/* ---- cache-line ping-pong floor ----------------------------------------- */

static long pp_rounds(void)
{
	return quick ? 200000 : 1000000;
}

#define STOP UINT64_MAX

/* arg: time limit in seconds (NULL: none): with a compute-bound process
 * around, busy polling can stall for whole scheduler slices. */
static double floor_parent(void *arg)
{
	long n = pp_rounds(), i;
	uint64_t t0, limit = arg ? (uint64_t)(intptr_t)arg * 1000000000ull
				 : UINT64_MAX;

	wait_child();
	t0 = now_ns();
	for (i = 1; i <= n; i++) {
		atomic_store_explicit(&sh->a, (uint64_t)i,
				      memory_order_release);
		while (atomic_load_explicit(&sh->b, memory_order_acquire) !=
		       (uint64_t)i)
			relax();
		if ((i & 255) == 0 && now_ns() - t0 > limit) {
			i++;
			break;
		}
	}
	t0 = now_ns() - t0;
	atomic_store(&sh->a, STOP);
	return (double)t0 / (double)(i - 1);
}

static void floor_child(void *arg)
{
	long n = pp_rounds();

	(void)arg;
	child_ready();
	for (long i = 1; i <= n; i++) {
		uint64_t v;

		while ((v = atomic_load_explicit(
				&sh->a, memory_order_acquire)) != (uint64_t)i) {
			if (v == STOP)
				return;
			relax();
		}
		atomic_store_explicit(&sh->b, (uint64_t)i,
				      memory_order_release);
	}
}

/* ---- plain SPSC ring, busy polling, 64-byte slots ------------------------ */

#define RSLOTS 4096u

static long stream_msgs(void)
{
	return quick ? 2000000 : 10000000;
}

static double ring_parent(void *arg)
{
	long n = stream_msgs();
	uint64_t head = 0, tail_cache = 0, t0;
	unsigned char m[MSG];

	(void)arg;
	wait_child();
	t0 = now_ns();
	while (head < (uint64_t)n) {
		if (head == tail_cache) {
			tail_cache = atomic_load_explicit(&sh->ring_tail,
							  memory_order_acquire);
			if (head == tail_cache) {
				relax();
				continue;
			}
		}
		memcpy(m, sh->ring + (head % RSLOTS) * MSG, MSG);
		head++;
		atomic_store_explicit(&sh->ring_head, head,
				      memory_order_release);
	}
	__asm__ __volatile__("" ::"r"(m) : "memory");
	return (double)n / ((double)(now_ns() - t0) / 1e9);
}

static void ring_child(void *arg)
{
	long n = stream_msgs();
	uint64_t tail = 0, head_cache = 0;
	unsigned char m[MSG];

	(void)arg;
	memset(m, 7, sizeof(m));
	child_ready();
	while (tail < (uint64_t)n) {
		if (tail - head_cache == RSLOTS) {
			head_cache = atomic_load_explicit(&sh->ring_head,
							  memory_order_acquire);
			if (tail - head_cache == RSLOTS) {
				relax();
				continue;
			}
		}
		memcpy(sh->ring + (tail % RSLOTS) * MSG, m, MSG);
		tail++;
		atomic_store_explicit(&sh->ring_tail, tail,
				      memory_order_release);
	}
}

/* ---- pipe, Unix socket, eventfd ------------------------------------------ */

static int fds[4]; /* a->b write, a->b read, b->a write, b->a read */

static void xwrite(int fd, const void *p, size_t n)
{
	if (write(fd, p, n) != (ssize_t)n)
		die("write", -errno);
}

static void xread(int fd, void *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);

		if (r <= 0)
			die("read", r < 0 ? -errno : -EPIPE);
		got += (size_t)r;
	}
}

static long sys_rounds(void)
{
	return quick ? 20000 : 100000;
}

static double fdpp_parent(void *arg)
{
	long n = sys_rounds();
	size_t len = arg ? sizeof(uint64_t) : MSG; /* eventfd: 8 bytes */
	unsigned char m[MSG] = {1};
	uint64_t t0;

	wait_child();
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		xwrite(fds[0], m, len);
		xread(fds[3], m, len);
	}
	return (double)(now_ns() - t0) / (double)n;
}

static void fdpp_child(void *arg)
{
	long n = sys_rounds();
	size_t len = arg ? sizeof(uint64_t) : MSG;
	unsigned char m[MSG] = {1};

	child_ready();
	for (long i = 0; i < n; i++) {
		xread(fds[1], m, len);
		xwrite(fds[2], m, len);
	}
}

static long fd_stream_msgs(void)
{
	return quick ? 200000 : 1000000;
}

static double fdstream_parent(void *arg)
{
	long n = fd_stream_msgs();
	unsigned char m[MSG];
	uint64_t t0;

	(void)arg;
	wait_child();
	t0 = now_ns();
	for (long i = 0; i < n; i++)
		xread(fds[1], m, MSG);
	return (double)n / ((double)(now_ns() - t0) / 1e9);
}

static void fdstream_child(void *arg)
{
	long n = fd_stream_msgs();
	unsigned char m[MSG] = {1};

	(void)arg;
	child_ready();
	for (long i = 0; i < n; i++)
		xwrite(fds[0], m, MSG);
}

enum fdkind { FD_PIPE, FD_UNIX, FD_EVENTFD };

static void fd_open(enum fdkind k)
{
	int p[2];

	switch (k) {
	case FD_PIPE:
		if (pipe(p) < 0)
			die("pipe", -errno);
		fds[0] = p[1];
		fds[1] = p[0];
		if (pipe(p) < 0)
			die("pipe", -errno);
		fds[2] = p[1];
		fds[3] = p[0];
		break;
	case FD_UNIX:
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, p) < 0)
			die("socketpair", -errno);
		fds[0] = p[0];
		fds[1] = p[1];
		fds[2] = p[1];
		fds[3] = p[0];
		break;
	case FD_EVENTFD:
		fds[0] = fds[1] = eventfd(0, 0);
		fds[2] = fds[3] = eventfd(0, 0);
		if (fds[0] < 0 || fds[2] < 0)
			die("eventfd", -errno);
		break;
	}
}

static void fd_close(void)
{
	for (int i = 0; i < 4; i++)
		close(fds[i]);
}

/* ---- shmkit channels ------------------------------------------------------ */

static char name_ab[64], name_ba[64];

static struct shmkit_chan *chan_open(const char *name,
				     enum shmkit_chan_role role)
{
	struct shmkit_chan *ch;
	int rc;

	for (int i = 0; i < 1000; i++) {
		rc = shmkit_chan_open(name, role, NULL, &ch);
		if (rc != -ENOENT)
			break;
		usleep(1000);
	}
	if (rc < 0)
		die("shmkit_chan_open", rc);
	return ch;
}

/* One channel, created and closed here; each side then opens its end. */
static void chan_make(const char *name, uint64_t cap, uint64_t max)
{
	struct shmkit_chan_opts o = {.sz = sizeof(o)};
	struct shmkit_chan *c;
	int rc;

	shmkit_chan_unlink(name);
	o.capacity_bytes = cap;
	o.max_msg_bytes = max;
	o.max_producers = 1;
	rc = shmkit_chan_create(name, &o, SHMKIT_CHAN_PRODUCER, &c);
	if (rc < 0)
		die("shmkit_chan_create", rc);
	shmkit_chan_close(c);
}

static void chans_create(uint64_t cap, uint64_t max)
{
	snprintf(name_ab, sizeof(name_ab), "shmkit-bench-%d-ab", (int)getpid());
	snprintf(name_ba, sizeof(name_ba), "shmkit-bench-%d-ba", (int)getpid());
	chan_make(name_ab, cap, max);
	chan_make(name_ba, cap, max);
}

static void chans_remove(void)
{
	shmkit_chan_unlink(name_ab);
	shmkit_chan_unlink(name_ba);
}

static double chpp_parent(void *arg)
{
	struct shmkit_chan *out = chan_open(name_ab, SHMKIT_CHAN_PRODUCER);
	struct shmkit_chan *in = chan_open(name_ba, SHMKIT_CHAN_CONSUMER);
	long n = arg ? (long)(intptr_t)arg : pp_rounds();
	unsigned char m[MSG] = {1};
	uint64_t t0;

	wait_child();
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		int rc = shmkit_chan_send(out, m, MSG, SHMKIT_CHAN_FOREVER);

		if (rc < 0)
			die("send", rc);
		rc = shmkit_chan_recv(in, m, MSG, NULL, SHMKIT_CHAN_FOREVER);
		if (rc < 0)
			die("recv", rc);
	}
	t0 = now_ns() - t0;
	shmkit_chan_close(out);
	shmkit_chan_close(in);
	return (double)t0 / (double)n;
}

static void chpp_child(void *arg)
{
	struct shmkit_chan *in = chan_open(name_ab, SHMKIT_CHAN_CONSUMER);
	struct shmkit_chan *out = chan_open(name_ba, SHMKIT_CHAN_PRODUCER);
	long n = arg ? (long)(intptr_t)arg : pp_rounds();
	unsigned char m[MSG];

	child_ready();
	for (long i = 0; i < n; i++) {
		int rc =
			shmkit_chan_recv(in, m, MSG, NULL, SHMKIT_CHAN_FOREVER);

		if (rc < 0)
			die("recv", rc);
		rc = shmkit_chan_send(out, m, MSG, SHMKIT_CHAN_FOREVER);
		if (rc < 0)
			die("send", rc);
	}
	shmkit_chan_close(out);
	shmkit_chan_close(in);
}

/* Streaming: mode 0 send/recv per message, 1 batches of 32, 2 zero-copy. */
struct stream_arg {
	int mode;
	size_t size;
	long n;
	const char *chan; /* NULL: name_ab */
};

static double chstream_parent(void *p)
{
	struct stream_arg *a = p;
	struct shmkit_chan *in =
		chan_open(a->chan ? a->chan : name_ab, SHMKIT_CHAN_CONSUMER);
	static unsigned char m[32][MSG];
	unsigned char *big = NULL;
	uint64_t t0, sum = 0;
	long got = 0;

	if (a->mode == 0 && a->size > MSG)
		big = malloc(a->size);
	wait_child();
	t0 = now_ns();
	while (got < a->n) {
		int rc;

		if (a->mode == 1) {
			struct shmkit_chan_msg b[32];

			for (int k = 0; k < 32; k++) {
				b[k].buf = m[k];
				b[k].cap = MSG;
			}
			rc = shmkit_chan_recv_batch(in, b, 32,
						    SHMKIT_CHAN_FOREVER);
			if (rc < 0)
				die("recv_batch", rc);
			got += rc;
		} else if (a->mode == 2) {
			const void *ptr;

			rc = shmkit_chan_peek(in, &ptr, NULL,
					      SHMKIT_CHAN_FOREVER);
			if (rc < 0)
				die("peek", rc);
			sum += *(const volatile uint64_t *)ptr;
			shmkit_chan_release(in);
			got++;
		} else {
			rc = shmkit_chan_recv(in, big ? big : m[0],
					      big ? a->size : MSG, NULL,
					      SHMKIT_CHAN_FOREVER);
			if (rc < 0)
				die("recv", rc);
			got++;
		}
	}
	t0 = now_ns() - t0;
	shmkit_chan_close(in);
	free(big);
	__asm__ __volatile__("" ::"r"(sum));
	return (double)a->n / ((double)t0 / 1e9);
}

static void chstream_child(void *p)
{
	struct stream_arg *a = p;
	struct shmkit_chan *out =
		chan_open(a->chan ? a->chan : name_ab, SHMKIT_CHAN_PRODUCER);
	static unsigned char m[32][MSG];
	unsigned char *big = NULL;

	if (a->mode == 0 && a->size > MSG) {
		big = malloc(a->size);
		memset(big, 3, a->size);
	}
	child_ready();
	for (long i = 0; i < a->n;) {
		int rc;

		if (a->mode == 1) {
			struct shmkit_chan_msg b[32];
			int k = a->n - i < 32 ? (int)(a->n - i) : 32;

			for (int j = 0; j < k; j++) {
				b[j].buf = m[j];
				b[j].len = MSG;
			}
			rc = shmkit_chan_send_batch(out, b, (unsigned)k,
						    SHMKIT_CHAN_FOREVER);
			if (rc < 0)
				die("send_batch", rc);
			i += rc;
		} else if (a->mode == 2) {
			void *w;

			rc = shmkit_chan_reserve(out, a->size, &w,
						 SHMKIT_CHAN_FOREVER);
			if (rc < 0)
				die("reserve", rc);
			*(uint64_t *)w = (uint64_t)i;
			shmkit_chan_commit(out, a->size);
			i++;
		} else {
			rc = shmkit_chan_send(out, big ? big : m[0],
					      big ? a->size : MSG,
					      SHMKIT_CHAN_FOREVER);
			if (rc < 0)
				die("send", rc);
			i++;
		}
	}
	shmkit_chan_close(out);
	free(big);
}

/*
 * The same transfer without the library: 1 MiB slots in shared memory,
 * copied in by one process and out by the other (bytes/s). What two
 * copies across cores can do here, whatever the queue around them.
 */
#define BIG_SLOTS 4
static unsigned char *big_slots; /* BIG_SLOTS MiB, mapped before fork */

static double bigcopy_parent(void *arg)
{
	long n = (long)(intptr_t)arg;
	unsigned char *b = malloc(1u << 20);
	uint64_t t0;

	memset(b, 2, 1u << 20);
	wait_child();
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		while (atomic_load_explicit(&sh->ring_tail,
					    memory_order_acquire) <=
		       (uint64_t)i)
			relax();
		memcpy(b, big_slots + (size_t)(i % BIG_SLOTS) * (1u << 20),
		       1u << 20);
		atomic_store_explicit(&sh->ring_head, (uint64_t)i + 1,
				      memory_order_release);
	}
	t0 = now_ns() - t0;
	free(b);
	return (double)n * (1u << 20) / ((double)t0 / 1e9);
}

static void bigcopy_child(void *arg)
{
	long n = (long)(intptr_t)arg;
	unsigned char *b = malloc(1u << 20);

	memset(b, 1, 1u << 20);
	child_ready();
	for (long i = 0; i < n; i++) {
		while ((uint64_t)i -
			       atomic_load_explicit(&sh->ring_head,
						    memory_order_acquire) >=
		       BIG_SLOTS)
			relax();
		memcpy(big_slots + (size_t)(i % BIG_SLOTS) * (1u << 20), b,
		       1u << 20);
		atomic_store_explicit(&sh->ring_tail, (uint64_t)i + 1,
				      memory_order_release);
	}
	free(b);
}

/* Single-process memcpy bandwidth over the same footprint (bytes/s). */
static double memcpy_bw(size_t size, long n)
{
	size_t arena = 4u << 20;
	unsigned char *src = malloc(arena), *dst = malloc(arena);
	uint64_t t0;

	memset(src, 1, arena);
	memset(dst, 2, arena);
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		size_t off = (size_t)i * size % arena;

		memcpy(dst + off, src + (arena - off - size), size);
		__asm__ __volatile__("" ::"r"(dst) : "memory");
	}
	t0 = now_ns() - t0;
	free(src);
	free(dst);
	return (double)n * (double)size / ((double)t0 / 1e9);
}

/* Idle receiver: CPU used while blocked in recv with nothing coming. */
static double idle_parent(void *arg)
{
	struct shmkit_chan *out = chan_open(name_ab, SHMKIT_CHAN_PRODUCER);
	unsigned char m[MSG] = {1};
	uint64_t secs = (uint64_t)(intptr_t)arg;

	wait_child();
	usleep((useconds_t)(secs * 1000000));
	shmkit_chan_send(out, m, MSG, SHMKIT_CHAN_FOREVER);
	shmkit_chan_close(out);
	while (atomic_load(&sh->go) != 3)
		usleep(1000);
	return sh->child_result;
}

static void idle_child(void *arg)
{
	struct shmkit_chan *in = chan_open(name_ab, SHMKIT_CHAN_CONSUMER);
	unsigned char m[MSG];
	struct rusage r0, r1;
	uint64_t t0, cpu;

	(void)arg;
	child_ready();
	getrusage(RUSAGE_SELF, &r0);
	t0 = now_ns();
	if (shmkit_chan_recv(in, m, MSG, NULL, SHMKIT_CHAN_FOREVER) < 0)
		_exit(1);
	t0 = now_ns() - t0;
	getrusage(RUSAGE_SELF, &r1);
	cpu = (uint64_t)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec +
			 r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) *
		      1000000000ull +
	      (uint64_t)((r1.ru_utime.tv_usec - r0.ru_utime.tv_usec +
			  r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) *
			 1000);
	sh->child_result = 100.0 * (double)cpu / (double)t0;
	shmkit_chan_close(in);
	atomic_store(&sh->go, 3);
}

/* A compute-bound process, unpinned, for the duration of a test. */
static pid_t hog_start(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		volatile uint64_t x = 0;

		unpin();
		for (;;)
			x++;
	}
	return pid;
}

static void hog_stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* ---- driver ---------------------------------------------------------------- */

struct meas {
	double (*parent)(void *);
	void (*child)(void *);
	void *arg;
	int pa, pb; /* CPUs, -1 unpinned */
	double med; /* out: median */
};

/*
 * Measure several things in the same run, interleaved (one of each, then
 * again, runs times), so that noise from other work on the machine falls
 * on all of them alike; report medians.
 */
static void measure(struct meas *m, int n)
{
	double v[16][64];
	int r = runs < 64 ? runs : 64;

	for (int i = 0; i < r; i++)
		for (int k = 0; k < n; k++)
			v[k][i] = pair(m[k].parent, m[k].child, m[k].arg,
				       m[k].pa, m[k].pb);
	for (int k = 0; k < n; k++)
		m[k].med = median(v[k], r);
}

static int section(const char *name)
{
	return !only || strcmp(only, name) == 0;
}

static void row(const char *what, double v, const char *unit, const char *note)
{
	printf("  %-44s %12.1f %-6s %s\n", what, v, unit, note ? note : "");
	fflush(stdout);
}

static void sec_pingpong(void)
{
	struct meas m[] = {
		{floor_parent, floor_child, NULL, 0, 1, 0},
		{chpp_parent, chpp_child, NULL, 0, 1, 0},
		{fdpp_parent, fdpp_child, NULL, 0, 1, 0},
	};
	char note[160];
	double pipe_pp, unix_pp, efd_pp;

	printf("\nping-pong round trip, 64-byte messages\n");
	chans_create(64 * 1024, 1024);
	fd_open(FD_PIPE);
	measure(m, 3);
	fd_close();
	pipe_pp = m[2].med;
	fd_open(FD_UNIX);
	measure(&m[2], 1);
	fd_close();
	unix_pp = m[2].med;
	fd_open(FD_EVENTFD);
	m[2].arg = (void *)1;
	measure(&m[2], 1);
	fd_close();
	efd_pp = m[2].med;
	chans_remove();
	row("cache-line ping-pong (floor)", m[0].med, "ns", NULL);
	snprintf(note, sizeof(note), "%.2fx floor (target <= 1.5x)",
		 m[1].med / m[0].med);
	row("shmkit channel, default wait", m[1].med, "ns", note);
	row("pipe", pipe_pp, "ns", NULL);
	row("Unix socket (stream)", unix_pp, "ns", NULL);
	row("eventfd (8 bytes)", efd_pp, "ns", NULL);
}

static void sec_stream(void)
{
	struct stream_arg one = {0, MSG, stream_msgs(), NULL};
	struct stream_arg batch = {1, MSG, stream_msgs(), NULL};
	struct meas m[] = {
		{ring_parent, ring_child, NULL, 0, 1, 0},
		{chstream_parent, chstream_child, &one, 0, 1, 0},
		{chstream_parent, chstream_child, &batch, 0, 1, 0},
		{fdstream_parent, fdstream_child, NULL, 0, 1, 0},
	};
	char note[160];
	double unix_rate;

	printf("\nstreaming 64-byte messages, one call per message\n");
	chans_create(64 * 1024, 1024);
	fd_open(FD_PIPE);
	measure(m, 4);
	fd_close();
	fd_open(FD_UNIX);
	measure(&m[3], 1);
	fd_close();
	unix_rate = m[3].med;
	chans_remove();
	fd_open(FD_PIPE);
	measure(&m[3], 1);
	fd_close();
	row("plain SPSC ring, busy polling", m[0].med / 1e6, "M/s", NULL);
	snprintf(note, sizeof(note),
		 "%.2fx ring (target >= 1), %.0fx pipe (target >= 20)",
		 m[1].med / m[0].med, m[1].med / m[3].med);
	row("shmkit channel send/recv", m[1].med / 1e6, "M/s", note);
	snprintf(note, sizeof(note), "%.2fx ring", m[2].med / m[0].med);
	row("shmkit channel, batches of 32", m[2].med / 1e6, "M/s", note);
	row("pipe", m[3].med / 1e6, "M/s", NULL);
	row("Unix socket (stream)", unix_rate / 1e6, "M/s", NULL);
}

static void sec_big(void)
{
	static const size_t sizes[] = {64, 4096, 65536, 1u << 20};
	struct stream_arg big = {0, 1u << 20, quick ? 500 : 2000, NULL};
	struct stream_arg zc[4];
	char zc_name[4][64];
	struct meas m[6];
	double mc[64], mcm;
	char note[160], what[64];
	int r = runs < 64 ? runs : 64;

	printf("\n1 MiB messages\n");
	chans_create(4u << 20, 1u << 20);
	m[0] = (struct meas){chstream_parent, chstream_child, &big, 0, 1, 0};
	/* Zero-copy: a channel per size, holding 15 or more messages (4
	 * MiB, 16 MiB for 1 MiB messages), so that every size streams with
	 * the producer that far ahead; in one 4 MiB ring, 1 MiB messages
	 * were 3 in flight and measured the hand-off, not the size. */
	for (int i = 0; i < 4; i++) {
		uint64_t cap = 16 * (uint64_t)sizes[i];

		snprintf(zc_name[i], sizeof(zc_name[i]), "shmkit-bench-%d-zc%d",
			 (int)getpid(), i);
		chan_make(zc_name[i], cap < (4u << 20) ? 4u << 20 : cap,
			  sizes[i]);
		zc[i] = (struct stream_arg){
			2, sizes[i], quick ? 200000 : 1000000, zc_name[i]};
		m[1 + i] = (struct meas){
			chstream_parent, chstream_child, &zc[i], 0, 1, 0};
	}
	big_slots = mmap(NULL, (size_t)BIG_SLOTS << 20, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (big_slots == MAP_FAILED)
		die("mmap", -errno);
	m[5] = (struct meas){bigcopy_parent,
			     bigcopy_child,
			     (void *)(intptr_t)(quick ? 500 : 2000),
			     0,
			     1,
			     0};
	for (int i = 0; i < r; i++)
		mc[i] = memcpy_bw(1u << 20, quick ? 500 : 2000);
	mcm = median(mc, r);
	measure(m, 6);
	munmap(big_slots, (size_t)BIG_SLOTS << 20);
	chans_remove();
	for (int i = 0; i < 4; i++)
		shmkit_chan_unlink(zc_name[i]);
	row("memcpy, one process", mcm / 1e9, "GB/s", NULL);
	snprintf(note, sizeof(note), "%.2fx memcpy", m[5].med / mcm);
	row("plain copy-in/copy-out, two processes", m[5].med / 1e9, "GB/s",
	    note);
	snprintf(note, sizeof(note),
		 "%.2fx memcpy (target >= 0.8x), %.2fx plain copy",
		 m[0].med * (1u << 20) / mcm, m[0].med * (1u << 20) / m[5].med);
	row("shmkit channel send/recv (copy in, out)",
	    m[0].med * (1u << 20) / 1e9, "GB/s", note);
	printf("  zero-copy (reserve/commit, peek/release; touches 8 "
	       "bytes):\n");
	for (int i = 0; i < 4; i++) {
		snprintf(what, sizeof(what), "    %zu-byte messages", sizes[i]);
		if (i < 2)
			snprintf(note, sizeof(note), "%.2fx the 64-byte rate",
				 m[1 + i].med / m[1].med);
		else
			snprintf(note, sizeof(note), "%.2fx the 4096-byte rate",
				 m[1 + i].med / m[2].med);
		row(what, m[1 + i].med / 1e6, "M/s", note);
	}
}

static void sec_idle(void)
{
	int secs = quick ? 1 : 3;
	struct meas m = {idle_parent, idle_child, (void *)(intptr_t)secs,
			 0,	      1,	  0};
	char note[160];

	printf("\nidle receiver (blocked in recv, no traffic)\n");
	chans_create(64 * 1024, 1024);
	measure(&m, 1);
	chans_remove();
	snprintf(note, sizeof(note), "over %d s (target < 1%%)", secs);
	row("receiver CPU", m.med, "%", note);
}

/*
 * CPU cost of one call, without a second CPU: one process holds both
 * ends, sends a batch of 64-byte messages (most of a 64 KiB ring), then
 * receives them, so the ring stays in its own cache and no line moves
 * between CPUs. Median over rounds of the mean cost per call.
 */
static void sec_cost(void)
{
	enum { BATCH = 800 };
	int rounds = quick ? 400 : 2000;
	double *cs = malloc(sizeof(double) * (size_t)rounds),
	       *cr = malloc(sizeof(double) * (size_t)rounds);
	unsigned char msg[MSG] = {0}, buf[MSG];
	struct shmkit_chan *p, *c;
	char name[64], note[160];

	if (!cs || !cr)
		die("malloc", -ENOMEM);
	printf("\ncost of one call, 64-byte messages, both ends in one "
	       "process\n");
	snprintf(name, sizeof(name), "shmkit-bench-%d-cost", (int)getpid());
	chan_make(name, 64 * 1024, MSG);
	p = chan_open(name, SHMKIT_CHAN_PRODUCER);
	c = chan_open(name, SHMKIT_CHAN_CONSUMER);
	for (int r = 0; r < rounds; r++) {
		uint64_t t0 = now_ns(), t1, t2;

		for (int i = 0; i < BATCH; i++) {
			msg[0] = (unsigned char)i;
			if (shmkit_chan_send(p, msg, MSG, 0) < 0)
				die("shmkit_chan_send", -EAGAIN);
		}
		t1 = now_ns();
		for (int i = 0; i < BATCH; i++)
			if (shmkit_chan_recv(c, buf, MSG, NULL, 0) != MSG ||
			    buf[0] != (unsigned char)i)
				die("shmkit_chan_recv", -EBADMSG);
		t2 = now_ns();
		cs[r] = (double)(t1 - t0) / BATCH;
		cr[r] = (double)(t2 - t1) / BATCH;
	}
	shmkit_chan_close(c);
	shmkit_chan_close(p);
	shmkit_chan_unlink(name);
	snprintf(note, sizeof(note), "median of %d rounds of %d", rounds,
		 BATCH);
	row("shmkit_chan_send", median(cs, rounds), "ns", note);
	row("shmkit_chan_recv", median(cr, rounds), "ns", note);
	free(cs);
	free(cr);
}

static void sec_hog(void)
{
	void *n = (void *)(intptr_t)(quick ? 20000 : 100000);
	struct meas alone[] = {
		{chpp_parent, chpp_child, n, 0, 1, 0},
		{chpp_parent, chpp_child, n, -1, -1, 0},
		{floor_parent, floor_child, (void *)2, 0, 1, 0},
		{floor_parent, floor_child, (void *)2, -1, -1, 0},
	};
	struct meas hog[4];
	char note[160];
	pid_t pid;

	printf("\nping-pong round trip with a compute-bound process added\n");
	memcpy(hog, alone, sizeof(hog));
	chans_create(64 * 1024, 1024);
	measure(alone, 4);
	pid = hog_start();
	measure(hog, 4);
	hog_stop(pid);
	chans_remove();
	static const char *const what[] = {"shmkit, pinned", "shmkit, unpinned",
					   "busy-polling floor, pinned",
					   "busy-polling floor, unpinned"};
	for (int i = 0; i < 4; i++) {
		char w[64];

		snprintf(w, sizeof(w), "%s, alone", what[i]);
		row(w, alone[i].med, "ns", NULL);
		snprintf(w, sizeof(w), "%s, with hog", what[i]);
		snprintf(note, sizeof(note), "rate falls %.2fx%s",
			 hog[i].med / alone[i].med,
			 i < 2 ? " (target <= 2x)" : "");
		row(w, hog[i].med, "ns", note);
	}
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			quick = 1;
		} else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
			runs = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
			only = argv[++i];
		} else {
			fprintf(stderr,
				"usage: shmkit-bench-chan [--quick] [--runs N] "
				"[--only pingpong|stream|big|idle|cost|hog]\n");
			return 2;
		}
	}
	if (runs < 1)
		runs = 1;
	ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap", -errno);
	printf("shmkit %s channel benchmark: %d CPUs, median of %d runs "
	       "(interleaved), processes pinned to CPUs 0 and 1 unless "
	       "said\n",
	       shmkit_version(), ncpu, runs);
	if (section("pingpong"))
		sec_pingpong();
	if (section("stream"))
		sec_stream();
	if (section("big"))
		sec_big();
	if (section("idle"))
		sec_idle();
	if (section("cost"))
		sec_cost();
	if (section("hog"))
		sec_hog();
	return 0;
}
