/* SPDX-License-Identifier: MIT */
/*
 * Event and semaphore API in one process: argument and ownership checks,
 * timeouts, no system call when nobody waits, event count tickets, and
 * garbage in the shared words (error or timeout, never a hang).
 */
#define _GNU_SOURCE
#include "atomics.h"
#include "harness.h"
#include "sync.h"

#include <shmkit.h>

#define MS 1000000ull

struct shared {
	struct shmkit_mutex m;
	struct shmkit_event ev;
	struct shmkit_sem s;
};

static int test(void)
{
	struct shmkit_seg *a, *b;
	struct shared *sh, *shb;
	struct shmkit__event *re;
	struct shmkit__sem *rs;
	char name[128];
	uint64_t c0, t;

	th_name(name, sizeof(name), "sev");
	ASSERT_OK(shmkit_seg_create(name, 4096, NULL, &a));
	ASSERT_OK(shmkit_seg_open(name, NULL, &b));
	sh = shmkit_seg_base(a);
	shb = shmkit_seg_base(b);
	re = (struct shmkit__event *)&sh->ev;
	rs = (struct shmkit__sem *)&sh->s;

	ASSERT_ERR(shmkit_event_signal(a, &sh->ev), EINVAL); /* not init */
	ASSERT_ERR(shmkit_sem_post(a, &sh->s), EINVAL);
	ASSERT_OK(shmkit_mutex_init(a, &sh->m, NULL));
	ASSERT_OK(shmkit_event_init(a, &sh->ev));
	ASSERT_ERR(shmkit_sem_init(a, &sh->s, 0x80000000u), EINVAL);
	ASSERT_OK(shmkit_sem_init(a, &sh->s, 2));

	/* Signal/broadcast with nobody waiting: no system call. */
	c0 = shmkit__sync_futex_calls();
	for (int i = 0; i < 1000; i++) {
		ASSERT_OK(shmkit_event_signal(a, &sh->ev));
		ASSERT_OK(shmkit_event_broadcast(b, &shb->ev));
	}
	ASSERT_EQ(shmkit__sync_futex_calls(), c0);

	/* Condition wait: needs the mutex, held and consistent. */
	ASSERT_ERR(shmkit_event_wait(a, &sh->ev, &sh->m, MS), EPERM);
	ASSERT_OK(shmkit_mutex_lock(a, &sh->m, 0));
	ASSERT_ERR(shmkit_event_wait(b, &shb->ev, &shb->m, MS), EPERM);
	ASSERT_ERR(shmkit_event_wait(a, &sh->ev, &sh->m, 2 * MS), ETIMEDOUT);
	/* Still held after the timeout; waiter count back to zero. */
	ASSERT_ERR(shmkit_mutex_lock(a, &sh->m, 0), EDEADLK);
	ASSERT_EQ(load_relaxed(&re->wstate) & SHMKIT__E_CNT_MASK, 0);
	ASSERT_ERR(shmkit_event_wait(a, &sh->ev, &sh->m, 0), ETIMEDOUT);
	ASSERT_OK(shmkit_mutex_unlock(a, &sh->m));

	/* Inconsistent mutex: refused, still held, still inconsistent. */
	{
		struct shmkit__mutex *rm = (struct shmkit__mutex *)&sh->m;
		uint64_t dead = (uint64_t)(SHMKIT__ID_SLOT |
					   50u << SHMKIT__ID_SLOT_SHIFT | 7u)
					<< 32 |
				99u;

		store_relaxed(&rm->word, dead);
		ASSERT_ERR(shmkit_mutex_lock(a, &sh->m, 100 * MS), EOWNERDEAD);
		ASSERT_ERR(shmkit_event_wait(a, &sh->ev, &sh->m, MS), EINVAL);
		ASSERT_OK(shmkit_mutex_consistent(a, &sh->m));
		ASSERT_OK(shmkit_mutex_unlock(a, &sh->m));
	}

	/* Event count: a signal after prepare is seen by await at once. */
	ASSERT_OK(shmkit_event_prepare(a, &sh->ev, &t));
	ASSERT_EQ(load_relaxed(&re->wstate) & SHMKIT__E_CNT_MASK, 1);
	ASSERT_OK(shmkit_event_signal(b, &shb->ev));
	ASSERT_OK(shmkit_event_await(a, &sh->ev, t, SHMKIT_FOREVER));
	ASSERT_EQ(load_relaxed(&re->wstate) & SHMKIT__E_CNT_MASK, 0);
	ASSERT_OK(shmkit_event_prepare(a, &sh->ev, &t));
	ASSERT_ERR(shmkit_event_await(a, &sh->ev, t, MS), ETIMEDOUT);
	ASSERT_EQ(load_relaxed(&re->wstate) & SHMKIT__E_CNT_MASK, 0);
	ASSERT_OK(shmkit_event_prepare(a, &sh->ev, &t));
	ASSERT_OK(shmkit_event_cancel(a, &sh->ev, t));
	ASSERT_EQ(load_relaxed(&re->wstate) & SHMKIT__E_CNT_MASK, 0);
	ASSERT_ERR(shmkit_event_prepare(a, &sh->ev, NULL), EINVAL);
	/* A prepared waiter that never waits (as if killed): healed. */
	ASSERT_OK(shmkit_event_prepare(a, &sh->ev, &t));
	c0 = shmkit__sync_futex_calls();
	ASSERT_OK(shmkit_event_signal(a, &sh->ev));
	ASSERT_EQ(shmkit__sync_futex_calls() - c0, 1);
	ASSERT_OK(shmkit_event_signal(a, &sh->ev));
	ASSERT_EQ(shmkit__sync_futex_calls() - c0, 1);
	ASSERT_OK(shmkit_event_cancel(a, &sh->ev, t)); /* stale: no-op */
	ASSERT_EQ(load_relaxed(&re->wstate) & SHMKIT__E_CNT_MASK, 0);

	/* Semaphore. */
	ASSERT_EQ(shmkit_sem_value(a, &sh->s), 2);
	ASSERT_OK(shmkit_sem_trywait(b, &shb->s));
	ASSERT_OK(shmkit_sem_wait(a, &sh->s, 0));
	ASSERT_ERR(shmkit_sem_trywait(a, &sh->s), EAGAIN);
	ASSERT_ERR(shmkit_sem_wait(a, &sh->s, 2 * MS), ETIMEDOUT);
	/* We slept: WAITERS is set; the next post heals it. */
	ASSERT_TRUE(load_relaxed(&rs->word) & SHMKIT__S_WAITERS);
	ASSERT_OK(shmkit_sem_post(a, &sh->s));
	ASSERT_FALSE(load_relaxed(&rs->word) & SHMKIT__S_WAITERS);
	c0 = shmkit__sync_futex_calls();
	ASSERT_OK(shmkit_sem_post(b, &shb->s));
	ASSERT_EQ(shmkit__sync_futex_calls(), c0);
	ASSERT_EQ(shmkit_sem_value(b, &shb->s), 2);
	store_relaxed(&rs->word, 0x7fffffffu);
	ASSERT_ERR(shmkit_sem_post(a, &sh->s), EOVERFLOW);

	/* Garbage: any word gives an answer within the timeout. */
	for (int i = 0; i < 200; i++) {
		int rc;

		store_relaxed(&re->seq, (uint32_t)th_rand());
		store_relaxed(&re->wstate, th_rand());
		store_relaxed(&rs->word, (uint32_t)th_rand());
		ASSERT_OK(shmkit_event_signal(a, &sh->ev));
		ASSERT_OK(shmkit_event_broadcast(a, &sh->ev));
		rc = shmkit_event_prepare(a, &sh->ev, &t);
		ASSERT_TRUE(rc == 0 || rc == -EAGAIN);
		if (rc == 0) {
			rc = shmkit_event_await(a, &sh->ev, t, 100000);
			ASSERT_TRUE(rc == 0 || rc == -ETIMEDOUT);
		}
		rc = shmkit_sem_wait(a, &sh->s, 100000);
		ASSERT_TRUE(rc == 0 || rc == -ETIMEDOUT);
		rc = shmkit_sem_post(a, &sh->s);
		ASSERT_TRUE(rc == 0 || rc == -EOVERFLOW);
	}
	store_relaxed(&re->magic, 0);
	ASSERT_ERR(shmkit_event_signal(a, &sh->ev), EINVAL);

	shmkit_seg_close(b);
	shmkit_seg_close(a);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
