/* SPDX-License-Identifier: MIT */
/*
 * Crash tests: a producer killed at every crash point of send (and of
 * open/close), and a consumer killed at every crash point of receive (and
 * its successor killed too), on several passes each. No loss: every
 * message whose send returned is received, once, except redeliveries
 * flagged SHMKIT_CHAN_REDELIVERED;
 * nothing torn, nothing out of order; the lane or the consumer role is
 * reusable afterwards. Also a creator killed while laying out.
 */
#define _GNU_SOURCE
#include "harness.h"

#include "crash.h"

#include <shmkit.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/wait.h>

#define NMSG 600u
#define MAXMSG 1000u
#define RING 4096u

/* What a helper reports through a small segment of its own. */
struct report {
	_Atomic uint32_t returned;	/* producer: sends that returned */
	_Atomic uint32_t count[NMSG];	/* consumer: deliveries per seq */
	_Atomic uint32_t flagged[NMSG]; /* ... of which flagged */
};

struct mhdr {
	uint32_t seq;
	uint32_t len;
	uint32_t sum;
	uint32_t pad;
};

static uint32_t sum_of(const unsigned char *p, size_t n)
{
	uint32_t s = 2166136261u;

	while (n--)
		s = (s ^ *p++) * 16777619u;
	return s;
}

/* Deterministic size per seq, so both sides agree; spans pads. */
static size_t len_of(uint32_t seq)
{
	return sizeof(struct mhdr) + (seq * 2654435761u >> 7) % (MAXMSG - 16);
}

static void fill(unsigned char *m, uint32_t seq)
{
	size_t len = len_of(seq);
	struct mhdr h = {.seq = seq, .len = (uint32_t)len};

	for (size_t i = sizeof(h); i < len; i++)
		m[i] = (unsigned char)(seq + i * 31);
	h.sum = sum_of(m + sizeof(h), len - sizeof(h));
	memcpy(m, &h, sizeof(h));
}

/* Returns the seq of a valid message; fails the test otherwise. */
static uint32_t check(const unsigned char *m, size_t len)
{
	struct mhdr h;

	ASSERT_GE(len, sizeof(h));
	memcpy(&h, m, sizeof(h));
	ASSERT_LT(h.seq, 1000000);
	ASSERT_EQ(len, len_of(h.seq));
	ASSERT_EQ(h.len, len);
	ASSERT_EQ(h.sum, sum_of(m + sizeof(h), len - sizeof(h)));
	return h.seq;
}

static struct report *report_map(const char *name, struct shmkit_seg **seg)
{
	ASSERT_OK(shmkit_seg_open(name, NULL, seg));
	return shmkit_seg_base(*seg);
}

/* Producer helper: name report first count. Uses every send API. */
static int producer(int argc, char **argv)
{
	static unsigned char m[16][MAXMSG];
	struct shmkit_chan *p;
	struct shmkit_seg *rs;
	struct report *r;
	uint32_t seq, end;

	if (argc < 4)
		return TH_FAIL;
	r = report_map(argv[1], &rs);
	seq = (uint32_t)atoi(argv[2]);
	end = seq + (uint32_t)atoi(argv[3]);
	ASSERT_OK(shmkit_chan_open(argv[0], SHMKIT_CHAN_PRODUCER, NULL, &p));
	while (seq < end) {
		switch (seq % 4) {
		case 0: {
			void *w;

			ASSERT_OK(shmkit_chan_reserve(p, MAXMSG, &w, -1));
			fill(w, seq);
			ASSERT_OK(shmkit_chan_commit(p, len_of(seq)));
			seq++;
			break;
		}
		case 1: {
			struct shmkit_chan_msg b[3];
			unsigned n = end - seq < 3 ? end - seq : 3;
			int sent;

			for (unsigned k = 0; k < n; k++) {
				fill(m[k], seq + k);
				b[k].buf = m[k];
				b[k].len = len_of(seq + k);
			}
			sent = shmkit_chan_send_batch(p, b, n, -1);
			ASSERT_GT(sent, 0);
			seq += (uint32_t)sent;
			break;
		}
		default:
			fill(m[0], seq);
			ASSERT_OK(shmkit_chan_send(p, m[0], len_of(seq), -1));
			seq++;
		}
		/* Pairs with the parent's acquire load after our death. */
		atomic_store_explicit(&r->returned, seq, memory_order_release);
	}
	shmkit_chan_close(p);
	shmkit_seg_close(rs);
	return 0;
}

