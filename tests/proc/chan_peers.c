/* SPDX-License-Identifier: MIT */
/*
 * How peers' departures are reported, with real processes killed for
 * real: a dead producer is reported once, also across consumers (a
 * consumer that takes over does not hear of a death its predecessor
 * reported, and does hear of one it did not), also when another
 * producer took the dead one's lane first; a segment that is not a
 * channel is refused with -EPROTO.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "th_chan.h"

#include <shmkit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Sends argv[1] messages "0", "1", ..., then waits to be killed. */
static int producer(int argc, char **argv)
{
	struct shmkit_chan *p;
	int n;

	if (argc < 2)
		return TH_FAIL;
	n = atoi(argv[1]);
	ASSERT_OK(shmkit_chan_open(argv[0], SHMKIT_CHAN_PRODUCER, NULL, &p));
	for (int i = 0; i < n; i++) {
		char m = (char)('0' + i);

		ASSERT_OK(shmkit_chan_send(p, &m, 1, -1));
	}
	for (;;)
		pause();
}

/* Receives argv[1] messages, then exits without closing (dies). */
static int consumer(int argc, char **argv)
{
	struct shmkit_chan *c;
	char buf[64];
	int n;

	if (argc < 2)
		return TH_FAIL;
	n = atoi(argv[1]);
	ASSERT_OK(shmkit_chan_open(argv[0], SHMKIT_CHAN_CONSUMER, NULL, &c));
	for (int i = 0; i < n; i++)
		ASSERT_EQ(shmkit_chan_recv(c, buf, sizeof(buf), NULL,
					   5000000000ll),
			  1);
	_exit(0);
}

/*
 * A producer that sent n one-byte messages (16 bytes each, framed), killed
 * once they are all committed, as the consumer handle c sees (NULL: a
 * consumer handle opened for the look and closed, having received
 * nothing).
 */
static void dead_producer(const char *name, int n, struct shmkit_chan *c)
{
	const char *args[] = {name, NULL, NULL};
	struct shmkit_chan_info inf = {.sz = sizeof(inf)};
	struct shmkit_chan *look = c;
	char cnt[16];
	pid_t pid;

	snprintf(cnt, sizeof(cnt), "%d", n);
	args[1] = cnt;
	pid = th_spawn("producer", args, NULL);
	if (!look)
		ASSERT_OK(shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, NULL,
					   &look));
	for (int i = 0; i < 10000; i++) {
		ASSERT_OK(shmkit_chan_info(look, &inf));
		if (inf.queued_bytes >= (uint64_t)n * 16)
			break;
		usleep(1000);
	}
	ASSERT_EQ(inf.queued_bytes, (uint64_t)n * 16);
	if (!c)
		shmkit_chan_close(look);
	ASSERT_TRUE(th_was_killed(th_kill(pid)));
}

/* Receive until the channel says something other than a message. */
static int drain(struct shmkit_chan *c, int *got, uint32_t *flags_or)
{
	char buf[64];
	uint32_t fl;
	int rc;

	while ((rc = shmkit_chan_recv(c, buf, sizeof(buf), &fl,
				      2000000000ll)) >= 0) {
		(*got)++;
		*flags_or |= fl;
	}
	return rc;
}

/* C1 hears of the death and closes; C2 hears only end of stream. */
static void reported_once(void)
{
	struct shmkit_chan_opts o = th_chan_opts(4096, 64, 2);
	struct shmkit_chan *c;
	char name[64];
	uint32_t fl = 0;
	int got = 0;

	th_name(name, sizeof(name), "once");
	ASSERT_OK(shmkit_chan_create(name, &o, SHMKIT_CHAN_CONSUMER, &c));
	dead_producer(name, 3, c);
	ASSERT_ERR(drain(c, &got, &fl), ECONNRESET);
	ASSERT_EQ(got, 3);
	ASSERT_ERR(drain(c, &got, &fl), EPIPE);
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, NULL, &c));
	got = 0;
	ASSERT_ERR(drain(c, &got, &fl), EPIPE);
	ASSERT_EQ(got, 0);
	ASSERT_EQ(fl, 0);
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_unlink(name));
}

