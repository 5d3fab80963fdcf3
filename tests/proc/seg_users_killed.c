/* SPDX-License-Identifier: MIT */
/*
 * Two helper processes attach to a segment; one is SIGKILLed. stat and
 * list show the attached users going from 2 to 1 with the dead pid gone
 * (the kernel dropped its OFD locks), then to 0 when the other dies too.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <shmkit.h>
#include <stdatomic.h>
#include <unistd.h>

static char dir[64];

static void dir_cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* Open argv[0], raise flag argv[1] in the data area, wait to be killed. */
static int role_attach(int argc, char **argv)
{
	struct shmkit_seg *s;
	_Atomic uint32_t *flags;
	int i;

	if (argc < 2 || shmkit_seg_open(argv[0], NULL, &s) < 0)
		return 2;
	i = atoi(argv[1]);
	flags = shmkit_seg_base(s);
	/* Pairs with the acquire load in wait_flag(). */
	atomic_store_explicit(&flags[i], 1, memory_order_release);
	for (int k = 0; k < 600; k++)
		usleep(100000);
	shmkit_seg_close(s);
	return 3;
}

static void wait_flag(_Atomic uint32_t *flags, int i)
{
	uint64_t deadline = th_now_ns() + 10000000000ull;

	/* Pairs with the release store in role_attach(). */
	while (!atomic_load_explicit(&flags[i], memory_order_acquire)) {
		ASSERT_LT(th_now_ns(), deadline);
		usleep(1000);
	}
}

struct seen {
	const char *name;
	int found;
	uint32_t nusers;
	int32_t pids[SHMKIT_SEG_MAX_USERS];
};

static int list_cb(const struct shmkit_seg_info *in, void *arg)
{
	struct seen *s = arg;

	if (strcmp(in->name, s->name) != 0)
		return 0;
	s->found++;
	s->nusers = in->nusers;
	for (uint32_t i = 0; i < in->nusers; i++)
		s->pids[i] = in->users[i].pid;
	return 0;
}

static int has_pid(const int32_t *pids, uint32_t n, pid_t pid)
{
	for (uint32_t i = 0; i < n; i++)
		if (pids[i] == pid)
			return 1;
	return 0;
}

/* stat and list agree: exactly the pids in want[0..n) are attached. */
static void expect_users(const char *name, const pid_t *want, uint32_t n)
{
	struct shmkit_seg_info *in = calloc(1, sizeof(*in));
	struct seen *seen = calloc(1, sizeof(*seen));
	int32_t pids[SHMKIT_SEG_MAX_USERS];

	ASSERT_TRUE(in && seen);
	in->sz = sizeof(*in);
	ASSERT_OK(shmkit_seg_stat(name, in));
	ASSERT_EQ(in->state, SHMKIT_STATE_OK);
	ASSERT_EQ(in->nusers, n);
	ASSERT_EQ(in->users_untracked, 0);
	for (uint32_t i = 0; i < in->nusers; i++) {
		pids[i] = in->users[i].pid;
		ASSERT_EQ(in->users[i].uid, geteuid());
		ASSERT_GT(in->users[i].attach_realtime_ns, 0);
	}
	for (uint32_t i = 0; i < n; i++)
		ASSERT_TRUE(has_pid(pids, in->nusers, want[i]));
	seen->name = name;
	ASSERT_OK(shmkit_seg_list(list_cb, seen));
	ASSERT_EQ(seen->found, 1);
	ASSERT_EQ(seen->nusers, n);
	for (uint32_t i = 0; i < n; i++)
		ASSERT_TRUE(has_pid(seen->pids, seen->nusers, want[i]));
	free(seen);
	free(in);
}

static int test(void)
{
	struct shmkit_seg *s;
	_Atomic uint32_t *flags;
	const char *args[3];
	pid_t a, b, both[2];

	snprintf(dir, sizeof(dir), "/dev/shm/.shmkit-t-users-XXXXXX");
	ASSERT_TRUE(mkdtemp(dir) != NULL);
	atexit(dir_cleanup);
	ASSERT_EQ(setenv("SHMKIT_SHM_DIR", dir, 1), 0);

	ASSERT_OK(shmkit_seg_create("users", 4096, NULL, &s));
	flags = shmkit_seg_base(s);
	expect_users("users", (pid_t[]){getpid()}, 1);
	args[0] = "users";
	args[2] = NULL;
	args[1] = "0";
	a = th_spawn("attach", args, NULL);
	args[1] = "1";
	b = th_spawn("attach", args, NULL);
	wait_flag(flags, 0);
	wait_flag(flags, 1);
	/* The creator's own handle goes; two helpers remain. */
	shmkit_seg_close(s);
	both[0] = a;
	both[1] = b;
	expect_users("users", both, 2);

	ASSERT_TRUE(th_was_killed(th_kill(a)));
	expect_users("users", &b, 1);
	{
		struct shmkit_seg_info *in = calloc(1, sizeof(*in));

		ASSERT_TRUE(in != NULL);
		in->sz = sizeof(*in);
		ASSERT_OK(shmkit_seg_stat("users", in));
		for (uint32_t i = 0; i < in->nusers; i++)
			ASSERT_NE(in->users[i].pid, a);
		free(in);
	}
	ASSERT_TRUE(th_was_killed(th_kill(b)));
	expect_users("users", NULL, 0);
	/* Persistent: still there, gc leaves it. */
	ASSERT_EQ(shmkit_seg_gc("users", 0), 0);
	ASSERT_OK(shmkit_seg_unlink("users"));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"attach", role_attach},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
