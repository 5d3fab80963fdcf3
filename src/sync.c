/* SPDX-License-Identifier: MIT */
/*
 * Process-shared synchronization in a segment: a robust mutex built on a
 * futex word that holds the owner's TID and identity, an event (condition
 * variable / event count) on a futex sequence word, and a counting
 * semaphore. Owns the liveness checks that turn a dead holder into
 * -EOWNERDEAD. Layout in sync.h; the why in docs/ARCHITECTURE.md.
 */
#define _GNU_SOURCE
#include "sync.h"

#include "atomics.h"
#include "crash.h"
#include "futex.h"
#include "layout.h"
#include "platform.h"
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Spins before sleeping on a held mutex or an empty semaphore. */
#define SPIN_MAX 100
/*
 * Longest sleep of an event or semaphore waiter before it re-checks the
 * word by itself: bounds the cost of the rare lost wake-up (a waiter count
 * reset racing with a new waiter, or a hostile peer), not a liveness poll.
 */
#define WAKE_POLL_NS 20000000ull
/* Least time event_wait() gives itself to take the mutex back. */
#define RELOCK_MIN_NS 100000000ull
#define LIVENESS_MIN_US 10u
#define LIVENESS_MAX_US 1000000u

static _Atomic uint64_t futex_calls;

uint64_t shmkit__sync_futex_calls(void)
{
	return load_relaxed(&futex_calls);
}

static int fwait(_Atomic uint32_t *word, uint32_t expected, uint64_t ns)
{
	atomic_fetch_add_explicit(&futex_calls, 1, memory_order_relaxed);
	if (ns < 1000)
		ns = 1000;
	return shmkit__futex_wait(word, expected, ns);
}

static int fwake(_Atomic uint32_t *word, int n)
{
	atomic_fetch_add_explicit(&futex_calls, 1, memory_order_relaxed);
	return shmkit__futex_wake(word, n);
}

/* The futex half of the 64-bit mutex word (little endian: the low half). */
static _Atomic uint32_t *word_futex(_Atomic uint64_t *w)
{
	return (_Atomic uint32_t *)(void *)w;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

static uint64_t deadline_of(uint64_t now, uint64_t timeout_ns)
{
	return timeout_ns >= UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
}

/*
 * Identity of the calling thread, cached in TLS because the fast path
 * cannot afford gettid()/getpid() system calls. A forked child starts
 * with a copy of its parent's TLS: the atfork handler clears it (only the
 * forking thread exists in the child), so the child reads its own.
 */
struct self_id {
	uint32_t tid; /* 0 until filled; set last */
	pid_t pid;
	uint32_t start; /* low 31 bits of this thread's start time (ticks) */
};

static _Thread_local struct self_id self
	__attribute__((tls_model("initial-exec")));
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_child(void)
{
	memset(&self, 0, sizeof(self));
}

static void atfork_register(void)
{
	pthread_atfork(NULL, NULL, atfork_child);
}

/*
 * State and start time of thread tid from /proc/TID/stat (a thread's own
 * entry exists for every TID, leader or not). Returns 1 if the thread
 * exists and is not a zombie (*start filled), 0 if it is gone or a zombie,
 * -errno if /proc cannot tell.
 */
static int proc_thread(uint32_t tid, uint64_t *start)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd, i;

	snprintf(path, sizeof(path), "/proc/%u/stat", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? 0 : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0 && errno == ESRCH) {
		close(fd);
		return 0;
	}
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	/* "tid (comm) S ...": comm may hold anything, so from the last ')'. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -EIO;
	p += 2;
	if (*p == 'Z' || *p == 'X' || *p == 'x')
		return 0;
	/* Field 3 is the state; starttime is field 22. */
	for (i = 3; i < 22 && p; i++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p)
		return -EIO;
	*start = strtoull(p, NULL, 10);
	return 1;
}

static __attribute__((noinline)) void self_init(void)
{
	uint32_t tid = (uint32_t)syscall(SYS_gettid);
	uint64_t start = 0;

	pthread_once(&atfork_once, atfork_register);
	self.pid = getpid();
	if (proc_thread(tid, &start) <= 0)
		start = 0; /* no /proc: checkers fall back to kill(tid, 0) */
	self.start = (uint32_t)start & 0x7fffffffu;
	self.tid = tid;
}

