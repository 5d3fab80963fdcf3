/* SPDX-License-Identifier: MIT */
/*
 * Ordering and integrity between processes: producers send millions of
 * messages of random sizes (each carrying producer id, sequence number,
 * length and a CRC of its bytes) through every send API; the consumer
 * checks every message with every receive API, then end of stream.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <sched.h>
#include <shmkit.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MAXMSG 4000

struct mhdr {
	uint32_t prod;
	uint32_t seq;
	uint32_t len;
	uint32_t crc;
};

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	while (n--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

/* Mostly small messages, sometimes large ones. */
static size_t pick_len(void)
{
	uint64_t r = th_rand();

	if ((r & 63) == 0)
		return sizeof(struct mhdr) +
		       (size_t)((r >> 8) % (MAXMSG - 16 + 1));
	return sizeof(struct mhdr) + (size_t)((r >> 8) % 112);
}

static void fill(unsigned char *m, uint32_t prod, uint32_t seq, size_t len)
{
	struct mhdr h = {.prod = prod, .seq = seq, .len = (uint32_t)len};
	uint64_t x = th_rand();

	for (size_t i = sizeof(h); i < len; i++) {
		m[i] = (unsigned char)x;
		x = x >> 8 | x << 56;
	}
	h.crc = crc32(m + sizeof(h), len - sizeof(h));
	memcpy(m, &h, sizeof(h));
}

static int producer(int argc, char **argv)
{
	struct shmkit_chan *p;
	unsigned char m[16][MAXMSG];
	uint32_t id, count, seq = 0;

	if (argc < 3)
		return TH_FAIL;
	id = (uint32_t)atoi(argv[1]);
	count = (uint32_t)strtoul(argv[2], NULL, 10);
	crc_init();
	ASSERT_OK(shmkit_chan_open(argv[0], SHMKIT_CHAN_PRODUCER, NULL, &p));
	while (seq < count) {
		uint64_t how = th_rand() % 8;

		if (how == 0) {
			/* Zero-copy. */
			size_t len = pick_len();
			void *w;

			ASSERT_OK(shmkit_chan_reserve(p, MAXMSG, &w, -1));
			fill(w, id, seq, len);
			ASSERT_OK(shmkit_chan_commit(p, len));
			seq++;
		} else if (how == 1) {
			struct shmkit_chan_msg b[16];
			unsigned n = 1 + (unsigned)(th_rand() % 16);
			int sent;

			if (n > count - seq)
				n = count - seq;
			for (unsigned k = 0; k < n; k++) {
				b[k].len = pick_len();
				b[k].buf = m[k];
				fill(m[k], id, seq + k, b[k].len);
			}
			sent = shmkit_chan_send_batch(p, b, n, -1);
			ASSERT_GT(sent, 0);
			seq += (uint32_t)sent;
		} else {
			size_t len = pick_len();

			fill(m[0], id, seq, len);
			ASSERT_OK(shmkit_chan_send(p, m[0], len, -1));
			seq++;
		}
	}
	shmkit_chan_close(p);
	return 0;
}

static void check(const unsigned char *m, size_t len, uint32_t *next,
		  unsigned nprod)
{
	struct mhdr h;

	ASSERT_GE(len, sizeof(h));
	memcpy(&h, m, sizeof(h));
	ASSERT_LT(h.prod, nprod);
	ASSERT_EQ(h.seq, next[h.prod]);
	ASSERT_EQ(h.len, len);
	ASSERT_EQ(h.crc, crc32(m + sizeof(h), len - sizeof(h)));
	next[h.prod]++;
}

