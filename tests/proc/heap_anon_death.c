/* SPDX-License-Identifier: MIT */
/*
 * Owner records of processes that share an anonymous segment across fork
 * (no attachment slots: liveness by pid and start time). A child that
 * dies (SIGKILL) holding owned and cached blocks: reclaim frees all of
 * them, a child that is alive (stopped) keeps its blocks, and the heap
 * ends whole.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <shmkit.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void child(struct shmkit_seg *seg, int stop)
{
	struct shmkit_heap *h;
	uint64_t off[40];

	if (shmkit_heap_open(seg, NULL, &h) < 0)
		_exit(2);
	for (int i = 0; i < 40; i++)
		if (shmkit_heap_alloc(h, 32 + (size_t)i * 8, SHMKIT_HEAP_OWNED,
				      &off[i]) < 0)
			_exit(3);
	for (int i = 0; i < 40; i += 2) /* into this handle's cache */
		if (shmkit_heap_free(h, off[i]) < 0)
			_exit(4);
	kill(getpid(), stop ? SIGSTOP : SIGKILL);
	_exit(5);
}

static int test(void)
{
	struct shmkit_heap_opts o = {.sz = sizeof(o),
				     .flags = SHMKIT_HEAP_CREATE};
	struct shmkit_heap_stats st = {.sz = sizeof(st)};
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	pid_t pid;
	int status;

	ASSERT_OK(shmkit_seg_create_anon(1 << 20, NULL, &seg));
	ASSERT_OK(shmkit_heap_open(seg, &o, &h));

	/* Alive (stopped): nothing of it is reclaimed. */
	pid = fork();
	if (pid == 0)
		child(seg, 1);
	ASSERT_EQ(waitpid(pid, &status, WUNTRACED), pid);
	ASSERT_TRUE(WIFSTOPPED(status));
	ASSERT_EQ(shmkit_heap_reclaim(h), 0);
	ASSERT_OK(shmkit_heap_stats(h, &st));
	ASSERT_EQ(st.used_blocks, 20);
	ASSERT_GE(st.cached_blocks, 20); /* and what refills added */
	ASSERT_EQ(st.owners, 2);
	kill(pid, SIGKILL);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);

	/* Dead: its 20 owned blocks and 20 cached ones come back. */
	ASSERT_EQ(shmkit_heap_reclaim(h), 20);
	ASSERT_OK(shmkit_heap_check(h));
	ASSERT_OK(shmkit_heap_stats(h, &st));
	ASSERT_EQ(st.used_blocks, 0);
	ASSERT_EQ(st.cached_blocks, 0);
	ASSERT_EQ(st.free_blocks, 1);
	ASSERT_EQ(st.owners, 1);

	/* Killed outright, reaped before anyone looks. */
	pid = fork();
	if (pid == 0)
		child(seg, 0);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFSIGNALED(status));
	ASSERT_EQ(shmkit_heap_reclaim(h), 20);
	ASSERT_OK(shmkit_heap_check(h));
	ASSERT_OK(shmkit_heap_stats(h, &st));
	ASSERT_EQ(st.used_blocks, 0);
	ASSERT_EQ(st.free_blocks, 1);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
