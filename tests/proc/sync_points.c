/* SPDX-License-Identifier: MIT */
/*
 * Every sync.* crash point compiled into the library, enumerated from the
 * library itself: a process using the mutex, the event and the semaphore
 * alongside a partner is killed there (on a random early pass), and the
 * partner carries on: no call fails, hangs or times out beyond its bound.
 */
#define _GNU_SOURCE
#include "crash.h"
#include "harness.h"

#include <shmkit.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS 1000000ull
#define MAXP 64

struct shared {
	struct shmkit_mutex m;
	struct shmkit_event ev;
	struct shmkit_sem s;
	_Atomic uint32_t stop;
	_Atomic uint32_t started;
	uint64_t repairs; /* under m */
};

/* One pass over every operation. Returns 0 or an exit code. */
static int pass(struct shmkit_seg *seg, struct shared *sh, long i)
{
	uint64_t t;
	int rc = shmkit_mutex_lock(seg, &sh->m, 5000 * MS);

	if (rc == -EOWNERDEAD) {
		sh->repairs++;
		if (shmkit_mutex_consistent(seg, &sh->m) < 0)
			return 10;
	} else if (rc < 0) {
		fprintf(stderr, "lock: %d\n", rc);
		return 11;
	}
	if (i % 2) {
		rc = shmkit_event_wait(seg, &sh->ev, &sh->m, 2 * MS);
		if (rc == -EOWNERDEAD) {
			sh->repairs++;
			if (shmkit_mutex_consistent(seg, &sh->m) < 0)
				return 12;
		} else if (rc < 0 && rc != -ETIMEDOUT) {
			fprintf(stderr, "event_wait: %d\n", rc);
			return 13;
		}
	} else if (shmkit_event_signal(seg, &sh->ev) < 0) {
		return 14;
	}
	if (shmkit_mutex_unlock(seg, &sh->m) < 0)
		return 15;
	if (shmkit_event_broadcast(seg, &sh->ev) < 0)
		return 16;
	if (shmkit_event_prepare(seg, &sh->ev, &t) < 0)
		return 17;
	rc = shmkit_event_await(seg, &sh->ev, t, MS);
	if (rc < 0 && rc != -ETIMEDOUT)
		return 18;
	rc = shmkit_sem_wait(seg, &sh->s, 2 * MS);
	if (rc < 0 && rc != -ETIMEDOUT)
		return 19;
	if (i % 3 == 0 && shmkit_sem_post(seg, &sh->s) < 0)
		return 20;
	return 0;
}

static int worker(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shared *sh;
	long limit;

	if (argc < 2 || shmkit_seg_open(argv[0], NULL, &seg) < 0)
		return 2;
	limit = atol(argv[1]);
	sh = shmkit_seg_base(seg);
	atomic_fetch_add(&sh->started, 1);
	for (long i = 0; limit == 0 || i < limit; i++) {
		int rc;

		if (limit == 0 && atomic_load(&sh->stop))
			break;
		rc = pass(seg, sh, i);
		if (rc)
			return rc;
	}
	shmkit_seg_close(seg);
	return 0;
}

/* The repair count, read outside the mutex (a snapshot is enough). */
static uint64_t load_repairs(struct shared *sh)
{
	return atomic_load_explicit((_Atomic uint64_t *)&sh->repairs,
				    memory_order_relaxed);
}

static int test(void)
{
	const struct shmkit__crash_point *cp;
	const char *names[MAXP];
	size_t n = shmkit__crash_points(&cp), np = 0;
	struct shmkit_seg *seg;
	struct shared *sh;
	char name[128];
	const char *partner_args[] = {name, "0", NULL};
	const char *victim_args[] = {name, "3000", NULL};

	if (n == 0)
		SKIP("crash points compiled out");
	for (size_t i = 0; i < n; i++) {
		size_t j;

		if (strncmp(cp[i].name, "sync.", 5) != 0)
			continue;
		for (j = 0; j < np; j++)
			if (strcmp(names[j], cp[i].name) == 0)
				break;
		if (j == np && np < MAXP)
			names[np++] = cp[i].name;
	}
	ASSERT_GE(np, 16);

	th_name(name, sizeof(name), "spts");
	ASSERT_OK(shmkit_seg_create(name, 4096, NULL, &seg));
	sh = shmkit_seg_base(seg);
	for (size_t k = 0; k < np; k++) {
		for (int rep = 0; rep < 3; rep++) {
			pid_t partner, victim;
			int st = 0, reaped = 0;

			ASSERT_OK(shmkit_mutex_init(seg, &sh->m, NULL));
			ASSERT_OK(shmkit_event_init(seg, &sh->ev));
			ASSERT_OK(shmkit_sem_init(seg, &sh->s, 1));
			atomic_store(&sh->stop, 0);
			atomic_store(&sh->started, 0);
			long nth = 1 + (long)(th_rand() % 8);

			/* A holder dies first, so that the take-over points
			 * (recovered, consistent) are on the victim's path. */
			st = th_wait(th_spawn_crash("worker", victim_args,
						    "sync.mutex.lock.acquired",
						    1),
				     30000);
			ASSERT_TRUE(th_was_killed(st));
			atomic_store(&sh->started, 0);
			sh->repairs = 0;
			if (strstr(names[k], "recovered") ||
			    strstr(names[k], "consistent"))
				nth = 1;
			victim = th_spawn_crash("worker", victim_args, names[k],
						nth);
			/* The partner joins once the victim has taken over
			 * (or died trying). */
			for (int w = 0; w < 5000; w++) {
				if (waitpid(victim, &st, WNOHANG) == victim) {
					reaped = 1;
					break;
				}
				if (atomic_load(&sh->started) >= 1 &&
				    load_repairs(sh) >= 1)
					break;
				usleep(200);
			}
			partner = th_spawn("worker", partner_args, NULL);
			if (!reaped)
				st = th_wait(victim, 30000);
			if (!th_was_killed(st))
				fprintf(stderr, "%s: not reached\n", names[k]);
			ASSERT_TRUE(th_was_killed(st));
			/* The partner keeps going on its own for a while. */
			usleep(20000);
			atomic_store(&sh->stop, 1);
			st = th_wait(partner, 30000);
			ASSERT_TRUE(th_exited_ok(st));
		}
	}
	fprintf(stderr, "%zu sync crash points, each killed 3 times\n", np);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"worker", worker},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