/* Generation of an attachment slot: changes whenever it is re-taken. */
static uint32_t slot_gen(int32_t pid, uint64_t attach_ns)
{
	uint64_t h = (uint64_t)(uint32_t)pid * 0x9e3779b97f4a7c15ull;

	h ^= attach_ns;
	h *= 0xff51afd7ed558ccdull;
	return (uint32_t)(h >> 39) & SHMKIT__ID_GEN_MASK;
}

/* The value this thread writes into a mutex word to own it via seg. */
static inline uint64_t self_word(const struct shmkit_seg *seg)
{
	uint32_t id;

	if (seg->slot >= 0) {
		const struct shmkit_slot *sl = &seg->hdr->slots[seg->slot];

		id = SHMKIT__ID_SLOT |
		     (uint32_t)seg->slot << SHMKIT__ID_SLOT_SHIFT |
		     slot_gen(load_relaxed(&sl->pid),
			      load_relaxed(&sl->attach_ns));
	} else {
		id = self.start;
	}
	return (uint64_t)id << 32 | self.tid;
}

/*
 * Is the owner recorded in mutex word w alive? 1 alive or cannot tell,
 * 0 dead. Never says dead for a live owner (an owner that closed the
 * handle it locked through counts as dead: its claim went with it).
 */
static int owner_alive(const struct shmkit_seg *seg, uint64_t w)
{
	uint32_t tid = (uint32_t)(w & SHMKIT__M_TID_MASK);
	uint32_t id = (uint32_t)(w >> 32);
	uint64_t start;
	int r;

	if (id & SHMKIT__ID_SLOT) {
		unsigned slot = (id >> SHMKIT__ID_SLOT_SHIFT) & 63u;
		const struct shmkit_slot *sl = &seg->hdr->slots[slot];

		/* The slot was re-taken (or released at close) since the
		 * owner locked: the owner's attachment is gone. */
		if (slot_gen(load_relaxed(&sl->pid),
			     load_relaxed(&sl->attach_ns)) !=
		    (id & SHMKIT__ID_GEN_MASK))
			return 0;
		if ((int)slot == seg->slot)
			return 1; /* our own attachment: this process */
		if (seg->fd < 0)
			return 1; /* cannot tell */
		r = shmkit__ofd_held(seg->fd, SHMKIT_LOCK_SLOT0 + slot,
				     F_WRLCK);
		return r != 0;
	}
	r = proc_thread(tid, &start);
	if (r == 0)
		return 0;
	if (r < 0)
		return !(kill((pid_t)tid, 0) < 0 && errno == ESRCH);
	return ((uint32_t)start & 0x7fffffffu) == id;
}

/*
 * Common checks: obj lies inside seg's data area, 8-byte aligned; the
 * handle is writable and belongs to this process.
 */
static inline int obj_check(const struct shmkit_seg *seg, const void *obj)
{
	uintptr_t off;

	if (unlikely(!seg || !obj))
		return -EINVAL;
	off = (uintptr_t)obj - (uintptr_t)seg->data;
	if (unlikely(off > seg->data_size - 32 || (off & 7)))
		return -EINVAL;
	if (unlikely(seg->rdonly))
		return -EBADF;
	if (unlikely(!self.tid))
		self_init();
	/*
	 * A child forked with a file-backed handle shares its parent's open
	 * file description, hence its slot lock: ownership through it would
	 * be the parent's. It must open the segment itself.
	 */
	if (unlikely(seg->fd >= 0 && seg->pid != self.pid))
		return -ECHILD;
	return 0;
}

static int mutex_get(const struct shmkit_seg *seg, struct shmkit_mutex *mp,
		     struct shmkit__mutex **out)
{
	struct shmkit__mutex *m = (struct shmkit__mutex *)mp;
	int rc = obj_check(seg, mp);

	if (unlikely(rc < 0))
		return rc;
	/* Pairs with the release store of magic in shmkit_mutex_init(). */
	if (unlikely(load_acquire(&m->magic) != SHMKIT__MUTEX_MAGIC))
		return -EINVAL;
	*out = m;
	return 0;
}

/* ------------------------------------------------------------------ mutex */

