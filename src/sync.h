/* SPDX-License-Identifier: MIT */
/*
 * Shared layout of the synchronization objects (mutex, event, semaphore):
 * what the opaque public types struct shmkit_mutex / shmkit_event /
 * shmkit_sem hold, pinned with _Static_assert. sync.c owns every byte.
 * docs/ARCHITECTURE.md ("Synchronization") mirrors this file.
 */
#ifndef SHMKIT_SYNC_H
#define SHMKIT_SYNC_H

#include "shmkit.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Written last (release) by init; anything else means "not initialised". */
#define SHMKIT__MUTEX_MAGIC 0x584d4b53u /* "SKMX" */
#define SHMKIT__EVENT_MAGIC 0x56454b53u /* "SKEV" */
#define SHMKIT__SEM_MAGIC 0x4d454b53u	/* "SKEM" */

/*
 * Mutex word (64 bits; the futex is its low half, which every state change
 * a sleeper cares about modifies):
 *   bits  0..29  owner TID (0: free); SHMKIT__M_NOTREC: not recoverable
 *   bit  30      INCONSISTENT: taken over from a dead owner, not repaired
 *   bit  31      WAITERS: someone may sleep on the futex (unlock wakes one)
 *   bits 32..63  owner identity, written in the same CAS as the TID:
 *     bit 63 = 1: attachment-slot identity: bits 57..62 slot index,
 *                 bits 32..56 generation = hash of the slot's pid and
 *                 attach time (alive = slot OFD lock held, same generation)
 *     bit 63 = 0: thread identity: bits 32..62 = low 31 bits of the owner
 *                 thread's start time (/proc/TID/stat field 22, in clock
 *                 ticks); used by handles without a slot (anonymous
 *                 segments shared across fork, or a full slot table)
 */
#define SHMKIT__M_TID_MASK 0x3fffffffull
#define SHMKIT__M_TID_MAX 0x3fffffu /* PID_MAX_LIMIT - 1 */
#define SHMKIT__M_NOTREC 0x3fffffffull
#define SHMKIT__M_INCONS (1ull << 30)
#define SHMKIT__M_WAITERS (1ull << 31)
#define SHMKIT__M_OWNER (~(SHMKIT__M_INCONS | SHMKIT__M_WAITERS))
#define SHMKIT__ID_SLOT (1u << 31)
#define SHMKIT__ID_SLOT_SHIFT 25
#define SHMKIT__ID_GEN_MASK ((1u << 25) - 1)

struct shmkit__mutex {
	/* w: lockers (CAS), unlocker, recoverer; r: everyone. */
	_Atomic uint64_t word; /* 0x00 */
	/* w: init (release, last); r: every call (acquire). */
	_Atomic uint32_t magic; /* 0x08 SHMKIT__MUTEX_MAGIC */
	/* w: init; r: waiters (clamped). Longest time between two liveness
	 * checks of the owner by a waiter, microseconds. */
	_Atomic uint32_t liveness_us; /* 0x0c */
	/* w: recoverers (fetch_add); r: anyone. Owner deaths recovered. */
	_Atomic uint64_t recoveries; /* 0x10 */
	uint64_t reserved;	     /* 0x18 zero */
};

/*
 * Event state word (64 bits):
 *   bits  0..23  waiters announced and not yet departed (may over-count
 *                after a waiter died; healed by the next signal that
 *                finds nobody asleep)
 *   bits 24..31  reset generation: bumped whenever a signal/broadcast
 *                zeroes the count; a waiter departs (decrements) only if
 *                the generation is the one it announced under
 *   bits 32..63  announce generation: bumped by every announce, so that a
 *                reset cannot confuse "same count" with "same waiters"
 */
#define SHMKIT__E_CNT_MASK 0xffffffull
#define SHMKIT__E_RGEN_SHIFT 24
#define SHMKIT__E_AGEN_SHIFT 32

struct shmkit__event {
	/* Futex word. w: signal/broadcast (fetch_add, release); r: waiters
	 * (acquire), the kernel. Counts wake-up rounds, wraps. */
	_Atomic uint32_t seq;	/* 0x00 */
	_Atomic uint32_t magic; /* 0x04 SHMKIT__EVENT_MAGIC */
	/* w: waiters (announce/depart), signalers (reset); r: signalers. */
	_Atomic uint64_t wstate; /* 0x08 */
	uint64_t reserved[2];	 /* 0x10 zero */
};

/* Semaphore word: bits 0..30 count, bit 31 WAITERS. */
#define SHMKIT__S_CNT_MASK 0x7fffffffu
#define SHMKIT__S_WAITERS 0x80000000u

struct shmkit__sem {
	/* Futex word. w: post (CAS, release), wait (CAS, acquire); r: all. */
	_Atomic uint32_t word;	/* 0x00 */
	_Atomic uint32_t magic; /* 0x04 SHMKIT__SEM_MAGIC */
	uint64_t reserved[3];	/* 0x08 zero */
};

_Static_assert(sizeof(struct shmkit__mutex) == 32, "mutex size");
_Static_assert(offsetof(struct shmkit__mutex, magic) == 0x08, "mutex");
_Static_assert(offsetof(struct shmkit__mutex, recoveries) == 0x10, "mutex");
_Static_assert(sizeof(struct shmkit__event) == 32, "event size");
_Static_assert(offsetof(struct shmkit__event, wstate) == 0x08, "event");
_Static_assert(sizeof(struct shmkit__sem) == 32, "sem size");
_Static_assert(sizeof(struct shmkit__mutex) == sizeof(struct shmkit_mutex),
	       "public mutex storage");
_Static_assert(sizeof(struct shmkit__event) == sizeof(struct shmkit_event),
	       "public event storage");
_Static_assert(sizeof(struct shmkit__sem) == sizeof(struct shmkit_sem),
	       "public sem storage");
_Static_assert(alignof(struct shmkit_mutex) >= alignof(struct shmkit__mutex),
	       "public mutex alignment");
_Static_assert(alignof(struct shmkit_event) >= alignof(struct shmkit__event),
	       "public event alignment");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "shared atomics lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "shared atomics lock-free");
/* The futex is the low half of the 64-bit mutex word. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little endian");

/*
 * Futex system calls made by sync.c in this process (wake and wait), for
 * tests that prove the no-waiter paths stay in user space. Relaxed.
 */
uint64_t shmkit__sync_futex_calls(void);

#endif /* SHMKIT_SYNC_H */
