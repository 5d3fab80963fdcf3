/* SPDX-License-Identifier: MIT */
/*
 * A peer that closes cleanly between the other side's two looks (its
 * state word, then its lock) must read as closed, not dead. The test is
 * linked with -Wl,--wrap=fcntl: the wrapper closes the peer right before
 * the library asks the kernel about the peer's lock (F_OFD_GETLK), which
 * is the window (the state word already read as ATTACHED). It also makes
 * that question fail, to check that the failure is reported, not taken
 * for "nobody there".
 */
#define _GNU_SOURCE
#include "harness.h"
#include "th_chan.h"

#include <fcntl.h>
#include <pthread.h>
#include <shmkit.h>
#include <stdarg.h>
#include <unistd.h>

int __real_fcntl(int fd, int cmd, ...);
int __wrap_fcntl(int fd, int cmd, ...);

static struct shmkit_chan *to_close;
static int hooked;
/* Then, after the kernel's answer, attach a new peer of this role. */
static const char *reopen_name;
static enum shmkit_chan_role reopen_role;
static struct shmkit_chan *reopened;
/* Make every F_OFD_GETLK fail with this errno (0: do not). */
static int getlk_errno;
/* Delay every unlock this long (0: do not). */
static useconds_t slow_unlock_us;

int __wrap_fcntl(int fd, int cmd, ...)
{
	const char *again = NULL;
	va_list ap;
	void *arg;
	int rc;

	/* As glibc's fcntl: the optional argument read as a pointer. */
	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (cmd == F_OFD_SETLK && slow_unlock_us &&
	    ((struct flock *)arg)->l_type == F_UNLCK)
		usleep(slow_unlock_us);
	if (cmd == F_OFD_GETLK && getlk_errno) {
		hooked++;
		errno = getlk_errno;
		return -1;
	}
	if (cmd == F_OFD_GETLK && to_close) {
		struct shmkit_chan *c = to_close;

		to_close = NULL; /* close() unlocks through here too */
		shmkit_chan_close(c);
		hooked++;
		again = reopen_name;
		reopen_name = NULL;
	}
	rc = __real_fcntl(fd, cmd, arg);
	if (again)
		ASSERT_OK(
			shmkit_chan_open(again, reopen_role, NULL, &reopened));
	return rc;
}

/* A channel made by `creator`'s role, both ends open, "x" sent. */
static void pair(char *name, size_t len, const char *tag,
		 enum shmkit_chan_role creator, struct shmkit_chan **p,
		 struct shmkit_chan **c)
{
	struct shmkit_chan_opts o = th_chan_opts(4096, 64, 1);
	int prod = creator == SHMKIT_CHAN_PRODUCER;

	th_name(name, len, tag);
	ASSERT_OK(shmkit_chan_create(name, &o, creator, prod ? p : c));
	ASSERT_OK(shmkit_chan_open(
		name, prod ? SHMKIT_CHAN_CONSUMER : SHMKIT_CHAN_PRODUCER, NULL,
		prod ? c : p));
	ASSERT_OK(shmkit_chan_send(*p, "x", 1, 0));
}

/* The consumer's end-of-stream probe: -EPIPE, not -ECONNRESET. */
static void producer_closes(void)
{
	struct shmkit_chan *c, *p;
	char name[64], buf[64];

	pair(name, sizeof(name), "pclose", SHMKIT_CHAN_CONSUMER, &p, &c);
	ASSERT_EQ(shmkit_chan_recv(c, buf, sizeof(buf), NULL, 0), 1);
	to_close = p;
	hooked = 0;
	ASSERT_ERR(shmkit_chan_recv(c, buf, sizeof(buf), NULL, 0), EPIPE);
	ASSERT_EQ(hooked, 1);
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_unlink(name));
}

/* The producer's flush: the consumer took everything and closed: 0. */
static void consumer_closes(void)
{
	struct shmkit_chan *c, *p;
	char name[64], buf[64];

	pair(name, sizeof(name), "cclose", SHMKIT_CHAN_PRODUCER, &p, &c);
	/* Received, not yet released: the consumer's close releases it. */
	ASSERT_EQ(shmkit_chan_recv(c, buf, sizeof(buf), NULL, 0), 1);
	to_close = c;
	hooked = 0;
	ASSERT_OK(shmkit_chan_flush(p, 1000000000ll));
	ASSERT_EQ(hooked, 1);
	shmkit_chan_close(p);
	ASSERT_OK(shmkit_chan_unlink(name));
}

/*
 * The same windows, and a new peer attaches right after the kernel said
 * the old one's lock was free: the old one closed cleanly and the new
 * one is alive, so neither is a death.
 */
