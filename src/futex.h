/* SPDX-License-Identifier: MIT */
/*
 * Futex wrappers for 32-bit words in shared memory (never FUTEX_PRIVATE:
 * the waiters are in other processes). Waits are always bounded.
 */
#ifndef SHMKIT_FUTEX_H
#define SHMKIT_FUTEX_H

#include <stdatomic.h>
#include <stdint.h>

/*
 * Sleep while *word == expected, at most timeout_ns (relative; UINT64_MAX
 * is not accepted: every wait is bounded, callers loop). Returns 0 when
 * woken or the value differed, -ETIMEDOUT, -EINTR.
 */
int shmkit__futex_wait(_Atomic uint32_t *word, uint32_t expected,
		       uint64_t timeout_ns);
/* Wake up to n waiters (INT32_MAX for all). Returns the number woken. */
int shmkit__futex_wake(_Atomic uint32_t *word, int n);
/*
 * Sleep until one of n (<= 128) words differs from its value, or until the
 * absolute CLOCK_MONOTONIC time abs_ns. The words may live in different
 * segments (different files), which one FUTEX_WAIT cannot span:
 * futex_waitv (Linux 5.16) can, with shared (non-private) entries.
 * Returns 0 (woken, whichever word, or a word had changed), -ETIMEDOUT,
 * -EINTR (a signal), -EINVAL (n too large), -ENOSYS (no futex_waitv) or
 * another negative errno the system call gave (a seccomp filter may refuse
 * it with -EPERM): on those errors the caller falls back to one word at a
 * time.
 */
int shmkit__futex_waitv(_Atomic uint32_t *const *words, const uint32_t *vals,
			unsigned n, uint64_t abs_ns);

#endif /* SHMKIT_FUTEX_H */
