/* SPDX-License-Identifier: MIT */
/*
 * shmkit bench transports: each moves whole messages between two processes
 * forked from the bench, one per side: shmkit channels (default wait and
 * pure polling), a plain busy-polling ring, a ring woken through eventfd,
 * pipe, Unix stream and seqpacket sockets, POSIX message queues, TCP on
 * loopback, and the cache-line floor. Public API and libc only.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* How long one blocking call may wait before the job counts as stuck. */
#define TP_TIMEOUT_NS (10ll * 1000000000ll)

static int fail(struct bench_tp *t, const char *what, int err)
{
	if (!t->why[0])
		snprintf(t->why, sizeof(t->why), "%s: %s", what, strerror(err));
	return -err;
}

static void close_fds(struct bench_tp *t)
{
	for (int i = 0; i < 8; i++)
		if (t->fd[i] >= 0) {
			close(t->fd[i]);
			t->fd[i] = -1;
		}
}

/* Keep descriptor i (and k), close the others. */
static void keep_fds(struct bench_tp *t, int i, int k)
{
	for (int n = 0; n < 8; n++)
		if (n != i && n != k && t->fd[n] >= 0) {
			close(t->fd[n]);
			t->fd[n] = -1;
		}
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		/* SIGPIPE is ignored by the bench: EPIPE comes back. */
		ssize_t w = write(fd, c, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n)
{
	char *c = p;

	while (n) {
		ssize_t r = read(fd, c, n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EPIPE;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

static void *shared_map(struct bench_tp *t, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	t->mem = p;
	t->mem_len = len;
	return p;
}

static void teardown_common(struct bench_tp *t)
{
	close_fds(t);
	if (t->mem)
		munmap(t->mem, t->mem_len);
	t->mem = NULL;
	free(t->bounce);
	t->bounce = NULL;
}

static void noop(struct bench_tp *t)
{
	(void)t;
}

/*
 * Per direction: a->b is written by side 0, read by side 1. The descriptor
 * (or queue) a side sends on and the one it receives on.
 */
static int out_fd(const struct bench_tp *t)
{
	return t->side == 0 ? t->fd[0] : t->fd[2];
}

static int in_fd(const struct bench_tp *t)
{
	return t->side == 0 ? t->fd[3] : t->fd[1];
}

/* Ring capacity (bytes per direction) and largest message of a job: the
 * same for the shmkit channel and the two plain rings. */
static uint64_t ring_capacity(size_t size)
{
	uint64_t cap = 64 * 1024;

	while (cap < 3 * ((uint64_t)size + 8) + 64)
		cap *= 2;
	return cap;
}

/* ---- byte streams: pipe, Unix stream socket, TCP ----------------------- */

static int fdstream_send(struct bench_tp *t, const void *msg, size_t len)
{
	return write_all(out_fd(t), msg, len);
}

static int fdstream_recv(struct bench_tp *t, void *buf, size_t len)
{
	return read_all(in_fd(t), buf, len);
}

/* fd[0] a->b write end, fd[1] a->b read end, fd[2] b->a write, fd[3] read */
static int pipe_setup(struct bench_tp *t)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return fail(t, "pipe", errno);
	t->fd[0] = p[1];
	t->fd[1] = p[0];
	if (pipe2(p, O_CLOEXEC) < 0)
		return fail(t, "pipe", errno);
	t->fd[2] = p[1];
	t->fd[3] = p[0];
	return 0;
}

static int fd4_attach(struct bench_tp *t)
{
	if (t->side == 0)
		keep_fds(t, 0, 3);
	else
		keep_fds(t, 1, 2);
	return 0;
}

static void fd_detach(struct bench_tp *t)
{
	close_fds(t);
}

static void fd_parent_close(struct bench_tp *t)
{
	close_fds(t);
}

/* A full-duplex pair: both directions on one descriptor per side. */
static void pair_fds(struct bench_tp *t, int a, int b)
{
	t->fd[0] = a; /* side 0 writes a->b here */
	t->fd[3] = -1;
	t->fd[1] = b; /* side 1 reads a->b here */
	t->fd[2] = -1;
}

static int pair_attach(struct bench_tp *t)
{
	/* Side 0 uses fd[0] both ways, side 1 fd[1]. */
	if (t->side == 0) {
		keep_fds(t, 0, 0);
		t->fd[3] = t->fd[0];
	} else {
		keep_fds(t, 1, 1);
		t->fd[2] = t->fd[1];
	}
	return 0;
}

static void pair_detach(struct bench_tp *t)
{
	int fd = t->side == 0 ? t->fd[0] : t->fd[1];

	for (int i = 0; i < 8; i++)
		t->fd[i] = -1;
	if (fd >= 0)
		close(fd);
}

static int unix_setup(struct bench_tp *t)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return fail(t, "socketpair", errno);
	pair_fds(t, sv[0], sv[1]);
	return 0;
}

static int tcp_setup(struct bench_tp *t)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int one = 1, l, c, s;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return fail(t, "socket", errno);
	if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(l, 1) < 0 || getsockname(l, (struct sockaddr *)&sa, &sl)) {
		int e = errno;

		close(l);
		return fail(t, "listen on 127.0.0.1", e);
	}
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		if (c >= 0)
			close(c);
		close(l);
		return fail(t, "connect to 127.0.0.1", e);
	}
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	if (s < 0) {
		int e = errno;

		close(c);
		return fail(t, "accept", e);
	}
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	pair_fds(t, c, s);
	return 0;
}

