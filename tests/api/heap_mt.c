/* SPDX-License-Identifier: MIT */
/*
 * Three threads, each with its own mapping of one segment and its own
 * heap handle, allocate and free at random with patterns, and hand blocks
 * to each other through atomics (freed by another thread than the one
 * that allocated them). Run under ThreadSanitizer (label "threads").
 */
#define _GNU_SOURCE
#include "harness.h"

#include <pthread.h>
#include <shmkit.h>
#include <stdatomic.h>

#define THREADS 3
#define OPS 20000
#define LIVE 100
#define BOXES 64

static char name[128];
static _Atomic uint64_t boxes[BOXES];
static atomic_int failures;

static void fill(unsigned char *p, uint64_t off, uint32_t len)
{
	memcpy(p, &len, 4);
	for (uint32_t i = 4; i < len; i++)
		p[i] = (unsigned char)(off * 131 + i * 7);
}

static int intact(const unsigned char *p, uint64_t off)
{
	uint32_t len;

	memcpy(&len, p, 4);
	if (len < 4 || len > 4000)
		return 0;
	for (uint32_t i = 4; i < len; i++)
		if (p[i] != (unsigned char)(off * 131 + i * 7))
			return 0;
	return 1;
}

static void *run(void *arg)
{
	uint64_t live[LIVE] = {0}, seed = (uint64_t)(uintptr_t)arg * 7919 + 1;
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	unsigned char *base;

	if (shmkit_seg_open(name, NULL, &seg) < 0 ||
	    shmkit_heap_open(seg, NULL, &h) < 0) {
		atomic_fetch_add(&failures, 1);
		return NULL;
	}
	base = shmkit_seg_base(seg);
	for (int op = 0; op < OPS; op++) {
		int i;
		uint64_t r;

		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		r = seed;
		i = (int)(r % LIVE);
		if (!live[i]) {
			uint32_t len =
				4 + (uint32_t)(r >> 20) % (r & 64 ? 3000 : 500);

			if (shmkit_heap_alloc(h, len, 0, &live[i]) < 0) {
				atomic_fetch_add(&failures, 1);
				break;
			}
			fill(base + live[i], live[i], len);
		} else if ((r >> 40) % 4 == 0) {
			/* Hand over (acq_rel: the pattern travels with it). */
			uint64_t old = atomic_exchange(&boxes[(r >> 8) % BOXES],
						       live[i]);

			live[i] = old;
			if (old && !intact(base + old, old))
				atomic_fetch_add(&failures, 1);
		} else {
			if (!intact(base + live[i], live[i]) ||
			    shmkit_heap_free(h, live[i]) < 0)
				atomic_fetch_add(&failures, 1);
			live[i] = 0;
		}
	}
	for (int i = 0; i < LIVE; i++)
		if (live[i] && shmkit_heap_free(h, live[i]) < 0)
			atomic_fetch_add(&failures, 1);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return NULL;
}

static int test(void)
{
	struct shmkit_heap_opts o = {.sz = sizeof(o),
				     .flags = SHMKIT_HEAP_CREATE};
	struct shmkit_heap_stats st = {.sz = sizeof(st)};
	pthread_t t[THREADS];
	struct shmkit_seg *seg;
	struct shmkit_heap *h;

	th_name(name, sizeof(name), "hmt");
	ASSERT_OK(shmkit_seg_create(name, 8 << 20, NULL, &seg));
	ASSERT_OK(shmkit_heap_open(seg, &o, &h));
	for (int i = 0; i < THREADS; i++)
		ASSERT_EQ(pthread_create(&t[i], NULL, run,
					 (void *)(uintptr_t)(i + 1)),
			  0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	ASSERT_EQ(atomic_load(&failures), 0);
	for (int i = 0; i < BOXES; i++) {
		uint64_t off = atomic_load(&boxes[i]);

		if (off)
			ASSERT_OK(shmkit_heap_free(h, off));
	}
	ASSERT_OK(shmkit_heap_flush(h));
	ASSERT_OK(shmkit_heap_check(h));
	ASSERT_OK(shmkit_heap_stats(h, &st));
	ASSERT_EQ(st.used_blocks, 0);
	ASSERT_EQ(st.free_blocks, 1);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