/* C1 dies before it hears of the death: C2 hears of it. */
static void reported_to_successor(void)
{
	struct shmkit_chan_opts o = th_chan_opts(4096, 64, 2);
	struct shmkit_chan *c;
	const char *args[] = {NULL, "3", NULL};
	char name[64];
	uint32_t fl = 0;
	int got = 0;

	th_name(name, sizeof(name), "succ");
	ASSERT_OK(shmkit_chan_create(name, &o, SHMKIT_CHAN_PRODUCER, &c));
	shmkit_chan_close(c);
	dead_producer(name, 3, NULL);
	args[0] = name;
	ASSERT_TRUE(
		th_exited_ok(th_wait(th_spawn("consumer", args, NULL), 20000)));
	ASSERT_OK(shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, NULL, &c));
	/* The third message was handed out, never confirmed: again,
	 * flagged; then the death, then the end. */
	ASSERT_ERR(drain(c, &got, &fl), ECONNRESET);
	ASSERT_EQ(got, 1);
	ASSERT_EQ(fl, SHMKIT_CHAN_REDELIVERED);
	ASSERT_ERR(drain(c, &got, &fl), EPIPE);
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_unlink(name));
}

/* Sends n one-byte messages from this process on a new producer handle,
 * then closes it. */
static void send_closed(const char *name, int n)
{
	struct shmkit_chan *p;

	ASSERT_OK(shmkit_chan_open(name, SHMKIT_CHAN_PRODUCER, NULL, &p));
	for (int i = 0; i < n; i++) {
		char m = (char)('a' + i);

		ASSERT_OK(shmkit_chan_send(p, &m, 1, -1));
	}
	shmkit_chan_close(p);
}

/*
 * A producer dies and another takes its lane (one lane only) before the
 * consumer has looked: the death is still reported, once, after the dead
 * one's messages and before end of stream, and not to a later consumer.
 * With `crash`, a producer is also killed while it records the death
 * (at chan.open.lost), and the next one records it again: still one
 * report.
 */
static void lane_taken(int crash)
{
	struct shmkit_chan_opts o = th_chan_opts(4096, 64, 2);
	struct shmkit_chan *c;
	const char *args[] = {NULL, "1", NULL};
	char name[64];
	uint32_t fl = 0;
	int got = 0;

	o.max_producers = 1;
	th_name(name, sizeof(name), crash ? "lostcrash" : "lost");
	ASSERT_OK(shmkit_chan_create(name, &o, SHMKIT_CHAN_CONSUMER, &c));
	dead_producer(name, 3, c);
	if (crash) {
		args[0] = name;
		ASSERT_TRUE(th_was_killed(th_wait(
			th_spawn_crash("producer", args, "chan.open.lost", 1),
			20000)));
	}
	send_closed(name, 2);
	ASSERT_ERR(drain(c, &got, &fl), ECONNRESET);
	ASSERT_EQ(got, 5);
	ASSERT_ERR(drain(c, &got, &fl), EPIPE);
	ASSERT_EQ(got, 5);
	ASSERT_EQ(fl, 0);
	shmkit_chan_close(c);
	/* Reported once across consumers; a producer that now takes the
	 * lane after a clean close finds no death. */
	send_closed(name, 1);
	ASSERT_OK(shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, NULL, &c));
	got = 0;
	ASSERT_ERR(drain(c, &got, &fl), EPIPE);
	ASSERT_EQ(got, 1);
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_unlink(name));
}

/* Opens a producer and exits without closing (dies). */
static int quitter(int argc, char **argv)
{
	struct shmkit_chan *p;

	if (argc < 1)
		return TH_FAIL;
	ASSERT_OK(shmkit_chan_open(argv[0], SHMKIT_CHAN_PRODUCER, NULL, &p));
	_exit(0);
}

/*
 * Claim counts wrap: a death recorded as lost and reported, then 2^31
 * attachments later (the count is moved by hand) a direct death on the
 * lane. Both reported once, then end of stream; the old lost value must
 * not come back as a new death (it did, for ever, when lost deaths were
 * told apart by order).
 */
