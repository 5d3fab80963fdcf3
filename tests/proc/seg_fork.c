/* SPDX-License-Identifier: MIT */
/*
 * A handle does not cross fork: the child keeps the mapping but drops the
 * inherited descriptor, so it holds none of its parent's attachment locks.
 * The parent's death then shows although its child lives on, the child's
 * descriptor-based calls fail with -ECHILD, and the child becomes a user
 * of its own by opening the segment again.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <shmkit.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static int nusers(const char *name)
{
	struct shmkit_seg_info *in = calloc(1, sizeof(*in));
	int n;

	in->sz = sizeof(*in);
	ASSERT_OK(shmkit_seg_stat(name, in));
	n = (int)(in->nusers + in->users_untracked);
	free(in);
	return n;
}

/* Creates the segment, forks a child that outlives it, waits to die. */
static int role_parent(int argc, char **argv)
{
	struct shmkit_seg *seg;
	pid_t child;

	(void)argc;
	if (shmkit_seg_create(argv[0], 4096, NULL, &seg) < 0)
		return 2;
	strcpy(shmkit_seg_base(seg), "from parent");
	child = fork();
	if (child < 0)
		return 3;
	if (child == 0) {
		struct shmkit_seg *own;

		/* Outlives its parent on purpose; the test kills it, and
		 * it gives up by itself if the test dies first. */
		alarm(20);
		/* The mapping is inherited; the descriptor is not. */
		if (strcmp(shmkit_seg_base(seg), "from parent") != 0)
			_exit(10);
		if (shmkit_seg_fd(seg) != -ECHILD ||
		    shmkit_seg_check(seg) != -ECHILD)
			_exit(11);
		if (getenv("REOPEN") && shmkit_seg_open(argv[0], NULL, &own))
			_exit(12);
		shmkit_seg_close(seg); /* only unmaps in the child */
		for (;;)
			pause();
	}
	/* Tell the test which pid to reap (offset 64 of the data area). */
	*(volatile int32_t *)((char *)shmkit_seg_base(seg) + 64) =
		(int32_t)child;
	for (;;)
		pause();
}

static void run(const char *name, int reopen)
{
	const char *args[] = {name, NULL};
	const char *env[] = {reopen ? "REOPEN=1" : "NOREOPEN=1", NULL};
	pid_t parent = th_spawn("parent", args, env), child;
	struct shmkit_seg *seg;
	uint64_t deadline = th_now_ns() + 5000000000ull;

	/* Wait for the parent (and, when re-opening, the child) to attach. */
	while (th_now_ns() < deadline) {
		struct shmkit_seg_info *in = calloc(1, sizeof(*in));
		int rc, n;

		in->sz = sizeof(*in);
		rc = shmkit_seg_stat(name, in);
		n = rc == 0 ? (int)in->nusers : 0;
		free(in);
		if (n == 1 + reopen)
			break;
		usleep(1000);
	}
	usleep(20000);
	ASSERT_EQ(nusers(name), 1 + reopen);
	ASSERT_OK(shmkit_seg_open(name, NULL, &seg));
	child = *(volatile int32_t *)((char *)shmkit_seg_base(seg) + 64);
	ASSERT_GT(child, 0);
	ASSERT_EQ(nusers(name), 2 + reopen);
	th_kill(parent);
	/* The orphaned child lives on; of the two, only our handle and the
	 * child's own attachment (if it re-opened) remain. */
	ASSERT_EQ(kill(child, 0), 0);
	ASSERT_EQ(nusers(name), 1 + reopen);
	kill(child, SIGKILL);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));
}

static int test(void)
{
	char name[128];

	run(th_name(name, sizeof(name), "fork"), 0);
	run(th_name(name, sizeof(name), "fork"), 1);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"parent", role_parent},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
