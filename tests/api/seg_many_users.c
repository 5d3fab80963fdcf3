/* SPDX-License-Identifier: MIT */
/*
 * More handles than attachment slots: the first SHMKIT_SEG_MAX_USERS get a
 * slot each and are listed, the rest still count as users (a scoped
 * segment stays while any is open, gc leaves it) and are reported as
 * untracked once no slot is held; freed slots are reused.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <shmkit.h>
#include <unistd.h>

#define EXTRA 6
#define N (SHMKIT_SEG_MAX_USERS + EXTRA)

static struct shmkit_seg_info *stat_of(const char *name)
{
	static struct shmkit_seg_info in;

	memset(&in, 0, sizeof(in));
	in.sz = sizeof(in);
	ASSERT_OK(shmkit_seg_stat(name, &in));
	return &in;
}

static int test(void)
{
	struct shmkit_seg_opts sc = {.sz = sizeof(sc),
				     .flags = SHMKIT_SEG_SCOPED};
	struct shmkit_seg *h[N], *again;
	struct shmkit_seg_info *in;
	char name[128];

	th_name(name, sizeof(name), "many");
	ASSERT_OK(shmkit_seg_create(name, 4096, &sc, &h[0]));
	for (int i = 1; i < N; i++)
		ASSERT_OK(shmkit_seg_open(name, NULL, &h[i]));
	in = stat_of(name);
	ASSERT_EQ(in->state, SHMKIT_STATE_OK);
	ASSERT_EQ(in->nusers, SHMKIT_SEG_MAX_USERS);
	for (uint32_t i = 0; i < in->nusers; i++)
		ASSERT_EQ(in->users[i].pid, getpid());
	ASSERT_EQ(shmkit_seg_gc(name, 0), 0);

	/* Close every handle that holds a slot: the rest are untracked. */
	for (int i = 0; i < SHMKIT_SEG_MAX_USERS; i++)
		shmkit_seg_close(h[i]);
	in = stat_of(name);
	ASSERT_EQ(in->state, SHMKIT_STATE_OK);
	ASSERT_EQ(in->nusers, 0);
	ASSERT_EQ(in->users_untracked, 1);
	ASSERT_EQ(shmkit_seg_gc(name, 0), 0);

	/* Freed slots are taken again. */
	ASSERT_OK(shmkit_seg_open(name, NULL, &again));
	in = stat_of(name);
	ASSERT_EQ(in->nusers, 1);
	shmkit_seg_close(again);

	/* The scoped segment stays until the very last handle closes. */
	for (int i = SHMKIT_SEG_MAX_USERS; i < N; i++) {
		ASSERT_OK(shmkit_seg_open(name, NULL, &again));
		shmkit_seg_close(again);
		shmkit_seg_close(h[i]);
	}
	ASSERT_ERR(shmkit_seg_open(name, NULL, &again), ENOENT);
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
