/* SPDX-License-Identifier: MIT */
/*
 * A hostile peer truncates segments while others use them. Named
 * segments: workers using a map, a heap, a mutex and a channel in them
 * (the consumer with its readiness descriptor's helper thread) are not
 * killed by SIGBUS; every call returns in bounded time with
 * success or a documented error, and shmkit_seg_check() says -EBADMSG.
 * memfd segments: the seals refuse the truncation (and growing, and new
 * seals) to any holder of the descriptor, in this process or another.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <shmkit.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORLD_BYTES (1u << 20)
#define HEAP_OFF 4096u
#define LOCK_NS 300000000ull
#define CHAN_NS 50000000ll
#define SLACK_NS 1000000000ull

/* The board lives in a segment of its own, never truncated. */
struct board {
	_Atomic uint32_t stop;
	_Atomic uint32_t started;
	_Atomic uint64_t calls;
	_Atomic uint64_t errors;
	_Atomic uint32_t checked; /* workers whose seg_check said -EBADMSG */
};

static const int errs[] = {ENOENT,	    ENOSPC,    EMSGSIZE, EEXIST,
			   EAGAIN,	    ETIMEDOUT, EBADMSG,	 EPROTO,
			   ENOTRECOVERABLE, EINVAL,    EPIPE,	 ECONNRESET,
			   EOWNERDEAD,	    EPERM,     0};

static void check(struct board *bd, const char *what, int rc, uint64_t t0,
		  uint64_t timeout_ns)
{
	uint64_t dt = th_now_ns() - t0;
	uint64_t bound = (timeout_ns + SLACK_NS) * (uint64_t)th_slow_factor();
	int ok = rc >= 0;

	for (const int *e = errs; !ok && *e; e++)
		ok = rc == -*e;
	atomic_fetch_add(&bd->calls, 1);
	if (rc < 0)
		atomic_fetch_add(&bd->errors, 1);
	if (!ok) {
		fprintf(stderr, "%s returned %d (%s)\n", what, rc,
			strerror(-rc));
		_exit(3);
	}
	if (dt > bound) {
		fprintf(stderr, "%s took %.1f ms\n", what, dt / 1e6);
		_exit(3);
	}
}

/* argv: board world chan kind. Uses its handles until told to stop, then
 * checks that its segment is reported truncated. */