int shmkit_mutex_init(struct shmkit_seg *seg, struct shmkit_mutex *mp,
		      const struct shmkit_sync_opts *opts)
{
	struct shmkit__mutex *m = (struct shmkit__mutex *)mp;
	uint64_t us = SHMKIT_SYNC_LIVENESS_NS / 1000;
	int rc = obj_check(seg, mp);

	if (rc < 0)
		return rc;
	if (opts) {
		if (opts->sz < offsetof(struct shmkit_sync_opts, liveness_ns) +
				       sizeof(opts->liveness_ns))
			return -EINVAL;
		if (opts->liveness_ns)
			us = opts->liveness_ns / 1000;
	}
	if (us < LIVENESS_MIN_US)
		us = LIVENESS_MIN_US;
	if (us > LIVENESS_MAX_US)
		us = LIVENESS_MAX_US;
	store_relaxed(&m->word, 0);
	store_relaxed(&m->liveness_us, (uint32_t)us);
	store_relaxed(&m->recoveries, 0);
	m->reserved = 0;
	/* Pairs with the acquire load of magic in mutex_get(). */
	store_release(&m->magic, SHMKIT__MUTEX_MAGIC);
	return 0;
}

/*
 * How much earlier than the liveness interval a waiter asks to be woken.
 * The kernel may defer a timed futex wake-up by the thread's timer slack
 * (50 us by default) to batch timers, which on its own stretched every
 * interval by a fifth at the default; and from the timer firing to the
 * check's result the waiter needs to be woken and make one fcntl() (up to
 * about 45 us measured on a VM, WAKE_PATH_NS). Checking that much earlier
 * keeps a death noticed within the interval of the kernel releasing the
 * holder's lock (bench/bench_sync.c --death-only measures it); at most
 * half the interval, so a short one is still a sleep.
 */
#define WAKE_PATH_NS 50000ull

static uint64_t slack_margin_ns(uint64_t live)
{
	int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	uint64_t s = (slack < 0 ? 50000 : (uint64_t)slack) + WAKE_PATH_NS;

	return s < live / 2 ? s : live / 2;
}

static uint64_t liveness_ns(struct shmkit__mutex *m)
{
	uint32_t us = load_relaxed(&m->liveness_us);

	if (us < LIVENESS_MIN_US)
		us = LIVENESS_MIN_US;
	if (us > LIVENESS_MAX_US)
		us = LIVENESS_MAX_US;
	return (uint64_t)us * 1000;
}

/*
 * The contended path. Spin briefly, then announce (WAITERS) and sleep on
 * the futex half. The announce and the unlocker's release are RMWs of the
 * same word, so their order is the word's modification order: an unlock
 * either sees WAITERS (and wakes) or happens before the announce (and the
 * CAS that sets WAITERS fails on the changed word); the kernel re-checks
 * the value under its futex lock before sleeping. No fence is needed
 * here; the two-word handshake is the event's (see event_prepare()).
 *
 * Every sleep is bounded by the liveness interval: an owner seen for that
 * long is checked (owner_alive()), and a dead one is replaced by a CAS of
 * the exact word seen, so of several waiters exactly one recovers.
 */