static void peer_replaced(void)
{
	struct shmkit_chan *c, *p;
	char name[64], buf[64];

	pair(name, sizeof(name), "prepl", SHMKIT_CHAN_CONSUMER, &p, &c);
	ASSERT_EQ(shmkit_chan_recv(c, buf, sizeof(buf), NULL, 0), 1);
	to_close = p;
	reopen_name = name;
	reopen_role = SHMKIT_CHAN_PRODUCER;
	ASSERT_ERR(shmkit_chan_recv(c, buf, sizeof(buf), NULL, 0), EAGAIN);
	ASSERT_OK(shmkit_chan_send(reopened, "y", 1, 0));
	ASSERT_EQ(shmkit_chan_recv(c, buf, sizeof(buf), NULL, 0), 1);
	shmkit_chan_close(reopened);
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_unlink(name));

	pair(name, sizeof(name), "crepl", SHMKIT_CHAN_PRODUCER, &p, &c);
	to_close = c; /* closes with "x" unread: it stays queued */
	reopen_name = name;
	reopen_role = SHMKIT_CHAN_CONSUMER;
	ASSERT_ERR(shmkit_chan_flush(p, 0), EAGAIN);
	ASSERT_EQ(shmkit_chan_recv(reopened, buf, sizeof(buf), NULL, 0), 1);
	shmkit_chan_close(reopened);
	shmkit_chan_close(p);
	ASSERT_OK(shmkit_chan_unlink(name));
}

/*
 * The kernel does not answer whether a peer holds its lock: peers(),
 * wait_peer() and info() report the error at once; info() leaves the
 * caller's struct as it was.
 */
static void getlk_fails(void)
{
	struct shmkit_chan_info info, keep;
	struct shmkit_chan *c, *p;
	char name[64];

	pair(name, sizeof(name), "getlk", SHMKIT_CHAN_PRODUCER, &p, &c);
	ASSERT_EQ(shmkit_chan_peers(p), 1);
	ASSERT_EQ(shmkit_chan_peers(c), 1);
	getlk_errno = ENOLCK;
	hooked = 0;
	ASSERT_ERR(shmkit_chan_peers(p), ENOLCK);
	ASSERT_ERR(shmkit_chan_peers(c), ENOLCK);
	/* An hour's timeout: only the error can end these. */
	ASSERT_ERR(shmkit_chan_wait_peer(p, 3600ll * 1000000000ll), ENOLCK);
	ASSERT_ERR(shmkit_chan_wait_peer(c, 3600ll * 1000000000ll), ENOLCK);
	memset(&info, 0x5a, sizeof(info));
	info.sz = sizeof(info);
	keep = info;
	ASSERT_ERR(shmkit_chan_info(c, &info), ENOLCK);
	ASSERT_ERR(shmkit_chan_info(p, &info), ENOLCK);
	ASSERT_EQ(memcmp(&info, &keep, sizeof(info)), 0);
	ASSERT_TRUE(hooked >= 6);
	getlk_errno = 0;
	ASSERT_EQ(shmkit_chan_peers(c), 1);
	ASSERT_OK(shmkit_chan_info(c, &info));
	ASSERT_EQ(info.producers, 1);
	shmkit_chan_close(p);
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_unlink(name));
}

struct blocked_send {
	struct shmkit_chan *p;
	int rc;
	uint64_t done_ns;
};

static void *send_blocked(void *arg)
{
	struct blocked_send *b = arg;

	b->rc = shmkit_chan_send(b->p, "z", 1, 5000000000ll);
	b->done_ns = th_now_ns();
	return NULL;
}

/*
 * A producer asleep on a full ring hears the consumer's close at once
 * (-EPIPE), not a sleep slice (25 ms) later: the consumer releases its
 * lock before it wakes the producers, so a producer that runs as soon as
 * it is woken does not find the lock still held and take the consumer
 * for alive. Every unlock is made 5 ms slow, which opens that window
 * wide: with the wake-up first, the producer asked inside it.
 */
static void close_wakes_producer(void)
{
	uint64_t late[9];

	for (int k = 0; k < 9; k++) {
		struct blocked_send b = {0};
		struct shmkit_chan *c;
		char name[64];
		pthread_t t;
		uint64_t t0;

		pair(name, sizeof(name), "cwake", SHMKIT_CHAN_CONSUMER, &b.p,
		     &c);
		while (shmkit_chan_send(b.p, "y", 1, 0) == 0)
			;
		ASSERT_OK(pthread_create(&t, NULL, send_blocked, &b));
		/* Long enough for the sender to spin out and sleep. */
		usleep(20000);
		t0 = th_now_ns();
		slow_unlock_us = 5000;
		shmkit_chan_close(c);
		slow_unlock_us = 0;
		ASSERT_OK(pthread_join(t, NULL));
		ASSERT_ERR(b.rc, EPIPE);
		late[k] = b.done_ns - t0;
		shmkit_chan_close(b.p);
		ASSERT_OK(shmkit_chan_unlink(name));
	}
	th_sort_u64(late, 9);
	/* A sleep slice is 25 ms; the slow unlock 5 ms. */
	ASSERT_LT(late[4], 15000000);
}

static int test(void)
{
	producer_closes();
	consumer_closes();
	peer_replaced();
	getlk_fails();
	close_wakes_producer();
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
