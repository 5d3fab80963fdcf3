/* SPDX-License-Identifier: MIT */
/*
 * Race between opening a scoped segment and its last user closing it, in
 * two processes, a few hundred rounds with random skew. The opener either
 * gets the segment, and then the name still leads to the very file it has
 * mapped, or -ENOENT; never a handle to an unlinked segment, never another
 * error. After each round the name is gone (whoever closed last removed
 * it).
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
	_Atomic uint32_t got;	 /* w: opener, opens that succeeded */
	_Atomic uint32_t enoent; /* w: opener, opens that found nothing */
	_Atomic uint32_t bad;	 /* w: opener, anything else */
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

/* Is the name at this moment the file behind s? */
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
		uint32_t r;
		int rc;

		/* Pairs with the release store of round in the test. */
		while ((r = atomic_load_explicit(&c->round,
						 memory_order_acquire)) == last)
			sched_yield();
		if (r == STOP)
			break;
		last = r;
		snprintf(name, sizeof(name), "race-%u", r);
		/* Both sides start their skew from here. */
		atomic_store_explicit(&c->seen, r, memory_order_relaxed);
		skew(10000);
		rc = shmkit_seg_open(name, NULL, &s);
		if (rc == 0) {
			if (!name_is(name, s)) {
				fprintf(stderr, "round %u: unlinked handle\n",
					r);
				atomic_fetch_add(&c->bad, 1);
			}
			atomic_fetch_add(&c->got, 1);
			shmkit_seg_close(s);
		} else if (rc == -ENOENT) {
			atomic_fetch_add(&c->enoent, 1);
		} else {
			fprintf(stderr, "round %u: open: %s\n", r,
				shmkit_strerror(rc));
			atomic_fetch_add(&c->bad, 1);
		}
		/* Pairs with the acquire load of done in the test. */
		atomic_store_explicit(&c->done, r, memory_order_release);
	}
	shmkit_seg_close(cs);
	return 0;
}

static int test(void)
{
	struct shmkit_seg_opts sc = {.sz = sizeof(sc),
				     .flags = SHMKIT_SEG_SCOPED};
	struct shmkit_seg *cs, *s;
	struct ctl *c;
	pid_t opener;

	snprintf(dir, sizeof(dir), "/dev/shm/.shmkit-t-race-XXXXXX");
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

		snprintf(name, sizeof(name), "race-%u", r);
		ASSERT_OK(shmkit_seg_create(name, 4096, &sc, &s));
		/* Pairs with the acquire load of round in the opener. */
		atomic_store_explicit(&c->round, r, memory_order_release);
		while (atomic_load_explicit(&c->seen, memory_order_relaxed) !=
		       r) {
			ASSERT_LT(th_now_ns(), deadline);
			sched_yield();
		}
		/* An open takes longer than a close: cover its span. */
		skew(80000);
		shmkit_seg_close(s);
		/* Pairs with the release store of done in the opener. */
		while (atomic_load_explicit(&c->done, memory_order_acquire) !=
		       r) {
			ASSERT_LT(th_now_ns(), deadline);
			sched_yield();
		}
		ASSERT_EQ(atomic_load(&c->bad), 0);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		ASSERT_EQ(access(path, F_OK), -1);
	}
	atomic_store_explicit(&c->round, STOP, memory_order_release);
	ASSERT_TRUE(th_exited_ok(th_wait(opener, 10000)));
	fprintf(stderr, "%u rounds: opener got it %u times, -ENOENT %u\n",
		ROUNDS, atomic_load(&c->got), atomic_load(&c->enoent));
	ASSERT_EQ(atomic_load(&c->got) + atomic_load(&c->enoent), ROUNDS);
	shmkit_seg_close(cs);
	ASSERT_OK(shmkit_seg_unlink("ctl"));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"opener", role_opener},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