static int lock_slow(const struct shmkit_seg *seg, struct shmkit__mutex *m,
		     uint64_t me, uint64_t timeout_ns)
{
	_Atomic uint32_t *fw = word_futex(&m->word);
	uint64_t live = liveness_ns(m), period = 0;
	uint64_t deadline = 0, watched = 0, since = 0, now, sleep;
	uint64_t want = me, w = load_relaxed(&m->word);
	int spins = SPIN_MAX, checked = 0;

	for (;;) {
		uint64_t tid = w & SHMKIT__M_TID_MASK;

		if (tid == 0) {
			if (unlikely(w != 0))
				return -EBADMSG; /* unlock writes exactly 0 */
			/* Acquire: pairs with the release CAS in unlock.
			 * Release: see lock_inner(). */
			if (atomic_compare_exchange_weak_explicit(
				    &m->word, &w, want, memory_order_acq_rel,
				    memory_order_relaxed)) {
				SHMKIT_CRASH_POINT("sync.mutex.lock.acquired");
				return 0;
			}
			continue;
		}
		if (tid == SHMKIT__M_NOTREC)
			return -ENOTRECOVERABLE;
		if (unlikely(tid > SHMKIT__M_TID_MAX))
			return -EBADMSG;
		if ((w & SHMKIT__M_OWNER) == me)
			return -EDEADLK;
		if (spins > 0 && timeout_ns) {
			spins--;
			cpu_relax();
			w = load_relaxed(&m->word);
			continue;
		}
		now = shmkit__now_ns();
		if (!deadline) {
			deadline = deadline_of(now, timeout_ns);
			/* Checks at most one interval apart, slack included. */
			period = live - slack_margin_ns(live);
		}
		if ((w & SHMKIT__M_OWNER) != watched) {
			watched = w & SHMKIT__M_OWNER;
			since = now;
		}
		if (now - since >= period || (now >= deadline && !checked)) {
			checked = 1;
			/* Pairs with the release of the owner's lock CAS
			 * (lock_inner()): w was read from it or from a later
			 * RMW in its release sequence (WAITERS). */
			atomic_thread_fence(memory_order_acquire);
			if (!owner_alive(seg, w)) {
				/* Keep WAITERS: others may sleep. Acq_rel:
				 * acquire pairs with what the dead owner
				 * released; release as in lock_inner(). */
				uint64_t nw = me | SHMKIT__M_INCONS |
					      SHMKIT__M_WAITERS;

				if (atomic_compare_exchange_strong_explicit(
					    &m->word, &w, nw,
					    memory_order_acq_rel,
					    memory_order_relaxed)) {
					atomic_fetch_add_explicit(
						&m->recoveries, 1,
						memory_order_relaxed);
					SHMKIT_CRASH_POINT(
						"sync.mutex.lock.recovered");
					return -EOWNERDEAD;
				}
				continue;
			}
			since = now;
		}
		if (now >= deadline)
			return -ETIMEDOUT;
		if (!(w & SHMKIT__M_WAITERS)) {
			if (!atomic_compare_exchange_weak_explicit(
				    &m->word, &w, w | SHMKIT__M_WAITERS,
				    memory_order_relaxed, memory_order_relaxed))
				continue;
			w |= SHMKIT__M_WAITERS;
			SHMKIT_CRASH_POINT("sync.mutex.lock.waiters");
		}
		/* Having slept, take the lock with WAITERS set: others may
		 * still sleep and our unlock must wake them. */
		want = me | SHMKIT__M_WAITERS;
		sleep = since + period - now;
		if (sleep > deadline - now)
			sleep = deadline - now;
		fwait(fw, (uint32_t)w, sleep);
		w = load_relaxed(&m->word);
	}
}

static inline int lock_inner(const struct shmkit_seg *seg,
			     struct shmkit__mutex *m, uint64_t me,
			     uint64_t timeout_ns)
{
	uint64_t exp = 0;

	/*
	 * Acquire: pairs with the release CAS in unlock_inner(), so the last
	 * critical section happens before ours. Release: pairs with the
	 * acquire fence before owner_alive() in lock_slow(); a checker that
	 * reads our identity from the word then sees our attachment slot's
	 * pid and attach_ns as we wrote them at attach (relaxed stores in
	 * seg_attach()), not the previous attacher's, and cannot take our
	 * lock for a dead one's. Free on x86 (every RMW is a full barrier).
	 */
	if (likely(atomic_compare_exchange_strong_explicit(
		    &m->word, &exp, me, memory_order_acq_rel,
		    memory_order_relaxed))) {
		SHMKIT_CRASH_POINT("sync.mutex.lock.acquired");
		return 0;
	}
	return lock_slow(seg, m, me, timeout_ns);
}

int shmkit_mutex_lock(struct shmkit_seg *seg, struct shmkit_mutex *mp,
		      uint64_t timeout_ns)
{
	struct shmkit__mutex *m;
	int rc = mutex_get(seg, mp, &m);

	if (unlikely(rc < 0))
		return rc;
	return lock_inner(seg, m, self_word(seg), timeout_ns);
}

int shmkit_mutex_trylock(struct shmkit_seg *seg, struct shmkit_mutex *mp)
{
	struct shmkit__mutex *m;
	uint64_t me, w = 0, tid;
	int rc = mutex_get(seg, mp, &m);

	if (unlikely(rc < 0))
		return rc;
	me = self_word(seg);
	/* Acq_rel: as in lock_inner(). */
	if (atomic_compare_exchange_strong_explicit(&m->word, &w, me,
						    memory_order_acq_rel,
						    memory_order_relaxed)) {
		SHMKIT_CRASH_POINT("sync.mutex.lock.acquired");
		return 0;
	}
	tid = w & SHMKIT__M_TID_MASK;
	if (tid == SHMKIT__M_NOTREC)
		return -ENOTRECOVERABLE;
	if (tid == 0 || tid > SHMKIT__M_TID_MAX)
		return -EBADMSG;
	if ((w & SHMKIT__M_OWNER) == me)
		return -EDEADLK;
	return -EAGAIN;
}