static int role_worker(int argc, char **argv)
{
	struct shmkit_heap_opts ho = {.sz = sizeof(ho),
				      .lock_timeout_ns = LOCK_NS};
	struct shmkit_map_opts mo = {.sz = sizeof(mo),
				     .lock_timeout_ns = LOCK_NS};
	struct shmkit_seg *bs, *seg;
	struct shmkit_heap *h = NULL;
	struct shmkit_map *m = NULL;
	struct shmkit_chan *ch = NULL;
	struct shmkit_mutex *mx;
	struct board *bd;
	unsigned char buf[600];
	uint64_t offs[16], t0;
	unsigned n = 0;
	const char *kind;
	int rc, chan, efd = -1;

	if (argc < 4 || shmkit_seg_open(argv[0], NULL, &bs) < 0)
		return 2;
	bd = shmkit_seg_base(bs);
	kind = argv[3];
	chan = strcmp(kind, "prod") == 0 || strcmp(kind, "cons") == 0;
	/* The channel's own segment, to ask it whether it is whole. */
	if (shmkit_seg_open(chan ? argv[2] : argv[1], NULL, &seg) < 0)
		return 2;
	mx = shmkit_seg_base(seg);
	if (!chan && shmkit_heap_open(seg, &ho, &h) < 0)
		return 2;
	if (strcmp(kind, "map") == 0 && shmkit_map_open(h, "m", &mo, &m) < 0)
		return 2;
	if (chan &&
	    shmkit_chan_open(argv[2],
			     strcmp(kind, "prod") == 0 ? SHMKIT_CHAN_PRODUCER
						       : SHMKIT_CHAN_CONSUMER,
			     NULL, &ch) < 0)
		return 2;
	/* The consumer's readiness descriptor: its helper thread reads the
	 * channel too, and must not die of the truncation either. */
	if (strcmp(kind, "cons") == 0 && (efd = shmkit_chan_fd(ch)) < 0)
		return 2;
	atomic_fetch_add(&bd->started, 1);
	memset(buf, 'x', sizeof(buf));
	for (uint64_t it = 0; !atomic_load(&bd->stop); it++) {
		t0 = th_now_ns();
		if (m) {
			char k[16];
			int len = snprintf(k, sizeof(k), "k%u",
					   (unsigned)(it % 200));

			if (it % 2)
				rc = shmkit_map_put(m, k, (size_t)len, buf, 20,
						    0);
			else
				rc = shmkit_map_get(m, k, (size_t)len, buf,
						    sizeof(buf));
			check(bd, "map", rc, t0, LOCK_NS);
		} else if (strcmp(kind, "heap") == 0) {
			if (n < 16 && it % 3) {
				rc = shmkit_heap_alloc(h, 100 + it % 3000, 0,
						       &offs[n]);
				if (rc == 0)
					n++;
			} else if (n) {
				rc = shmkit_heap_free(h, offs[--n]);
			} else {
				rc = shmkit_heap_check(h);
			}
			check(bd, "heap", rc, t0, LOCK_NS);
		} else if (strcmp(kind, "mutex") == 0) {
			rc = shmkit_mutex_lock(seg, mx, LOCK_NS);
			check(bd, "mutex_lock", rc, t0, LOCK_NS);
			if (rc == -EOWNERDEAD)
				shmkit_mutex_consistent(seg, mx);
			if (rc == 0 || rc == -EOWNERDEAD)
				shmkit_mutex_unlock(seg, mx);
		} else if (strcmp(kind, "prod") == 0) {
			rc = shmkit_chan_send(ch, buf, 16 + it % 300, CHAN_NS);
			check(bd, "chan_send", rc, t0, CHAN_NS);
		} else if (it % 2) {
			uint32_t fl;

			rc = shmkit_chan_recv(ch, buf, sizeof(buf), &fl,
					      CHAN_NS);
			check(bd, "chan_recv", rc, t0, CHAN_NS);
		} else {
			/* As an event loop would: a non-blocking receive
			 * (which re-arms the descriptor when it finds
			 * nothing), then poll() the descriptor. */
			struct pollfd pf = {.fd = efd, .events = POLLIN};

			rc = shmkit_chan_recv(ch, buf, sizeof(buf), NULL, 0);
			if (rc == -EAGAIN)
				rc = poll(&pf, 1, 10) < 0 ? -errno : 0;
			check(bd, "chan_recv(0) and poll", rc, t0, CHAN_NS);
		}
	}
	if (shmkit_seg_check(seg) != -EBADMSG) {
		fprintf(stderr, "%s: segment truncated, seg_check says %d\n",
			kind, shmkit_seg_check(seg));
		return 4;
	}
	atomic_fetch_add(&bd->checked, 1);
	/* Closing a truncated segment is fine too. */
	shmkit_chan_close(ch);
	shmkit_map_close(m);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	shmkit_seg_close(bs);
	return 0;
}

static void truncate_named(const char *name, off_t len)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", shmkit_shm_dir(), name);
	fd = open(path, O_RDWR);
	ASSERT_GE(fd, 0);
	ASSERT_OK(ftruncate(fd, len));
	close(fd);
}