/* Consumer helper: name report. Receives until end of stream. */
static int consumer(int argc, char **argv)
{
	static unsigned char m[4][MAXMSG];
	struct shmkit_chan *c;
	struct shmkit_seg *rs;
	struct report *r;
	uint32_t n = 0;
	int rc;

	if (argc < 2)
		return TH_FAIL;
	r = report_map(argv[1], &rs);
	ASSERT_OK(shmkit_chan_open(argv[0], SHMKIT_CHAN_CONSUMER, NULL, &c));
	for (;; n++) {
		struct shmkit_chan_msg b[4];
		uint32_t fl[4], seq;
		int got = 1;

		if (n % 3 == 0) {
			const void *ptr;

			/* Processed in place, between peek and release. */
			rc = shmkit_chan_peek(c, &ptr, &fl[0], 5000000000ll);
			if (rc < 0)
				break;
			seq = check(ptr, (size_t)rc);
			ASSERT_LT(seq, NMSG);
			atomic_fetch_add(&r->count[seq], 1);
			if (fl[0] & SHMKIT_CHAN_REDELIVERED)
				atomic_fetch_add(&r->flagged[seq], 1);
			ASSERT_OK(shmkit_chan_release(c));
			got = 0;
		} else if (n % 3 == 1) {
			for (int k = 0; k < 4; k++) {
				b[k].buf = m[k];
				b[k].cap = MAXMSG;
			}
			rc = shmkit_chan_recv_batch(c, b, 4, 5000000000ll);
			if (rc < 0)
				break;
			got = rc;
			for (int k = 0; k < rc; k++)
				fl[k] = b[k].flags;
		} else {
			rc = shmkit_chan_recv(c, m[0], MAXMSG, &fl[0],
					      5000000000ll);
			if (rc < 0)
				break;
			b[0].len = (size_t)rc;
		}
		for (int k = 0; k < got; k++) {
			seq = check(m[k], b[k].len);
			ASSERT_LT(seq, NMSG);
			atomic_fetch_add(&r->count[seq], 1);
			if (fl[k] & SHMKIT_CHAN_REDELIVERED)
				atomic_fetch_add(&r->flagged[seq], 1);
		}
		/* Slow down now and then so the producer fills the ring. */
		if (n % 97 == 0)
			usleep(2000);
	}
	ASSERT_ERR(rc, EPIPE);
	shmkit_chan_close(c);
	shmkit_seg_close(rs);
	return 0;
}

static void names(char *ch, char *rep, size_t len, struct shmkit_seg **rs,
		  struct report **r)
{
	th_name(ch, len, "crash");
	th_name(rep, len, "report");
	ASSERT_OK(shmkit_seg_create(rep, sizeof(struct report), NULL, rs));
	*r = shmkit_seg_base(*rs);
}

static struct shmkit_chan_opts chan_opts(void)
{
	struct shmkit_chan_opts o = {.sz = sizeof(o)};

	o.capacity_bytes = RING;
	o.max_msg_bytes = MAXMSG;
	o.max_producers = 1;
	return o;
}

static void cleanup(const char *ch, const char *rep, struct shmkit_seg *rs)
{
	shmkit_seg_close(rs);
	ASSERT_OK(shmkit_chan_unlink(ch));
	ASSERT_OK(shmkit_seg_unlink(rep));
}

static int resets; /* -ECONNRESET reports seen by drain() */

/* Consume in the test process until end of stream (or the error
 * expected); checks order; counts reports of dead producers. */
static uint32_t drain(struct shmkit_chan *c, uint32_t next, int expect,
		      int64_t timeout_ns)
{
	static unsigned char m[MAXMSG];
	uint32_t fl;
	int rc;

	for (;;) {
		rc = shmkit_chan_recv(c, m, sizeof(m), &fl, timeout_ns);
		if (rc == -ECONNRESET) {
			resets++;
			continue;
		}
		if (rc < 0)
			break;
		ASSERT_EQ(fl, 0);
		ASSERT_EQ(check(m, (size_t)rc), next);
		next++;
		if (next % 50 == 0)
			usleep(500); /* let the producer fill the lane */
	}
	ASSERT_ERR(rc, expect);
	return next;
}