static int unlock_inner(struct shmkit__mutex *m, uint64_t me)
{
	uint64_t w = load_relaxed(&m->word), nw;

	do {
		if ((w & SHMKIT__M_OWNER) != me) {
			if ((w & SHMKIT__M_TID_MASK) == SHMKIT__M_NOTREC)
				return -ENOTRECOVERABLE;
			return -EPERM;
		}
		/* Unlocked while inconsistent: nobody can trust the state. */
		nw = (w & SHMKIT__M_INCONS) ? SHMKIT__M_NOTREC : 0;
		SHMKIT_CRASH_POINT("sync.mutex.unlock.enter");
		/* Release: pairs with the acquire CAS in lock_inner() and
		 * lock_slow(); our critical section happens before the next. */
	} while (!atomic_compare_exchange_weak_explicit(
		&m->word, &w, nw, memory_order_release, memory_order_relaxed));
	SHMKIT_CRASH_POINT("sync.mutex.unlock.released");
	if (nw)
		fwake(word_futex(&m->word), INT_MAX);
	else if (w & SHMKIT__M_WAITERS)
		fwake(word_futex(&m->word), 1);
	SHMKIT_CRASH_POINT("sync.mutex.unlock.woken");
	return 0;
}

int shmkit_mutex_unlock(struct shmkit_seg *seg, struct shmkit_mutex *mp)
{
	struct shmkit__mutex *m;
	int rc = mutex_get(seg, mp, &m);

	if (unlikely(rc < 0))
		return rc;
	return unlock_inner(m, self_word(seg));
}

int shmkit_mutex_consistent(struct shmkit_seg *seg, struct shmkit_mutex *mp)
{
	struct shmkit__mutex *m;
	uint64_t me, w;
	int rc = mutex_get(seg, mp, &m);

	if (rc < 0)
		return rc;
	me = self_word(seg);
	w = load_relaxed(&m->word);
	do {
		if ((w & SHMKIT__M_OWNER) != me)
			return -EPERM;
		if (!(w & SHMKIT__M_INCONS))
			return -EINVAL;
		/* Relaxed: we hold the lock; unlock publishes the repair. */
	} while (!atomic_compare_exchange_weak_explicit(
		&m->word, &w, w & ~SHMKIT__M_INCONS, memory_order_relaxed,
		memory_order_relaxed));
	SHMKIT_CRASH_POINT("sync.mutex.consistent");
	return 0;
}

/* ------------------------------------------------------------------ event */

static int event_get(const struct shmkit_seg *seg, struct shmkit_event *evp,
		     struct shmkit__event **out)
{
	struct shmkit__event *e = (struct shmkit__event *)evp;
	int rc = obj_check(seg, evp);

	if (unlikely(rc < 0))
		return rc;
	/* Pairs with the release store of magic in shmkit_event_init(). */
	if (unlikely(load_acquire(&e->magic) != SHMKIT__EVENT_MAGIC))
		return -EINVAL;
	*out = e;
	return 0;
}

int shmkit_event_init(struct shmkit_seg *seg, struct shmkit_event *evp)
{
	struct shmkit__event *e = (struct shmkit__event *)evp;
	int rc = obj_check(seg, evp);

	if (rc < 0)
		return rc;
	store_relaxed(&e->seq, 0);
	store_relaxed(&e->wstate, 0);
	e->reserved[0] = 0;
	e->reserved[1] = 0;
	/* Pairs with the acquire load of magic in event_get(). */
	store_release(&e->magic, SHMKIT__EVENT_MAGIC);
	return 0;
}

static uint32_t rgen_of(uint64_t w)
{
	return (uint32_t)(w >> SHMKIT__E_RGEN_SHIFT) & 0xffu;
}

/*
 * Announce a waiter: take the sequence snapshot, then count ourselves in.
 * The ticket is the snapshot (low 32 bits) and the reset generation we
 * were counted under (bits 32..39).
 *
 * The sleep/wake handshake spans two words (the caller's condition and
 * wstate), so it needs a store->load fence on both sides. Waiter: store
 * the announce, fence, then load the condition (the caller re-checks it,
 * or the mutex hand-over orders it) and the kernel loads seq. Waker:
 * store the condition, fence (event_wake()), then load wstate. With both
 * seq_cst fences at least one side sees the other's store (the
 * store-buffering outcome where both miss is forbidden); with either fence
 * missing, both may read stale values and the waiter sleeps through the
 * only wake-up. Even then seq is bumped on every signal, so such a waiter
 * would wake at its next WAKE_POLL_NS check, not never.
 */
