/* SPDX-License-Identifier: MIT */
/*
 * Two threads, each with its own handle (own mapping) of one segment,
 * hand values back and forth through C11 atomics at offsets in the data
 * area. Run under ThreadSanitizer (label "threads").
 */
#define _GNU_SOURCE
#include "harness.h"

#include <pthread.h>
#include <sched.h>
#include <shmkit.h>
#include <stdatomic.h>

#define ROUNDS 2000
#define OFF_TURN 0    /* whose turn: 0 pinger, 1 ponger */
#define OFF_PING 64   /* value from the pinger */
#define OFF_PONG 128  /* answer from the ponger */
#define OFF_WIDE 4096 /* a second page, written by the ponger */

static char name[128];
/* 0 not yet, 1 created, 2 opened, 3 open failed */
static atomic_int opened;

static _Atomic uint64_t *at(struct shmkit_seg *s, size_t off)
{
	return (_Atomic uint64_t *)((char *)shmkit_seg_base(s) + off);
}

static void wait_turn(_Atomic uint64_t *turn, uint64_t want)
{
	/* Pairs with the release store of the turn by the other thread. */
	while (atomic_load_explicit(turn, memory_order_acquire) != want)
		sched_yield();
}

static void *ponger(void *arg)
{
	struct shmkit_seg *s;
	long bad = 0;

	(void)arg;
	while (atomic_load(&opened) != 1)
		sched_yield();
	if (shmkit_seg_open(name, NULL, &s) < 0) {
		atomic_store(&opened, 3);
		return (void *)1;
	}
	atomic_store(&opened, 2);
	for (uint64_t i = 1; i <= ROUNDS; i++) {
		wait_turn(at(s, OFF_TURN), 1);
		uint64_t v = atomic_load_explicit(at(s, OFF_PING),
						  memory_order_relaxed);

		if (v != i * 3)
			bad++;
		atomic_store_explicit(at(s, OFF_PONG), v + 1,
				      memory_order_relaxed);
		atomic_store_explicit(at(s, OFF_WIDE + (i % 64) * 8), i,
				      memory_order_relaxed);
		/* Pairs with wait_turn() in the pinger. */
		atomic_store_explicit(at(s, OFF_TURN), 0, memory_order_release);
	}
	shmkit_seg_close(s);
	return (void *)bad;
}

static int test(void)
{
	struct shmkit_seg *s;
	pthread_t t;
	void *ret;

	th_name(name, sizeof(name), "twomaps-mt");
	ASSERT_EQ(pthread_create(&t, NULL, ponger, NULL), 0);
	ASSERT_OK(shmkit_seg_create(name, 8192, NULL, &s));
	atomic_store(&opened, 1);
	while (atomic_load(&opened) < 2)
		sched_yield();
	ASSERT_EQ(atomic_load(&opened), 2);
	for (uint64_t i = 1; i <= ROUNDS; i++) {
		atomic_store_explicit(at(s, OFF_PING), i * 3,
				      memory_order_relaxed);
		/* Pairs with wait_turn() in the ponger. */
		atomic_store_explicit(at(s, OFF_TURN), 1, memory_order_release);
		wait_turn(at(s, OFF_TURN), 0);
		ASSERT_EQ(atomic_load_explicit(at(s, OFF_PONG),
					       memory_order_relaxed),
			  i * 3 + 1);
		ASSERT_EQ(atomic_load_explicit(at(s, OFF_WIDE + (i % 64) * 8),
					       memory_order_relaxed),
			  i);
	}
	ASSERT_EQ(pthread_join(t, &ret), 0);
	ASSERT_EQ((long)ret, 0);
	shmkit_seg_close(s);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
