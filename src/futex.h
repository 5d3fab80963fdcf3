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

#endif /* SHMKIT_FUTEX_H */
