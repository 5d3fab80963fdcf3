/* SPDX-License-Identifier: MIT */
/*
 * Several producers, one killed (SIGKILL, at a random moment) mid-stream,
 * repeatedly: the others and the consumer carry on unblocked, every
 * message whose send returned arrives once and in order, nothing torn,
 * and the stream ends once the survivors close. A replacement producer
 * then takes the dead one's lane.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <shmkit.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#define NPROD 4
#define MAXMSG 512

struct report {
	_Atomic uint32_t returned[NPROD + 1];
};

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

static int producer(int argc, char **argv)
{
	unsigned char m[MAXMSG];
	struct shmkit_chan *p;
	struct shmkit_seg *rs;
	struct report *r;
	uint32_t id, count;

	if (argc < 4)
		return TH_FAIL;
	ASSERT_OK(shmkit_seg_open(argv[1], NULL, &rs));
	r = shmkit_seg_base(rs);
	id = (uint32_t)atoi(argv[2]);
	count = (uint32_t)atoi(argv[3]);
	ASSERT_OK(shmkit_chan_open(argv[0], SHMKIT_CHAN_PRODUCER, NULL, &p));
	for (uint32_t seq = 0; seq < count; seq++) {
		size_t len = sizeof(struct mhdr) + th_rand() % (MAXMSG - 16);
		struct mhdr h = {.prod = id, .seq = seq, .len = (uint32_t)len};

		for (size_t i = sizeof(h); i < len; i++)
			m[i] = (unsigned char)th_rand();
		h.sum = sum_of(m + sizeof(h), len - sizeof(h));
		memcpy(m, &h, sizeof(h));
		ASSERT_OK(shmkit_chan_send(p, m, len, -1));
		/* Read by the test after our death (acquire). */
		atomic_store_explicit(&r->returned[id], seq + 1,
				      memory_order_release);
	}
	shmkit_chan_close(p);
	shmkit_seg_close(rs);
	return 0;
}

static void round_once(unsigned victim, uint32_t count)
{
	struct shmkit_chan_opts o = {.sz = sizeof(o)};
	unsigned char m[MAXMSG];
	struct shmkit_chan *c;
	struct shmkit_seg *rs;
	struct report *r;
	uint32_t next[NPROD + 1] = {0};
	pid_t pids[NPROD + 1];
	char ch[128], rep[128], id[16], cnt[16];
	uint64_t kill_at = 1000 + th_rand() % (count * 2);
	uint64_t total = 0;
	int rc, killed = 0, resets = 0;

	th_name(ch, sizeof(ch), "multi");
	th_name(rep, sizeof(rep), "rep");
	ASSERT_OK(shmkit_seg_create(rep, sizeof(*r), NULL, &rs));
	r = shmkit_seg_base(rs);
	o.capacity_bytes = 8192;
	o.max_msg_bytes = MAXMSG;
	o.max_producers = NPROD;
	ASSERT_OK(shmkit_chan_create(ch, &o, SHMKIT_CHAN_CONSUMER, &c));
	snprintf(cnt, sizeof(cnt), "%u", count);
	for (unsigned i = 0; i < NPROD; i++) {
		snprintf(id, sizeof(id), "%u", i);
		const char *args[] = {ch, rep, id, cnt, NULL};

		/* Half the producers commit with a fence, half rely on the
		 * consumer's membarrier (where the kernel has it). */
		const char *env[] = {"SHMKIT_CHAN_FENCE=1", NULL};

		pids[i] = th_spawn("producer", args, i % 2 ? env : NULL);
	}
	/* All attached before any can finish (their lanes fill up), so the
	 * stream does not end between two of them. */
	for (uint64_t t0 = th_now_ns(); shmkit_chan_peers(c) < NPROD;) {
		ASSERT_LT(th_now_ns() - t0, 20000000000ull);
		usleep(1000);
	}
	for (;;) {
		struct mhdr h;

		rc = shmkit_chan_recv(c, m, sizeof(m), NULL, 10000000000ll);
		if (rc == -ECONNRESET) {
			/* The victim's death, once, after its messages. */
			ASSERT_TRUE(killed);
			ASSERT_EQ(resets, 0);
			resets++;
			continue;
		}
		if (rc < 0)
			break;
		ASSERT_GE(rc, sizeof(h));
		memcpy(&h, m, sizeof(h));
		ASSERT_LE(h.prod, NPROD);
		ASSERT_EQ(h.seq, next[h.prod]);
		ASSERT_EQ(h.len, rc);
		ASSERT_EQ(h.sum, sum_of(m + sizeof(h), (size_t)rc - sizeof(h)));
		next[h.prod]++;
		if (++total == kill_at) {
			th_kill(pids[victim]);
			killed = 1;
		}
		/* Sometimes be slow, so lanes fill and producers sleep. */
		if (th_rand() % 512 == 0)
			usleep(1000);
	}
	ASSERT_ERR(rc, EPIPE);
	ASSERT_EQ(resets, killed);
	for (unsigned i = 0; i < NPROD; i++) {
		uint32_t ret = atomic_load_explicit(&r->returned[i],
						    memory_order_acquire);

		if (i == victim && killed) {
			/* Killed after returning ret sends, maybe while
			 * committing one more. */
			ASSERT_GE(next[i], ret);
			ASSERT_LE(next[i], ret + 1);
		} else {
			ASSERT_TRUE(th_exited_ok(th_wait(pids[i], 20000)));
			ASSERT_EQ(next[i], count);
		}
	}
	if (killed) {
		/* A replacement producer gets the dead one's lane. */
		snprintf(id, sizeof(id), "%u", NPROD);
		const char *args[] = {ch, rep, id, "100", NULL};
		pid_t pid = th_spawn("producer", args, NULL);
		uint64_t t0 = th_now_ns();

		while (next[NPROD] < 100) {
			struct mhdr h;

			rc = shmkit_chan_recv(c, m, sizeof(m), NULL,
					      1000000000);
			if (rc == -EPIPE) { /* not attached yet */
				usleep(1000);
				ASSERT_LT(th_now_ns() - t0, 20000000000ull);
				continue;
			}
			ASSERT_GE(rc, sizeof(h));
			memcpy(&h, m, sizeof(h));
			ASSERT_EQ(h.prod, NPROD);
			ASSERT_EQ(h.seq, next[NPROD]);
			next[NPROD]++;
		}
		ASSERT_TRUE(th_exited_ok(th_wait(pid, 20000)));
		ASSERT_ERR(shmkit_chan_recv(c, m, sizeof(m), NULL,
					    5000000000ll),
			   EPIPE);
	}
	shmkit_chan_close(c);
	shmkit_seg_close(rs);
	ASSERT_OK(shmkit_chan_unlink(ch));
	ASSERT_OK(shmkit_seg_unlink(rep));
}

static int test(void)
{
	for (unsigned round = 0; round < 8; round++)
		round_once(round % NPROD, 20000);
	return 0;
}

static const struct th_role roles[] = {
	{"producer", producer},
	{NULL, NULL},
};

int main(int argc, char **argv)
{
	return th_run(argc, argv, roles, test);
}
