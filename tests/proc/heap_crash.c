/* SPDX-License-Identifier: MIT */
/*
 * Processes killed at every crash point of allocate and free (and of the
 * cache, the refill/flush and the repair itself) while the test process
 * allocates and frees beside them. After each death: the heap repairs
 * itself at the next lock, the checker passes, the dead process's blocks
 * (all allocated OWNED) are reclaimed, and every block of the survivor
 * still holds its pattern (no overlap, nothing freed under it).
 */
#define _GNU_SOURCE
#include "crash.h"
#include "harness.h"
#include "heap.h"

#include <shmkit.h>
#include <sys/wait.h>

#define LIVE 200
#define WORKER_OPS 20000

static void fill(unsigned char *p, uint64_t off, uint32_t len)
{
	memcpy(p, &len, 4);
	for (uint32_t i = 4; i < len; i++)
		p[i] = (unsigned char)(off * 131 + i * 7 + (off >> 8));
}

static int intact(const unsigned char *p, uint64_t off)
{
	uint32_t len;

	memcpy(&len, p, 4);
	if (len < 4 || len > 20000)
		return 0;
	for (uint32_t i = 4; i < len; i++)
		if (p[i] != (unsigned char)(off * 131 + i * 7 + (off >> 8)))
			return 0;
	return 1;
}

static uint32_t rand_len(void)
{
	uint64_t r = th_rand();

	return r % 8 ? 4 + (uint32_t)(r >> 8) % 509
		     : 4 + (uint32_t)(r >> 8) % 9000;
}

/* One random step on the set live[]: 0 or a negative code. */
static int step(struct shmkit_heap *h, unsigned char *base, uint64_t *live,
		uint32_t flags)
{
	int i = (int)(th_rand() % LIVE), rc;

	if (!live[i]) {
		uint32_t len = rand_len();

		rc = shmkit_heap_alloc(h, len, flags, &live[i]);
		if (rc == -ENOSPC)
			return 0;
		if (rc < 0)
			return rc;
		fill(base + live[i], live[i], len);
		return 0;
	}
	if (!intact(base + live[i], live[i]))
		return -EILSEQ;
	rc = shmkit_heap_free(h, live[i]);
	live[i] = 0;
	return rc;
}

static int worker(int argc, char **argv)
{
	static uint64_t live[LIVE];
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	unsigned char *base;

	if (argc < 1 || shmkit_seg_open(argv[0], NULL, &seg) < 0 ||
	    shmkit_heap_open(seg, NULL, &h) < 0)
		return 2;
	base = shmkit_seg_base(seg);
	for (int op = 0; op < WORKER_OPS; op++) {
		if (step(h, base, live, SHMKIT_HEAP_OWNED) < 0)
			return 3;
		if (op % 97 == 96 && shmkit_heap_flush(h) < 0)
			return 4;
	}
	/* Not killed: close without freeing; the owned blocks become
	 * reclaimable, as after a crash. */
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return 0;
}

/* Only touches the heap: repairs it (or dies doing so). */
static int toucher(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	uint64_t off;

	if (argc < 1 || shmkit_seg_open(argv[0], NULL, &seg) < 0 ||
	    shmkit_heap_open(seg, NULL, &h) < 0)
		return 2;
	if (shmkit_heap_alloc(h, 5000, SHMKIT_HEAP_OWNED, &off) < 0)
		return 3;
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return 0;
}

static void check(struct shmkit_heap *h, const char *point, long n)
{
	int rc = shmkit_heap_check(h);

	if (rc < 0)
		th_fail(__FILE__, __LINE__, "after %s:%ld: check: %s", point, n,
			shmkit__heap_check_why());
}