/* ---- Unix seqpacket: one datagram per piece of at most 64 KiB ------------ */

#define SEQPACKET_CHUNK (64u * 1024u)

static int seqpacket_setup(struct bench_tp *t)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return fail(t, "socketpair(SOCK_SEQPACKET)", errno);
	pair_fds(t, sv[0], sv[1]);
	t->chunk = SEQPACKET_CHUNK;
	return 0;
}

static int seqpacket_send(struct bench_tp *t, const void *msg, size_t len)
{
	const char *p = msg;
	size_t off = 0;

	do {
		size_t n = len - off < t->chunk ? len - off : t->chunk;
		ssize_t w = send(out_fd(t), p + off, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if ((size_t)w != n)
			return -EMSGSIZE;
		off += n;
	} while (off < len);
	return 0;
}

static int seqpacket_recv(struct bench_tp *t, void *buf, size_t len)
{
	char *p = buf;
	size_t off = 0;

	do {
		size_t n = len - off < t->chunk ? len - off : t->chunk;
		/* MSG_TRUNC: the datagram's real length, to catch a wrong
		 * size instead of silently cutting it. */
		ssize_t r = recv(in_fd(t), p + off, n, MSG_TRUNC);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EPIPE;
		if ((size_t)r != n)
			return -EBADMSG;
		off += n;
	} while (off < len);
	return 0;
}

/* ---- POSIX message queues: pieces of at most msgsize_max ------------------ */

static long proc_long(const char *path, long dflt)
{
	FILE *f = fopen(path, "re");
	long v = dflt;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = dflt;
		fclose(f);
	}
	return v > 0 ? v : dflt;
}

static int mq_setup(struct bench_tp *t)
{
	long msgmax = proc_long("/proc/sys/fs/mqueue/msg_max", 10);
	long sizemax = proc_long("/proc/sys/fs/mqueue/msgsize_max", 8192);
	struct mq_attr a = {0};

	/* The system's limits for an unprivileged user, even as root: what
	 * an application can count on. */
	a.mq_maxmsg = msgmax < 10 ? msgmax : 10;
	a.mq_msgsize = (long)t->size < sizemax ? (long)t->size : sizemax;
	t->chunk = (size_t)a.mq_msgsize;
	if (t->size % t->chunk) {
		t->bounce = malloc(t->chunk);
		if (!t->bounce)
			return fail(t, "malloc", ENOMEM);
	}
	for (int d = 0; d < 2; d++) {
		mqd_t q;

		snprintf(t->name[d], sizeof(t->name[d]),
			 "/shmkit-bench-%d-%llu-%s", (int)getpid(),
			 (unsigned long long)t->job_id, d ? "ba" : "ab");
		q = mq_open(t->name[d], O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			    0600, &a);
		if (q == (mqd_t)-1)
			return fail(t, "mq_open", errno);
		/* Both sides inherit the descriptor: no name is needed. */
		mq_unlink(t->name[d]);
		t->fd[d ? 2 : 0] = q;
		t->fd[d ? 3 : 1] = dup(q);
		if (t->fd[d ? 3 : 1] < 0)
			return fail(t, "dup", errno);
	}
	return 0;
}