static void claims_wrap(void)
{
	struct shmkit_chan_opts o = th_chan_opts(4096, 64, 2);
	struct shmkit_chan *c;
	struct shmkit_seg *seg;
	const char *args[] = {NULL, NULL};
	unsigned char *hdr;
	char name[64];
	uint64_t lane_off;
	uint32_t fl = 0, n;
	int got = 0;

	o.max_producers = 1;
	th_name(name, sizeof(name), "wrap");
	args[0] = name;
	ASSERT_OK(shmkit_chan_create(name, &o, SHMKIT_CHAN_CONSUMER, &c));
	dead_producer(name, 1, c);
	send_closed(name, 1);
	ASSERT_ERR(drain(c, &got, &fl), ECONNRESET);
	ASSERT_EQ(got, 2);
	ASSERT_ERR(drain(c, &got, &fl), EPIPE);
	ASSERT_OK(shmkit_seg_open(name, NULL, &seg));
	hdr = shmkit_seg_base(seg);
	memcpy(&lane_off, hdr + 0x28, 8);
	memcpy(&n, hdr + lane_off + 0x84, 4);
	n += (1u << 31) + 5;
	memcpy(hdr + lane_off + 0x84, &n, 4);
	shmkit_seg_close(seg);
	ASSERT_TRUE(
		th_exited_ok(th_wait(th_spawn("quitter", args, NULL), 20000)));
	ASSERT_ERR(drain(c, &got, &fl), ECONNRESET);
	for (int i = 0; i < 3; i++)
		ASSERT_ERR(drain(c, &got, &fl), EPIPE);
	ASSERT_EQ(got, 2);
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_unlink(name));
}

/* Creates a plain segment (not a channel), stays argv[1] ms, exits. */
static int plain(int argc, char **argv)
{
	struct shmkit_seg *s;

	if (argc < 1)
		return TH_FAIL;
	ASSERT_OK(shmkit_seg_create(argv[0], 65536, NULL, &s));
	if (argc > 1)
		usleep((useconds_t)atoi(argv[1]) * 1000);
	return 0;
}

/* A plain segment, its creator gone, opened as a channel. */
static void not_a_channel(void)
{
	struct shmkit_chan *c;
	char name[64];
	const char *args[] = {name, NULL};

	th_name(name, sizeof(name), "plain");
	ASSERT_TRUE(
		th_exited_ok(th_wait(th_spawn("plain", args, NULL), 20000)));
	ASSERT_ERR(shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, NULL, &c),
		   EPROTO);
	ASSERT_ERR(shmkit_chan_open(name, SHMKIT_CHAN_PRODUCER, NULL, &c),
		   EPROTO);
	ASSERT_OK(shmkit_seg_unlink(name));
}

/*
 * The longest open timeout there is, on a segment whose creator is still
 * there: the opener waits (it may be a channel being laid out) until the
 * creator leaves, then says -EPROTO; the deadline must not wrap around
 * to one already passed (-ETIMEDOUT at once).
 */
static void longest_timeout(void)
{
	struct shmkit_chan_opts o = th_chan_opts(4096, 64, 2);
	struct shmkit_chan *c;
	char name[64], path[4200];
	const char *args[] = {name, "300", NULL};
	uint64_t t0;
	pid_t pid;

	th_name(name, sizeof(name), "plainw");
	pid = th_spawn("plain", args, NULL);
	snprintf(path, sizeof(path), "%s/%s", shmkit_shm_dir(), name);
	for (int i = 0; i < 5000 && access(path, F_OK) != 0; i++)
		usleep(1000);
	t0 = th_now_ns();
	o.open_timeout_ns = UINT64_MAX;
	ASSERT_ERR(shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, &o, &c),
		   EPROTO);
	ASSERT_GT(th_now_ns() - t0, 50000000ull);
	ASSERT_TRUE(th_exited_ok(th_wait(pid, 20000)));
	ASSERT_OK(shmkit_seg_unlink(name));
}

static int test(void)
{
	reported_once();
	reported_to_successor();
	lane_taken(0);
	lane_taken(1);
	claims_wrap();
	not_a_channel();
	longest_timeout();
	return 0;
}

static const struct th_role roles[] = {
	{"producer", producer}, {"consumer", consumer}, {"plain", plain},
	{"quitter", quitter},	{NULL, NULL},
};

int main(int argc, char **argv)
{
	return th_run(argc, argv, roles, test);
}