static int test(void)
{
	static uint64_t live[LIVE];
	const struct shmkit__crash_point *cps;
	struct shmkit_heap_opts o = {.sz = sizeof(o),
				     .flags = SHMKIT_HEAP_CREATE};
	struct shmkit_heap_stats st = {.sz = sizeof(st)};
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	unsigned char *base;
	char name[128];
	const char *args[] = {name, NULL};
	size_t ncp = shmkit__crash_points(&cps);
	int points = 0, killed_total = 0;
	uint64_t repairs = 0;

	if (!ncp)
		SKIP("crash points not compiled in");
	th_name(name, sizeof(name), "hcrash");
	ASSERT_OK(shmkit_seg_create(name, 16 << 20, NULL, &seg));
	ASSERT_OK(shmkit_heap_open(seg, &o, &h));
	base = shmkit_seg_base(seg);
	for (size_t c = 0; c < ncp; c++) {
		const char *cp = cps[c].name;
		int killed = 0, dup = 0;

		if (strncmp(cp, "heap.", 5) != 0 ||
		    strncmp(cp, "heap.init.", 10) == 0)
			continue;
		for (size_t d = 0; d < c; d++)
			dup |= strcmp(cps[d].name, cp) == 0;
		if (dup)
			continue;
		points++;
		for (int round = 0; round < 6; round++) {
			long n = round == 0 ? 1 : 1 + (long)(th_rand() % 300);
			int status;
			pid_t pid;

			if (strcmp(cp, "heap.repair.locked") == 0) {
				/* Needs a death to repair: kill a worker in
				 * a split first, then the repairer, with
				 * nobody else in the way. */
				pid = th_spawn_crash("worker", args,
						     "heap.resize.intent", n);
				ASSERT_TRUE(th_was_killed(th_wait(pid, 30000)));
				pid = th_spawn_crash("toucher", args, cp, 1);
				status = th_wait(pid, 30000);
			} else {
				pid = th_spawn_crash("worker", args, cp, n);
				status = -1;
			}
			/* Work beside it until it is gone. */
			while (status == -1 &&
			       waitpid(pid, &status, WNOHANG) == 0) {
				int rc = step(h, base, live, 0);

				if (rc < 0)
					th_fail(__FILE__, __LINE__,
						"%s:%ld: step: %d", cp, n, rc);
			}
			if (WIFSIGNALED(status) &&
			    WTERMSIG(status) == SIGKILL) {
				killed++;
			} else if (!WIFEXITED(status) ||
				   WEXITSTATUS(status) != 0) {
				th_fail(__FILE__, __LINE__,
					"%s:%ld: worker status %#x", cp, n,
					status);
			}
			for (int k = 0; k < 50; k++)
				ASSERT_OK(step(h, base, live, 0));
			check(h, cp, n);
			ASSERT_GE(shmkit_heap_reclaim(h), 0);
			check(h, cp, n);
			for (int i = 0; i < LIVE; i++)
				if (live[i] && !intact(base + live[i], live[i]))
					th_fail(__FILE__, __LINE__,
						"%s:%ld: block %d broken", cp,
						n, i);
		}
		if (!killed)
			th_fail(__FILE__, __LINE__, "%s never fired", cp);
		killed_total += killed;
	}
	ASSERT_GE(points, 10);
	/* Everything back: the survivor frees its blocks. */
	for (int i = 0; i < LIVE; i++) {
		if (!live[i])
			continue;
		ASSERT_TRUE(intact(base + live[i], live[i]));
		ASSERT_OK(shmkit_heap_free(h, live[i]));
	}
	ASSERT_OK(shmkit_heap_flush(h));
	ASSERT_GE(shmkit_heap_reclaim(h), 0);
	check(h, "end", 0);
	ASSERT_OK(shmkit_heap_stats(h, &st));
	repairs = st.repairs;
	ASSERT_EQ(st.used_blocks, 0);
	ASSERT_EQ(st.cached_blocks, 0);
	ASSERT_EQ(st.free_blocks, 1);
	ASSERT_GT(repairs, 0);
	fprintf(stderr, "%d points, %d kills, %llu repairs\n", points,
		killed_total, (unsigned long long)repairs);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {
		{"worker", worker}, {"toucher", toucher}, {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
