/* SPDX-License-Identifier: MIT */
/*
 * shmkit_chan_wait_peer() with real processes: a producer waits for the
 * consumer and a consumer for its first producer, each attaching later
 * from another process; the waiter returns once the peer is there, and
 * sleeps meanwhile (its CPU time stays a small part of the wait, where a
 * polling loop would burn it). Nobody coming gives -ETIMEDOUT after the
 * timeout, -EAGAIN with timeout 0; a peer that died before (its state word
 * still says attached) must not make the waiter spin.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <shmkit.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#define LATE_MS 150

static struct shmkit_chan_opts opts(void)
{
	struct shmkit_chan_opts o = {.sz = sizeof(o)};

	o.capacity_bytes = 4096;
	o.max_msg_bytes = 64;
	o.max_producers = 2;
	return o;
}

/* Opens argv[0] as argv[1] ("p" or "c") after LATE_MS (or argv[5] ms),
 * writes when it had attached (th_now_ns()) to the file argv[4] if given,
 * stays argv[2] ms (closing), or dies there without closing if argv[3] is
 * "die". */
static int late(int argc, char **argv)
{
	struct shmkit_chan *ch;
	uint64_t t;

	if (argc < 4)
		return TH_FAIL;
	usleep((useconds_t)(argc > 5 ? atoi(argv[5]) : LATE_MS) * 1000);
	ASSERT_OK(shmkit_chan_open(argv[0],
				   argv[1][0] == 'p' ? SHMKIT_CHAN_PRODUCER
						     : SHMKIT_CHAN_CONSUMER,
				   NULL, &ch));
	t = th_now_ns();
	if (argc > 4) {
		FILE *f = fopen(argv[4], "w");

		ASSERT_TRUE(f != NULL);
		fprintf(f, "%llu\n", (unsigned long long)t);
		ASSERT_EQ(fclose(f), 0);
	}
	usleep((useconds_t)atoi(argv[2]) * 1000);
	if (argv[3][0] == 'd')
		_exit(0);
	shmkit_chan_close(ch);
	return 0;
}

static uint64_t cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return (uint64_t)ru.ru_utime.tv_sec * 1000000000ull +
	       (uint64_t)ru.ru_utime.tv_usec * 1000ull +
	       (uint64_t)ru.ru_stime.tv_sec * 1000000000ull +
	       (uint64_t)ru.ru_stime.tv_usec * 1000ull;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * `me` waits while a process attaches as the other role 150-199 ms
 * later, five times. The waiter sleeps meanwhile (CPU time a tenth of the wait
 * at most) and is woken by the attach: the median time from the peer's
 * attach to the return is under 5 ms, where the 25 ms slice alone (a
 * lost wake-up) would give about 12 ms.
 */
static void waits_for_late_peer(enum shmkit_chan_role me)
{
	struct shmkit_chan_opts o = opts();
	struct shmkit_chan *ch;
	char name[64], path[256], delay[16];
	const char *args[] = {NULL,  me == SHMKIT_CHAN_PRODUCER ? "c" : "p",
			      "100", "close",
			      path,  delay,
			      NULL};
	uint64_t lag[5];

	th_name(name, sizeof(name), "late");
	snprintf(path, sizeof(path), "%s/%s.t",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", name);
	args[0] = name;
	ASSERT_OK(shmkit_chan_create(name, &o, me, &ch));
	ASSERT_EQ(shmkit_chan_peers(ch), 0);
	ASSERT_ERR(shmkit_chan_wait_peer(ch, 0), EAGAIN);
	for (int k = 0; k < 5; k++) {
		/* A random delay: the peer attaches anywhere within the
		 * waiter's sleep slice, not always near its end. */
		int ms = LATE_MS + (int)(th_rand() % 50);
		pid_t pid;
		uint64_t t0, c0, wall, cpu, at = 0;
		unsigned long long v;
		FILE *f;

		snprintf(delay, sizeof(delay), "%d", ms);
		pid = th_spawn("late", args, NULL);
		t0 = th_now_ns();
		c0 = cpu_ns();

		ASSERT_EQ(shmkit_chan_wait_peer(ch, 10000000000ll), 1);
		wall = th_now_ns() - t0;
		cpu = cpu_ns() - c0;
		ASSERT_GE(wall, (uint64_t)(ms - 50) * 1000000ull);
		ASSERT_LT(cpu, wall / 10);
		/* Already there: at once. */
		ASSERT_EQ(shmkit_chan_wait_peer(ch, 0), 1);
		ASSERT_TRUE(th_exited_ok(th_wait(pid, 20000)));
		f = fopen(path, "r");
		ASSERT_TRUE(f != NULL);
		ASSERT_EQ(fscanf(f, "%llu", &v), 1);
		fclose(f);
		unlink(path);
		at = (uint64_t)v;
		lag[k] = t0 + wall > at ? t0 + wall - at : 0;
	}
	qsort(lag, 5, sizeof(lag[0]), cmp_u64);
	ASSERT_LT(lag[2], 5000000ull);
	shmkit_chan_close(ch);
	ASSERT_OK(shmkit_chan_unlink(name));
}

/*
 * Nobody comes: -ETIMEDOUT after the timeout. First with a peer that
 * attached and died before the wait: its state word still says attached,
 * and the waiter must sleep anyway, not spin on it.
 */
static void nobody_comes(enum shmkit_chan_role me)
{
	struct shmkit_chan_opts o = opts();
	struct shmkit_chan *ch;
	const char *args[] = {NULL, me == SHMKIT_CHAN_PRODUCER ? "c" : "p", "0",
			      "die", NULL};
	char name[64];
	uint64_t t0, c0, wall, cpu;

	th_name(name, sizeof(name), "nobody");
	args[0] = name;
	ASSERT_OK(shmkit_chan_create(name, &o, me, &ch));
	ASSERT_TRUE(th_exited_ok(th_wait(th_spawn("late", args, NULL), 20000)));
	t0 = th_now_ns();
	c0 = cpu_ns();
	ASSERT_ERR(shmkit_chan_wait_peer(ch, 200000000), ETIMEDOUT);
	wall = th_now_ns() - t0;
	cpu = cpu_ns() - c0;
	ASSERT_GE(wall, 200000000ull);
	ASSERT_LT(cpu, wall / 10);
	shmkit_chan_close(ch);
	ASSERT_OK(shmkit_chan_unlink(name));
}

static int test(void)
{
	ASSERT_ERR(shmkit_chan_wait_peer(NULL, 0), EINVAL);
	waits_for_late_peer(SHMKIT_CHAN_PRODUCER);
	waits_for_late_peer(SHMKIT_CHAN_CONSUMER);
	nobody_comes(SHMKIT_CHAN_PRODUCER);
	nobody_comes(SHMKIT_CHAN_CONSUMER);
	return 0;
}

static const struct th_role roles[] = {
	{"late", late},
	{NULL, NULL},
};

int main(int argc, char **argv)
{
	return th_run(argc, argv, roles, test);
}