/* drain() across a producer's restart: from message `next` up to `want`,
 * within 20 s of t0 (the old stream's end shows until the new producer
 * attaches). */
static uint32_t drain_to(struct shmkit_chan *c, uint32_t next, uint32_t want,
			 uint64_t t0)
{
	while (next < want) {
		uint32_t before = next;

		next = drain(c, next, EPIPE, 5000000000ll);
		if (next == before)
			usleep(1000);
		ASSERT_LT(th_now_ns() - t0, 20000000000ull);
	}
	ASSERT_EQ(next, want);
	return next;
}

/*
 * Producer killed at pass n of point. Returns 1 if it was killed there.
 * The consumer (this process) must get every message whose send returned
 * (at most a batch more: committed, killed before returning), in order,
 * then end of stream; a new producer then reuses the lane.
 */
static int producer_case(const char *point, long n)
{
	struct shmkit_chan_opts o = chan_opts();
	struct shmkit_chan *c;
	struct shmkit_seg *rs;
	struct report *r;
	char ch[128], rep[128], cnt[16];
	uint32_t got, ret;
	int st, killed;

	names(ch, rep, sizeof(ch), &rs, &r);
	ASSERT_OK(shmkit_chan_create(ch, &o, SHMKIT_CHAN_CONSUMER, &c));
	snprintf(cnt, sizeof(cnt), "%u", NMSG / 2);
	const char *args[] = {ch, rep, "0", cnt, NULL};
	pid_t pid = th_spawn_crash("producer", args, point, n);

	/* A producer killed while claiming its lane never attached: no end
	 * of stream, the consumer just waits. */
	resets = 0;
	if (strcmp(point, "chan.open.claimed") == 0 && n == 1)
		got = drain(c, 0, ETIMEDOUT, 300000000);
	else
		got = drain(c, 0, EPIPE, 5000000000ll);
	st = th_wait(pid, 20000);
	killed = th_was_killed(st);
	ASSERT_TRUE(killed || th_exited_ok(st));
	/* Its death is reported once, unless it never attached or had
	 * already closed (the lane says CLOSED: nothing was lost). */
	ASSERT_EQ(resets, killed && strcmp(point, "chan.open.claimed") &&
				  strcmp(point, "chan.close.producer"));
	ret = atomic_load_explicit(&r->returned, memory_order_acquire);
	ASSERT_GE(got, ret);
	ASSERT_LE(got, ret + 3);
	if (!killed)
		ASSERT_EQ(got, NMSG / 2);
	/* The lane is reusable and the stream continues where it was. */
	snprintf(cnt, sizeof(cnt), "%u", NMSG / 4);
	char from[16];

	snprintf(from, sizeof(from), "%u", got);
	const char *args2[] = {ch, rep, from, cnt, NULL};

	pid = th_spawn("producer", args2, NULL);
	/* Until the new producer attaches, the old stream's end shows. */
	uint32_t want = got + NMSG / 4;
	uint64_t t0 = th_now_ns();

	got = drain_to(c, got, want, t0);
	ASSERT_TRUE(th_exited_ok(th_wait(pid, 20000)));
	shmkit_chan_close(c);
	cleanup(ch, rep, rs);
	return killed;
}

/*
 * Consumer killed at pass n of point; a second consumer takes over and is
 * itself killed while receiving (at its first copy), and a third finishes.
 * The producer is this process. Every message is received, and at most
 * once without the SHMKIT_CHAN_REDELIVERED flag.
 */
static pid_t next_consumer(int stage, const char *const *args,
			   const char *point, long n)
{
	if (stage == 0)
		return th_spawn_crash("consumer", args, point, n);
	if (stage == 1)
		return th_spawn_crash("consumer", args, "chan.recv.copied", 1);
	return th_spawn("consumer", args, NULL);
}

