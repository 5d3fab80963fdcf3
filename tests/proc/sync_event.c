/* SPDX-License-Identifier: MIT */
/*
 * Event waiters in other processes are killed while waiting (asleep, or at
 * crash points inside shmkit_event_wait()); later signals and broadcasts
 * return at once, wake every survivor, and after one healing wake-up a
 * signal with nobody waiting makes no system call again.
 */
#define _GNU_SOURCE
#include "atomics.h"
#include "harness.h"
#include "sync.h"

#include <shmkit.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#define NW 4
#define WAIT_NS 10000000000ull

struct shared {
	struct shmkit_mutex m;
	struct shmkit_event ev;
	uint32_t go;	  /* predicate, under m */
	uint32_t ready;	  /* waiters that checked the predicate, under m */
	uint32_t woken;	  /* waiters that saw go, under m */
	uint32_t repairs; /* under m */
};

static int waiter(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shared *sh;
	int rc;

	if (argc < 1 || shmkit_seg_open(argv[0], NULL, &seg) < 0)
		return 2;
	sh = shmkit_seg_base(seg);
	rc = shmkit_mutex_lock(seg, &sh->m, WAIT_NS);
	if (rc == -EOWNERDEAD) {
		sh->repairs++;
		shmkit_mutex_consistent(seg, &sh->m);
	} else if (rc < 0) {
		return 3;
	}
	sh->ready++;
	while (!sh->go) {
		rc = shmkit_event_wait(seg, &sh->ev, &sh->m, WAIT_NS);
		if (rc == -EOWNERDEAD) {
			sh->repairs++;
			shmkit_mutex_consistent(seg, &sh->m);
		} else if (rc < 0) {
			fprintf(stderr, "event_wait: %d\n", rc);
			return 4;
		}
	}
	sh->woken++;
	shmkit_mutex_unlock(seg, &sh->m);
	shmkit_seg_close(seg);
	return 0;
}

static uint64_t counted(struct shared *sh)
{
	struct shmkit__event *e = (struct shmkit__event *)&sh->ev;

	return load_relaxed(&e->wstate) & SHMKIT__E_CNT_MASK;
}

static void lock(struct shmkit_seg *seg, struct shared *sh)
{
	int rc = shmkit_mutex_lock(seg, &sh->m, WAIT_NS);

	if (rc == -EOWNERDEAD) {
		sh->repairs++;
		ASSERT_OK(shmkit_mutex_consistent(seg, &sh->m));
		return;
	}
	ASSERT_OK(rc);
}

/* Start NW waiters and wait until all are counted (asleep or nearly). */
static void start(struct shmkit_seg *seg, struct shared *sh, pid_t *w,
		  const char *const *args)
{
	lock(seg, sh);
	sh->go = 0;
	sh->ready = 0;
	sh->woken = 0;
	ASSERT_OK(shmkit_mutex_unlock(seg, &sh->m));
	for (int i = 0; i < NW; i++)
		w[i] = th_spawn("waiter", args, NULL);
	for (int i = 0; counted(sh) < NW; i++) {
		ASSERT_LT(i, 10000);
		usleep(1000);
	}
	usleep(5000); /* let them reach futex_wait */
}

/* No waiter left alive: at most one healing wake, then none at all. */
static void check_healed(struct shmkit_seg *seg, struct shared *sh)
{
	uint64_t c0 = shmkit__sync_futex_calls();

	ASSERT_OK(shmkit_event_signal(seg, &sh->ev));
	ASSERT_LE(shmkit__sync_futex_calls() - c0, 1);
	ASSERT_EQ(counted(sh), 0);
	c0 = shmkit__sync_futex_calls();
	for (int i = 0; i < 1000; i++) {
		ASSERT_OK(shmkit_event_signal(seg, &sh->ev));
		ASSERT_OK(shmkit_event_broadcast(seg, &sh->ev));
	}
	ASSERT_EQ(shmkit__sync_futex_calls() - c0, 0);
}

static int test(void)
{
	struct shmkit_seg *seg;
	struct shared *sh;
	char name[128];
	const char *args[] = {name, NULL};
	pid_t w[NW];
	int crashes = 0;

	th_name(name, sizeof(name), "sevent");
	ASSERT_OK(shmkit_seg_create(name, 4096, NULL, &seg));
	sh = shmkit_seg_base(seg);
	ASSERT_OK(shmkit_mutex_init(seg, &sh->m, NULL));
	ASSERT_OK(shmkit_event_init(seg, &sh->ev));

	/* 1: kill two sleeping waiters; two signals wake the survivors. */
	start(seg, sh, w, args);
	th_kill(w[0]);
	th_kill(w[2]);
	lock(seg, sh);
	sh->go = 1;
	ASSERT_OK(shmkit_mutex_unlock(seg, &sh->m));
	ASSERT_OK(shmkit_event_signal(seg, &sh->ev));
	ASSERT_OK(shmkit_event_signal(seg, &sh->ev));
	ASSERT_TRUE(th_exited_ok(th_wait(w[1], 10000)));
	ASSERT_TRUE(th_exited_ok(th_wait(w[3], 10000)));
	ASSERT_EQ(sh->woken, 2);
	check_healed(seg, sh);

	/* 2: kill three; one broadcast wakes the last. */
	start(seg, sh, w, args);
	th_kill(w[0]);
	th_kill(w[1]);
	th_kill(w[3]);
	lock(seg, sh);
	sh->go = 1;
	ASSERT_OK(shmkit_event_broadcast(seg, &sh->ev));
	ASSERT_OK(shmkit_mutex_unlock(seg, &sh->m));
	ASSERT_TRUE(th_exited_ok(th_wait(w[2], 10000)));
	ASSERT_EQ(sh->woken, 1);
	check_healed(seg, sh);

	/* 3: waiters killed at crash points inside shmkit_event_wait(),
	 * some of them holding the mutex (repaired by the next locker). */
	static const char *const pts[] = {"sync.event.wait.announced",
					  "sync.event.wait.unlocked",
					  "sync.event.wait.woken",
					  "sync.mutex.lock.acquired"};
	for (int r = 0; r < 20; r++) {
		const char *pt = pts[r % 4];
		pid_t v, s;
		int st;

		lock(seg, sh);
		sh->go = 0;
		sh->woken = 0;
		ASSERT_OK(shmkit_mutex_unlock(seg, &sh->m));
		/* The victim dies on its first pass; a survivor keeps
		 * waiting beside it. */
		v = th_spawn_crash("waiter", args, pt,
				   strcmp(pt, "sync.mutex.lock.acquired") ? 1
									  : 2);
		s = th_spawn("waiter", args, NULL);
		for (int i = 0; sh->ready < 2 && i < 5000; i++)
			usleep(1000);
		usleep(2000);
		lock(seg, sh);
		sh->go = 1;
		ASSERT_OK(shmkit_mutex_unlock(seg, &sh->m));
		ASSERT_OK(shmkit_event_broadcast(seg, &sh->ev));
		ASSERT_TRUE(th_exited_ok(th_wait(s, 10000)));
		st = th_wait(v, 10000);
		ASSERT_TRUE(th_exited_ok(st) || th_was_killed(st));
		crashes += th_was_killed(st);
		lock(seg, sh);
		sh->ready = 0;
		ASSERT_OK(shmkit_mutex_unlock(seg, &sh->m));
	}
	ASSERT_GT(crashes, 10);
	check_healed(seg, sh);
	fprintf(stderr, "%d waiters killed inside wait, %u repairs\n", crashes,
		sh->repairs);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"waiter", waiter},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
