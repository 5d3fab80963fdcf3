/* SPDX-License-Identifier: MIT */
/*
 * A mutex holder that is alive but stopped (SIGSTOP) is not declared dead:
 * waiters in this and another process get -ETIMEDOUT over many liveness
 * intervals; after SIGCONT the holder unlocks and everyone continues
 * normally (0, not -EOWNERDEAD). Also for an event waiter whose mutex
 * holder is stopped.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <shmkit.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS 1000000ull

struct shared {
	struct shmkit_mutex m;
	struct shmkit_event ev;
	_Atomic uint32_t locked;
	_Atomic uint32_t release;
	_Atomic int32_t waiter_rc[2];
};

static int holder(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shared *sh;

	if (argc < 1 || shmkit_seg_open(argv[0], NULL, &seg) < 0)
		return 2;
	sh = shmkit_seg_base(seg);
	if (shmkit_mutex_lock(seg, &sh->m, 1000 * MS) < 0)
		return 3;
	atomic_store(&sh->locked, 1);
	while (!atomic_load(&sh->release))
		usleep(1000);
	if (shmkit_mutex_unlock(seg, &sh->m) < 0)
		return 4;
	shmkit_seg_close(seg);
	return 0;
}

/* Takes the mutex, then stops itself until SIGCONT. */
static int selfstop(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shared *sh;

	if (argc < 1 || shmkit_seg_open(argv[0], NULL, &seg) < 0)
		return 2;
	sh = shmkit_seg_base(seg);
	if (shmkit_mutex_lock(seg, &sh->m, 10000 * MS) < 0)
		return 3;
	atomic_store(&sh->locked, 1);
	raise(SIGSTOP);
	while (!atomic_load(&sh->release))
		usleep(1000);
	if (shmkit_mutex_unlock(seg, &sh->m) < 0)
		return 4;
	shmkit_seg_close(seg);
	return 0;
}

/* Another process: first a lock that must time out, then one that must
 * succeed once the holder resumes. */
static int waiter(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shared *sh;
	int rc;

	if (argc < 1 || shmkit_seg_open(argv[0], NULL, &seg) < 0)
		return 2;
	sh = shmkit_seg_base(seg);
	atomic_store(&sh->waiter_rc[0],
		     shmkit_mutex_lock(seg, &sh->m, 30 * MS));
	rc = shmkit_mutex_lock(seg, &sh->m, 20000 * MS);
	atomic_store(&sh->waiter_rc[1], rc);
	if (rc == 0)
		shmkit_mutex_unlock(seg, &sh->m);
	shmkit_seg_close(seg);
	return 0;
}

static void stop(pid_t pid)
{
	int st;

	ASSERT_OK(kill(pid, SIGSTOP));
	ASSERT_EQ(waitpid(pid, &st, WUNTRACED), pid);
	ASSERT_TRUE(WIFSTOPPED(st));
}

static int test(void)
{
	struct shmkit_seg *seg;
	struct shared *sh;
	struct shmkit_sync_opts so = {.sz = sizeof(so), .liveness_ns = 200000};
	char name[128];
	const char *args[] = {name, NULL};
	pid_t h, w;

	th_name(name, sizeof(name), "sstop");
	ASSERT_OK(shmkit_seg_create(name, 4096, NULL, &seg));
	sh = shmkit_seg_base(seg);
	ASSERT_OK(shmkit_mutex_init(seg, &sh->m, &so));
	ASSERT_OK(shmkit_event_init(seg, &sh->ev));
	atomic_store(&sh->waiter_rc[0], 1);
	atomic_store(&sh->waiter_rc[1], 1);

	h = th_spawn("holder", args, NULL);
	while (!atomic_load(&sh->locked))
		usleep(1000);
	stop(h);
	/* 50 ms = 250 liveness intervals: checked many times, still alive. */
	ASSERT_ERR(shmkit_mutex_lock(seg, &sh->m, 50 * MS), ETIMEDOUT);
	ASSERT_ERR(shmkit_mutex_lock(seg, &sh->m, 0), ETIMEDOUT);
	ASSERT_ERR(shmkit_mutex_trylock(seg, &sh->m), EAGAIN);
	w = th_spawn("waiter", args, NULL);
	while (atomic_load(&sh->waiter_rc[0]) == 1)
		usleep(1000);
	ASSERT_EQ(atomic_load(&sh->waiter_rc[0]), -ETIMEDOUT);
	usleep(20000); /* the waiter now sleeps in its long lock */
	ASSERT_OK(kill(h, SIGCONT));
	atomic_store(&sh->release, 1);
	ASSERT_TRUE(th_exited_ok(th_wait(h, 10000)));
	ASSERT_TRUE(th_exited_ok(th_wait(w, 10000)));
	ASSERT_EQ(atomic_load(&sh->waiter_rc[1]), 0);
	ASSERT_OK(shmkit_mutex_lock(seg, &sh->m, 1000 * MS));

	/*
	 * Event wait whose mutex cannot be taken back: while we sleep, a
	 * holder takes the mutex and stops itself. The wait reports -ENOLCK
	 * (mutex not held) instead of hanging; after SIGCONT all is normal.
	 */
	atomic_store(&sh->locked, 0);
	atomic_store(&sh->release, 0);
	h = th_spawn("selfstop", args, NULL);
	usleep(20000); /* it is blocked on the mutex we hold */
	ASSERT_ERR(shmkit_event_wait(seg, &sh->ev, &sh->m, 30 * MS), ENOLCK);
	ASSERT_TRUE(atomic_load(&sh->locked));
	{
		int st;

		ASSERT_EQ(waitpid(h, &st, WUNTRACED), h);
		ASSERT_TRUE(WIFSTOPPED(st));
	}
	ASSERT_OK(kill(h, SIGCONT));
	atomic_store(&sh->release, 1);
	ASSERT_TRUE(th_exited_ok(th_wait(h, 10000)));
	ASSERT_OK(shmkit_mutex_lock(seg, &sh->m, 1000 * MS));
	ASSERT_OK(shmkit_mutex_unlock(seg, &sh->m));

	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"holder", holder},
					       {"waiter", waiter},
					       {"selfstop", selfstop},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
