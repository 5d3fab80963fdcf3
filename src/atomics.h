/* SPDX-License-Identifier: MIT */
/*
 * C11 atomics behind helpers named for their memory order, plus likely()
 * and the cache-line size. Every non-relaxed use names its partner at the
 * call site.
 */
#ifndef SHMKIT_ATOMICS_H
#define SHMKIT_ATOMICS_H

#include <stdatomic.h>

#define SHMKIT_CACHELINE 64

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define store_relaxed(p, v) \
	atomic_store_explicit((p), (v), memory_order_relaxed)
#define store_release(p, v) \
	atomic_store_explicit((p), (v), memory_order_release)
#define fence_seq_cst() atomic_thread_fence(memory_order_seq_cst)

#endif /* SHMKIT_ATOMICS_H */