static void run(unsigned nprod, uint32_t per, uint64_t cap)
{
	struct shmkit_chan_opts o = {.sz = sizeof(o)};
	static unsigned char bufs[8][MAXMSG];
	struct shmkit_chan *c;
	uint32_t next[8] = {0};
	pid_t pids[8];
	char name[128], id[16], cnt[16];
	uint64_t total = 0, t0 = th_now_ns();
	int rc;

	th_name(name, sizeof(name), "stream");
	o.capacity_bytes = cap;
	o.max_msg_bytes = MAXMSG;
	o.max_producers = nprod;
	ASSERT_OK(shmkit_chan_create(name, &o, SHMKIT_CHAN_CONSUMER, &c));
	snprintf(cnt, sizeof(cnt), "%u", per);
	for (unsigned i = 0; i < nprod; i++) {
		snprintf(id, sizeof(id), "%u", i);
		const char *args[] = {name, id, cnt, NULL};

		pids[i] = th_spawn("producer", args, NULL);
	}
	/* End of stream means every producer that ever attached is gone:
	 * one that has not attached yet would start a new stream. The ring
	 * is too small for any of them to finish before we receive. */
	while ((unsigned)shmkit_chan_peers(c) < nprod) {
		ASSERT_LT(th_now_ns() - t0, 30000000000ull);
		usleep(1000);
	}
	for (;;) {
		uint64_t how = th_rand() % 4;

		if (how == 0) {
			const void *ptr;

			rc = shmkit_chan_peek(c, &ptr, NULL, 10000000000ll);
			if (rc < 0)
				break;
			check(ptr, (size_t)rc, next, nprod);
			ASSERT_OK(shmkit_chan_release(c));
			total++;
		} else if (how == 1) {
			struct shmkit_chan_msg b[8];

			for (int k = 0; k < 8; k++) {
				b[k].buf = bufs[k];
				b[k].cap = MAXMSG;
			}
			rc = shmkit_chan_recv_batch(c, b, 8, 10000000000ll);
			if (rc < 0)
				break;
			for (int k = 0; k < rc; k++) {
				ASSERT_EQ(b[k].flags, 0);
				check(bufs[k], b[k].len, next, nprod);
			}
			total += (uint64_t)rc;
		} else {
			uint32_t fl;

			rc = shmkit_chan_recv(c, bufs[0], MAXMSG, &fl,
					      10000000000ll);
			if (rc < 0)
				break;
			ASSERT_EQ(fl, 0);
			check(bufs[0], (size_t)rc, next, nprod);
			total++;
		}
	}
	/* End of stream only once every producer is done. */
	ASSERT_ERR(rc, EPIPE);
	for (unsigned i = 0; i < nprod; i++) {
		ASSERT_TRUE(th_exited_ok(th_wait(pids[i], 30000)));
		ASSERT_EQ(next[i], per);
	}
	ASSERT_EQ(total, (uint64_t)nprod * per);
	fprintf(stderr, "%u producers, %llu messages, ring %llu: %.2f s\n",
		nprod, (unsigned long long)total, (unsigned long long)cap,
		(double)(th_now_ns() - t0) / 1e9);
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_unlink(name));
}

static int hog(int argc, char **argv)
{
	volatile uint64_t x = 0;

	(void)argc;
	(void)argv;
	for (;;)
		x++;
	return 0;
}

/*
 * A receive with a short timeout, its producer on its CPU, and a busy
 * process there too: the consumer must not yield (a yield can give the
 * busy process the CPU for a whole time slice, several milliseconds) but
 * sleep, and time out near 1 ms. The median of 21 calls stays under 3 ms.
 */
static void colocated_timeout(void)
{
	struct shmkit_chan_opts o = {.sz = sizeof(o)};
	struct shmkit_chan *c, *p;
	uint64_t dt[21];
	char name[64], buf[64];
	pid_t h;

	th_name(name, sizeof(name), "coloc");
	o.capacity_bytes = 4096;
	o.max_msg_bytes = 64;
	o.max_producers = 1;
	ASSERT_OK(shmkit_chan_create(name, &o, SHMKIT_CHAN_CONSUMER, &c));
	ASSERT_OK(shmkit_chan_open(name, SHMKIT_CHAN_PRODUCER, NULL, &p));
	/* 16 commits: the producer's CPU word now names this CPU. */
	for (int i = 0; i < 16; i++) {
		ASSERT_OK(shmkit_chan_send(p, "x", 1, 0));
		ASSERT_EQ(shmkit_chan_recv(c, buf, sizeof(buf), NULL, 0), 1);
	}
	h = th_spawn("hog", NULL, NULL);
	for (int i = 0; i < 21; i++) {
		uint64_t t0 = th_now_ns();

		ASSERT_ERR(shmkit_chan_recv(c, buf, sizeof(buf), NULL, 1000000),
			   ETIMEDOUT);
		dt[i] = th_now_ns() - t0;
	}
	th_kill(h);
	th_sort_u64(dt, 21);
	fprintf(stderr,
		"1 ms timeouts next to a busy process: median %.2f ms\n",
		(double)dt[10] / 1e6);
	ASSERT_LT(dt[10], 3000000ull * (uint64_t)th_slow_factor());
	shmkit_chan_close(p);
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_unlink(name));
}

/*
 * Producer and consumer on one CPU (the producer inherits the affinity):
 * every wait finds its peer on its own CPU, so the consumer yields instead
 * of spinning and the producer sleeps at once when the ring is full.
 */
static void colocated(uint32_t n)
{
	cpu_set_t all, one;

	ASSERT_OK(sched_getaffinity(0, sizeof(all), &all));
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	ASSERT_OK(sched_setaffinity(0, sizeof(one), &one));
	run(1, n, 16384);
	colocated_timeout();
	ASSERT_OK(sched_setaffinity(0, sizeof(all), &all));
}

static int test(void)
{
	const char *e = getenv("CHAN_STREAM_N");
	uint32_t n = e ? (uint32_t)strtoul(e, NULL, 10) : 1500000;
	long slow = th_slow_factor();

	crc_init();
	n /= (uint32_t)slow;
	/* One producer, large ring: throughput path. */
	run(1, n, 1 << 20);
	/* Three producers, a small ring: wrap-around, full lanes, sleeps. */
	run(3, n / 6, 16384);
	colocated(n / 10);
	return 0;
}

static const struct th_role roles[] = {
	{"producer", producer},
	{"hog", hog},
	{NULL, NULL},
};

int main(int argc, char **argv)
{
	return th_run(argc, argv, roles, test);
}
