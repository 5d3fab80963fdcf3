/* SPDX-License-Identifier: MIT */
/*
 * Event and semaphore, threaded, in one process (for ThreadSanitizer):
 * a bounded queue guarded by a mutex with "not empty"/"not full" events,
 * producers and consumers on two mappings of one segment; a semaphore
 * ping-pong; an event count (prepare/await) with an atomic flag and no
 * mutex. Every item arrives exactly once.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <pthread.h>
#include <shmkit.h>
#include <stdatomic.h>

#define CAP 8
#define ITEMS 20000
#define NPROD 2
#define NCONS 2
#define WAIT_NS 10000000000ull

struct shared {
	struct shmkit_mutex m;
	struct shmkit_event not_empty, not_full;
	struct shmkit_sem ping, pong;
	struct shmkit_event flag_ev;
	uint32_t q[CAP]; /* under m */
	uint32_t head, count;
	uint64_t sum; /* consumed values, under m */
	uint32_t consumed;
	_Atomic uint32_t flag;
};

static struct shmkit_seg *segs[2];

static struct shared *sh_of(long id)
{
	return shmkit_seg_base(segs[id % 2]);
}

static void *producer(void *arg)
{
	long id = (long)arg;
	struct shmkit_seg *seg = segs[id % 2];
	struct shared *sh = sh_of(id);

	for (uint32_t i = 1; i <= ITEMS; i++) {
		ASSERT_OK(shmkit_mutex_lock(seg, &sh->m, WAIT_NS));
		while (sh->count == CAP)
			ASSERT_OK(shmkit_event_wait(seg, &sh->not_full, &sh->m,
						    WAIT_NS));
		sh->q[(sh->head + sh->count) % CAP] = i;
		sh->count++;
		ASSERT_OK(shmkit_event_signal(seg, &sh->not_empty));
		ASSERT_OK(shmkit_mutex_unlock(seg, &sh->m));
	}
	return NULL;
}

static void *consumer(void *arg)
{
	long id = (long)arg;
	struct shmkit_seg *seg = segs[id % 2];
	struct shared *sh = sh_of(id);

	for (;;) {
		ASSERT_OK(shmkit_mutex_lock(seg, &sh->m, WAIT_NS));
		while (sh->count == 0 && sh->consumed < NPROD * ITEMS)
			ASSERT_OK(shmkit_event_wait(seg, &sh->not_empty, &sh->m,
						    WAIT_NS));
		if (sh->consumed == NPROD * ITEMS) {
			ASSERT_OK(shmkit_mutex_unlock(seg, &sh->m));
			return NULL;
		}
		sh->sum += sh->q[sh->head];
		sh->head = (sh->head + 1) % CAP;
		sh->count--;
		if (++sh->consumed == NPROD * ITEMS)
			ASSERT_OK(shmkit_event_broadcast(seg, &sh->not_empty));
		ASSERT_OK(shmkit_mutex_unlock(seg, &sh->m));
		ASSERT_OK(shmkit_event_signal(seg, &sh->not_full));
	}
}

static void *ponger(void *arg)
{
	(void)arg;
	for (int i = 0; i < ITEMS; i++) {
		ASSERT_OK(shmkit_sem_wait(segs[1], &sh_of(1)->ping, WAIT_NS));
		ASSERT_OK(shmkit_sem_post(segs[1], &sh_of(1)->pong));
	}
	return NULL;
}

static void *flag_setter(void *arg)
{
	(void)arg;
	atomic_store_explicit(&sh_of(1)->flag, 1, memory_order_release);
	ASSERT_OK(shmkit_event_signal(segs[1], &sh_of(1)->flag_ev));
	return NULL;
}

static int test(void)
{
	pthread_t t[NPROD + NCONS], p;
	char name[128];
	struct shared *sh;
	uint64_t ticket;

	th_name(name, sizeof(name), "semt");
	ASSERT_OK(shmkit_seg_create(name, 4096, NULL, &segs[0]));
	ASSERT_OK(shmkit_seg_open(name, NULL, &segs[1]));
	sh = shmkit_seg_base(segs[0]);
	ASSERT_OK(shmkit_mutex_init(segs[0], &sh->m, NULL));
	ASSERT_OK(shmkit_event_init(segs[0], &sh->not_empty));
	ASSERT_OK(shmkit_event_init(segs[0], &sh->not_full));
	ASSERT_OK(shmkit_event_init(segs[0], &sh->flag_ev));
	ASSERT_OK(shmkit_sem_init(segs[0], &sh->ping, 0));
	ASSERT_OK(shmkit_sem_init(segs[0], &sh->pong, 0));

	for (long i = 0; i < NPROD; i++)
		ASSERT_EQ(pthread_create(&t[i], NULL, producer, (void *)i), 0);
	for (long i = 0; i < NCONS; i++)
		ASSERT_EQ(pthread_create(&t[NPROD + i], NULL, consumer,
					 (void *)(i + 1)),
			  0);
	for (int i = 0; i < NPROD + NCONS; i++)
		ASSERT_EQ(pthread_join(t[i], NULL), 0);
	ASSERT_EQ(sh->consumed, NPROD * ITEMS);
	ASSERT_EQ(sh->sum, (uint64_t)NPROD * ITEMS * (ITEMS + 1) / 2);

	ASSERT_EQ(pthread_create(&p, NULL, ponger, NULL), 0);
	for (int i = 0; i < ITEMS; i++) {
		ASSERT_OK(shmkit_sem_post(segs[0], &sh->ping));
		ASSERT_OK(shmkit_sem_wait(segs[0], &sh->pong, WAIT_NS));
	}
	ASSERT_EQ(pthread_join(p, NULL), 0);
	ASSERT_EQ(shmkit_sem_value(segs[0], &sh->ping), 0);

	/* Event count: prepare, re-check, await. */
	ASSERT_EQ(pthread_create(&p, NULL, flag_setter, NULL), 0);
	while (!atomic_load_explicit(&sh->flag, memory_order_acquire)) {
		ASSERT_OK(shmkit_event_prepare(segs[0], &sh->flag_ev, &ticket));
		if (atomic_load_explicit(&sh->flag, memory_order_acquire)) {
			ASSERT_OK(shmkit_event_cancel(segs[0], &sh->flag_ev,
						      ticket));
			break;
		}
		ASSERT_OK(shmkit_event_await(segs[0], &sh->flag_ev, ticket,
					     WAIT_NS));
	}
	ASSERT_EQ(pthread_join(p, NULL), 0);

	shmkit_seg_close(segs[1]);
	shmkit_seg_close(segs[0]);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
