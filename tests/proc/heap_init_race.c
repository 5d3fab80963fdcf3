/* SPDX-License-Identifier: MIT */
/*
 * Processes racing to create a segment's heap: one formats it, the
 * others wait and attach to the same heap. A formatter killed after it
 * claimed the heap (or after formatting, before publishing) is taken
 * over by the next opener; the heap then works and passes its checker.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "heap.h"
#include "segment.h"

#include <shmkit.h>
#include <stdatomic.h>
#include <unistd.h>

#define PROCS 3

static int opener(int argc, char **argv)
{
	struct shmkit_heap_opts o = {.sz = sizeof(o),
				     .flags = SHMKIT_HEAP_CREATE};
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	uint64_t off;

	if (argc < 1 || shmkit_seg_open(argv[0], NULL, &seg) < 0)
		return 2;
	if (shmkit_heap_open(seg, &o, &h) < 0)
		return 3;
	if (shmkit_heap_alloc(h, 1000, 0, &off) < 0)
		return 4;
	memset(shmkit_heap_ptr(h, off), 1, 1000);
	if (shmkit_heap_free(h, off) < 0)
		return 5;
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return 0;
}

static int test(void)
{
	static const char *const points[] = {NULL, "heap.init.claimed",
					     "heap.init.formatted"};
	struct shmkit_heap_stats st = {.sz = sizeof(st)};
	int kills[3] = {0, 0, 0};

	for (int r = 0; r < 12; r++) {
		const char *cp = points[r % 3];
		struct shmkit_seg *seg;
		struct shmkit_heap *h;
		char name[128];
		const char *args[] = {name, NULL};
		pid_t pids[PROCS];
		int oks = 0;

		th_name(name, sizeof(name), "hinit");
		ASSERT_OK(shmkit_seg_create(name, 1 << 20, NULL, &seg));
		for (int p = 0; p < PROCS; p++) {
			pids[p] = th_spawn_crash("opener", args,
						 p == 0 ? cp : NULL, 1);
			/* Crash rounds: the doomed one claims the heap
			 * first, the others arrive while it is (or was)
			 * formatting. */
			if (p == 0 && cp) {
				uint64_t t0 = th_now_ns();

				while (!atomic_load(&seg->hdr->heap_init) &&
				       th_now_ns() - t0 < 10000000000ull)
					usleep(100);
			}
		}
		for (int p = 0; p < PROCS; p++) {
			int stw = th_wait(pids[p], 30000);

			if (th_exited_ok(stw))
				oks++;
			else if (p == 0 && cp && th_was_killed(stw))
				kills[r % 3]++;
			else
				th_fail(__FILE__, __LINE__,
					"round %d opener %d status %#x", r, p,
					stw);
		}
		ASSERT_GE(oks, PROCS - 1);
		/* Formatted by someone; if the only formatter died, this
		 * open takes it over. */
		{
			struct shmkit_heap_opts o = {
				.sz = sizeof(o), .flags = SHMKIT_HEAP_CREATE};

			ASSERT_OK(shmkit_heap_open(seg, &o, &h));
		}
		ASSERT_OK(shmkit_heap_check(h));
		ASSERT_OK(shmkit_heap_stats(h, &st));
		ASSERT_EQ(st.used_blocks, 0);
		shmkit_heap_close(h);
		shmkit_seg_close(seg);
		ASSERT_OK(shmkit_seg_unlink(name));
	}
	/* The first opener starts first: it is the formatter at least
	 * once per point. */
	ASSERT_GT(kills[1], 0);
	ASSERT_GT(kills[2], 0);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"opener", opener},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
