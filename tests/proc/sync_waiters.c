/* SPDX-License-Identifier: MIT */
/*
 * One holder and several waiters on a shmkit mutex. Round after round a
 * new holder is killed at a random crash point (inside lock, inside the
 * critical section, inside unlock before and after the release, before
 * the wake-up): every waiter keeps acquiring within its timeout, mutual
 * exclusion holds, and each death is repaired exactly once.
 */
#define _GNU_SOURCE
#include "crash.h"
#include "harness.h"

#include <shmkit.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#define WAITERS 3
#define ROUNDS 150
#define LOCK_TIMEOUT_NS 5000000000ull

struct shared {
	struct shmkit_mutex m;
	uint64_t inside;   /* 1 while someone is in the critical section */
	uint64_t sections; /* completed critical sections, under m */
	uint64_t repairs;  /* EOWNERDEAD take-overs, under m */
	_Atomic uint32_t stop;
	_Atomic uint32_t started;
	uint64_t acquired[WAITERS]; /* per waiter, under m */
};

static const char *const points[] = {
	"sync.mutex.lock.acquired", "sync.mutex.lock.waiters",
	"sync.mutex.unlock.enter",  "sync.mutex.unlock.released",
	"sync.mutex.unlock.woken",  "sync.mutex.lock.recovered",
	"sync.mutex.consistent",    "test.sync.inside",
};

/* Does a holder killed at this point die holding the mutex? */
static int holds_at(const char *pt)
{
	return strcmp(pt, "sync.mutex.lock.acquired") == 0 ||
	       strcmp(pt, "sync.mutex.unlock.enter") == 0 ||
	       strcmp(pt, "sync.mutex.lock.recovered") == 0 ||
	       strcmp(pt, "sync.mutex.consistent") == 0 ||
	       strcmp(pt, "test.sync.inside") == 0;
}

/* One critical section; returns 0 or an exit code. */
static int section(struct shmkit_seg *seg, struct shared *sh, int who)
{
	int rc = shmkit_mutex_lock(seg, &sh->m, LOCK_TIMEOUT_NS);

	if (rc == -EOWNERDEAD) {
		sh->inside = 0; /* the dead holder's half section */
		sh->repairs++;
		if (shmkit_mutex_consistent(seg, &sh->m) < 0)
			return 10;
	} else if (rc == -ETIMEDOUT) {
		fprintf(stderr, "waiter %d: lock timed out\n", who);
		return 11;
	} else if (rc < 0) {
		fprintf(stderr, "waiter %d: lock: %d\n", who, rc);
		return 12;
	}
	if (sh->inside)
		return 13; /* mutual exclusion broken */
	sh->inside = 1;
	SHMKIT_CRASH_POINT("test.sync.inside");
	for (volatile int i = 0; i < 50; i++)
		;
	sh->inside = 0;
	sh->sections++;
	if (who >= 0)
		sh->acquired[who]++;
	if (shmkit_mutex_unlock(seg, &sh->m) < 0)
		return 14;
	return 0;
}

static int waiter(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shared *sh;
	int who, rc;

	if (argc < 2 || shmkit_seg_open(argv[0], NULL, &seg) < 0)
		return 2;
	who = atoi(argv[1]);
	sh = shmkit_seg_base(seg);
	atomic_fetch_add(&sh->started, 1);
	while (!atomic_load(&sh->stop)) {
		rc = section(seg, sh, who);
		if (rc)
			return rc;
	}
	shmkit_seg_close(seg);
	return 0;
}

static int holder(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shared *sh;
	int rc;

	if (argc < 1 || shmkit_seg_open(argv[0], NULL, &seg) < 0)
		return 2;
	sh = shmkit_seg_base(seg);
	/* Points that need contention or a prior death may not fire. */
	for (int i = 0; i < 2000; i++) {
		rc = section(seg, sh, -1);
		if (rc)
			return rc;
	}
	return 0;
}

static int test(void)
{
	struct shmkit_seg *seg;
	struct shared *sh;
	char name[128], idx[WAITERS][8];
	const char *args[] = {name, NULL, NULL};
	pid_t w[WAITERS];
	long rounds = ROUNDS / th_slow_factor(), killed = 0, held = 0;
	long unrecorded = 0;
	size_t npoints = sizeof(points) / sizeof(points[0]);

	th_name(name, sizeof(name), "swait");
	ASSERT_OK(shmkit_seg_create(name, 4096, NULL, &seg));
	sh = shmkit_seg_base(seg);
	ASSERT_OK(shmkit_mutex_init(seg, &sh->m, NULL));
	for (int i = 0; i < WAITERS; i++) {
		snprintf(idx[i], sizeof(idx[i]), "%d", i);
		args[1] = idx[i];
		w[i] = th_spawn("waiter", args, NULL);
	}
	args[1] = NULL;
	while (atomic_load(&sh->started) < WAITERS)
		usleep(1000);
	for (long r = 0; r < rounds; r++) {
		const char *pt = points[th_rand() % npoints];
		long n = 1 + (long)(th_rand() % 20);
		pid_t h = th_spawn_crash("holder", args, pt, n);
		int st = th_wait(h, 20000);

		ASSERT_TRUE(th_exited_ok(st) || th_was_killed(st));
		if (!th_was_killed(st))
			continue;
		killed++;
		if (holds_at(pt))
			held++;
		if (strcmp(pt, "sync.mutex.lock.recovered") == 0)
			unrecorded++;
	}
	atomic_store(&sh->stop, 1);
	for (int i = 0; i < WAITERS; i++)
		ASSERT_TRUE(th_exited_ok(th_wait(w[i], 20000)));
	for (int i = 0; i < WAITERS; i++)
		ASSERT_GT(sh->acquired[i], 0);
	/*
	 * Every death while holding was repaired once; a holder killed right
	 * after its own take-over died before counting it, and the next
	 * repair covers both deaths.
	 */
	ASSERT_LE(sh->repairs, (uint64_t)held);
	ASSERT_GE(sh->repairs, (uint64_t)(held - unrecorded));
	ASSERT_GT(killed, rounds / 4);
	ASSERT_GT(sh->repairs, 0);
	fprintf(stderr,
		"%ld rounds, %ld holders killed, %llu repairs, "
		"%llu sections\n",
		rounds, killed, (unsigned long long)sh->repairs,
		(unsigned long long)sh->sections);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {
		{"waiter", waiter}, {"holder", holder}, {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
