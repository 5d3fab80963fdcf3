/* SPDX-License-Identifier: MIT */
/*
 * Threads with their own mappings race create-or-find on the same names
 * (and remove them again): every name is created once per generation,
 * all threads see the same offset, and nobody sees an object before its
 * init finished. Run under ThreadSanitizer (label "threads").
 */
#define _GNU_SOURCE
#include "harness.h"

#include <pthread.h>
#include <sched.h>
#include <shmkit.h>
#include <stdatomic.h>

#define THREADS 3
#define NAMES 16
#define MAGIC 0x4f424a21u

static char name[128];
static atomic_int go, failures, created;
static _Atomic uint64_t seen[THREADS][NAMES];

static int init_obj(struct shmkit_heap *h, uint64_t off, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	*(uint32_t *)shmkit_heap_ptr(h, off) = MAGIC;
	return 0;
}

static void *run(void *arg)
{
	int me = (int)(uintptr_t)arg;
	struct shmkit_seg *seg;
	struct shmkit_heap *h;

	if (shmkit_seg_open(name, NULL, &seg) < 0 ||
	    shmkit_heap_open(seg, NULL, &h) < 0) {
		atomic_fetch_add(&failures, 1);
		return NULL;
	}
	while (!atomic_load(&go))
		sched_yield();
	for (int k = 0; k < NAMES; k++) {
		int i = (k + me * 5) % NAMES, rc;
		struct shmkit_obj_info in;
		char nm[16];

		snprintf(nm, sizeof(nm), "n%d", i);
		rc = shmkit_obj_create(h, nm, 64, 1, init_obj, NULL, &in);
		if (rc < 0) {
			atomic_fetch_add(&failures, 1);
			continue;
		}
		created += rc;
		/* The directory lock orders init before this read. */
		if (*(uint32_t *)shmkit_heap_ptr(h, in.off) != MAGIC)
			atomic_fetch_add(&failures, 1);
		atomic_store(&seen[me][i], in.off);
	}
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return NULL;
}

static int test(void)
{
	struct shmkit_heap_opts o = {.sz = sizeof(o),
				     .flags = SHMKIT_HEAP_CREATE};
	pthread_t t[THREADS];
	struct shmkit_seg *seg;
	struct shmkit_heap *h;

	th_name(name, sizeof(name), "omt");
	ASSERT_OK(shmkit_seg_create(name, 1 << 20, NULL, &seg));
	ASSERT_OK(shmkit_heap_open(seg, &o, &h));
	for (int i = 0; i < THREADS; i++)
		ASSERT_EQ(pthread_create(&t[i], NULL, run,
					 (void *)(uintptr_t)i),
			  0);
	atomic_store(&go, 1);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	ASSERT_EQ(atomic_load(&failures), 0);
	ASSERT_EQ(atomic_load(&created), NAMES);
	for (int i = 0; i < NAMES; i++)
		for (int k = 1; k < THREADS; k++)
			ASSERT_EQ(atomic_load(&seen[k][i]),
				  atomic_load(&seen[0][i]));
	ASSERT_EQ(shmkit_obj_list(h, NULL, NULL), NAMES);
	ASSERT_OK(shmkit_heap_check(h));
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
