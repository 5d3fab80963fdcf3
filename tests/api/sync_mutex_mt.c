/* SPDX-License-Identifier: MIT */
/*
 * Mutex, threaded, in one process so ThreadSanitizer sees the accesses:
 * two handles of one segment mapped at different addresses, threads on
 * both, a == b kept under the mutex with lock, trylock and short timeouts.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <pthread.h>
#include <shmkit.h>

#define THREADS 4
#define ITERS 20000

struct shared {
	struct shmkit_mutex m;
	uint64_t a, b; /* under m */
};

static struct shmkit_seg *segs[2];

static void *worker(void *arg)
{
	long id = (long)arg;
	struct shmkit_seg *seg = segs[id % 2];
	struct shared *sh = shmkit_seg_base(seg);

	for (int i = 0; i < ITERS; i++) {
		int rc;

		if (i % 3 == 0) {
			rc = shmkit_mutex_trylock(seg, &sh->m);
			if (rc == -EAGAIN)
				continue;
		} else {
			rc = shmkit_mutex_lock(seg, &sh->m,
					       i % 3 == 1 ? SHMKIT_FOREVER
							  : 10000000000ull);
		}
		ASSERT_OK(rc);
		ASSERT_EQ(sh->a, sh->b);
		sh->a++;
		sh->b++;
		ASSERT_OK(shmkit_mutex_unlock(seg, &sh->m));
	}
	return NULL;
}

static int test(void)
{
	pthread_t t[THREADS];
	char name[128];
	struct shared *sh;

	th_name(name, sizeof(name), "smt");
	ASSERT_OK(shmkit_seg_create(name, 4096, NULL, &segs[0]));
	ASSERT_OK(shmkit_seg_open(name, NULL, &segs[1]));
	ASSERT_NE((long long)(uintptr_t)shmkit_seg_base(segs[0]),
		  (long long)(uintptr_t)shmkit_seg_base(segs[1]));
	sh = shmkit_seg_base(segs[0]);
	ASSERT_OK(shmkit_mutex_init(segs[0], &sh->m, NULL));
	for (long i = 0; i < THREADS; i++)
		ASSERT_EQ(pthread_create(&t[i], NULL, worker, (void *)i), 0);
	for (int i = 0; i < THREADS; i++)
		ASSERT_EQ(pthread_join(t[i], NULL), 0);
	ASSERT_OK(shmkit_mutex_lock(
		segs[1], &((struct shared *)shmkit_seg_base(segs[1]))->m, 0));
	ASSERT_EQ(sh->a, sh->b);
	ASSERT_GT(sh->a, (uint64_t)THREADS * ITERS / 2);
	shmkit_seg_close(segs[1]);
	shmkit_seg_close(segs[0]);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
