/* SPDX-License-Identifier: MIT */
/*
 * Futex system calls on shared words (see futex.h).
 */
#define _GNU_SOURCE
#include "futex.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int shmkit__futex_wait(_Atomic uint32_t *word, uint32_t expected,
		       uint64_t timeout_ns)
{
	struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000ull),
			      .tv_nsec = (long)(timeout_ns % 1000000000ull)};
	long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected,
			  &ts, NULL, 0);

	if (rc == 0)
		return 0;
	switch (errno) {
	case EAGAIN:
		return 0; /* value already changed */
	case ETIMEDOUT:
		return -ETIMEDOUT;
	case EINTR:
		return -EINTR;
	default:
		return -errno;
	}
}

int shmkit__futex_wake(_Atomic uint32_t *word, int n)
{
	long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL,
			  NULL, 0);

	return rc < 0 ? -errno : (int)rc;
}

int shmkit__futex_waitv(_Atomic uint32_t *const *words, const uint32_t *vals,
			unsigned n, uint64_t abs_ns)
{
#ifdef SYS_futex_waitv
	struct futex_waitv w[128]; /* FUTEX_WAITV_MAX */
	struct timespec ts = {.tv_sec = (time_t)(abs_ns / 1000000000ull),
			      .tv_nsec = (long)(abs_ns % 1000000000ull)};

	if (n > 128)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		w[i].val = vals[i];
		w[i].uaddr = (uint64_t)(uintptr_t)words[i];
		w[i].flags = FUTEX_32; /* no FUTEX_PRIVATE_FLAG: shared */
		w[i].__reserved = 0;
	}
	/* Woken: the index of the word that was (not always 0). */
	if (syscall(SYS_futex_waitv, w, n, 0, &ts, CLOCK_MONOTONIC) >= 0)
		return 0;
	/* A word that changed is a wake-up; the deadline and a signal say
	 * so. Anything else (no such call, or one a seccomp filter refuses,
	 * often with EPERM) returns at once every time, and the caller must
	 * not take it for a wake-up and loop. */
	if (errno == EAGAIN)
		return 0;
	return -errno;
#else
	(void)words;
	(void)vals;
	(void)n;
	(void)abs_ns;
	return -ENOSYS;
#endif
}