static int event_prepare(struct shmkit__event *e, uint64_t *ticket)
{
	/* Acquire: pairs with the release fetch_add of seq in event_wake(). */
	uint32_t s = load_acquire(&e->seq);
	uint64_t w = load_relaxed(&e->wstate), nw;

	do {
		if ((w & SHMKIT__E_CNT_MASK) == SHMKIT__E_CNT_MASK)
			return -EAGAIN; /* 16M waiters: refuse, never wrap */
		nw = w + 1 + (1ull << SHMKIT__E_AGEN_SHIFT);
		/* seq_cst: our snapshot happens before a waker's bump once
		 * the waker has read this announce (see event_wake()). */
	} while (!atomic_compare_exchange_weak(&e->wstate, &w, nw));
	*ticket = s | (uint64_t)rgen_of(nw) << 32;
	fence_seq_cst(); /* pairs with the fence in event_wake() */
	SHMKIT_CRASH_POINT("sync.event.wait.announced");
	return 0;
}

/* Count ourselves out, unless a waker already zeroed the count. */
static void event_depart(struct shmkit__event *e, uint64_t ticket)
{
	uint32_t rgen = (uint32_t)(ticket >> 32) & 0xffu;
	uint64_t w = load_relaxed(&e->wstate);

	do {
		if (rgen_of(w) != rgen || (w & SHMKIT__E_CNT_MASK) == 0)
			return;
		/* Relaxed: leaving publishes nothing. */
	} while (!atomic_compare_exchange_weak_explicit(&e->wstate, &w, w - 1,
							memory_order_relaxed,
							memory_order_relaxed));
}

/* Sleep until seq moves from the ticket's snapshot or the deadline. */
static int event_sleep(struct shmkit__event *e, uint64_t ticket,
		       uint64_t deadline)
{
	uint32_t s = (uint32_t)ticket;
	int rc;

	for (;;) {
		uint64_t now, ns;

		/* Acquire: pairs with the release bump in event_wake(). */
		if (load_acquire(&e->seq) != s) {
			rc = 0;
			break;
		}
		now = shmkit__now_ns();
		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		ns = deadline - now;
		if (ns > WAKE_POLL_NS)
			ns = WAKE_POLL_NS;
		fwait(&e->seq, s, ns);
	}
	SHMKIT_CRASH_POINT("sync.event.wait.woken");
	event_depart(e, ticket);
	return rc;
}

/*
 * Signal (n = 1) or broadcast (n = INT_MAX). Reads the waiter count first
 * and always bumps seq (one RMW, no system call); enters the kernel only
 * if someone is counted.
 *
 * Healing: a waiter killed while counted leaves the count too high. When
 * a wake finds nobody asleep (or after a broadcast), every waiter counted
 * in w took its snapshot before our bump (its announce, which we read,
 * came after its snapshot), so none of them can fall asleep on the new
 * value: zeroing the count (if it is still w) forgets only the dead and
 * those about to return. The reset generation tells the survivors not to
 * decrement again. One futex_wake that wakes nobody is the whole cost.
 */
static void event_wake(struct shmkit__event *e, int n)
{
	uint64_t w, nw;
	int woken;

	fence_seq_cst(); /* pairs with the fence in event_prepare() */
	/* Acquire: pairs with the seq_cst announce in event_prepare(). */
	w = load_acquire(&e->wstate);
	/* Release: pairs with the acquire loads of seq by waiters. */
	atomic_fetch_add_explicit(&e->seq, 1, memory_order_release);
	if ((w & SHMKIT__E_CNT_MASK) == 0)
		return;
	SHMKIT_CRASH_POINT("sync.event.signal.bumped");
	woken = fwake(&e->seq, n);
	if (woken == 0 || n == INT_MAX) {
		nw = (w & ~((1ull << SHMKIT__E_AGEN_SHIFT) - 1)) |
		     (uint64_t)((rgen_of(w) + 1) & 0xffu)
			     << SHMKIT__E_RGEN_SHIFT;
		/* Relaxed: only the count changes; it guards no data. */
		atomic_compare_exchange_strong_explicit(&e->wstate, &w, nw,
							memory_order_relaxed,
							memory_order_relaxed);
	}
	SHMKIT_CRASH_POINT("sync.event.signal.woken");
}

