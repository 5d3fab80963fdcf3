/* SPDX-License-Identifier: MIT */
/*
 * Channels in one process: create/open/errors, send/recv of every size,
 * wrap-around, non-blocking and timed calls, zero-copy, batches, end of
 * stream, consumer departure seen by a producer, info and peers.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "th_chan.h"

#include <shmkit.h>

static void test_errors(void)
{
	struct shmkit_chan_opts o;
	struct shmkit_chan *c, *p, *p2;
	char name[128];
	char buf[64];

	th_name(name, sizeof(name), "err");
	o = th_chan_opts(4096, 1400,
			 1); /* message larger than a third of the ring */
	ASSERT_ERR(shmkit_chan_create(name, &o, SHMKIT_CHAN_CONSUMER, &c),
		   EINVAL);
	o = th_chan_opts(0, 0, 65);
	ASSERT_ERR(shmkit_chan_create(name, &o, SHMKIT_CHAN_CONSUMER, &c),
		   EINVAL);
	o = th_chan_opts(0, 0, 0);
	o.sz = 4;
	ASSERT_ERR(shmkit_chan_create(name, &o, SHMKIT_CHAN_CONSUMER, &c),
		   EINVAL);
	ASSERT_ERR(shmkit_chan_create(name, NULL, 7, &c), EINVAL);
	ASSERT_ERR(shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, NULL, &c),
		   ENOENT);

	o = th_chan_opts(8192, 100, 1);
	ASSERT_OK(shmkit_chan_create(name, &o, SHMKIT_CHAN_CONSUMER, &c));
	ASSERT_ERR(shmkit_chan_create(name, &o, SHMKIT_CHAN_PRODUCER, &p),
		   EEXIST);
	/* One consumer at a time, one producer per lane. */
	ASSERT_ERR(shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, NULL, &p),
		   EBUSY);
	ASSERT_OK(shmkit_chan_open(name, SHMKIT_CHAN_PRODUCER, NULL, &p));
	ASSERT_ERR(shmkit_chan_open(name, SHMKIT_CHAN_PRODUCER, NULL, &p2),
		   EBUSY);
	/* Roles are enforced. */
	ASSERT_ERR(shmkit_chan_send(c, "x", 1, 0), EINVAL);
	ASSERT_ERR(shmkit_chan_recv(p, buf, sizeof(buf), NULL, 0), EINVAL);
	ASSERT_ERR(shmkit_chan_send(p, buf, 101, 0), EMSGSIZE);
	ASSERT_ERR(shmkit_chan_recv(c, buf, sizeof(buf), NULL, 0), EAGAIN);
	ASSERT_OK(shmkit_chan_send(p, "0123456789", 10, 0));
	/* Too small a buffer: the message stays. */
	ASSERT_ERR(shmkit_chan_recv(c, buf, 5, NULL, 0), EMSGSIZE);
	ASSERT_EQ(shmkit_chan_recv(c, buf, sizeof(buf), NULL, 0), 10);
	ASSERT_TRUE(memcmp(buf, "0123456789", 10) == 0);
	ASSERT_ERR(shmkit_chan_commit(p, 1), EINVAL); /* nothing reserved */
	ASSERT_ERR(shmkit_chan_release(c), EINVAL);   /* nothing peeked */
	shmkit_chan_close(p);
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_unlink(name));

	/* A plain segment is not a channel. */
	{
		struct shmkit_seg *seg;

		ASSERT_OK(shmkit_seg_create(name, 4096, NULL, &seg));
		memcpy(shmkit_seg_base(seg), "not a channel", 13);
		ASSERT_ERR(shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, NULL,
					    &c),
			   EPROTO);
		shmkit_seg_close(seg);
		ASSERT_OK(shmkit_seg_unlink(name));
	}
}