static void named(off_t data_to, off_t chan_to)
{
	static const char *const kinds[] = {"map", "heap", "mutex", "prod",
					    "cons"};
	struct shmkit_heap_opts ho = {.sz = sizeof(ho),
				      .flags = SHMKIT_HEAP_CREATE,
				      .offset = HEAP_OFF};
	struct shmkit_map_opts mo = {
		.sz = sizeof(mo), .flags = SHMKIT_MAP_CREATE, .capacity = 256};
	struct shmkit_chan_opts co = {.sz = sizeof(co),
				      .capacity_bytes = 16384,
				      .max_msg_bytes = 512};
	char bname[128], world[128], chan[128];
	const char *args[] = {bname, world, chan, NULL, NULL};
	struct shmkit_seg *bs, *seg;
	struct shmkit_heap *h;
	struct shmkit_map *m;
	struct shmkit_chan *ch;
	struct board *bd;
	pid_t pids[5];

	th_name(bname, sizeof(bname), "ht-b");
	th_name(world, sizeof(world), "ht-w");
	th_name(chan, sizeof(chan), "ht-c");
	ASSERT_OK(shmkit_seg_create(bname, 4096, NULL, &bs));
	bd = shmkit_seg_base(bs);
	ASSERT_OK(shmkit_seg_create(world, WORLD_BYTES, NULL, &seg));
	ASSERT_OK(shmkit_mutex_init(seg, shmkit_seg_base(seg), NULL));
	ASSERT_OK(shmkit_heap_open(seg, &ho, &h));
	ASSERT_EQ(shmkit_map_open(h, "m", &mo, &m), 1);
	shmkit_map_close(m);
	shmkit_heap_close(h);
	ASSERT_OK(shmkit_chan_create(chan, &co, SHMKIT_CHAN_PRODUCER, &ch));
	shmkit_chan_close(ch);
	for (int i = 0; i < 5; i++) {
		args[3] = kinds[i];
		pids[i] = th_spawn("worker", args, NULL);
	}
	for (int i = 0; i < 5000 && atomic_load(&bd->started) < 5; i++)
		usleep(1000);
	ASSERT_EQ(atomic_load(&bd->started), 5);
	usleep(50000);
	truncate_named(world, data_to);
	truncate_named(chan, chan_to);
	usleep(200000);
	/* This process's own handle: touching the vanished pages does not
	 * kill it either. */
	{
		volatile unsigned char *p = shmkit_seg_base(seg);
		unsigned sum = 0;

		for (size_t i = 0; i < WORLD_BYTES; i += 4096)
			sum += p[i];
		(void)sum;
		ASSERT_ERR(shmkit_seg_check(seg), EBADMSG);
	}
	atomic_store(&bd->stop, 1);
	for (int i = 0; i < 5; i++) {
		int st = th_wait(pids[i], 20000);

		if (st == -ETIMEDOUT)
			th_fail(__FILE__, __LINE__, "%s hangs", kinds[i]);
		if (!th_exited_ok(st))
			th_fail(__FILE__, __LINE__,
				"%s died or failed: status 0x%x (signal %d)",
				kinds[i], st,
				WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	}
	ASSERT_EQ(atomic_load(&bd->checked), 5);
	fprintf(stderr,
		"truncated to %lld/%lld bytes: %llu calls, %llu documented "
		"errors, nobody died\n",
		(long long)data_to, (long long)chan_to,
		(unsigned long long)atomic_load(&bd->calls),
		(unsigned long long)atomic_load(&bd->errors));
	/* A newcomer is refused (sizes come from fstat, not the header). */
	{
		struct shmkit_seg *s2;
		int rc = shmkit_seg_open(world, NULL, &s2);

		ASSERT_TRUE(rc == -EBADMSG || rc == -EPROTO);
	}
	shmkit_seg_close(seg);
	shmkit_seg_close(bs);
	ASSERT_OK(shmkit_seg_unlink(world));
	ASSERT_OK(shmkit_seg_unlink(chan));
	ASSERT_OK(shmkit_seg_unlink(bname));
}

/* Another process, holding the memfd by /proc: no truncation either. */
static int role_memfd_hostile(int argc, char **argv)
{
	int fd;

	if (argc < 1)
		return 2;
	fd = open(argv[0], O_RDWR);
	if (fd < 0)
		return 2;
	if (ftruncate(fd, 0) == 0 || errno != EPERM)
		return 3;
	if (ftruncate(fd, 1 << 24) == 0 || errno != EPERM)
		return 4;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0)
		return 5;
	return 0;
}

static void memfd(void)
{
	struct shmkit_seg *s;
	struct stat st0, st1;
	char path[64];
	const char *args[] = {path, NULL};
	int fd, fd2, seals;

	ASSERT_OK(shmkit_seg_create_memfd("hostile", 65536, NULL, &s));
	fd = shmkit_seg_fd(s);
	ASSERT_GE(fd, 0);
	ASSERT_OK(fstat(fd, &st0));
	seals = fcntl(fd, F_GET_SEALS);
	ASSERT_TRUE((seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) ==
		    (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
	/* Through the segment's own descriptor... */
	ASSERT_EQ(ftruncate(fd, 0), -1);
	ASSERT_EQ(errno, EPERM);
	ASSERT_EQ(ftruncate(fd, st0.st_size * 2), -1);
	ASSERT_EQ(errno, EPERM);
	ASSERT_EQ(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	/* ...a new description of the same file... */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fd2 = open(path, O_RDWR);
	ASSERT_GE(fd2, 0);
	ASSERT_EQ(ftruncate(fd2, 4096), -1);
	ASSERT_EQ(errno, EPERM);
	close(fd2);
	/* ...and another process. */
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), fd);
	ASSERT_TRUE(
		th_exited_ok(th_wait(th_spawn("memfd", args, NULL), 10000)));
	ASSERT_OK(fstat(fd, &st1));
	ASSERT_EQ(st1.st_size, st0.st_size);
	ASSERT_OK(shmkit_seg_check(s));
	memset(shmkit_seg_base(s), 1, shmkit_seg_size(s));
	shmkit_seg_close(s);
}

static int test(void)
{
	memfd();
	/* Into the data area, and to nothing at all. */
	named(WORLD_BYTES / 2, 8192 + 4096);
	named(0, 0);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"worker", role_worker},
					       {"memfd", role_memfd_hostile},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