static int mq_send_msg(struct bench_tp *t, const void *msg, size_t len)
{
	const char *p = msg;
	size_t off = 0;

	do {
		size_t n = len - off < t->chunk ? len - off : t->chunk;

		if (mq_send(out_fd(t), p + off, n, 0) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += n;
	} while (off < len);
	return 0;
}

static int mq_recv_msg(struct bench_tp *t, void *buf, size_t len)
{
	char *p = buf;
	size_t off = 0;

	do {
		size_t n = len - off < t->chunk ? len - off : t->chunk;
		char *dst = n == t->chunk ? p + off : t->bounce;
		ssize_t r = mq_receive(in_fd(t), dst, t->chunk, NULL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if ((size_t)r != n)
			return -EBADMSG;
		if (dst != p + off)
			memcpy(p + off, dst, n);
		off += n;
	} while (off < len);
	return 0;
}

/* ---- plain rings in shared memory: busy polling, or eventfd wake-ups ---- */

/*
 * One single-producer single-consumer ring per direction: fixed slots of
 * an 8-byte length and the message. The producer owns tail, the consumer
 * head, on separate cache lines; each keeps a cached copy of the other's.
 */
struct ring_ctl {
	_Alignas(64) _Atomic uint64_t tail; /* producer writes */
	_Alignas(64) _Atomic uint64_t head; /* consumer writes */
	/* eventfd ring: the producer found the ring full and sleeps */
	_Alignas(64) _Atomic uint32_t tx_sleeping;
	uint32_t pad;
	uint64_t nslots, slot;
};

#define RING_HDR 4096u /* two ring_ctl, page aligned */

static struct ring_ctl *ring_ctl(const struct bench_tp *t, int dir)
{
	return (struct ring_ctl *)((char *)t->mem + dir * 256);
}

static unsigned char *ring_slots(const struct bench_tp *t, int dir)
{
	const struct ring_ctl *c = ring_ctl(t, 0);

	return (unsigned char *)t->mem + RING_HDR +
	       (size_t)dir * c->nslots * c->slot;
}

static int ring_setup_common(struct bench_tp *t)
{
	uint64_t slot = (t->size + 8 + 7) & ~7ull;
	uint64_t n = 1;

	_Static_assert(sizeof(struct ring_ctl) <= 256, "ring_ctl");
	while (n * 2 * slot <= ring_capacity(t->size))
		n *= 2;
	if (n < 4)
		n = 4;
	if (!shared_map(t, RING_HDR + 2 * n * slot))
		return fail(t, "mmap", errno);
	for (int d = 0; d < 2; d++) {
		ring_ctl(t, d)->nslots = n;
		ring_ctl(t, d)->slot = slot;
	}
	return 0;
}

static int ring_setup(struct bench_tp *t)
{
	return ring_setup_common(t);
}

/* fd[0]/fd[1]: data eventfd a->b, b->a; fd[2]/fd[3]: space eventfd. */
static int efd_setup(struct bench_tp *t)
{
	int rc = ring_setup_common(t);

	if (rc < 0)
		return rc;
	for (int i = 0; i < 4; i++) {
		t->fd[i] = eventfd(0, EFD_CLOEXEC);
		if (t->fd[i] < 0)
			return fail(t, "eventfd", errno);
	}
	return 0;
}

static int ring_attach(struct bench_tp *t)
{
	memset(t->pos, 0, sizeof(t->pos));
	return 0;
}

static int efd_wait(int fd)
{
	uint64_t v;

	for (;;) {
		ssize_t r = read(fd, &v, sizeof(v));

		if (r == (ssize_t)sizeof(v))
			return 0;
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 ? -errno : -EIO;
	}
}

static int efd_post(int fd)
{
	uint64_t one = 1;

	return write(fd, &one, sizeof(one)) == (ssize_t)sizeof(one) ? 0
								    : -errno;
}

/*
 * pos[0]: this side's tail on its out ring, pos[1]: cached head of it;
 * pos[2]: this side's head on its in ring, pos[3]: cached tail of it.
 */
static int ring_send_common(struct bench_tp *t, const void *msg, size_t len,
			    int efd)
{
	int dir = t->side;
	struct ring_ctl *c = ring_ctl(t, dir);
	uint64_t tail = t->pos[0], n = c->nslots;
	unsigned char *s;

	if (len > c->slot - 8)
		return -EMSGSIZE;
	while (tail - t->pos[1] >= n) {
		/* Pairs with the release store of head in ring_recv. */
		t->pos[1] =
			atomic_load_explicit(&c->head, memory_order_acquire);
		if (tail - t->pos[1] < n)
			break;
		if (!efd) {
			bench_relax();
			continue;
		}
		/*
		 * Announce, re-check, sleep. The seq_cst fence pairs with
		 * the consumer's fence between its head store and its load
		 * of tx_sleeping: one of the two sees the other's store.
		 */
		atomic_store_explicit(&c->tx_sleeping, 1, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		t->pos[1] =
			atomic_load_explicit(&c->head, memory_order_acquire);
		if (tail - t->pos[1] < n)
			break;
		int rc = efd_wait(t->fd[2 + dir]);

		if (rc < 0)
			return rc;
	}
	s = ring_slots(t, dir) + (tail & (n - 1)) * c->slot;
	*(uint64_t *)s = len;
	memcpy(s + 8, msg, len);
	t->pos[0] = tail + 1;
	/* Pairs with the acquire load of tail in ring_recv. */
	atomic_store_explicit(&c->tail, tail + 1, memory_order_release);
	/* The classic design: a notification per message. */
	return efd ? efd_post(t->fd[dir]) : 0;
}

static int ring_recv_common(struct bench_tp *t, void *buf, size_t len, int efd)
{
	int dir = 1 - t->side;
	struct ring_ctl *c = ring_ctl(t, dir);
	uint64_t head = t->pos[2], n = c->nslots, got;
	const unsigned char *s;

	while (head == t->pos[3]) {
		/* Pairs with the release store of tail in ring_send. */
		t->pos[3] =
			atomic_load_explicit(&c->tail, memory_order_acquire);
		if (head != t->pos[3])
			break;
		if (!efd) {
			bench_relax();
			continue;
		}
		/* Every message is posted after its tail store: a count
		 * left from messages already taken only wakes us early. */
		int rc = efd_wait(t->fd[dir]);

		if (rc < 0)
			return rc;
	}
	if (t->pos[3] - head > n)
		return -EBADMSG;
	s = ring_slots(t, dir) + (head & (n - 1)) * c->slot;
	got = *(const uint64_t *)s;
	if (got != len)
		return -EBADMSG;
	memcpy(buf, s + 8, len);
	t->pos[2] = ++head;
	/*
	 * The polling ring publishes head every 16 messages, or when it
	 * has taken all it knew of (before it spins): a producer that
	 * found the ring full then waits for a batch instead of pulling
	 * the head line across for every slot (MCRingBuffer's batching).
	 * The eventfd ring is the classic design: every message.
	 */
	if (efd || (head & 15) == 0 || head == t->pos[3])
		/* Pairs with the acquire load of head in ring_send. */
		atomic_store_explicit(&c->head, head, memory_order_release);
	if (efd) {
		/* Pairs with the producer's fence in ring_send. */
		atomic_thread_fence(memory_order_seq_cst);
		if (atomic_load_explicit(&c->tx_sleeping,
					 memory_order_relaxed)) {
			atomic_store_explicit(&c->tx_sleeping, 0,
					      memory_order_relaxed);
			return efd_post(t->fd[2 + dir]);
		}
	}
	return 0;
}

static int ring_send(struct bench_tp *t, const void *msg, size_t len)
{
	return ring_send_common(t, msg, len, 0);
}

static int ring_recv(struct bench_tp *t, void *buf, size_t len)
{
	return ring_recv_common(t, buf, len, 0);
}

static int efd_send(struct bench_tp *t, const void *msg, size_t len)
{
	return ring_send_common(t, msg, len, 1);
}

static int efd_recv(struct bench_tp *t, void *buf, size_t len)
{
	return ring_recv_common(t, buf, len, 1);
}

static void efd_detach(struct bench_tp *t)
{
	close_fds(t);
}

/* ---- the floor: one cache line per direction, busy polling --------------- */

struct floor_lines {
	_Alignas(64) _Atomic uint64_t v[2][8];
};

#define FLOOR_STOP (1ull << 63)

static int floor_setup(struct bench_tp *t)
{
	if (!shared_map(t, sizeof(struct floor_lines)))
		return fail(t, "mmap", errno);
	return 0;
}

static int floor_attach(struct bench_tp *t)
{
	t->last = 0;
	return 0;
}

static int floor_send(struct bench_tp *t, const void *msg, size_t len)
{
	const struct bench_hdr *h = msg;
	struct floor_lines *f = t->mem;
	uint64_t v = h->seq | (h->flags & BENCH_STOP ? FLOOR_STOP : 0);

	(void)len;
	/* Pairs with the acquire load in floor_recv. */
	atomic_store_explicit(&f->v[t->side][0], v, memory_order_release);
	return 0;
}

static int floor_recv(struct bench_tp *t, void *buf, size_t len)
{
	struct floor_lines *f = t->mem;
	struct bench_hdr *h = buf;
	uint64_t v;

	/* Pairs with the release store in floor_send. */
	while ((v = atomic_load_explicit(&f->v[1 - t->side][0],
					 memory_order_acquire)) == t->last)
		bench_relax();
	t->last = v;
	h->seq = v & ~FLOOR_STOP;
	h->flags = v & FLOOR_STOP ? BENCH_STOP : 0;
	h->len = (uint32_t)len;
	return 0;
}

/* ---- shmkit channels ------------------------------------------------------ */

static int chan_setup(struct bench_tp *t)
{
	struct shmkit_chan_opts o = {.sz = sizeof(o)};

	o.capacity_bytes = ring_capacity(t->size);
	o.max_msg_bytes = t->size;
	o.max_producers = 1;
	for (int d = 0; d < 2; d++) {
		struct shmkit_chan *ch;
		int rc;

		snprintf(t->name[d], sizeof(t->name[d]),
			 "shmkit-bench-%d-%llu-%s", (int)getpid(),
			 (unsigned long long)t->job_id, d ? "ba" : "ab");
		/* Created and closed here; each side opens its end. */
		rc = shmkit_chan_create(t->name[d], &o, SHMKIT_CHAN_PRODUCER,
					&ch);
		if (rc < 0) {
			snprintf(t->why, sizeof(t->why),
				 "shmkit_chan_create: %s", shmkit_strerror(rc));
			return rc;
		}
		shmkit_chan_close(ch);
	}
	return 0;
}

static int chan_attach(struct bench_tp *t)
{
	int a = t->side == 0 ? 0 : 1; /* the direction this side sends on */
	int rc;

	rc = shmkit_chan_open(t->name[a], SHMKIT_CHAN_PRODUCER, NULL, &t->out);
	if (rc == 0)
		rc = shmkit_chan_open(t->name[1 - a], SHMKIT_CHAN_CONSUMER,
				      NULL, &t->in);
	if (rc < 0)
		snprintf(t->why, sizeof(t->why), "shmkit_chan_open: %s",
			 shmkit_strerror(rc));
	return rc;
}

/* Both sides attached: the names are not needed any more. */
static void chan_ready(struct bench_tp *t)
{
	shmkit_chan_unlink(t->name[0]);
	shmkit_chan_unlink(t->name[1]);
}

static int chan_send(struct bench_tp *t, const void *msg, size_t len)
{
	return shmkit_chan_send(t->out, msg, len, TP_TIMEOUT_NS);
}

static int chan_recv(struct bench_tp *t, void *buf, size_t len)
{
	int rc = shmkit_chan_recv(t->in, buf, len, NULL, TP_TIMEOUT_NS);

	if (rc < 0)
		return rc;
	return (size_t)rc == len ? 0 : -EBADMSG;
}

static int chanpoll_send(struct bench_tp *t, const void *msg, size_t len)
{
	int rc;

	while ((rc = shmkit_chan_send(t->out, msg, len, 0)) == -EAGAIN)
		bench_relax();
	return rc;
}

static int chanpoll_recv(struct bench_tp *t, void *buf, size_t len)
{
	int rc;

	while ((rc = shmkit_chan_recv(t->in, buf, len, NULL, 0)) == -EAGAIN)
		bench_relax();
	if (rc < 0)
		return rc;
	return (size_t)rc == len ? 0 : -EBADMSG;
}

static void chan_detach(struct bench_tp *t)
{
	shmkit_chan_close(t->out);
	shmkit_chan_close(t->in);
	t->out = t->in = NULL;
}

static void chan_teardown(struct bench_tp *t)
{
	for (int d = 0; d < 2; d++)
		if (t->name[d][0])
			shmkit_chan_unlink(t->name[d]);
}

/* ---- the table ------------------------------------------------------------- */

static const struct bench_tp_ops tp_floor = {
	.name = "floor",
	.desc = "cache-line ping-pong between the two CPUs (floor)",
	.flags = BENCH_TP_FLOOR | BENCH_TP_POLLS,
	.setup = floor_setup,
	.attach = floor_attach,
	.send = floor_send,
	.recv = floor_recv,
	.detach = noop,
	.parent_close = noop,
	.teardown = teardown_common,
};

static const struct bench_tp_ops tp_memcpy = {
	.name = "memcpy",
	.desc = "memcpy in one process (floor)",
	.flags = BENCH_TP_MEMCPY,
};

static const struct bench_tp_ops tp_chan = {
	.name = "chan",
	.desc = "shmkit channel, default wait (spin, then futex)",
	.setup = chan_setup,
	.attach = chan_attach,
	.ready = chan_ready,
	.send = chan_send,
	.recv = chan_recv,
	.detach = chan_detach,
	.parent_close = noop,
	.teardown = chan_teardown,
};

static const struct bench_tp_ops tp_chan_poll = {
	.name = "chan-poll",
	.desc = "shmkit channel, pure polling (timeout 0)",
	.flags = BENCH_TP_POLLS,
	.setup = chan_setup,
	.attach = chan_attach,
	.ready = chan_ready,
	.send = chanpoll_send,
	.recv = chanpoll_recv,
	.detach = chan_detach,
	.parent_close = noop,
	.teardown = chan_teardown,
};

static const struct bench_tp_ops tp_ring = {
	.name = "ring",
	.desc = "plain SPSC ring in shared memory, busy polling",
	.flags = BENCH_TP_POLLS,
	.setup = ring_setup,
	.attach = ring_attach,
	.send = ring_send,
	.recv = ring_recv,
	.detach = noop,
	.parent_close = noop,
	.teardown = teardown_common,
};

static const struct bench_tp_ops tp_eventfd = {
	.name = "eventfd",
	.desc = "ring in shared memory, eventfd wake-up per message",
	.setup = efd_setup,
	.attach = ring_attach,
	.send = efd_send,
	.recv = efd_recv,
	.detach = efd_detach,
	.parent_close = fd_parent_close,
	.teardown = teardown_common,
};

static const struct bench_tp_ops tp_pipe = {
	.name = "pipe",
	.desc = "two pipes",
	.setup = pipe_setup,
	.attach = fd4_attach,
	.send = fdstream_send,
	.recv = fdstream_recv,
	.detach = fd_detach,
	.parent_close = fd_parent_close,
	.teardown = teardown_common,
};

static const struct bench_tp_ops tp_unix = {
	.name = "unix",
	.desc = "Unix stream socket pair",
	.setup = unix_setup,
	.attach = pair_attach,
	.send = fdstream_send,
	.recv = fdstream_recv,
	.detach = pair_detach,
	.parent_close = fd_parent_close,
	.teardown = teardown_common,
};

static const struct bench_tp_ops tp_seqpacket = {
	.name = "seqpacket",
	.desc = "Unix seqpacket socket pair (datagrams of up to 64 KiB)",
	.setup = seqpacket_setup,
	.attach = pair_attach,
	.send = seqpacket_send,
	.recv = seqpacket_recv,
	.detach = pair_detach,
	.parent_close = fd_parent_close,
	.teardown = teardown_common,
};

static const struct bench_tp_ops tp_mq = {
	.name = "mq",
	.desc = "POSIX message queues (pieces of at most msgsize_max)",
	.setup = mq_setup,
	.attach = fd4_attach,
	.send = mq_send_msg,
	.recv = mq_recv_msg,
	.detach = fd_detach,
	.parent_close = fd_parent_close,
	.teardown = teardown_common,
};

static const struct bench_tp_ops tp_tcp = {
	.name = "tcp",
	.desc = "TCP over loopback, TCP_NODELAY",
	.setup = tcp_setup,
	.attach = pair_attach,
	.send = fdstream_send,
	.recv = fdstream_recv,
	.detach = pair_detach,
	.parent_close = fd_parent_close,
	.teardown = teardown_common,
};

const struct bench_tp_ops *const bench_tps[] = {
	&tp_floor,     &tp_memcpy,  &tp_chan, &tp_chan_poll,
	&tp_ring,      &tp_eventfd, &tp_pipe, &tp_unix,
	&tp_seqpacket, &tp_mq,	    &tp_tcp,
};
const size_t bench_ntps = sizeof(bench_tps) / sizeof(bench_tps[0]);
