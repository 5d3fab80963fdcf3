/* SPDX-License-Identifier: MIT */
/*
 * shmkit__futex_waitv(), the wait of shmkit_chan_select() on several
 * channels: a wake-up on any word is a wake-up (0), whichever its index,
 * and whatever errno held before; a word that already differs is one too;
 * the deadline is -ETIMEDOUT. The kernel returns the woken word's index,
 * which the wrapper once took for a failure for every index but 0 (then
 * read a stale errno: with EPERM there, select gave up futex_waitv for the
 * rest of the process).
 */
#define _GNU_SOURCE
#include "futex.h"
#include "harness.h"
#include "platform.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static _Atomic uint32_t word[3];

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* After 20 ms, change word 2 and wake it. */
static void *waker(void *arg)
{
	(void)arg;
	shmkit__sleep_ns(20000000);
	atomic_fetch_add(&word[2], 1);
	shmkit__futex_wake(&word[2], 1);
	return NULL;
}

static int test(void)
{
	_Atomic uint32_t *words[3] = {&word[0], &word[1], &word[2]};
	uint32_t vals[3] = {0, 7, 0};
	pthread_t t;
	uint64_t t0, dt;
	int rc;

	/* Already different (word 1): at once; and whether the call is
	 * there at all. */
	errno = EACCES;
	rc = shmkit__futex_waitv(words, vals, 3, mono_ns() + 5000000000ull);
	if (rc == -ENOSYS || rc == -EPERM)
		return TH_SKIP; /* no futex_waitv here: select falls back */
	ASSERT_OK(rc);
	vals[1] = 0;

	/* Woken on the last word, with a stale errno that a misread
	 * return value would report. */
	ASSERT_OK(pthread_create(&t, NULL, waker, NULL));
	errno = EPERM;
	t0 = mono_ns();
	rc = shmkit__futex_waitv(words, vals, 3, t0 + 5000000000ull);
	dt = mono_ns() - t0;
	ASSERT_OK(pthread_join(t, NULL));
	ASSERT_OK(rc);
	ASSERT_LT(dt, 4000000000ull);

	/* Nobody: the deadline. */
	vals[2] = 1;
	ASSERT_ERR(shmkit__futex_waitv(words, vals, 3, mono_ns() + 1000000),
		   ETIMEDOUT);
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