static int consumer_case(const char *point, long n)
{
	static unsigned char m[MAXMSG];
	struct shmkit_chan_opts o = chan_opts();
	struct shmkit_chan *p;
	struct shmkit_seg *rs;
	struct report *r;
	char ch[128], rep[128];
	int st, stage = 0, killed = 0;
	pid_t pid;

	names(ch, rep, sizeof(ch), &rs, &r);
	ASSERT_OK(shmkit_chan_create(ch, &o, SHMKIT_CHAN_PRODUCER, &p));
	const char *args[] = {ch, rep, NULL};

	pid = next_consumer(stage, args, point, n);
	for (uint32_t seq = 0; seq < NMSG;) {
		int rc;

		fill(m, seq);
		rc = shmkit_chan_send(p, m, len_of(seq), 100000000);
		if (rc == 0) {
			/* Pause now and then: the consumer runs dry and
			 * sleeps (its sleep is a crash point too). */
			if (++seq % 100 == 50)
				usleep(3000);
			continue;
		}
		ASSERT_TRUE(rc == -ETIMEDOUT || rc == -ECONNRESET);
		if (stage < 2 && waitpid(pid, &st, WNOHANG) == pid) {
			ASSERT_TRUE(th_was_killed(st));
			killed |= stage == 0;
			pid = next_consumer(++stage, args, point, n);
		}
	}
	shmkit_chan_close(p);
	for (;;) {
		st = th_wait(pid, 20000);
		if (stage == 2 || !th_was_killed(st))
			break;
		killed |= stage == 0;
		pid = next_consumer(++stage, args, point, n);
	}
	ASSERT_TRUE(th_exited_ok(st));
	for (uint32_t s = 0; s < NMSG; s++) {
		uint32_t cnt = atomic_load(&r->count[s]);
		uint32_t fl = atomic_load(&r->flagged[s]);

		if (cnt < 1 || cnt - fl > 1)
			th_fail(__FILE__, __LINE__,
				"%s:%ld seq %u received %u times, %u flagged",
				point, n, s, cnt, fl);
	}
	cleanup(ch, rep, rs);
	return killed;
}

/* The creator dies before the channel is laid out: openers are told. */
static int creator(int argc, char **argv)
{
	struct shmkit_chan *c;

	(void)argc;
	ASSERT_OK(shmkit_chan_create(argv[0], NULL, SHMKIT_CHAN_CONSUMER, &c));
	return 0;
}

static void creator_case(void)
{
	struct shmkit_chan *c;
	char ch[128];
	const char *args[] = {ch, NULL};

	th_name(ch, sizeof(ch), "creator");
	ASSERT_TRUE(th_was_killed(th_wait(
		th_spawn_crash("creator", args, "chan.create.layout", 1),
		10000)));
	ASSERT_ERR(shmkit_chan_open(ch, SHMKIT_CHAN_PRODUCER, NULL, &c),
		   ENOTRECOVERABLE);
	ASSERT_OK(shmkit_chan_unlink(ch));
}

/*
 * A producer killed at chan.send.committed has committed its last send (the
 * record word is there) but not stored the tail. A new producer that
 * attaches before the consumer has read that send must continue after
 * it, not at the stale tail, where it would overwrite a committed
 * message. Returns 1 (the producer was killed there).
 */
static int untailed_case(long n)
{
	struct shmkit_chan_opts o = chan_opts();
	struct shmkit_chan *c;
	struct shmkit_seg *rs;
	struct report *r;
	char ch[128], rep[128], cnt[16], from[16];
	uint32_t ret, committed;
	int st;

	names(ch, rep, sizeof(ch), &rs, &r);
	ASSERT_OK(shmkit_chan_create(ch, &o, SHMKIT_CHAN_CONSUMER, &c));
	snprintf(cnt, sizeof(cnt), "%u", NMSG / 2);
	const char *args[] = {ch, rep, "0", cnt, NULL};

	st = th_wait(th_spawn_crash("producer", args, "chan.send.committed", n),
		     20000);
	/* The first three commits fit in the ring (the sizes are fixed
	 * per seq), so pass n (1 or 2) of the point is always reached. */
	ASSERT_TRUE(th_was_killed(st));
	/* The unit it was committing: a batch of up to 3 (seq % 4 == 1),
	 * else one message. */
	ret = atomic_load_explicit(&r->returned, memory_order_acquire);
	committed =
		ret +
		(ret % 4 == 1 ? (NMSG / 2 - ret < 3 ? NMSG / 2 - ret : 3) : 1);
	snprintf(from, sizeof(from), "%u", committed);
	snprintf(cnt, sizeof(cnt), "%u", NMSG / 4);
	const char *args2[] = {ch, rep, from, cnt, NULL};
	pid_t pid = th_spawn("producer", args2, NULL);
	uint32_t want = committed + NMSG / 4;
	uint64_t t0 = th_now_ns();

	/* The new producer attaches and sends before we read anything (its
	 * first message fits next to what the dead one committed). */
	while (atomic_load_explicit(&r->returned, memory_order_acquire) <=
	       committed) {
		ASSERT_LT(th_now_ns() - t0, 10000000000ull);
		usleep(1000);
	}
	/* Every committed message, in order, then the new producer's. */
	drain_to(c, 0, want, t0);
	ASSERT_TRUE(th_exited_ok(th_wait(pid, 20000)));
	shmkit_chan_close(c);
	cleanup(ch, rep, rs);
	return 1;
}

