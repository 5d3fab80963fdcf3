/* SPDX-License-Identifier: MIT */
/*
 * gc racing an opener on a stale scoped segment, in two processes, a few
 * hundred rounds with random skew. Exactly one wins each round: either gc
 * removes it (returns 1) and the opener gets -ENOENT, or the opener
 * attaches first, gets the very file still under its name, and gc leaves
 * it (returns 0). Never a handle to a removed segment, never both or
 * neither.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <sched.h>
#include <shmkit.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROUNDS 300
#define STOP 0xffffffffu

/* Control block in a persistent segment shared with the opener. */
struct ctl {
	_Atomic uint32_t round;	 /* w: test, the round started */
	_Atomic uint32_t seen;	 /* w: opener, the round it is in */
	_Atomic uint32_t done;	 /* w: opener, the round it finished */
	_Atomic int32_t outcome; /* w: opener, 1 got it, 0 -ENOENT, <0 bad */
};

static char dir[64];

static void dir_cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/*
 * Run on the which-th (0 or 1) CPU this process may use, if there are two:
 * the two sides of the race then really run at once instead of taking
 * turns on one CPU, where the busy-waiting side always finishes first.
 */
static void pin(int which)
{
	cpu_set_t set, one;
	int seen = 0;

	if (sched_getaffinity(0, sizeof(set), &set) < 0 || CPU_COUNT(&set) < 2)
		return;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &set) || seen++ != which)
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		sched_setaffinity(0, sizeof(one), &one);
		return;
	}
}

/* Busy-wait a random time below max_ns (sleeps are too coarse here). */
static void skew(uint64_t max_ns)
{
	uint64_t until = th_now_ns() + th_rand() % max_ns;

	while (th_now_ns() < until)
		;
}

static int name_is(const char *name, struct shmkit_seg *s)
{
	char path[256];
	struct stat a, b;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (fstat(shmkit_seg_fd(s), &a) < 0 || lstat(path, &b) < 0)
		return 0;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static int role_opener(int argc, char **argv)
{
	struct shmkit_seg *cs;
	struct ctl *c;
	uint32_t last = 0;

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s", getenv("SHMKIT_SHM_DIR"));
	pin(1);
	if (shmkit_seg_open("ctl", NULL, &cs) < 0)
		return 2;
	c = shmkit_seg_base(cs);
	for (;;) {
		struct shmkit_seg *s = NULL;
		char name[64];
		int32_t out;
		uint32_t r;
		int rc;

		/* Pairs with the release store of round in the test. */
		while ((r = atomic_load_explicit(&c->round,
						 memory_order_acquire)) == last)
			sched_yield();
		if (r == STOP)
			break;
		last = r;
		snprintf(name, sizeof(name), "stale-%u", r);
		atomic_store_explicit(&c->seen, r, memory_order_relaxed);
		/* gc inspects before it locks: give it a head start. */
		skew(300000);
		rc = shmkit_seg_open(name, NULL, &s);
		if (rc == 0) {
			out = name_is(name, s) ? 1 : -1;
			/* Keep it until the test has seen gc's answer. */
		} else {
			out = rc == -ENOENT ? 0 : rc;
		}
		atomic_store_explicit(&c->outcome, out, memory_order_relaxed);
		/* Pairs with the acquire load of done in the test. */
		atomic_store_explicit(&c->done, r, memory_order_release);
		if (s) {
			/* Pairs with the release store of round (STOP or
			 * next): the test has checked this round. */
			while (atomic_load_explicit(&c->round,
						    memory_order_acquire) == r)
				sched_yield();
			shmkit_seg_close(s);
		}
	}
	shmkit_seg_close(cs);
	return 0;
}

/* A scoped segment whose users are gone without removing it: STALE. */
static void make_stale(const char *name)
{
	struct shmkit_seg_opts sc = {.sz = sizeof(sc),
				     .flags = SHMKIT_SEG_SCOPED};
	struct shmkit_seg_opts ro = {.sz = sizeof(ro),
				     .flags = SHMKIT_SEG_RDONLY};
	struct shmkit_seg_info *in = calloc(1, sizeof(*in));
	struct shmkit_seg *a, *r;

	ASSERT_TRUE(in != NULL);
	ASSERT_OK(shmkit_seg_create(name, 4096, &sc, &a));
	ASSERT_OK(shmkit_seg_open(name, &ro, &r));
	shmkit_seg_close(a); /* not the last user */
	shmkit_seg_close(r); /* read-only: cannot remove it */
	in->sz = sizeof(*in);
	ASSERT_OK(shmkit_seg_stat(name, in));
	ASSERT_EQ(in->state, SHMKIT_STATE_STALE);
	free(in);
}

static int test(void)
{
	struct shmkit_seg *cs;
	struct ctl *c;
	pid_t opener;
	unsigned removed = 0, kept = 0;

	snprintf(dir, sizeof(dir), "/dev/shm/.shmkit-t-gcrace-XXXXXX");
	ASSERT_TRUE(mkdtemp(dir) != NULL);
	atexit(dir_cleanup);
	ASSERT_EQ(setenv("SHMKIT_SHM_DIR", dir, 1), 0);
	ASSERT_OK(shmkit_seg_create("ctl", 4096, NULL, &cs));
	c = shmkit_seg_base(cs);
	opener = th_spawn("opener", NULL, NULL);
	pin(0);

	for (uint32_t r = 1; r <= ROUNDS; r++) {
		uint64_t deadline = th_now_ns() + 10000000000ull;
		char name[64], path[256];
		int gc, out;

		snprintf(name, sizeof(name), "stale-%u", r);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		make_stale(name);
		/* Pairs with the acquire load of round in the opener. */
		atomic_store_explicit(&c->round, r, memory_order_release);
		while (atomic_load_explicit(&c->seen, memory_order_relaxed) !=
		       r) {
			ASSERT_LT(th_now_ns(), deadline);
			sched_yield();
		}
		skew(20000);
		gc = shmkit_seg_gc(name, 0);
		/* Pairs with the release store of done in the opener. */
		while (atomic_load_explicit(&c->done, memory_order_acquire) !=
		       r) {
			ASSERT_LT(th_now_ns(), deadline);
			sched_yield();
		}
		out = atomic_load_explicit(&c->outcome, memory_order_relaxed);
		if (!((gc == 1 && out == 0) || (gc == 0 && out == 1)))
			fprintf(stderr, "round %u: gc %d, opener %d\n", r, gc,
				out);
		ASSERT_TRUE((gc == 1 && out == 0) || (gc == 0 && out == 1));
		if (gc == 1) {
			ASSERT_EQ(access(path, F_OK), -1);
			removed++;
		} else {
			ASSERT_EQ(access(path, F_OK), 0);
			kept++;
		}
	}
	atomic_store_explicit(&c->round, STOP, memory_order_release);
	ASSERT_TRUE(th_exited_ok(th_wait(opener, 10000)));
	fprintf(stderr, "%d rounds: gc removed %u, opener won %u\n", ROUNDS,
		removed, kept);
	shmkit_seg_close(cs);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"opener", role_opener},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