/* Every length around the ring size and the wrap, content checked. */
static void test_sizes(void)
{
	struct shmkit_chan_opts o = th_chan_opts(8192, 2000, 2);
	struct shmkit_chan *c, *p;
	unsigned char out[2048], in[2048];
	uint32_t flags;
	char name[128];

	th_name(name, sizeof(name), "sizes");
	ASSERT_OK(shmkit_chan_create(name, &o, SHMKIT_CHAN_PRODUCER, &p));
	ASSERT_OK(shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, NULL, &c));
	for (unsigned round = 0; round < 3; round++) {
		for (size_t len = 0; len <= 2000; len += 1 + round) {
			for (size_t i = 0; i < len; i++)
				out[i] = (unsigned char)(len * 7 + i);
			ASSERT_OK(shmkit_chan_send(p, out, len, 0));
			flags = 99;
			ASSERT_EQ(shmkit_chan_recv(c, in, sizeof(in), &flags,
						   0),
				  len);
			ASSERT_EQ(flags, 0);
			ASSERT_TRUE(memcmp(in, out, len) == 0);
		}
	}
	/* Fill until full, then drain in order. */
	unsigned n = 0;

	for (;; n++) {
		int rc = shmkit_chan_send(p, &n, sizeof(n), 0);

		if (rc == -EAGAIN)
			break;
		ASSERT_OK(rc);
	}
	ASSERT_GE(n, (8192 - 2008 - 16) / 16); /* one 2000-byte message held */
	ASSERT_ERR(shmkit_chan_send(p, &n, sizeof(n), 1000000), ETIMEDOUT);
	for (unsigned i = 0; i < n; i++) {
		unsigned v;

		ASSERT_EQ(shmkit_chan_recv(c, &v, sizeof(v), NULL, 0),
			  sizeof(v));
		ASSERT_EQ(v, i);
	}
	ASSERT_ERR(shmkit_chan_recv(c, in, sizeof(in), NULL, 1000000),
		   ETIMEDOUT);
	shmkit_chan_close(p);
	/* The producer left and everything is drained: end of stream. */
	ASSERT_ERR(shmkit_chan_recv(c, in, sizeof(in), NULL, 0), EPIPE);
	ASSERT_ERR(shmkit_chan_recv(c, in, sizeof(in), NULL, -1), EPIPE);
	/* A new producer starts a new stream. */
	ASSERT_OK(shmkit_chan_open(name, SHMKIT_CHAN_PRODUCER, NULL, &p));
	ASSERT_ERR(shmkit_chan_recv(c, in, sizeof(in), NULL, 0), EAGAIN);
	ASSERT_OK(shmkit_chan_send(p, "hi", 2, 0));
	ASSERT_EQ(shmkit_chan_recv(c, in, sizeof(in), NULL, 0), 2);
	shmkit_chan_close(p);
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_unlink(name));
}

