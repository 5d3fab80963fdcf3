/* SPDX-License-Identifier: MIT */
/*
 * A hostile process maps the channel's segment and keeps flipping lane
 * indices, marks, record lengths and kinds, and wake-up words while a
 * producer sends and the consumer receives. Every call must return in
 * bounded time with -EBADMSG, a documented error, or a message that lies
 * inside its ring with a length no larger than the maximum; neither side
 * may crash, touch memory outside the rings, or hang.
 */
#define _GNU_SOURCE
#include "harness.h"

#include "chan.h"

#include <shmkit.h>
#include <stdio.h>
#include <unistd.h>

#define MAXMSG 700
#define RUN_NS 1500000000ull

static uint64_t rnd_index(uint64_t old, uint64_t ring)
{
	switch (th_rand() % 6) {
	case 0:
		return th_rand(); /* anything */
	case 1:
		return old + 8 * (th_rand() % 16); /* a bit ahead */
	case 2:
		return old - 8 * (th_rand() % 16); /* a bit behind */
	case 3:
		return old + ring + 8; /* just past a lap */
	case 4:
		return old | 3; /* misaligned */
	default:
		return old ^ (1ull << (th_rand() % 64)); /* one bit */
	}
}

/*
 * Write v into a shared word, and most of the time put the old value
 * back after a moment (unless an honest writer moved it meanwhile), so
 * the channel keeps flowing between corruptions.
 */
static void flip64(_Atomic uint64_t *p, uint64_t v)
{
	uint64_t old = atomic_exchange(p, v);

	if (th_rand() % 8 == 0)
		return; /* leave it corrupt */
	usleep(th_rand() % 50);
	atomic_compare_exchange_strong(p, &v, old);
}

static int hostile(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shmkit_chan_hdr *h;
	uint64_t end = th_now_ns() + RUN_NS, ring, nl;
	unsigned char *rings;

	if (argc < 1)
		return TH_FAIL;
	ASSERT_OK(shmkit_seg_open(argv[0], NULL, &seg));
	h = shmkit_seg_base(seg);
	ring = h->ring_size;
	nl = h->nlanes;
	rings = (unsigned char *)h + h->ring_off;
	while (th_now_ns() < end) {
		struct shmkit_chan_lane *l =
			(struct shmkit_chan_lane *)((char *)h + h->lane_off) +
			th_rand() % nl;
		uint64_t off = (th_rand() % (nl * ring)) & ~7ull;
		uint32_t kinds[] = {SHMKIT_REC_MSG, SHMKIT_REC_PAD, 3, 0};
		uint64_t w;

		switch (th_rand() % 8) {
		case 0:
			flip64(&l->tail,
			       rnd_index(load_relaxed(&l->tail), ring));
			break;
		case 1:
			flip64(&l->head,
			       rnd_index(load_relaxed(&l->head), ring));
			break;
		case 2:
			flip64(&l->mark,
			       rnd_index(load_relaxed(&l->mark), ring));
			break;
		case 3:
		case 4: /* a record word: length and kind */
			w = (th_rand() % 3 == 0 ? th_rand() % (ring * 2)
						: th_rand() % 64 * 8) |
			    (uint64_t)(SHMKIT_REC_TAG | kinds[th_rand() % 4])
				    << 32;
			if (th_rand() % 8 == 0)
				w = th_rand();
			flip64((_Atomic uint64_t *)(rings + off), w);
			break;
		case 5:
			store_relaxed(&h->rx_sleepers, (uint32_t)th_rand());
			store_relaxed(&l->tx_sleep, (uint32_t)th_rand());
			break;
		case 6:
			store_relaxed(&l->state, (uint32_t)th_rand() % 4);
			store_relaxed(&h->cons_state, (uint32_t)th_rand() % 4);
			break;
		default:
			atomic_fetch_add(&h->rx_seq, 1);
			atomic_fetch_add(&l->tx_seq, 1);
		}
		usleep(th_rand() % 300);
	}
	shmkit_seg_close(seg);
	return 0;
}

