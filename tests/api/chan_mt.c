/* SPDX-License-Identifier: MIT */
/*
 * Channels between threads of one process, for ThreadSanitizer: a
 * multi-producer stream through every API, a ping-pong that sleeps and
 * wakes on both sides, select over two channels, and the readiness
 * descriptor's helper thread inside epoll. Each runs twice: every handle
 * with its own mapping of the segment (offsets, not addresses, are what
 * is shared), and every handle re-pointed at the first handle's mapping
 * (ThreadSanitizer tracks addresses, so only then can it see a race
 * between the two sides).
 */
#define _GNU_SOURCE
#include "harness.h"

#include "chan.h"
#include "segment.h"

#include <poll.h>
#include <pthread.h>
#include <shmkit.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAXMSG 300

static char name_a[128], name_b[128];
static uint32_t per_producer;
static int share;		     /* 1: one mapping for all */
static struct shmkit_seg *anchor[2]; /* that mapping, of a and of b */

/*
 * Point a handle at the anchor mapping of the same segment, which
 * outlives every handle. Its own descriptor (and so its own OFD locks)
 * stays: only addresses change.
 */
static void maybe_share(struct shmkit_chan *ch, int which)
{
	char *base = shmkit_seg_base(anchor[which]);
	ptrdiff_t d = base - (char *)ch->hdr;

	if (!share)
		return;
	ch->hdr = (struct shmkit_chan_hdr *)base;
	ch->lanes = (struct shmkit_chan_lane *)((char *)ch->lanes + d);
	ch->rings += d;
	if (ch->pl) {
		ch->pl = (struct shmkit_chan_lane *)((char *)ch->pl + d);
		ch->pring += d;
	}
	/* The consumer's per-lane view caches its lane and ring. */
	for (unsigned i = 0; ch->cl && i < ch->nlanes; i++) {
		ch->cl[i].lane =
			(struct shmkit_chan_lane *)((char *)ch->cl[i].lane + d);
		ch->cl[i].ring += d;
	}
}

static void anchors_open(void)
{
	ASSERT_OK(shmkit_seg_open(name_a, NULL, &anchor[0]));
	ASSERT_OK(shmkit_seg_open(name_b, NULL, &anchor[1]));
}

static void anchors_close(void)
{
	shmkit_seg_close(anchor[0]);
	shmkit_seg_close(anchor[1]);
}

struct mhdr {
	uint32_t prod;
	uint32_t seq;
	uint32_t len;
	uint32_t sum;
};

static uint32_t sum_of(const unsigned char *p, size_t n)
{
	uint32_t s = 2166136261u;

	while (n--)
		s = (s ^ *p++) * 16777619u;
	return s;
}

static size_t make(unsigned char *m, uint32_t prod, uint32_t seq)
{
	size_t len = sizeof(struct mhdr) + (seq * 2654435761u >> 9) % 200;
	struct mhdr h = {.prod = prod, .seq = seq, .len = (uint32_t)len};

	for (size_t i = sizeof(h); i < len; i++)
		m[i] = (unsigned char)(seq ^ i);
	h.sum = sum_of(m + sizeof(h), len - sizeof(h));
	memcpy(m, &h, sizeof(h));
	return len;
}

static void check(const unsigned char *m, size_t len, uint32_t *next)
{
	struct mhdr h;

	ASSERT_GE(len, sizeof(h));
	memcpy(&h, m, sizeof(h));
	ASSERT_LT(h.prod, 2);
	ASSERT_EQ(h.seq, next[h.prod]);
	ASSERT_EQ(h.len, len);
	ASSERT_EQ(h.sum, sum_of(m + sizeof(h), len - sizeof(h)));
	next[h.prod]++;
}

static void *producer(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	unsigned char m[4][MAXMSG];
	struct shmkit_chan *p;

	ASSERT_OK(shmkit_chan_open(name_a, SHMKIT_CHAN_PRODUCER, NULL, &p));
	maybe_share(p, 0);
	for (uint32_t seq = 0; seq < per_producer;) {
		if (seq % 3 == 0) {
			void *w;
			size_t len;

			ASSERT_OK(shmkit_chan_reserve(p, MAXMSG, &w, -1));
			len = make(w, id, seq);
			ASSERT_OK(shmkit_chan_commit(p, len));
			seq++;
		} else if (seq % 3 == 1) {
			struct shmkit_chan_msg b[4];
			unsigned n = per_producer - seq < 4 ? per_producer - seq
							    : 4;
			int sent;

			for (unsigned k = 0; k < n; k++) {
				b[k].buf = m[k];
				b[k].len = make(m[k], id, seq + k);
			}
			sent = shmkit_chan_send_batch(p, b, n, -1);
			ASSERT_GT(sent, 0);
			seq += (uint32_t)sent;
		} else {
			size_t len = make(m[0], id, seq);

			ASSERT_OK(shmkit_chan_send(p, m[0], len, -1));
			seq++;
		}
	}
	shmkit_chan_close(p);
	return NULL;
}