int shmkit_event_signal(struct shmkit_seg *seg, struct shmkit_event *evp)
{
	struct shmkit__event *e;
	int rc = event_get(seg, evp, &e);

	if (unlikely(rc < 0))
		return rc;
	event_wake(e, 1);
	return 0;
}

int shmkit_event_broadcast(struct shmkit_seg *seg, struct shmkit_event *evp)
{
	struct shmkit__event *e;
	int rc = event_get(seg, evp, &e);

	if (unlikely(rc < 0))
		return rc;
	event_wake(e, INT_MAX);
	return 0;
}

int shmkit_event_prepare(struct shmkit_seg *seg, struct shmkit_event *evp,
			 uint64_t *ticket)
{
	struct shmkit__event *e;
	int rc = event_get(seg, evp, &e);

	if (rc < 0)
		return rc;
	if (!ticket)
		return -EINVAL;
	return event_prepare(e, ticket);
}

int shmkit_event_await(struct shmkit_seg *seg, struct shmkit_event *evp,
		       uint64_t ticket, uint64_t timeout_ns)
{
	struct shmkit__event *e;
	int rc = event_get(seg, evp, &e);

	if (rc < 0)
		return rc;
	return event_sleep(e, ticket,
			   deadline_of(shmkit__now_ns(), timeout_ns));
}

int shmkit_event_cancel(struct shmkit_seg *seg, struct shmkit_event *evp,
			uint64_t ticket)
{
	struct shmkit__event *e;
	int rc = event_get(seg, evp, &e);

	if (rc < 0)
		return rc;
	event_depart(e, ticket);
	return 0;
}

int shmkit_event_wait(struct shmkit_seg *seg, struct shmkit_event *evp,
		      struct shmkit_mutex *mp, uint64_t timeout_ns)
{
	struct shmkit__event *e;
	struct shmkit__mutex *m;
	uint64_t me, w, ticket, now;
	int rc, lrc;

	rc = event_get(seg, evp, &e);
	if (rc < 0)
		return rc;
	rc = mutex_get(seg, mp, &m);
	if (rc < 0)
		return rc;
	me = self_word(seg);
	w = load_relaxed(&m->word);
	if ((w & SHMKIT__M_OWNER) != me)
		return -EPERM;
	if (w & SHMKIT__M_INCONS)
		return -EINVAL; /* unlocking it would lose it for good */
	now = shmkit__now_ns();
	/* The snapshot is taken under the mutex: a signaler that changed
	 * the predicate under it bumps seq after our snapshot. */
	rc = event_prepare(e, &ticket);
	if (rc < 0)
		return rc;
	rc = unlock_inner(m, me);
	if (rc < 0) {
		event_depart(e, ticket);
		return rc;
	}
	SHMKIT_CRASH_POINT("sync.event.wait.unlocked");
	rc = event_sleep(e, ticket, deadline_of(now, timeout_ns));
	lrc = lock_inner(seg, m, me,
			 timeout_ns > RELOCK_MIN_NS ? timeout_ns
						    : RELOCK_MIN_NS);
	if (lrc == -EOWNERDEAD)
		return lrc;
	if (lrc == -ETIMEDOUT)
		return -ENOLCK;
	if (lrc < 0)
		return lrc;
	return rc;
}

/* -------------------------------------------------------------- semaphore */

static int sem_get(const struct shmkit_seg *seg, struct shmkit_sem *sp,
		   struct shmkit__sem **out)
{
	struct shmkit__sem *s = (struct shmkit__sem *)sp;
	int rc = obj_check(seg, sp);

	if (unlikely(rc < 0))
		return rc;
	/* Pairs with the release store of magic in shmkit_sem_init(). */
	if (unlikely(load_acquire(&s->magic) != SHMKIT__SEM_MAGIC))
		return -EINVAL;
	*out = s;
	return 0;
}

int shmkit_sem_init(struct shmkit_seg *seg, struct shmkit_sem *sp,
		    uint32_t value)
{
	struct shmkit__sem *s = (struct shmkit__sem *)sp;
	int rc = obj_check(seg, sp);

	if (rc < 0)
		return rc;
	if (value > SHMKIT__S_CNT_MASK)
		return -EINVAL;
	store_relaxed(&s->word, value);
	memset(s->reserved, 0, sizeof(s->reserved));
	/* Pairs with the acquire load of magic in sem_get(). */
	store_release(&s->magic, SHMKIT__SEM_MAGIC);
	return 0;
}