static int producer(int argc, char **argv)
{
	unsigned char m[MAXMSG];
	struct shmkit_chan *p;
	uint64_t end = th_now_ns() + RUN_NS, sent = 0, bad = 0;

	if (argc < 1)
		return TH_FAIL;
	memset(m, 0x5a, sizeof(m));
	ASSERT_OK(shmkit_chan_open(argv[0], SHMKIT_CHAN_PRODUCER, NULL, &p));
	while (th_now_ns() < end) {
		uint64_t t0 = th_now_ns();
		int rc;

		if (th_rand() % 2) {
			void *w;

			rc = shmkit_chan_reserve(p, MAXMSG, &w, 2000000);
			if (rc == 0) {
				memset(w, 0x5a, MAXMSG);
				rc = shmkit_chan_commit(p, th_rand() % MAXMSG);
			}
		} else {
			rc = shmkit_chan_send(p, m, th_rand() % MAXMSG,
					      2000000);
		}
		ASSERT_LT(th_now_ns() - t0, 5000000000ull);
		if (rc == 0)
			sent++;
		else if (rc == -EBADMSG)
			bad++;
		else if (rc != -ETIMEDOUT && rc != -ECONNRESET && rc != -EPIPE)
			ASSERT_OK(rc);
	}
	fprintf(stderr, "producer: %llu sent, %llu -EBADMSG\n",
		(unsigned long long)sent, (unsigned long long)bad);
	shmkit_chan_close(p);
	return 0;
}

/* A message must lie inside one lane's ring. */
static void in_ring(const struct shmkit_chan *c, const void *p, size_t len)
{
	const unsigned char *b = p;
	uint64_t off;

	ASSERT_TRUE(b >= c->rings &&
		    b + len <= c->rings + c->nlanes * c->ring_size);
	off = (uint64_t)(b - c->rings);
	ASSERT_EQ(off / c->ring_size, (off + len - (len > 0)) / c->ring_size);
}

static int test(void)
{
	struct shmkit_chan_opts o = {.sz = sizeof(o)};
	static unsigned char buf[MAXMSG + 64];
	struct shmkit_chan *c;
	uint64_t ok = 0, bad = 0, end;
	pid_t ph, pp;
	char name[128];
	const char *args[] = {name, NULL};

	th_name(name, sizeof(name), "hostile");
	o.capacity_bytes = 8192;
	o.max_msg_bytes = MAXMSG;
	o.max_producers = 2;
	ASSERT_OK(shmkit_chan_create(name, &o, SHMKIT_CHAN_CONSUMER, &c));
	pp = th_spawn("producer", args, NULL);
	/* Attached before the hostile writer starts (attach validates). */
	while (shmkit_chan_peers(c) < 1)
		usleep(1000);
	ph = th_spawn("hostile", args, NULL);
	end = th_now_ns() + RUN_NS * 11 / 10;
	while (th_now_ns() < end) {
		uint64_t t0 = th_now_ns();
		uint32_t fl;
		int rc;

		switch (th_rand() % 3) {
		case 0: {
			const void *ptr;

			rc = shmkit_chan_peek(c, &ptr, &fl, 2000000);
			if (rc >= 0) {
				ASSERT_LE(rc, MAXMSG);
				in_ring(c, ptr, (size_t)rc);
				memcpy(buf, ptr, (size_t)rc);
				ASSERT_OK(shmkit_chan_release(c));
			}
			break;
		}
		case 1: {
			struct shmkit_chan_msg b[4];
			static unsigned char bb[4][MAXMSG];

			for (int k = 0; k < 4; k++) {
				b[k].buf = bb[k];
				b[k].cap = MAXMSG;
			}
			rc = shmkit_chan_recv_batch(c, b, 4, 2000000);
			for (int k = 0; k < rc; k++)
				ASSERT_LE(b[k].len, MAXMSG);
			break;
		}
		default:
			rc = shmkit_chan_recv(c, buf, sizeof(buf), &fl,
					      2000000);
			ASSERT_LE(rc, MAXMSG);
		}
		/* A hang would show here (bound far above any honest call). */
		ASSERT_LT(th_now_ns() - t0, 5000000000ull);
		if (rc >= 0)
			ok++;
		else if (rc == -EBADMSG)
			bad++;
		else if (rc != -ETIMEDOUT && rc != -EAGAIN && rc != -EPIPE &&
			 rc != -ECONNRESET)
			ASSERT_OK(rc);
	}
	fprintf(stderr, "consumer: %llu messages, %llu -EBADMSG\n",
		(unsigned long long)ok, (unsigned long long)bad);
	ASSERT_GT(bad, 0); /* the hostile writer did reach us */
	ASSERT_TRUE(th_exited_ok(th_wait(ph, 10000)));
	ASSERT_TRUE(th_exited_ok(th_wait(pp, 10000)));
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_unlink(name));
	return 0;
}

static const struct th_role roles[] = {
	{"hostile", hostile},
	{"producer", producer},
	{NULL, NULL},
};

int main(int argc, char **argv)
{
	return th_run(argc, argv, roles, test);
}