static void test_stream(void)
{
	struct shmkit_chan_opts o = {.sz = sizeof(o)};
	unsigned char m[4][MAXMSG];
	struct shmkit_chan *c;
	pthread_t t[2];
	uint32_t next[2] = {0, 0};
	int rc;

	th_name(name_a, sizeof(name_a), "mt");
	o.capacity_bytes = 4096;
	o.max_msg_bytes = MAXMSG;
	o.max_producers = 2;
	ASSERT_OK(shmkit_chan_create(name_a, &o, SHMKIT_CHAN_CONSUMER, &c));
	ASSERT_OK(shmkit_seg_open(name_a, NULL, &anchor[0]));
	maybe_share(c, 0);
	for (uintptr_t i = 0; i < 2; i++)
		ASSERT_EQ(pthread_create(&t[i], NULL, producer, (void *)i), 0);
	/* Both attach before either can finish (a lane holds 4 KiB). */
	while (shmkit_chan_peers(c) < 2)
		usleep(100);
	for (uint32_t n = 0;; n++) {
		if (n % 3 == 0) {
			const void *ptr;

			rc = shmkit_chan_peek(c, &ptr, NULL, 5000000000ll);
			if (rc < 0)
				break;
			check(ptr, (size_t)rc, next);
			ASSERT_OK(shmkit_chan_release(c));
		} else if (n % 3 == 1) {
			struct shmkit_chan_msg b[4];

			for (int k = 0; k < 4; k++) {
				b[k].buf = m[k];
				b[k].cap = MAXMSG;
			}
			rc = shmkit_chan_recv_batch(c, b, 4, 5000000000ll);
			if (rc < 0)
				break;
			for (int k = 0; k < rc; k++)
				check(m[k], b[k].len, next);
		} else {
			rc = shmkit_chan_recv(c, m[0], MAXMSG, NULL,
					      5000000000ll);
			if (rc < 0)
				break;
			check(m[0], (size_t)rc, next);
		}
	}
	ASSERT_ERR(rc, EPIPE);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		ASSERT_EQ(next[i], per_producer);
	}
	shmkit_chan_close(c);
	shmkit_seg_close(anchor[0]);
	ASSERT_OK(shmkit_chan_unlink(name_a));
}

/* Ping-pong: a -> b over name_a, b -> a over name_b; pauses make both
 * sides sleep on the futex now and then. */
static void *ponger(void *arg)
{
	struct shmkit_chan *in, *out;
	uint32_t v;
	int rc;

	(void)arg;
	ASSERT_OK(shmkit_chan_open(name_a, SHMKIT_CHAN_CONSUMER, NULL, &in));
	ASSERT_OK(shmkit_chan_open(name_b, SHMKIT_CHAN_PRODUCER, NULL, &out));
	maybe_share(in, 0);
	maybe_share(out, 1);
	while ((rc = shmkit_chan_recv(in, &v, sizeof(v), NULL, -1)) >= 0) {
		v++;
		if (v % 1000 == 1)
			usleep(300);
		ASSERT_OK(shmkit_chan_send(out, &v, sizeof(v), -1));
	}
	ASSERT_ERR(rc, EPIPE);
	shmkit_chan_close(out);
	shmkit_chan_close(in);
	return NULL;
}

