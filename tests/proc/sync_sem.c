/* SPDX-License-Identifier: MIT */
/*
 * Semaphore across processes: waiters killed while asleep leave no trace
 * (posts still wake every survivor, and after one healing wake-up a post
 * with nobody waiting makes no system call); units are conserved while
 * producers and consumers are killed at crash points.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "sync.h"

#include <shmkit.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#define NW 4
#define WAIT_NS 10000000000ull

struct shared {
	struct shmkit_sem s;
	_Atomic uint32_t waiting;
	_Atomic uint64_t taken;
	_Atomic uint64_t posted;
};

static int waiter(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shared *sh;

	if (argc < 1 || shmkit_seg_open(argv[0], NULL, &seg) < 0)
		return 2;
	sh = shmkit_seg_base(seg);
	atomic_fetch_add(&sh->waiting, 1);
	if (shmkit_sem_wait(seg, &sh->s, WAIT_NS) < 0)
		return 3;
	atomic_fetch_add(&sh->taken, 1);
	shmkit_seg_close(seg);
	return 0;
}

/* Takes units and counts them until killed; the count is bumped only
 * after the take returned, so a kill in between loses that unit. */
static int consumer(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shared *sh;

	if (argc < 1 || shmkit_seg_open(argv[0], NULL, &seg) < 0)
		return 2;
	sh = shmkit_seg_base(seg);
	for (;;) {
		int rc = shmkit_sem_wait(seg, &sh->s, WAIT_NS);

		if (rc < 0)
			return 3;
		atomic_fetch_add(&sh->taken, 1);
	}
}

static int producer(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shared *sh;

	if (argc < 1 || shmkit_seg_open(argv[0], NULL, &seg) < 0)
		return 2;
	sh = shmkit_seg_base(seg);
	for (int i = 0; i < 100000; i++) {
		atomic_fetch_add(&sh->posted, 1);
		if (shmkit_sem_post(seg, &sh->s) < 0)
			return 3;
	}
	return 0;
}

static int test(void)
{
	struct shmkit_seg *seg;
	struct shared *sh;
	struct shmkit__sem *raw;
	char name[128];
	const char *args[] = {name, NULL};
	pid_t w[NW];
	uint64_t c0;

	th_name(name, sizeof(name), "ssem");
	ASSERT_OK(shmkit_seg_create(name, 4096, NULL, &seg));
	sh = shmkit_seg_base(seg);
	raw = (struct shmkit__sem *)&sh->s;
	ASSERT_OK(shmkit_sem_init(seg, &sh->s, 0));

	for (int i = 0; i < NW; i++)
		w[i] = th_spawn("waiter", args, NULL);
	while (atomic_load(&sh->waiting) < NW)
		usleep(1000);
	usleep(20000); /* all asleep */
	ASSERT_TRUE(atomic_load(&raw->word) & SHMKIT__S_WAITERS);
	th_kill(w[1]);
	th_kill(w[2]);
	ASSERT_OK(shmkit_sem_post(seg, &sh->s));
	ASSERT_OK(shmkit_sem_post(seg, &sh->s));
	ASSERT_TRUE(th_exited_ok(th_wait(w[0], 10000)));
	ASSERT_TRUE(th_exited_ok(th_wait(w[3], 10000)));
	ASSERT_EQ(shmkit_sem_value(seg, &sh->s), 0);
	/* Stale WAITERS: one healing wake-up, then no system call. */
	c0 = shmkit__sync_futex_calls();
	ASSERT_OK(shmkit_sem_post(seg, &sh->s));
	ASSERT_LE(shmkit__sync_futex_calls() - c0, 1);
	ASSERT_FALSE(atomic_load(&raw->word) & SHMKIT__S_WAITERS);
	c0 = shmkit__sync_futex_calls();
	for (int i = 0; i < 1000; i++) {
		ASSERT_OK(shmkit_sem_post(seg, &sh->s));
		ASSERT_OK(shmkit_sem_trywait(seg, &sh->s));
	}
	ASSERT_EQ(shmkit__sync_futex_calls() - c0, 0);
	ASSERT_OK(shmkit_sem_wait(seg, &sh->s, 0));
	ASSERT_ERR(shmkit_sem_trywait(seg, &sh->s), EAGAIN);
	/* A waiter killed right after announcing itself. */
	{
		pid_t v = th_spawn_crash("waiter", args,
					 "sync.sem.wait.waiters", 1);

		ASSERT_TRUE(th_was_killed(th_wait(v, 10000)));
		ASSERT_TRUE(atomic_load(&raw->word) & SHMKIT__S_WAITERS);
		ASSERT_OK(shmkit_sem_post(seg, &sh->s));
		ASSERT_FALSE(atomic_load(&raw->word) & SHMKIT__S_WAITERS);
		ASSERT_OK(shmkit_sem_trywait(seg, &sh->s));
	}

	/* Conservation: producers post 100000 each; consumers are killed
	 * at crash points now and then and replaced. Every unit posted is
	 * either taken or still in the semaphore, give or take the one a
	 * consumer killed between its take and its count held. */
	{
		pid_t p[2], c;
		long lost = 0, killed = 0;
		int rounds = 30;

		atomic_store(&sh->taken, 0);
		atomic_store(&sh->posted, 0);
		p[0] = th_spawn("producer", args, NULL);
		p[1] = th_spawn("producer", args, NULL);
		for (int r = 0; r < rounds; r++) {
			int st;

			c = th_spawn_crash("consumer", args,
					   "sync.sem.wait.taken",
					   1 + (long)(th_rand() % 5000));
			st = th_wait(c, 10000);
			ASSERT_TRUE(th_was_killed(st));
			killed++;
			lost++;
		}
		ASSERT_TRUE(th_exited_ok(th_wait(p[0], 30000)));
		ASSERT_TRUE(th_exited_ok(th_wait(p[1], 30000)));
		ASSERT_EQ(atomic_load(&sh->posted), 200000);
		ASSERT_EQ(atomic_load(&sh->taken) +
				  (uint64_t)shmkit_sem_value(seg, &sh->s) +
				  (uint64_t)lost,
			  200000);
		fprintf(stderr, "%ld consumers killed\n", killed);
	}
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"waiter", waiter},
					       {"consumer", consumer},
					       {"producer", producer},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