static void test_zero_copy_and_batch(void)
{
	struct shmkit_chan_opts o = th_chan_opts(8192, 1024, 3);
	struct shmkit_chan *c, *p[3];
	struct shmkit_chan_msg m[16];
	unsigned char bufs[16][1024];
	const void *ptr;
	void *w;
	uint32_t flags;
	char name[128];
	int seen[3] = {0, 0, 0};

	th_name(name, sizeof(name), "zc");
	ASSERT_OK(shmkit_chan_create(name, &o, SHMKIT_CHAN_CONSUMER, &c));
	for (int i = 0; i < 3; i++)
		ASSERT_OK(shmkit_chan_open(name, SHMKIT_CHAN_PRODUCER, NULL,
					   &p[i]));
	ASSERT_EQ(shmkit_chan_peers(c), 3);
	ASSERT_EQ(shmkit_chan_peers(p[0]), 1);

	/* reserve/commit, a shorter commit, an abandoned reservation. */
	ASSERT_OK(shmkit_chan_reserve(p[0], 1000, &w, 0));
	ASSERT_EQ((uintptr_t)w % 8, 0);
	memset(w, 'a', 1000);
	ASSERT_OK(shmkit_chan_commit(p[0], 600));
	ASSERT_ERR(shmkit_chan_commit(p[0], 600), EINVAL);
	ASSERT_OK(shmkit_chan_reserve(p[0], 100, &w, 0));
	memset(w, 'z', 100); /* never committed: leaves no trace */
	ASSERT_OK(shmkit_chan_send(p[0], "after", 5, 0));
	ASSERT_ERR(shmkit_chan_commit(p[0], 1), EINVAL);

	ASSERT_EQ(shmkit_chan_peek(c, &ptr, &flags, 0), 600);
	ASSERT_EQ(flags, 0);
	ASSERT_EQ(((const char *)ptr)[599], 'a');
	/* Peeking again without release shows the same message. */
	ASSERT_EQ(shmkit_chan_peek(c, &ptr, NULL, 0), 600);
	ASSERT_OK(shmkit_chan_release(c));
	ASSERT_ERR(shmkit_chan_release(c), EINVAL);
	ASSERT_EQ(shmkit_chan_peek(c, &ptr, NULL, 0), 5);
	ASSERT_TRUE(memcmp(ptr, "after", 5) == 0);
	ASSERT_OK(shmkit_chan_release(c));

	/* Batches from three producers; FIFO per producer. */
	for (int i = 0; i < 3; i++) {
		struct shmkit_chan_msg s[5];
		unsigned char v[5][2];

		for (int k = 0; k < 5; k++) {
			v[k][0] = (unsigned char)i;
			v[k][1] = (unsigned char)k;
			s[k].buf = v[k];
			s[k].len = 2;
		}
		ASSERT_EQ(shmkit_chan_send_batch(p[i], s, 5, 0), 5);
	}
	int total = 0;

	while (total < 15) {
		for (int k = 0; k < 16; k++) {
			m[k].buf = bufs[k];
			m[k].cap = sizeof(bufs[k]);
		}
		int n = shmkit_chan_recv_batch(c, m, 16, 0);

		ASSERT_GT(n, 0);
		for (int k = 0; k < n; k++) {
			ASSERT_EQ(m[k].len, 2);
			ASSERT_EQ(m[k].flags, 0);
			int prod = bufs[k][0];

			ASSERT_LT(prod, 3);
			ASSERT_EQ(bufs[k][1], seen[prod]);
			seen[prod]++;
		}
		total += n;
	}
	ASSERT_ERR(shmkit_chan_recv_batch(c, m, 16, 0), EAGAIN);

	/* A batch larger than the room: the prefix that fits. */
	{
		static unsigned char big[1024];
		struct shmkit_chan_msg s[16];
		int n;

		for (int k = 0; k < 16; k++) {
			s[k].buf = big;
			s[k].len = sizeof(big);
		}
		n = shmkit_chan_send_batch(p[1], s, 16, 0);
		ASSERT_GT(n, 3);
		ASSERT_LT(n, 8);
		ASSERT_EQ(shmkit_chan_send_batch(p[1], s, 16, 0), -EAGAIN);
		for (int k = 0; k < n; k++)
			ASSERT_EQ(shmkit_chan_recv(c, bufs[0], 1024, NULL, 0),
				  1024);
	}

	for (int i = 0; i < 3; i++)
		shmkit_chan_close(p[i]);
	ASSERT_ERR(shmkit_chan_recv(c, bufs[0], 1024, NULL, 0), EPIPE);
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_unlink(name));
}

/* A consumer that leaves: producers learn it once the lane is full; a
 * new consumer takes over; an unreleased peek comes back flagged. */
