/* SPDX-License-Identifier: MIT */
/*
 * Found by the channel model (models/chan.pml, two consumer deaths): a
 * consumer receives a message and dies before its next call; a second
 * consumer takes over and dies before it receives anything; a third
 * consumer must still get that message flagged SHMKIT_CHAN_REDELIVERED,
 * since the first may have processed it (also with three such deaths).
 */
#define _GNU_SOURCE
#include "harness.h"

#include <shmkit.h>
#include <signal.h>
#include <unistd.h>

/* Receive one message, then die without another call. */
static int role_first(int argc, char **argv)
{
	struct shmkit_chan *c;
	char buf[64];
	uint32_t fl = 99;

	if (argc < 1 ||
	    shmkit_chan_open(argv[0], SHMKIT_CHAN_CONSUMER, NULL, &c) < 0)
		return 2;
	if (shmkit_chan_recv(c, buf, sizeof(buf), &fl, 5000000000ll) != 3 ||
	    fl != 0)
		return 3;
	kill(getpid(), SIGKILL);
	return 4;
}

/* Take over, then die before receiving anything. */
static int role_second(int argc, char **argv)
{
	struct shmkit_chan *c;

	if (argc < 1 ||
	    shmkit_chan_open(argv[0], SHMKIT_CHAN_CONSUMER, NULL, &c) < 0)
		return 2;
	kill(getpid(), SIGKILL);
	return 4;
}

static int role_third(int argc, char **argv)
{
	struct shmkit_chan *c;
	char buf[64];
	uint32_t fl = 0;
	int n;

	if (argc < 1 ||
	    shmkit_chan_open(argv[0], SHMKIT_CHAN_CONSUMER, NULL, &c) < 0)
		return 2;
	n = shmkit_chan_recv(c, buf, sizeof(buf), &fl, 5000000000ll);
	if (n != 3 || memcmp(buf, "one", 3) != 0)
		return 3;
	if (!(fl & SHMKIT_CHAN_REDELIVERED)) {
		fprintf(stderr, "redelivered message not flagged\n");
		return 5;
	}
	shmkit_chan_close(c);
	return 0;
}

static void one_case(int second_deaths)
{
	struct shmkit_chan *p;
	char name[128];
	const char *args[] = {name, NULL};
	int st;

	th_name(name, sizeof(name), "tko");
	ASSERT_OK(shmkit_chan_create(name, NULL, SHMKIT_CHAN_PRODUCER, &p));
	ASSERT_OK(shmkit_chan_send(p, "one", 3, 0));
	st = th_wait(th_spawn("first", args, NULL), 10000);
	ASSERT_TRUE(th_was_killed(st));
	for (int i = 0; i < second_deaths; i++) {
		st = th_wait(th_spawn("second", args, NULL), 10000);
		ASSERT_TRUE(th_was_killed(st));
	}
	st = th_wait(th_spawn("third", args, NULL), 10000);
	ASSERT_TRUE(th_exited_ok(st));
	shmkit_chan_close(p);
	ASSERT_OK(shmkit_chan_unlink(name));
}

static int test(void)
{
	one_case(0);
	one_case(1);
	one_case(3);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"first", role_first},
					       {"second", role_second},
					       {"third", role_third},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
