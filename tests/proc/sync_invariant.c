/* SPDX-License-Identifier: MIT */
/*
 * Two processes keep a == b under a shmkit mutex. Each round a helper is
 * killed (crash point) between its two writes on a random pass; the
 * survivor must get -EOWNERDEAD, find a == b + 1, roll back, mark the
 * mutex consistent, and the count of completed critical sections must be
 * exact. Thousands of rounds.
 */
#define _GNU_SOURCE
#include "crash.h"
#include "harness.h"

#include <shmkit.h>
#include <stdio.h>

#define ROUNDS 2000
#define MAX_PASS 40

struct shared {
	struct shmkit_mutex m;
	uint64_t a, b;	  /* invariant a == b, under m */
	uint64_t done;	  /* completed critical sections, under m */
	uint64_t repairs; /* under m */
};

static int holder(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shared *sh;

	if (argc < 1 || shmkit_seg_open(argv[0], NULL, &seg) < 0)
		return 2;
	sh = shmkit_seg_base(seg);
	for (long i = 0; i < 10 * 1000 * 1000; i++) {
		int rc = shmkit_mutex_lock(seg, &sh->m, 10000000000ull);

		if (rc == -EOWNERDEAD) {
			return 3; /* only the parent recovers in this test */
		} else if (rc < 0) {
			return 4;
		}
		if (sh->a != sh->b)
			return 5;
		sh->a++;
		SHMKIT_CRASH_POINT("test.sync.between");
		sh->b++;
		sh->done++;
		if (shmkit_mutex_unlock(seg, &sh->m) < 0)
			return 6;
	}
	return 7; /* the crash point never fired */
}

static int test(void)
{
	struct shmkit_seg *seg;
	struct shared *sh;
	char name[128];
	const char *args[] = {name, NULL};
	uint64_t expect = 0;
	long rounds = ROUNDS / th_slow_factor();

	th_name(name, sizeof(name), "sinv");
	ASSERT_OK(shmkit_seg_create(name, 4096, NULL, &seg));
	sh = shmkit_seg_base(seg);
	ASSERT_OK(shmkit_mutex_init(seg, &sh->m, NULL));
	for (long r = 0; r < rounds; r++) {
		long n = 1 + (long)(th_rand() % MAX_PASS);
		long own = 0;
		int rc, st;
		pid_t pid;

		pid = th_spawn_crash("holder", args, "test.sync.between", n);
		/* Compete until the holder dies holding the lock. */
		for (;;) {
			rc = shmkit_mutex_lock(seg, &sh->m, 10000000000ull);
			if (rc == -EOWNERDEAD)
				break;
			ASSERT_OK(rc);
			ASSERT_EQ(sh->a, sh->b);
			sh->a++;
			sh->b++;
			sh->done++;
			own++;
			ASSERT_OK(shmkit_mutex_unlock(seg, &sh->m));
			ASSERT_LT(own, 50 * 1000 * 1000);
		}
		/* Killed between the writes: exactly one half-done section. */
		ASSERT_EQ(sh->a, sh->b + 1);
		sh->a = sh->b;
		sh->repairs++;
		ASSERT_OK(shmkit_mutex_consistent(seg, &sh->m));
		expect += (uint64_t)own + (uint64_t)(n - 1);
		ASSERT_EQ(sh->done, expect);
		ASSERT_EQ(sh->a, sh->done);
		ASSERT_OK(shmkit_mutex_unlock(seg, &sh->m));
		st = th_wait(pid, 10000);
		ASSERT_TRUE(th_was_killed(st));
	}
	ASSERT_EQ(sh->repairs, (uint64_t)rounds);
	fprintf(stderr, "%ld rounds, %llu sections\n", rounds,
		(unsigned long long)sh->done);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"holder", holder},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
