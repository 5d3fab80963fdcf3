/* SPDX-License-Identifier: MIT */
/*
 * Handles across fork. A named segment's handle used in a forked child
 * fails cleanly with -ECHILD on every call (the child shares the parent's
 * attachment); after opening the segment itself the child works. An
 * anonymous segment's handle is made to cross fork: a child locks through
 * it, is killed holding the mutex, and the parent recovers (-EOWNERDEAD).
 */
#define _GNU_SOURCE
#include "harness.h"

#include <shmkit.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS 1000000ull

struct shared {
	struct shmkit_mutex m;
	struct shmkit_event ev;
	struct shmkit_sem s;
	_Atomic uint32_t locked;
};

static int reap(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return st;
}

/* Child of a named segment's owner: returns the number of failed checks. */
static int child_named(struct shmkit_seg *seg, const char *name)
{
	struct shared *sh = shmkit_seg_base(seg);
	struct shmkit_seg *own;
	struct shared *osh;
	int bad = 0;
	uint64_t t;

	bad += shmkit_mutex_lock(seg, &sh->m, 0) != -ECHILD;
	bad += shmkit_mutex_trylock(seg, &sh->m) != -ECHILD;
	bad += shmkit_mutex_unlock(seg, &sh->m) != -ECHILD;
	bad += shmkit_mutex_consistent(seg, &sh->m) != -ECHILD;
	bad += shmkit_mutex_init(seg, &sh->m, NULL) != -ECHILD;
	bad += shmkit_event_signal(seg, &sh->ev) != -ECHILD;
	bad += shmkit_event_broadcast(seg, &sh->ev) != -ECHILD;
	bad += shmkit_event_prepare(seg, &sh->ev, &t) != -ECHILD;
	bad += shmkit_event_wait(seg, &sh->ev, &sh->m, 0) != -ECHILD;
	bad += shmkit_sem_post(seg, &sh->s) != -ECHILD;
	bad += shmkit_sem_wait(seg, &sh->s, 0) != -ECHILD;
	bad += shmkit_sem_value(seg, &sh->s) != -ECHILD;
	/* Opened by the child itself: a different owner from the parent. */
	if (shmkit_seg_open(name, NULL, &own) < 0)
		return 100;
	osh = shmkit_seg_base(own);
	bad += shmkit_mutex_lock(own, &osh->m, 10 * MS) != -ETIMEDOUT;
	bad += shmkit_sem_post(own, &osh->s) != 0;
	shmkit_seg_close(own);
	shmkit_seg_close(seg); /* unmaps only; the parent's locks stay */
	return bad;
}

static int test(void)
{
	struct shmkit_seg *seg, *anon;
	struct shared *sh;
	char name[128];
	pid_t pid;
	int st;

	th_name(name, sizeof(name), "sfork");
	ASSERT_OK(shmkit_seg_create(name, 4096, NULL, &seg));
	sh = shmkit_seg_base(seg);
	ASSERT_OK(shmkit_mutex_init(seg, &sh->m, NULL));
	ASSERT_OK(shmkit_event_init(seg, &sh->ev));
	ASSERT_OK(shmkit_sem_init(seg, &sh->s, 0));
	ASSERT_OK(shmkit_mutex_lock(seg, &sh->m, 0));
	fflush(NULL);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(child_named(seg, name));
	}
	st = reap(pid);
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
	/* Still ours, and the child's post arrived. */
	ASSERT_OK(shmkit_mutex_unlock(seg, &sh->m));
	ASSERT_EQ(shmkit_sem_value(seg, &sh->s), 1);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));

	/* Anonymous segment: the child uses the inherited handle. */
	ASSERT_OK(shmkit_seg_create_anon(4096, NULL, &anon));
	sh = shmkit_seg_base(anon);
	ASSERT_OK(shmkit_mutex_init(anon, &sh->m, NULL));
	ASSERT_OK(shmkit_sem_init(anon, &sh->s, 0));
	for (int r = 0; r < 20; r++) {
		atomic_store(&sh->locked, 0);
		fflush(NULL);
		pid = fork();
		ASSERT_GE(pid, 0);
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (shmkit_mutex_lock(anon, &sh->m, 1000 * MS) < 0)
				_exit(1);
			atomic_store(&sh->locked, 1);
			if (shmkit_sem_post(anon, &sh->s) < 0)
				_exit(2);
			for (;;)
				pause();
		}
		ASSERT_OK(shmkit_sem_wait(anon, &sh->s, 5000 * MS));
		ASSERT_TRUE(atomic_load(&sh->locked));
		if (r % 2) {
			/* Dead before we wait... */
			kill(pid, SIGKILL);
			reap(pid);
		} else {
			/* ...or while we wait (killed, not yet reaped). */
			kill(pid, SIGKILL);
		}
		ASSERT_ERR(shmkit_mutex_lock(anon, &sh->m, 5000 * MS),
			   EOWNERDEAD);
		ASSERT_OK(shmkit_mutex_consistent(anon, &sh->m));
		ASSERT_OK(shmkit_mutex_unlock(anon, &sh->m));
		if (r % 2 == 0)
			reap(pid);
	}
	shmkit_seg_close(anon);
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