/*
 * Count and WAITERS share one word, so a post's increment reads WAITERS
 * in the same RMW that publishes the count: no fence needed (compare the
 * event). A post whose wake finds nobody asleep clears WAITERS with a CAS
 * from exactly the value it wrote; nobody sleeps on a non-zero count, so
 * no sleeper can be left behind by that, and a killed waiter's stale
 * WAITERS costs one such wake.
 */
int shmkit_sem_post(struct shmkit_seg *seg, struct shmkit_sem *sp)
{
	struct shmkit__sem *s;
	uint32_t v, nv;
	int rc = sem_get(seg, sp, &s);

	if (unlikely(rc < 0))
		return rc;
	v = load_relaxed(&s->word);
	do {
		if ((v & SHMKIT__S_CNT_MASK) == SHMKIT__S_CNT_MASK)
			return -EOVERFLOW;
		nv = v + 1;
		/* Release: pairs with the acquire CAS in sem_take(). */
	} while (!atomic_compare_exchange_weak_explicit(
		&s->word, &v, nv, memory_order_release, memory_order_relaxed));
	SHMKIT_CRASH_POINT("sync.sem.post.added");
	if (v & SHMKIT__S_WAITERS) {
		if (fwake(&s->word, 1) == 0)
			/* Relaxed: WAITERS guards no data. */
			atomic_compare_exchange_strong_explicit(
				&s->word, &nv, nv & ~SHMKIT__S_WAITERS,
				memory_order_relaxed, memory_order_relaxed);
		SHMKIT_CRASH_POINT("sync.sem.post.woken");
	}
	return 0;
}

static int sem_take(struct shmkit__sem *s, uint64_t timeout_ns, int try)
{
	uint64_t deadline = 0, now, ns;
	uint32_t v = load_relaxed(&s->word);
	int spins = SPIN_MAX;

	for (;;) {
		if (v & SHMKIT__S_CNT_MASK) {
			/* Acquire: pairs with the release CAS in post. */
			if (atomic_compare_exchange_weak_explicit(
				    &s->word, &v, v - 1, memory_order_acquire,
				    memory_order_relaxed)) {
				SHMKIT_CRASH_POINT("sync.sem.wait.taken");
				return 0;
			}
			continue;
		}
		if (try)
			return -EAGAIN;
		if (spins > 0 && timeout_ns) {
			spins--;
			cpu_relax();
			v = load_relaxed(&s->word);
			continue;
		}
		now = shmkit__now_ns();
		if (!deadline)
			deadline = deadline_of(now, timeout_ns);
		if (now >= deadline)
			return -ETIMEDOUT;
		if (!(v & SHMKIT__S_WAITERS)) {
			if (!atomic_compare_exchange_weak_explicit(
				    &s->word, &v, v | SHMKIT__S_WAITERS,
				    memory_order_relaxed, memory_order_relaxed))
				continue;
			v |= SHMKIT__S_WAITERS;
			SHMKIT_CRASH_POINT("sync.sem.wait.waiters");
		}
		ns = deadline - now;
		if (ns > WAKE_POLL_NS)
			ns = WAKE_POLL_NS;
		fwait(&s->word, v, ns);
		v = load_relaxed(&s->word);
	}
}

int shmkit_sem_wait(struct shmkit_seg *seg, struct shmkit_sem *sp,
		    uint64_t timeout_ns)
{
	struct shmkit__sem *s;
	int rc = sem_get(seg, sp, &s);

	if (unlikely(rc < 0))
		return rc;
	return sem_take(s, timeout_ns, 0);
}

int shmkit_sem_trywait(struct shmkit_seg *seg, struct shmkit_sem *sp)
{
	struct shmkit__sem *s;
	int rc = sem_get(seg, sp, &s);

	if (unlikely(rc < 0))
		return rc;
	return sem_take(s, 0, 1);
}

int shmkit_sem_value(struct shmkit_seg *seg, struct shmkit_sem *sp)
{
	struct shmkit__sem *s;
	int rc = sem_get(seg, sp, &s);

	if (rc < 0)
		return rc;
	return (int)(load_relaxed(&s->word) & SHMKIT__S_CNT_MASK);
}
