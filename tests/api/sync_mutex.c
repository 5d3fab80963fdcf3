/* SPDX-License-Identifier: MIT */
/*
 * Mutex API in one process: init, lock/trylock/unlock, ownership errors,
 * argument checks, not-recoverable after an unrepaired take-over, and
 * garbage in the lock word (error or timeout, never a hang).
 */
#define _GNU_SOURCE
#include "atomics.h"
#include "harness.h"
#include "sync.h"

#include <shmkit.h>
#include <unistd.h>

#define MS 1000000ull

/* A word that names a slot nobody holds: its owner is "dead". */
static uint64_t dead_slot_word(unsigned slot)
{
	uint64_t id = SHMKIT__ID_SLOT |
		      (uint64_t)slot << SHMKIT__ID_SLOT_SHIFT | 12345;

	return id << 32 | 4242;
}

static int test(void)
{
	struct shmkit_seg *a, *b, *ro;
	struct shmkit_seg_opts ropts = {.sz = sizeof(ropts),
					.flags = SHMKIT_SEG_RDONLY};
	struct shmkit_sync_opts so = {.sz = sizeof(so), .liveness_ns = 50000};
	char name[128];
	struct shmkit_mutex *m, *mb;
	struct shmkit__mutex *raw;

	th_name(name, sizeof(name), "smutex");
	ASSERT_OK(shmkit_seg_create(name, 65536, NULL, &a));
	ASSERT_OK(shmkit_seg_open(name, NULL, &b));
	m = (struct shmkit_mutex *)((char *)shmkit_seg_base(a) + 64);
	mb = (struct shmkit_mutex *)((char *)shmkit_seg_base(b) + 64);
	raw = (struct shmkit__mutex *)m;

	/* Not initialised yet. */
	ASSERT_ERR(shmkit_mutex_lock(a, m, 0), EINVAL);
	ASSERT_OK(shmkit_mutex_init(a, m, &so));

	/* Argument checks. */
	ASSERT_ERR(shmkit_mutex_lock(NULL, m, 0), EINVAL);
	ASSERT_ERR(shmkit_mutex_lock(a, NULL, 0), EINVAL);
	ASSERT_ERR(shmkit_mutex_lock(a, (struct shmkit_mutex *)((char *)m + 4),
				     0),
		   EINVAL);
	ASSERT_ERR(shmkit_mutex_lock(a, mb, 0), EINVAL); /* other mapping */
	ASSERT_ERR(shmkit_mutex_init(
			   a,
			   (struct shmkit_mutex *)((char *)shmkit_seg_base(a) +
						   shmkit_seg_size(a) - 16),
			   NULL),
		   EINVAL);
	so.sz = 4;
	ASSERT_ERR(shmkit_mutex_init(a, m, &so), EINVAL);

	/* Basic lock/unlock, through either mapping. */
	ASSERT_OK(shmkit_mutex_lock(a, m, 0));
	ASSERT_ERR(shmkit_mutex_lock(a, m, 0), EDEADLK);
	ASSERT_ERR(shmkit_mutex_trylock(a, m), EDEADLK);
	/* Handle b is another attachment: a different owner, alive. */
	ASSERT_ERR(shmkit_mutex_trylock(b, mb), EAGAIN);
	ASSERT_ERR(shmkit_mutex_lock(b, mb, 2 * MS), ETIMEDOUT);
	ASSERT_ERR(shmkit_mutex_unlock(b, mb), EPERM);
	ASSERT_ERR(shmkit_mutex_consistent(a, m), EINVAL);
	ASSERT_OK(shmkit_mutex_unlock(a, m));
	ASSERT_ERR(shmkit_mutex_unlock(a, m), EPERM);
	ASSERT_OK(shmkit_mutex_trylock(b, mb));
	ASSERT_OK(shmkit_mutex_unlock(b, mb));
	ASSERT_EQ(load_relaxed(&raw->word), 0);

	/* Read-only handle cannot lock. */
	ASSERT_OK(shmkit_seg_open(name, &ropts, &ro));
	ASSERT_ERR(shmkit_mutex_lock(
			   ro,
			   (struct shmkit_mutex *)((char *)shmkit_seg_base(ro) +
						   64),
			   0),
		   EBADF);
	shmkit_seg_close(ro);

	/* A dead owner (a slot nobody holds): taken over with EOWNERDEAD. */
	store_relaxed(&raw->word, dead_slot_word(40));
	ASSERT_ERR(shmkit_mutex_trylock(a, m), EAGAIN); /* no liveness check */
	ASSERT_ERR(shmkit_mutex_lock(a, m, 50 * MS), EOWNERDEAD);
	ASSERT_EQ(load_relaxed(&raw->recoveries), 1);
	ASSERT_OK(shmkit_mutex_consistent(a, m));
	ASSERT_OK(shmkit_mutex_unlock(a, m));
	ASSERT_OK(shmkit_mutex_lock(b, mb, 0));
	ASSERT_OK(shmkit_mutex_unlock(b, mb));

	/* Timeout 0 still checks liveness once. */
	store_relaxed(&raw->word, dead_slot_word(41));
	ASSERT_ERR(shmkit_mutex_lock(b, mb, 0), EOWNERDEAD);
	/* Unlocked without repair: not recoverable, for everyone, at once. */
	ASSERT_OK(shmkit_mutex_unlock(b, mb));
	ASSERT_ERR(shmkit_mutex_lock(a, m, SHMKIT_FOREVER), ENOTRECOVERABLE);
	ASSERT_ERR(shmkit_mutex_trylock(b, mb), ENOTRECOVERABLE);
	ASSERT_ERR(shmkit_mutex_unlock(a, m), ENOTRECOVERABLE);

	/* Re-initialised, usable again. */
	so.sz = sizeof(so);
	ASSERT_OK(shmkit_mutex_init(a, m, &so));

	/* Garbage words: errors, never a hang. */
	store_relaxed(&raw->word, 0x00000000deadbeefull); /* tid too big */
	ASSERT_ERR(shmkit_mutex_lock(a, m, SHMKIT_FOREVER), EBADMSG);
	ASSERT_ERR(shmkit_mutex_trylock(a, m), EBADMSG);
	store_relaxed(&raw->word, 0x1234567800000000ull); /* no tid, id */
	ASSERT_ERR(shmkit_mutex_lock(a, m, SHMKIT_FOREVER), EBADMSG);
	store_relaxed(&raw->word, SHMKIT__M_WAITERS); /* free + waiters */
	ASSERT_ERR(shmkit_mutex_lock(a, m, SHMKIT_FOREVER), EBADMSG);
	/* A live thread (us) with a thread identity that is not ours. */
	store_relaxed(&raw->word, (uint64_t)0x1234 << 32 | (uint32_t)getpid());
	{
		int rc = shmkit_mutex_lock(a, m, 5 * MS);

		ASSERT_TRUE(rc == -EOWNERDEAD || rc == -ETIMEDOUT);
	}
	/* 2000 random words with short timeouts: every call returns. */
	for (int i = 0; i < 2000; i++) {
		uint64_t w = th_rand();
		int rc;

		if (i % 4 == 0)
			w &= ~(uint64_t)0xffc00000; /* plausible tid */
		store_relaxed(&raw->word, w);
		rc = shmkit_mutex_lock(a, m, 100000);
		ASSERT_TRUE(rc == 0 || rc == -EOWNERDEAD || rc == -ETIMEDOUT ||
			    rc == -EBADMSG || rc == -ENOTRECOVERABLE ||
			    rc == -EDEADLK);
	}
	/* Corrupt liveness interval is clamped, not trusted. */
	ASSERT_OK(shmkit_mutex_init(a, m, NULL));
	store_relaxed(&raw->liveness_us, 0);
	store_relaxed(&raw->word, dead_slot_word(42));
	ASSERT_ERR(shmkit_mutex_lock(a, m, SHMKIT_FOREVER), EOWNERDEAD);
	ASSERT_OK(shmkit_mutex_consistent(a, m));
	ASSERT_OK(shmkit_mutex_unlock(a, m));

	shmkit_seg_close(b);
	shmkit_seg_close(a);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