static const char *const prod_points[] = {
	"chan.open.claimed",	   "chan.reserve.reserved",
	"chan.commit.written",	   "chan.send.reserved",
	"chan.send.pad",	   "chan.send.written",
	"chan.send.fast_reserved", "chan.send.fast_written",
	"chan.send.committed",	   "chan.send.tail",
	"chan.send.sleep",	   "chan.send_batch.written",
	"chan.close.producer",	   NULL,
};

static const char *const cons_points[] = {
	"chan.open.takeover",	 "chan.recv.marked",
	"chan.recv.copied",	 "chan.recv.fast_marked",
	"chan.recv.fast_copied", "chan.recv.confirmed",
	"chan.recv.sleep",	 "chan.peek.marked",
	"chan.release.done",	 "chan.recv_batch.copied",
	"chan.close.consumer",	 NULL,
};

static int listed(const char *name)
{
	for (int i = 0; prod_points[i]; i++)
		if (strcmp(prod_points[i], name) == 0)
			return 1;
	for (int i = 0; cons_points[i]; i++)
		if (strcmp(cons_points[i], name) == 0)
			return 1;
	/* Reached only by a producer taking over a dead producer's lane;
	 * proc/chan_peers (lane_taken) kills there. */
	if (strcmp(name, "chan.open.lost") == 0)
		return 1;
	return strcmp(name, "chan.create.layout") == 0;
}

static int test(void)
{
	static const long passes[] = {1, 2, 5, 33, 150};
	const struct shmkit__crash_point *cp;
	size_t ncp = shmkit__crash_points(&cp);

	if (ncp == 0)
		SKIP("crash points not compiled in");
	/* Every channel crash point in the library is exercised here. */
	for (size_t i = 0; i < ncp; i++)
		if (strncmp(cp[i].name, "chan.", 5) == 0 && !listed(cp[i].name))
			th_fail(__FILE__, __LINE__, "untested point %s",
				cp[i].name);
	for (int i = 0; prod_points[i]; i++) {
		int hit = 0;

		for (size_t k = 0; k < sizeof(passes) / sizeof(passes[0]); k++)
			hit += producer_case(prod_points[i], passes[k]);
		if (!hit)
			th_fail(__FILE__, __LINE__, "%s never reached",
				prod_points[i]);
	}
	for (int i = 0; cons_points[i]; i++) {
		int hit = 0;

		for (size_t k = 0; k < sizeof(passes) / sizeof(passes[0]); k++)
			hit += consumer_case(cons_points[i], passes[k]);
		if (!hit)
			th_fail(__FILE__, __LINE__, "%s never reached",
				cons_points[i]);
	}
	{
		int hit = 0;

		/* One message, then a batch of three. */
		for (long k = 1; k <= 2; k++)
			hit += untailed_case(k);
		ASSERT_EQ(hit, 2);
	}
	creator_case();
	return 0;
}

static const struct th_role roles[] = {
	{"producer", producer},
	{"consumer", consumer},
	{"creator", creator},
	{NULL, NULL},
};

int main(int argc, char **argv)
{
	return th_run(argc, argv, roles, test);
}