static void test_consumer_gone(void)
{
	struct shmkit_chan_opts o = th_chan_opts(4096, 64, 1);
	struct shmkit_chan_info info = {.sz = sizeof(info)};
	struct shmkit_chan *c, *p;
	const void *ptr;
	uint32_t flags;
	char name[128], buf[64];
	unsigned v;

	th_name(name, sizeof(name), "gone");
	ASSERT_OK(shmkit_chan_create(name, &o, SHMKIT_CHAN_PRODUCER, &p));
	/* No consumer yet: sending works, a full lane just times out. */
	for (v = 0;; v++) {
		int rc = shmkit_chan_send(p, &v, sizeof(v), 0);

		if (rc == -EAGAIN)
			break;
		ASSERT_OK(rc);
	}
	ASSERT_ERR(shmkit_chan_send(p, &v, sizeof(v), 1000000), ETIMEDOUT);
	ASSERT_OK(shmkit_chan_info(p, &info));
	ASSERT_EQ(info.producers, 1);
	ASSERT_EQ(info.consumer, 0);
	ASSERT_EQ(info.capacity_bytes, 4096);
	ASSERT_EQ(info.max_msg_bytes, 64);
	ASSERT_GT(info.queued_bytes, 4096 - 32);
	/* Sized struct: a newer caller's larger one is filled up to ours
	 * (sz says how far), a smaller one refused. */
	{
		struct {
			struct shmkit_chan_info i;
			unsigned char more[16];
		} big;

		memset(&big, 0xa5, sizeof(big));
		big.i.sz = sizeof(big);
		ASSERT_OK(shmkit_chan_info(p, &big.i));
		ASSERT_EQ(big.i.sz, sizeof(struct shmkit_chan_info));
		ASSERT_EQ(big.i.capacity_bytes, 4096);
		ASSERT_EQ(big.more[0], 0xa5);
		info.sz = sizeof(info) - 8;
		ASSERT_ERR(shmkit_chan_info(p, &info), EINVAL);
		info.sz = sizeof(info);
	}

	ASSERT_OK(shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, NULL, &c));
	ASSERT_EQ(shmkit_chan_recv(c, buf, sizeof(buf), &flags, 0), 4);
	ASSERT_EQ(*(unsigned *)buf, 0);
	ASSERT_EQ(shmkit_chan_peek(c, &ptr, &flags, 0), 4);
	ASSERT_EQ(*(const unsigned *)ptr, 1);
	shmkit_chan_close(c); /* message 1 peeked, never released */

	ASSERT_OK(shmkit_chan_send(p, &v, sizeof(v), 0)); /* room for one */
	while (shmkit_chan_send(p, &v, sizeof(v), 0) == 0)
		;
	ASSERT_ERR(shmkit_chan_send(p, &v, sizeof(v), -1), EPIPE);

	/* A consumer that takes over and leaves before redelivering keeps
	 * the flag for the next one. */
	ASSERT_OK(shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, NULL, &c));
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, NULL, &c));
	ASSERT_EQ(shmkit_chan_peers(p), 1);
	ASSERT_EQ(shmkit_chan_recv(c, buf, sizeof(buf), &flags, 0), 4);
	ASSERT_EQ(*(unsigned *)buf, 1);
	ASSERT_EQ(flags, SHMKIT_CHAN_REDELIVERED);
	ASSERT_EQ(shmkit_chan_recv(c, buf, sizeof(buf), &flags, 0), 4);
	ASSERT_EQ(*(unsigned *)buf, 2);
	ASSERT_EQ(flags, 0);
	/* flush: wait until the consumer has taken everything. */
	ASSERT_ERR(shmkit_chan_flush(p, 0), EAGAIN);
	while (shmkit_chan_recv(c, buf, sizeof(buf), NULL, 0) >= 0)
		;
	ASSERT_OK(shmkit_chan_flush(p, 1000000000));
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_flush(p, 0)); /* nothing outstanding */
	ASSERT_OK(shmkit_chan_send(p, "x", 1, 0));
	ASSERT_ERR(shmkit_chan_flush(p, -1), EPIPE);
	shmkit_chan_close(p);
	ASSERT_OK(shmkit_chan_unlink(name));
}

static int test(void)
{
	test_errors();
	test_sizes();
	test_zero_copy_and_batch();
	test_consumer_gone();
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