static void test_pingpong(uint32_t rounds)
{
	struct shmkit_chan *out, *in;
	pthread_t t;
	uint32_t v = 0;

	th_name(name_a, sizeof(name_a), "ping");
	th_name(name_b, sizeof(name_b), "pong");
	ASSERT_OK(shmkit_chan_create(name_a, NULL, SHMKIT_CHAN_PRODUCER, &out));
	ASSERT_OK(shmkit_chan_create(name_b, NULL, SHMKIT_CHAN_CONSUMER, &in));
	anchors_open();
	maybe_share(out, 0);
	maybe_share(in, 1);
	ASSERT_EQ(pthread_create(&t, NULL, ponger, NULL), 0);
	for (uint32_t i = 0; i < rounds; i++) {
		ASSERT_OK(shmkit_chan_send(out, &v, sizeof(v), -1));
		ASSERT_EQ(shmkit_chan_recv(in, &v, sizeof(v), NULL, -1),
			  sizeof(v));
		ASSERT_EQ(v, 2 * i + 1);
		v++;
		if (i % 777 == 0)
			usleep(300);
	}
	shmkit_chan_close(out);
	ASSERT_ERR(shmkit_chan_recv(in, &v, sizeof(v), NULL, -1), EPIPE);
	pthread_join(t, NULL);
	shmkit_chan_close(in);
	anchors_close();
	ASSERT_OK(shmkit_chan_unlink(name_a));
	ASSERT_OK(shmkit_chan_unlink(name_b));
}

/* Producers for select/fd: bursts with pauses, then close. */
static void *burster(void *arg)
{
	const char *name = arg;
	struct shmkit_chan *p;

	ASSERT_OK(shmkit_chan_open(name, SHMKIT_CHAN_PRODUCER, NULL, &p));
	maybe_share(p, name == name_b);
	for (uint32_t i = 0; i < per_producer; i++) {
		ASSERT_OK(shmkit_chan_send(p, &i, sizeof(i), -1));
		if (i % 64 == 0)
			usleep(200);
	}
	shmkit_chan_close(p);
	return NULL;
}

static void test_select_and_fd(void)
{
	struct shmkit_chan *c[2];
	struct epoll_event ev = {.events = EPOLLIN};
	uint32_t next[2] = {0, 0};
	pthread_t t[2];
	int ep, done[2] = {0, 0}, sel_rounds = 0;

	th_name(name_a, sizeof(name_a), "sel-a");
	th_name(name_b, sizeof(name_b), "sel-b");
	ASSERT_OK(
		shmkit_chan_create(name_a, NULL, SHMKIT_CHAN_CONSUMER, &c[0]));
	ASSERT_OK(
		shmkit_chan_create(name_b, NULL, SHMKIT_CHAN_CONSUMER, &c[1]));
	anchors_open();
	maybe_share(c[0], 0);
	maybe_share(c[1], 1);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_GE(ep, 0);
	/* Channel a through epoll, channel b through select. */
	ev.data.u32 = 0;
	ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, shmkit_chan_fd(c[0]), &ev));
	ASSERT_EQ(pthread_create(&t[0], NULL, burster, name_a), 0);
	ASSERT_EQ(pthread_create(&t[1], NULL, burster, name_b), 0);
	while (!done[0] || !done[1]) {
		if (!done[0]) {
			struct epoll_event out;
			int n = epoll_wait(ep, &out, 1, 20);

			ASSERT_GE(n, 0);
		}
		if (!done[1]) {
			uint64_t ready;
			int n = shmkit_chan_select(&c[1], 1, &ready, 20000000);

			ASSERT_TRUE(n == 1 || n == -ETIMEDOUT);
			sel_rounds++;
		}
		for (int i = 0; i < 2; i++) {
			uint32_t v;
			int rc = 0;

			while (!done[i] &&
			       (rc = shmkit_chan_recv(c[i], &v, sizeof(v), NULL,
						      0)) >= 0) {
				ASSERT_EQ(v, next[i]);
				next[i]++;
			}
			if (!done[i] && rc == -EPIPE && next[i] == per_producer)
				done[i] = 1;
			else if (!done[i])
				ASSERT_ERR(rc, EAGAIN);
		}
	}
	ASSERT_GT(sel_rounds, 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	close(ep);
	shmkit_chan_close(c[0]);
	shmkit_chan_close(c[1]);
	anchors_close();
	ASSERT_OK(shmkit_chan_unlink(name_a));
	ASSERT_OK(shmkit_chan_unlink(name_b));
}

static int test(void)
{
	for (share = 0; share < 2; share++) {
		per_producer = 200000 / (uint32_t)th_slow_factor() / 5;
		test_stream();
		test_pingpong(20000 / (uint32_t)th_slow_factor());
		per_producer = 5000;
		test_select_and_fd();
	}
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
