/* SPDX-License-Identifier: MIT */
/*
 * Channels: create/open/close, the producer lanes (send, reserve/commit,
 * batches), the consumer (recv, peek/release, batches, takeover after a
 * consumer crash), end-of-stream and peer liveness through OFD locks, and
 * the spin-then-futex waiting of both sides. select and the readiness
 * descriptor are in chan_wait.c.
 */
#define _GNU_SOURCE
#include "chan.h"

#include "crash.h"
#include "futex.h"
#include "platform.h"
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <linux/membarrier.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Waiting parameters. A waiter spins up to spin_ns (adaptive between the
 * bounds) while traffic flows, then sleeps on a futex for at most
 * SLICE_NS at a time, re-checking the peers' liveness at most every
 * LIVE_NS. A dead peer is therefore noticed within about SLICE_NS; one
 * that closes cleanly wakes the waiters itself.
 * The budget doubles when a spin pays off (up to SPIN_GROW_NS) and halves
 * when it does not; and a wait that had to sleep but ended soon (below
 * SPIN_MAX_NS) raises it to one and a half times that wait (spin_learn()):
 * a futex wake-up costs the waker a system call and the sleeper tens of
 * microseconds on a virtual machine, so traffic with gaps of that order
 * (large messages, a busy peer) is waited for by spinning. But only while
 * the waiter has its CPU to itself: a thread that shares its CPU with
 * other runnable work (it was preempted since the last look) spins away
 * its own fair share, and sleeping lets the scheduler run it at once when
 * the message comes; then the budget drops to SPIN_MIN_NS instead.
 * Idle waits decay it again.
 */
#define SPIN_MIN_NS 2000ull
#define SPIN_GROW_NS 50000ull
#define SPIN_MAX_NS 200000ull
/* A consumer waits with a timeout at least this long (or none) to yield
 * instead of spinning while its producers share its CPU (cons_wait()). */
#define YIELD_MIN_TIMEOUT_NS 10000000ull
#define SLICE_NS 25000000ull
#define LIVE_NS 10000000ull
#define LIVE_TRY_NS 1000000ull /* rate of checks by non-blocking calls */

/* Fork generation: a handle is usable only in the process that made it. */
static atomic_uint fork_gen;
static pthread_once_t proc_once = PTHREAD_ONCE_INIT;
/* This process receives membarrier(GLOBAL_EXPEDITED) barriers, and can
 * issue them: its producers may commit without a fence (see below). */
static atomic_int asym_ok;

static void on_fork_child(void)
{
	atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
}

static void proc_init(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
	/* Registration is per process and survives exec's absence only:
	 * a forked child inherits it. SHMKIT_CHAN_FENCE=1 disables it. */
	if (!getenv("SHMKIT_CHAN_FENCE") &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0,
		    0) == 0)
		store_relaxed(&asym_ok, 1);
}

int shmkit__chan_check(const struct shmkit_chan *ch, enum shmkit_chan_role role)
{
	if (unlikely(!ch || ch->role != role))
		return -EINVAL;
	if (unlikely(load_relaxed(&fork_gen) != ch->fork_gen))
		return -ECHILD;
	return 0;
}

static uint64_t round8(uint64_t n)
{
	return (n + 7) & ~7ull;
}

/* Framed size of a message of len bytes. */
static uint64_t framed(uint64_t len)
{
	return SHMKIT_REC_HDR + round8(len);
}

/* Payloads up to this many bytes are copied inline (msg_copy()). */
#define MSG_COPY_INLINE 64u

/* Copy the w bytes at offset k and the w bytes ending k before n
 * (n >= k + w; w is a constant once inlined: a register each way, both
 * loads before the stores). */
static inline void copy_ends(unsigned char *d, const unsigned char *s, size_t n,
			     size_t k, size_t w)
{
	unsigned char x[16], y[16];

	memcpy(x, s + k, w);
	memcpy(y, s + n - k - w, w);
	memcpy(d + k, x, w);
	memcpy(d + n - k - w, y, w);
}

/*
 * memcpy() for a payload of at most MSG_COPY_INLINE bytes, inline: two
 * (or four) overlapping loads and stores of the widest size that fits,
 * so exactly n bytes are written. As many instructions as the C
 * library's memcpy() executes inside for 64 bytes, without the call, so
 * that the fast paths of send and recv make none (see send_fill());
 * `shmkit-bench-chan --only cost` measured recv about a tenth faster with
 * it than with the call. A larger payload goes to memcpy().
 */
static inline void msg_copy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (n > MSG_COPY_INLINE) {
		memcpy(d, s, n);
	} else if (n >= 16) {
		if (n > 32)
			copy_ends(d, s, n, 16, 16);
		copy_ends(d, s, n, 0, 16);
	} else if (n >= 8) {
		copy_ends(d, s, n, 0, 8);
	} else if (n >= 4) {
		copy_ends(d, s, n, 0, 4);
	} else {
		for (size_t k = 0; k < n; k++)
			d[k] = s[k];
	}
}

static uint64_t rec_word(uint32_t len, uint32_t kind)
{
	return (uint64_t)len | (uint64_t)(SHMKIT_REC_TAG | kind) << 32;
}

uint64_t shmkit__chan_deadline(int64_t timeout_ns)
{
	if (timeout_ns < 0)
		return UINT64_MAX;
	return shmkit__now_ns() + (uint64_t)timeout_ns;
}

/* Time left before deadline, capped at one slice; 0 if past it. */
uint64_t shmkit__chan_slice(uint64_t deadline)
{
	uint64_t now = shmkit__now_ns();

	if (deadline == UINT64_MAX)
		return SLICE_NS;
	if (now >= deadline)
		return 0;
	return deadline - now < SLICE_NS ? deadline - now : SLICE_NS;
}

/*
 * Liveness tokens: the OFD lock byte of the lane / of the consumer word,
 * from offsets fixed at open (lock_base: segment offset of lanes[0]).
 */
int64_t shmkit__chan_lane_lock(const struct shmkit_chan *ch, unsigned i)
{
	return SHMKIT_LOCK_OBJ(ch->lock_base +
			       (int64_t)(i * sizeof(struct shmkit_chan_lane)));
}

static int64_t cons_lock(const struct shmkit_chan *ch)
{
	return SHMKIT_LOCK_OBJ(ch->lock_cons);
}

/* ---- geometry ---------------------------------------------------------- */

struct geom {
	uint32_t nlanes;
	uint64_t ring_size;
	uint64_t max_msg;
	uint64_t lane_off;
	uint64_t ring_off;
	uint64_t total;
};

static uint64_t pow2_ceil(uint64_t n)
{
	uint64_t p = SHMKIT_CHAN_MIN_RING;

	while (p < n && p < SHMKIT_CHAN_MAX_RING * 2)
		p <<= 1;
	return p;
}

/* Offsets follow from the counts alone, so an opener recomputes them and
 * compares: a header that disagrees is corrupt. */
static void geom_layout(struct geom *g)
{
	g->lane_off = sizeof(struct shmkit_chan_hdr);
	g->ring_off = (g->lane_off +
		       (uint64_t)g->nlanes * sizeof(struct shmkit_chan_lane) +
		       SHMKIT_PAGE - 1) &
		      ~(uint64_t)(SHMKIT_PAGE - 1);
	g->total = g->ring_off + (uint64_t)g->nlanes * g->ring_size;
}

/*
 * A consumer holds the last message it returned until its next call (see
 * cons_take()), so the ring must take a held message, a pad and a new
 * message at once: 3 * framed(max_msg) <= ring. Otherwise a producer
 * could wait for room that only a later recv would free.
 */
static int geom_valid(const struct geom *g)
{
	if (g->nlanes < 1 || g->nlanes > SHMKIT_CHAN_MAX_LANES)
		return 0;
	if (g->ring_size < SHMKIT_CHAN_MIN_RING ||
	    g->ring_size > SHMKIT_CHAN_MAX_RING ||
	    (g->ring_size & (g->ring_size - 1)))
		return 0;
	if (g->max_msg > INT_MAX - 8 || 3 * framed(g->max_msg) > g->ring_size)
		return 0;
	return 1;
}

static int geom_from_opts(const struct shmkit_chan_opts *o, struct geom *g)
{
	uint64_t cap = o ? o->capacity_bytes : 0;
	uint64_t max = o ? o->max_msg_bytes : 0;

	g->nlanes = o && o->max_producers ? o->max_producers
					  : SHMKIT_CHAN_DEFAULT_PRODUCERS;
	if (g->nlanes > SHMKIT_CHAN_MAX_LANES)
		return -EINVAL;
	if (cap > SHMKIT_CHAN_MAX_RING || max > SHMKIT_CHAN_MAX_RING)
		return -EINVAL;
	if (!cap) {
		cap = SHMKIT_CHAN_DEFAULT_CAPACITY;
		if (max && 3 * framed(max) > cap)
			cap = 3 * framed(max);
	}
	g->ring_size = pow2_ceil(cap);
	g->max_msg = max ? max : g->ring_size / 4;
	if (!geom_valid(g))
		return -EINVAL;
	geom_layout(g);
	return 0;
}

/* ---- open/create -------------------------------------------------------- */

/* Fields up to open_timeout_ns exist in every version of the struct. */
static int opts_check(const struct shmkit_chan_opts *o, uint32_t *flags)
{
	*flags = 0;
	if (!o)
		return 0;
	if (o->sz < offsetof(struct shmkit_chan_opts, open_timeout_ns) +
			    sizeof(o->open_timeout_ns))
		return -EINVAL;
	if (o->mode & ~0777u)
		return -EINVAL;
	if (o->sz >=
	    offsetof(struct shmkit_chan_opts, reserved) + sizeof(o->reserved)) {
		if ((o->flags & ~SHMKIT_CHAN_SCOPED) || o->reserved)
			return -EINVAL;
		*flags = o->flags;
	}
	return 0;
}

static struct shmkit_chan *chan_alloc(struct shmkit_seg *seg,
				      enum shmkit_chan_role role)
{
	struct shmkit_chan *ch = calloc(1, sizeof(*ch));

	if (!ch)
		return NULL;
	pthread_once(&proc_once, proc_init);
	ch->seg = seg;
	ch->fd = seg->fd;
	ch->role = role;
	ch->lane = -1;
	ch->efd = -1;
	ch->spin_ns = SPIN_GROW_NS;
	ch->fork_gen = load_relaxed(&fork_gen);
	ch->hdr = seg->data;
	return ch;
}

/* Adopt validated geometry into the handle. */
static void chan_set_geom(struct shmkit_chan *ch, const struct geom *g)
{
	ch->nlanes = g->nlanes;
	ch->ring_size = g->ring_size;
	ch->mask = g->ring_size - 1;
	ch->max_msg = g->max_msg;
	ch->lanes = (struct shmkit_chan_lane *)((char *)ch->hdr + g->lane_off);
	ch->rings = (unsigned char *)ch->hdr + g->ring_off;
	ch->lock_base = (int64_t)((char *)ch->lanes - (char *)ch->seg->hdr);
	ch->lock_cons =
		(int64_t)((char *)&ch->hdr->cons_state - (char *)ch->seg->hdr);
}

/*
 * Is the segment's creator still attached? The creator took an attachment
 * slot (OFD-locked) before the name became visible, so "no live slot with
 * the creator's pid" means it died. A reused pid can only make this say
 * "alive" wrongly (we then time out), never "dead" wrongly.
 */
static int creator_alive(const struct shmkit_chan *ch)
{
	const struct shmkit_hdr *h = ch->seg->hdr;
	int32_t cpid = h->creator_pid;

	for (unsigned i = 0; i < SHMKIT_NSLOTS; i++) {
		if (load_relaxed(&h->slots[i].pid) != cpid)
			continue;
		if (i == (unsigned)ch->seg->slot ||
		    shmkit__ofd_held(ch->fd, SHMKIT_LOCK_SLOT0 + i, F_WRLCK))
			return 1;
	}
	return 0;
}

/*
 * Wait for the channel header to be published, then validate it. The
 * creator lays the channel out after the segment is visible under its
 * name, so an opener may see zeroes for a moment.
 */
static int chan_adopt(struct shmkit_chan *ch, uint64_t timeout_ns)
{
	uint64_t now = shmkit__now_ns(), nap = 1000;
	/* Saturating: a huge timeout must not wrap to a deadline passed. */
	uint64_t deadline = timeout_ns > UINT64_MAX - now ? UINT64_MAX
							  : now + timeout_ns;
	struct shmkit_chan_hdr *h = ch->hdr;
	struct geom g, want;

	if (ch->seg->data_size < sizeof(*h) || ch->fd < 0)
		return -EPROTO;
	for (;;) {
		/* Pairs with the release store of READY in chan_layout(). */
		uint32_t st = load_acquire(&h->state);

		if (st == SHMKIT_CHAN_READY)
			break;
		if (st != 0 || (h->magic && h->magic != SHMKIT_CHAN_MAGIC))
			return -EPROTO;
		if (!creator_alive(ch)) {
			if (load_acquire(&h->state) == SHMKIT_CHAN_READY)
				continue;
			/* chan_layout() stores the magic first: without it,
			 * the segment never was a channel (a creator killed
			 * before that store left no channel either). */
			return h->magic ? -ENOTRECOVERABLE : -EPROTO;
		}
		if (shmkit__now_ns() >= deadline)
			return -ETIMEDOUT;
		shmkit__sleep_ns(nap);
		if (nap < 10000000)
			nap *= 2;
	}
	/* Another format, or a reserved flag: a newer library's channel. */
	if (h->magic != SHMKIT_CHAN_MAGIC || h->format != SHMKIT_CHAN_FORMAT ||
	    h->flags != 0)
		return -EPROTO;
	g.nlanes = h->nlanes;
	g.ring_size = h->ring_size;
	g.max_msg = h->max_msg;
	g.lane_off = h->lane_off;
	g.ring_off = h->ring_off;
	g.total = h->total_size;
	if (!geom_valid(&g))
		return -EBADMSG;
	want = g;
	geom_layout(&want);
	if (want.lane_off != g.lane_off || want.ring_off != g.ring_off ||
	    want.total != g.total || g.total > ch->seg->data_size)
		return -EBADMSG;
	chan_set_geom(ch, &g);
	return 0;
}

static void chan_layout(struct shmkit_chan *ch, const struct geom *g)
{
	struct shmkit_chan_hdr *h = ch->hdr;

	h->magic = SHMKIT_CHAN_MAGIC;
	h->format = SHMKIT_CHAN_FORMAT;
	h->nlanes = g->nlanes;
	h->flags = 0;
	h->ring_size = g->ring_size;
	h->max_msg = g->max_msg;
	h->lane_off = g->lane_off;
	h->ring_off = g->ring_off;
	h->total_size = g->total;
	SHMKIT_CRASH_POINT("chan.create.layout");
	/* Pairs with the acquire load of state in chan_adopt(). Lanes and
	 * rings are zero from segment creation. */
	store_release(&h->state, SHMKIT_CHAN_READY);
	chan_set_geom(ch, g);
}

/* The record word at counter pos of a ring. */
static inline _Atomic uint64_t *rec_word_at(const struct shmkit_chan *ch,
					    const unsigned char *ring,
					    uint64_t pos)
{
	/* Aligned and inside the ring whatever pos is: callers pass heads
	 * read from shared memory too (the readiness helper). */
	return (_Atomic uint64_t *)(void *)(ring + (pos & ch->mask & ~7ull));
}

/*
 * Where the committed records of lane i end, with the published head:
 * the tail, or past it the records a producer committed (their record
 * words) but died before storing the tail for (see prod_commit()). Every
 * record is checked as the consumer would check it, and the walk stops at
 * the first word that is zero (the end) or not a record (garbage, which
 * the consumer will report) and within the ring's room. Returns 0, or
 * -EBADMSG if the indices disagree.
 */
static int lane_extent(const struct shmkit_chan *ch, unsigned i, uint64_t *head,
		       uint64_t *end)
{
	const unsigned char *ring = ch->rings + (uint64_t)i * ch->ring_size;
	/* Pairs with the release stores of head/tail by their writers. */
	uint64_t h = load_acquire(&ch->lanes[i].head);
	uint64_t t = load_acquire(&ch->lanes[i].tail);
	uint64_t e = t - h <= ch->ring_size ? t : h;

	if (((h | t) & 7) || (t - h > ch->ring_size && h - t > ch->ring_size))
		return -EBADMSG;
	for (;;) {
		uint64_t off = e & ch->mask, next = e;
		/* Pairs with the release store in prod_commit(). */
		uint64_t w = load_acquire(rec_word_at(ch, ring, e));

		if (w ==
		    rec_word((uint32_t)(ch->ring_size - off - SHMKIT_REC_HDR),
			     SHMKIT_REC_PAD)) {
			next += ch->ring_size - off;
			off = 0;
			/* Written before the pad's word: the acquire above
			 * covers it (see prod_frame()). */
			w = load_relaxed(rec_word_at(ch, ring, next));
		}
		if ((uint32_t)(w >> 32) != (SHMKIT_REC_TAG | SHMKIT_REC_MSG) ||
		    (uint32_t)w > ch->max_msg ||
		    off + framed((uint32_t)w) > ch->ring_size)
			break;
		next += framed((uint32_t)w);
		if (next + SHMKIT_REC_HDR - h > ch->ring_size)
			break;
		e = next;
	}
	*head = h;
	*end = e;
	return 0;
}

static int attach_producer(struct shmkit_chan *ch)
{
	struct shmkit_chan_lane *l;
	uint32_t prev;
	unsigned i;
	int rc;

	for (i = 0; i < ch->nlanes; i++) {
		rc = shmkit__ofd_trylock(ch->fd, shmkit__chan_lane_lock(ch, i),
					 F_WRLCK);
		if (rc == 0)
			break;
		if (rc != -EAGAIN)
			return rc;
	}
	if (i == ch->nlanes)
		return -EBUSY;
	SHMKIT_CRASH_POINT("chan.open.claimed");
	l = &ch->lanes[i];
	rc = lane_extent(ch, i, &ch->head, &ch->tail);
	if (rc < 0) {
		shmkit__ofd_unlock(ch->fd, shmkit__chan_lane_lock(ch, i));
		return rc;
	}
	/*
	 * A predecessor that attached (claims) and did not close died; we
	 * hold its lock now, so the consumer can no longer see the death in
	 * the lock. Leave it in the lane: its claim count, and where its
	 * messages end, after which the consumer reports it (see
	 * shmkit__chan_eos()). One that died before storing its state
	 * committed nothing; an older unreported death is superseded (one
	 * report covers both). Pairs with the acquire load of state in
	 * close: its CLOSED store is its last.
	 */
	prev = load_relaxed(&l->claims);
	if (prev && load_acquire(&l->state) != SHMKIT_CHAN_PEER_CLOSED) {
		store_relaxed(&l->lost_end, ch->tail);
		/* Pairs with the acquire load of lost in
		 * shmkit__chan_eos(): lost_end is there when lost is. */
		store_release(&l->lost, prev);
		SHMKIT_CRASH_POINT("chan.open.lost");
	}
	/* A predecessor that died between a commit and its tail store left
	 * the tail behind; only the lane's holder writes it. Pairs with the
	 * acquire loads of tail in the slow paths (lane_empty(), eos). */
	store_release(&l->tail, ch->tail);
	ch->lane = (int)i;
	ch->pl = l;
	ch->pring = ch->rings + (uint64_t)i * ch->ring_size;
	/* A dead predecessor may have left its sleep flag up. */
	store_relaxed(&l->tx_sleep, 0);
	store_relaxed(&l->pid, (int32_t)getpid());
	ch->asym = load_relaxed(&asym_ok);
	store_relaxed(&l->flags, ch->asym ? SHMKIT_LANE_ASYM : 0);
	/*
	 * Pairs with the fence in shmkit__chan_rx_barrier(): a waiter that
	 * announced itself before this fence is seen by every later P3 of
	 * ours; one that announces after it reads our flag and issues the
	 * membarrier. Either way our fence-less commits are covered.
	 */
	fence_seq_cst();
	atomic_fetch_add_explicit(&l->claims, 1, memory_order_relaxed);
	/* Pairs with the acquire load of state in shmkit__chan_eos(). */
	store_release(&l->state, SHMKIT_CHAN_PEER_ATTACHED);
	/* The waker half for a consumer waiting for a producer
	 * (shmkit_chan_wait_peer()): orders the claims store before the
	 * rx_sleepers load; pairs with the fence there. */
	fence_seq_cst();
	if (load_relaxed(&ch->hdr->rx_sleepers))
		shmkit__chan_wake_rx(ch->hdr);
	return 0;
}

static void wake_tx(struct shmkit_chan_lane *l);

static int attach_consumer(struct shmkit_chan *ch)
{
	struct shmkit_chan_hdr *h = ch->hdr;
	int rc = shmkit__ofd_trylock(ch->fd, cons_lock(ch), F_WRLCK);

	if (rc == -EAGAIN)
		return -EBUSY;
	if (rc < 0)
		return rc;
	SHMKIT_CRASH_POINT("chan.open.takeover");
	ch->cl = calloc(ch->nlanes, sizeof(*ch->cl));
	if (!ch->cl) {
		shmkit__ofd_unlock(ch->fd, cons_lock(ch));
		return -ENOMEM;
	}
	ch->pub_step = ch->ring_size / 16;
	for (unsigned i = 0; i < ch->nlanes; i++) {
		struct shmkit__cons_lane *c = &ch->cl[i];
		struct shmkit_chan_lane *l = &ch->lanes[i];
		uint64_t head, tail, done, mark;

		rc = lane_extent(ch, i, &head, &tail);
		if (rc < 0) {
			shmkit__ofd_unlock(ch->fd, cons_lock(ch));
			return rc;
		}
		/* Resume after what the last consumer confirmed (head may
		 * lag: it is published lazily); a value outside
		 * [head, end of the committed records] is garbage: resume
		 * at head. */
		done = load_relaxed(&l->done);
		if (done < head || done > tail || (done & 7))
			done = head;
		c->head = c->done = c->pub = done;
		c->lane = l;
		c->ring = ch->rings + (uint64_t)i * ch->ring_size;
		c->bit = 1ull << i;
		if (done != head)
			/* Pairs with the acquire load of head in
			 * prod_room(). */
			store_release(&l->head, done);
		/* Messages in [done, mark) were handed to a consumer that
		 * never confirmed them: deliver again, flagged (the mark
		 * stays, see cons_mark()). A mark outside (done, tail] is
		 * stale or garbage; drop it. */
		mark = load_relaxed(&l->mark);
		if (mark > done && mark <= tail)
			c->redeliver = mark;
		else
			store_relaxed(&l->mark, done);
		store_relaxed(&l->done, done);
		/* Deaths an earlier consumer reported are not news. Any
		 * value is harmless: it is only compared with claims. */
		store_relaxed(&ch->dead_ack[i], load_relaxed(&l->dead_ack));
		store_relaxed(&ch->lost_ack[i], load_relaxed(&l->lost_ack));
	}
	/* Sleepers counted by a dead consumer are gone with it. */
	store_relaxed(&h->rx_sleepers, 0);
	store_relaxed(&h->cons_pid, (int32_t)getpid());
	atomic_fetch_add_explicit(&h->cons_claims, 1, memory_order_relaxed);
	/* Pairs with the acquire load of cons_state in cons_gone(). */
	store_release(&h->cons_state, SHMKIT_CHAN_PEER_ATTACHED);
	/*
	 * The waker half of the space handshake, as cons_txcheck(): a
	 * producer may sleep for room that we just published above, or
	 * that the dead consumer published (its stores reached memory
	 * before its lock was released) without its fenced check of
	 * tx_sleep. Pairs with the fence in prod_wait() after the producer
	 * raises tx_sleep: either it sees the new head, or we see tx_sleep.
	 */
	fence_seq_cst();
	for (unsigned i = 0; i < ch->nlanes; i++)
		if (load_relaxed(&ch->lanes[i].tx_sleep))
			wake_tx(&ch->lanes[i]);
	return 0;
}

static int chan_attach(struct shmkit_chan *ch)
{
	if (ch->role == SHMKIT_CHAN_PRODUCER)
		return attach_producer(ch);
	return attach_consumer(ch);
}

static void chan_free(struct shmkit_chan *ch)
{
	shmkit_seg_close(ch->seg);
	free(ch->cl);
	free(ch->name);
	free(ch);
}

static int role_ok(enum shmkit_chan_role role)
{
	return role == SHMKIT_CHAN_PRODUCER || role == SHMKIT_CHAN_CONSUMER;
}

int shmkit_chan_create(const char *name, const struct shmkit_chan_opts *opts,
		       enum shmkit_chan_role role, struct shmkit_chan **out)
{
	struct shmkit_seg_opts so = {.sz = sizeof(so)};
	struct shmkit_seg *seg;
	struct shmkit_chan *ch;
	struct geom g;
	uint32_t flags;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	rc = opts_check(opts, &flags);
	if (rc < 0 || !role_ok(role))
		return -EINVAL;
	rc = geom_from_opts(opts, &g);
	if (rc < 0)
		return rc;
	so.mode = opts ? opts->mode : 0;
	so.flags = flags & SHMKIT_CHAN_SCOPED ? SHMKIT_SEG_SCOPED : 0;
	rc = shmkit_seg_create(name, (size_t)g.total, &so, &seg);
	if (rc < 0)
		return rc;
	ch = chan_alloc(seg, role);
	if (!ch || !(ch->name = strdup(name))) {
		free(ch);
		shmkit_seg_unlink(name);
		shmkit_seg_close(seg);
		return -ENOMEM;
	}
	chan_layout(ch, &g);
	rc = chan_attach(ch);
	if (rc < 0) {
		shmkit_seg_unlink(name);
		chan_free(ch);
		return rc;
	}
	*out = ch;
	return 0;
}

int shmkit_chan_open(const char *name, enum shmkit_chan_role role,
		     const struct shmkit_chan_opts *opts,
		     struct shmkit_chan **out)
{
	struct shmkit_seg_opts so = {.sz = sizeof(so)};
	struct shmkit_seg *seg;
	struct shmkit_chan *ch;
	uint64_t timeout;
	uint32_t flags;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	rc = opts_check(opts, &flags);
	if (rc < 0 || !role_ok(role))
		return -EINVAL;
	timeout = opts && opts->open_timeout_ns ? opts->open_timeout_ns
						: SHMKIT_SEG_OPEN_TIMEOUT_NS;
	so.open_timeout_ns = timeout;
	so.mode = opts && opts->mode ? opts->mode : 0;
	rc = shmkit_seg_open(name, &so, &seg);
	if (rc < 0)
		return rc;
	ch = chan_alloc(seg, role);
	if (!ch || !(ch->name = strdup(name))) {
		free(ch);
		shmkit_seg_close(seg);
		return -ENOMEM;
	}
	rc = chan_adopt(ch, timeout);
	if (rc == 0)
		rc = chan_attach(ch);
	if (rc < 0) {
		chan_free(ch);
		return rc;
	}
	*out = ch;
	return 0;
}

int shmkit_chan_unlink(const char *name)
{
	return shmkit_seg_unlink(name);
}

/* ---- waking ------------------------------------------------------------- */

/*
 * The sleep/wake handshake (both directions have the same shape; shown for
 * a consumer waiting for messages):
 *
 *   waiter                               waker (producer)
 *   W1 rx_sleepers += 1                   P1 record word = w   (release)
 *   W2 fence(seq_cst)                        tail = t          (release)
 *   W3 s = rx_seq              (acquire)  P2 fence(seq_cst)
 *   W4 if (any record word or tail        P3 if (rx_sleepers) {
 *      moved, or the end of stream       P4     rx_seq += 1   (release)
 *      shows) don't sleep
 *   W5 futex_wait(rx_seq, s, slice)       P5     futex_wake(rx_seq) }
 *
 * The two fences are ordered in the single total order of seq_cst
 * operations. If P2 comes first, W4 (after W2) sees P1: the waiter
 * does not sleep. If W2 comes first, P3 (after P2) sees the increment of
 * W1 and the waker runs P4-P5. Then either W3 already reads the new rx_seq
 * (it read from P4, a release, so W4 sees P1) or W3 read the old value and
 * the futex_wait at W5 returns at once (the word differs) or is woken by
 * P5 (the kernel orders the wait's value check and the wake on the futex
 * hash bucket lock). Without either fence both sides may read stale values
 * (store->load reordering, allowed even on x86) and the waiter sleeps
 * through a message: a lost wake-up. Every sleep is also bounded by a
 * slice, so a lost wake-up could only ever cost a delay, never a hang.
 * Wakers enter the kernel only when a waiter has announced itself.
 */
void shmkit__chan_wake_rx(struct shmkit_chan_hdr *h)
{
	/* Pairs with the acquire load of rx_seq by the waiter (W3). */
	atomic_fetch_add_explicit(&h->rx_seq, 1, memory_order_release);
	shmkit__futex_wake(&h->rx_seq, INT32_MAX);
}

static void wake_tx(struct shmkit_chan_lane *l)
{
	/* Pairs with the acquire load of tx_seq in prod_wait(). */
	atomic_fetch_add_explicit(&l->tx_seq, 1, memory_order_release);
	shmkit__futex_wake(&l->tx_seq, 1);
}

static int32_t note_cpu(struct shmkit_chan *ch, _Atomic int32_t *w);

/* prod_notify()'s rare work, out of line: a commit's common path then
 * makes no call, and keeps nothing across one. */
static __attribute__((noinline)) void
prod_notify_rare(struct shmkit_chan *ch, uint32_t sleepers, unsigned commits)
{
	if (sleepers)
		shmkit__chan_wake_rx(ch->hdr);
	/* The hint at every 16th commit (and before every wait): a
	 * sched_getcpu() per message was 3% of a 64-byte send. */
	if (!(commits & 15))
		note_cpu(ch, &ch->pl->cpu);
}

/*
 * The fence at P2 costs more than it seems: it waits for the commit's
 * stores, which need their cache lines back from a consumer that polls
 * them, so every send pays a full cache-line round trip. Where the kernel has
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), the producer instead
 * keeps only a compiler barrier at P2 and the waiter, whose side is the
 * slow path anyway, adds membarrier() after its fence at W2 (the
 * asymmetric fence of userspace RCU and Folly). The system call returns
 * only once every running thread of every registered process has passed
 * a point where its memory accesses are in program order (a thread not
 * running is at such a point). For a producer thread, let B be that
 * point: if B comes before P1, then P3 (after B) sees W1 (before the
 * call); if B comes after P3, then P1 (before B) is visible to W4 (after
 * the call); if B falls between, both hold. So again either the waiter
 * sees the tail or the producer sees the waiter. A producer uses this
 * only if its process registered (lane flag SHMKIT_LANE_ASYM), and a
 * waiter issues the barrier only when an attached lane has that flag;
 * if a waiter cannot issue it, it sleeps in short slices instead.
 */
static inline void prod_notify(struct shmkit_chan *ch)
{
	uint32_t sleepers;
	unsigned commits;

	/* P2: orders the commit's stores before the load of rx_sleepers; pairs
	 * with the fence (and membarrier) in shmkit__chan_rx_barrier(). */
	if (likely(ch->asym))
		atomic_signal_fence(memory_order_seq_cst);
	else
		fence_seq_cst();
	sleepers = load_relaxed(&ch->hdr->rx_sleepers);
	commits = ++ch->commits;
	if (unlikely(sleepers) || unlikely(!(commits & 15)))
		prod_notify_rare(ch, sleepers, commits);
}

/* Slice cap for a waiter that could not issue a needed membarrier. */
#define ASYM_FALLBACK_SLICE_NS 1000000ull

/*
 * W2. Returns the longest the waiter may then sleep: the caller's slice,
 * or ASYM_FALLBACK_SLICE_NS if a fence-less producer is attached and the
 * barrier could not be issued (a lost wake-up then costs that much).
 */
uint64_t shmkit__chan_rx_barrier(struct shmkit_chan *const *chans, unsigned n,
				 uint64_t slice_ns)
{
	/* Pairs with P2 in prod_notify(): the fence, or the compiler
	 * barrier there plus the membarrier here (one covers every channel
	 * and every process). */
	fence_seq_cst();
	for (unsigned k = 0; k < n; k++) {
		const struct shmkit_chan *ch = chans[k];

		for (unsigned i = 0; i < ch->nlanes; i++) {
			if (!(load_relaxed(&ch->lanes[i].flags) &
			      SHMKIT_LANE_ASYM))
				continue;
			if (load_relaxed(&asym_ok) &&
			    syscall(SYS_membarrier,
				    MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0)
				return slice_ns;
			return slice_ns < ASYM_FALLBACK_SLICE_NS
				       ? slice_ns
				       : ASYM_FALLBACK_SLICE_NS;
		}
	}
	return slice_ns;
}

/*
 * Consumer side of the producer's space handshake. The consumer publishes
 * head with a plain release store per message and runs the fenced check
 * of tx_sleep (the waker half of the handshake) lazily: whenever a lane
 * turns out empty (before spinning or sleeping), every quarter ring of
 * progress, and at close. A producer sleeps only on a lane with less free
 * space than one framed message (<= half the ring), so the consumer either
 * empties the lane or passes a quarter-ring checkpoint while it keeps
 * receiving; an unfenced look at tx_sleep on each publication wakes it
 * sooner. Only a consumer that stops receiving with a lane non-empty can
 * leave a producer asleep, and then only until its slice ends.
 */
static void cons_txcheck(struct shmkit_chan *ch)
{
	int fenced = 0;

	for (unsigned i = 0; i < ch->nlanes; i++) {
		if (!ch->cl[i].unchecked)
			continue;
		if (!fenced) {
			/* Pairs with the fence in prod_wait() after the
			 * producer announces tx_sleep. */
			fence_seq_cst();
			fenced = 1;
		}
		ch->cl[i].unchecked = 0;
		if (load_relaxed(&ch->lanes[i].tx_sleep))
			wake_tx(&ch->lanes[i]);
	}
}

/*
 * Publish lane i's confirmed position as head: the producer may reuse the
 * bytes below it. Done lazily (see cons_confirm()), because the producer
 * polls head while its lane is full and every store would have to take the
 * line back from it.
 */
static __attribute__((noinline)) void cons_publish(struct shmkit_chan *ch,
						   unsigned i)
{
	struct shmkit__cons_lane *c = &ch->cl[i];
	struct shmkit_chan_lane *l = &ch->lanes[i];

	if (c->pub == c->done)
		return;
	/* Pairs with the acquire load of head in prod_room(): the producer
	 * overwrites these bytes only after we have finished reading them. */
	store_release(&l->head, c->done);
	c->unchecked += c->done - c->pub;
	c->pub = c->done;
	if (unlikely(load_relaxed(&l->tx_sleep)))
		wake_tx(l);
	else if (c->unchecked >= ch->ring_size / 4)
		cons_txcheck(ch);
}

/*
 * Store every lane's head as last published, whatever is there now: the
 * readiness helper trusts the shared heads, and a peer that rewrote one
 * would keep the descriptor readable with nothing to read (cons_publish()
 * stores only when our own position moved). Called when recv re-arms the
 * descriptor, after publishing everything.
 */
void shmkit__chan_republish(struct shmkit_chan *ch)
{
	for (unsigned i = 0; i < ch->nlanes; i++)
		if (load_relaxed(&ch->lanes[i].head) != ch->cl[i].pub)
			/* Pairs with the acquire load of head in
			 * prod_room() and in the helper. */
			store_release(&ch->lanes[i].head, ch->cl[i].pub);
}

/* Publish every lane: before waiting, and at close. */
static void cons_publish_all(struct shmkit_chan *ch)
{
	for (unsigned i = 0; i < ch->nlanes; i++)
		cons_publish(ch, i);
}

/*
 * Confirm what lane i handed out up to the private head: the messages
 * count as processed, a crash no longer redelivers them. Stored per
 * message, on a line only a consumer taking over reads; published as head
 * every sixteenth of the ring, or at once if the producer waits for room
 * (or when the consumer is about to wait, cons_wait()). cons_done() is
 * the first half, cons_confirm() the whole; recv's fast path makes the
 * publication itself (recv_fill()).
 */
static inline void cons_done(struct shmkit__cons_lane *c,
			     struct shmkit_chan_lane *l)
{
	c->done = c->head;
	store_relaxed(&l->done, c->done);
	/* Read by the next consumer after our death: only the compiler
	 * could reorder it (see cons_mark()). */
	atomic_signal_fence(memory_order_seq_cst);
	SHMKIT_CRASH_POINT("chan.recv.confirmed");
}

/* Lane l, confirmed up to `done` (cons_done()), is to be published now:
 * every sixteenth of the ring, or at once if its producer waits for
 * room. */
static inline int cons_pub_due(const struct shmkit_chan *ch,
			       const struct shmkit__cons_lane *c,
			       const struct shmkit_chan_lane *l, uint64_t done)
{
	return done - c->pub >= ch->pub_step ||
	       unlikely(load_relaxed(&l->tx_sleep));
}

static inline void cons_confirm(struct shmkit_chan *ch, unsigned i)
{
	struct shmkit__cons_lane *c = &ch->cl[i];

	cons_done(c, c->lane);
	if (cons_pub_due(ch, c, c->lane, c->done))
		cons_publish(ch, i);
}

/* Confirm every lane whose messages were handed out by the last call. */
static inline void cons_publish_deferred(struct shmkit_chan *ch)
{
	uint64_t d = ch->deferred;

	if (d) {
		ch->deferred = 0;
		do {
			unsigned i = (unsigned)__builtin_ctzll(d);

			d &= d - 1;
			cons_confirm(ch, i);
		} while (d);
	}
}

/* ---- liveness ------------------------------------------------------------ */

/*
 * Producer's view of the consumer: 0 attached (or never attached yet: it
 * may still come), -EPIPE closed, -ECONNRESET died. The state word is a
 * hint written by the consumer; the OFD lock is the truth, and an error
 * reading it counts as "alive" (never "dead" wrongly).
 */
/*
 * A peer's state word said it was not CLOSED, then the kernel said its
 * lock is free. Look at the word again: one that closed between the two
 * looks stored CLOSED before it released the lock (release, paired here),
 * and a clean close must not read as a death. A claims count that moved
 * from n means a new peer attached meanwhile. Returns -EPIPE (closed),
 * -ECONNRESET (died) or 0 (a new peer, alive).
 */
static int peer_gone(_Atomic uint32_t *state, _Atomic uint32_t *claims,
		     uint32_t n)
{
	if (load_acquire(state) == SHMKIT_CHAN_PEER_CLOSED)
		return -EPIPE;
	return load_relaxed(claims) != n ? 0 : -ECONNRESET;
}

int shmkit__chan_cons_gone(struct shmkit_chan *ch)
{
	struct shmkit_chan_hdr *h = ch->hdr;
	uint32_t n = load_relaxed(&h->cons_claims), st;

	if (!n)
		return 0;
	/* Pairs with the release stores of cons_state at attach/close. */
	st = load_acquire(&h->cons_state);
	if (shmkit__ofd_held(ch->fd, cons_lock(ch), F_WRLCK) != 0)
		return 0;
	if (st == SHMKIT_CHAN_PEER_CLOSED)
		return -EPIPE;
	return peer_gone(&h->cons_state, &h->cons_claims, n);
}

/*
 * End of stream: some producer attached at some time, none is attached
 * now, and every lane is drained up to heads[i] (the consumer's private
 * heads, or the published ones for the readiness helper). Liveness is
 * read before the tail: a producer's last commit happens before its
 * CLOSED store (release, paired here) or before its death releases its
 * lock (the kernel orders that with our F_OFD_GETLK), so a lane that
 * looks dead and drained has no commit we have not seen.
 * A lane not marked CLOSED needs a system call to tell a live producer
 * from a dead one; without `probe` such lanes count as alive.
 * Returns 1 at end of stream, 0 if not, -EBADMSG, or -ECONNRESET for a
 * producer that died without closing, whose messages have all been
 * received and whose death is not acknowledged yet (in *d). A death is
 * known by the dead producer's claim count: the lane's count, while the
 * lane is unlocked and not CLOSED (acknowledged in dead_ack), or the
 * lane's `lost`, recorded by a producer that took the lane over (already
 * reported if equal to dead_ack or to lost_ack, the `lost` value seen at
 * the lane's last report). Only equality is used: claim counts wrap.
 */
int shmkit__chan_eos(struct shmkit_chan *ch, const uint64_t *heads,
		     size_t stride, int probe, struct shmkit__death *d)
{
	int claimed = 0, busy = 0;

	for (unsigned i = 0; i < ch->nlanes; i++) {
		struct shmkit_chan_lane *l = &ch->lanes[i];
		uint64_t head =
			*(const uint64_t *)((const char *)heads + i * stride);
		uint32_t n = load_relaxed(&l->claims), lost;
		uint64_t t;
		int died = 0;

		if (!n)
			continue;
		/* Pairs with the release store of lost in attach_producer(). */
		lost = load_acquire(&l->lost);
		/* A death that a later producer found when it took the lane:
		 * reported once the dead one's messages are all received
		 * (any value is harmless: at worst a death reported that
		 * was not, or not reported, on a lane a peer corrupts). */
		if (lost && lost != load_relaxed(&ch->lost_ack[i]) &&
		    lost != load_relaxed(&ch->dead_ack[i]) &&
		    head >= load_relaxed(&l->lost_end)) {
			*d = (struct shmkit__death){i, lost, lost};
			return -ECONNRESET;
		}
		claimed = 1;
		if (load_acquire(&l->state) != SHMKIT_CHAN_PEER_CLOSED) {
			if (!probe ||
			    shmkit__ofd_held(ch->fd,
					     shmkit__chan_lane_lock(ch, i),
					     F_WRLCK) != 0) {
				busy = 1; /* alive, or not asked */
				continue;
			}
			switch (peer_gone(&l->state, &l->claims, n)) {
			case 0:
				busy = 1; /* a new producer attached */
				continue;
			case -ECONNRESET:
				died = 1;
				break;
			default:
				break; /* closed cleanly after all */
			}
		}
		/* Pairs with the producer's release stores of the record
		 * word and the tail. */
		t = load_acquire(&l->tail);
		/* Within a ring ahead of head, or behind it (see
		 * lane_empty()). */
		if (t != head && ((t & 7) || (t - head > ch->ring_size &&
					      head - t > ch->ring_size)))
			return -EBADMSG;
		if (shmkit__chan_lane_has(ch, i, head)) {
			busy = 1; /* messages first */
			continue;
		}
		if (died && load_relaxed(&ch->dead_ack[i]) != n) {
			*d = (struct shmkit__death){i, n, lost};
			return -ECONNRESET;
		}
	}
	return claimed && !busy;
}

/* ---- producer ------------------------------------------------------------ */

/*
 * Room for a record of `need` bytes at counter `tail` (the handle's tail
 * or a batch's running tail): sets *pos to the counter where the record
 * goes and returns the bytes to advance (pad included), -EAGAIN if full,
 * -EBADMSG if the shared head is inconsistent.
 */
static inline int64_t prod_room(struct shmkit_chan *ch, uint64_t tail,
				uint64_t need, uint64_t *pos)
{
	uint64_t off = tail & ch->mask, contig = ch->ring_size - off;
	uint64_t adv = contig < need ? contig + need : need;

	/* The record, and the next record's header word, which the commit
	 * clears (see prod_commit()). */
	if (unlikely(tail + adv + SHMKIT_REC_HDR - ch->head > ch->ring_size)) {
		/* Pairs with the release store of head in cons_publish(). */
		uint64_t h = load_acquire(&ch->pl->head);

		if (h > ch->tail || ch->tail - h > ch->ring_size || (h & 7))
			return -EBADMSG;
		ch->head = h;
		if (tail + adv + SHMKIT_REC_HDR - h > ch->ring_size)
			return -EAGAIN;
	}
	*pos = contig < need ? tail + contig : tail;
	return (int64_t)adv;
}

/*
 * Frame a record at `pos` (after a pad from `tail` if pos != tail) and
 * return where its payload goes. The first record word of what a commit
 * publishes, at `tail`, is written only by prod_commit(): until then the
 * consumer sees the zero there and waits. Every other word written here
 * (the message header after a pad, or any record of a batch but the
 * first) lies past that zero, where the consumer cannot look yet.
 */
static inline unsigned char *prod_frame(struct shmkit_chan *ch, uint64_t tail,
					uint64_t pos, uint64_t len)
{
	unsigned char *ring = ch->pring;

	if (pos != tail) {
		store_relaxed(rec_word_at(ch, ring, pos),
			      rec_word((uint32_t)len, SHMKIT_REC_MSG));
		SHMKIT_CRASH_POINT("chan.send.pad");
	}
	return ring + (pos & ch->mask) + SHMKIT_REC_HDR;
}

/* The word prod_commit() writes at `start` for a record at `pos`. */
static inline uint64_t prod_first(const struct shmkit_chan *ch, uint64_t start,
				  uint64_t pos, uint64_t len)
{
	if (pos != start)
		return rec_word((uint32_t)(ch->ring_size - (start & ch->mask) -
					   SHMKIT_REC_HDR),
				SHMKIT_REC_PAD);
	return rec_word((uint32_t)len, SHMKIT_REC_MSG);
}

/*
 * Where the peers run. Spinning only helps while the peer runs on another
 * CPU: on ours it cannot run until we stop, and left to the scheduler the
 * two ends of a channel that wake each other often share one CPU. So each
 * side stores 1 + the CPU it last ran on (sched_getcpu() reads it from
 * rseq, no system call; the shared word is written only when it changes),
 * and a consumer whose producers all last ran on its own CPU yields the
 * CPU (sched_yield()) instead of spinning, until its spin budget is spent
 * (a producer waiting for room, or a consumer with a timeout under
 * YIELD_MIN_TIMEOUT_NS, sleeps at once instead).
 * The consumer yields rather than sleeps: two ends that wake each other
 * through the futex look, to the scheduler, like one task's worth of load, and wake-up
 * placement keeps them on one CPU for good, paying a futex wake-up and a
 * context switch per message (a 9 us round trip here, 25 times slower,
 * next to a compute-bound process). Yielding hands the CPU straight to
 * the peer (about 2 us a round trip), and two ends that stay runnable
 * are what the load balancer spreads over the CPUs. The words are hints:
 * a stale one costs a spin, a yield or a futex wake-up, never a lost
 * message.
 */
static int32_t note_cpu(struct shmkit_chan *ch, _Atomic int32_t *w)
{
	int c = sched_getcpu();
	int32_t v = c < 0 ? 0 : c + 1;

	if (unlikely(v != ch->cpu)) {
		ch->cpu = v;
		store_relaxed(w, v);
	}
	return v;
}

/* Consumer: every attached producer last sent from CPU `me` (not 0). */
static int producers_here(const struct shmkit_chan *ch, int32_t me)
{
	int any = 0;

	if (!me)
		return 0;
	for (unsigned i = 0; i < ch->nlanes; i++) {
		const struct shmkit_chan_lane *l = &ch->lanes[i];

		if (load_relaxed(&l->state) != SHMKIT_CHAN_PEER_ATTACHED)
			continue;
		if (load_relaxed(&l->cpu) != me)
			return 0;
		any = 1;
	}
	return any;
}

/*
 * Publish the records in [ch->tail, end), whose first record word is
 * `first`: the commit, then the wake check.
 *
 * The consumer polls the record word at its head, not the tail: a word
 * of zero means "nothing yet", so the consumer reads only the cache lines
 * the messages travel in, and the producer's tail line stays put. For a
 * zero to mean that, the word where the next record will go is cleared
 * before this commit makes the way to it visible (the room check keeps 8
 * bytes for it). The tail is stored after the commit, for the slow paths
 * (end of stream, readiness, a producer or consumer attaching); it may
 * lag the record words by the records of one commit, or for good if the
 * producer dies in between (lane_extent() finds them).
 */
static inline void prod_commit(struct shmkit_chan *ch, uint64_t first,
			       uint64_t end)
{
	unsigned char *ring = ch->pring;
	uint64_t start = ch->tail;

	store_relaxed(rec_word_at(ch, ring, end), 0);
	/* The commit (P1). Pairs with the acquire load of the record word
	 * in lane_next(): the consumer reads a record only once its word
	 * is there, so it never sees a partial message, and it then sees
	 * the cleared word after it. */
	store_release(rec_word_at(ch, ring, start), first);
	SHMKIT_CRASH_POINT("chan.send.committed");
	ch->tail = end;
	/* Pairs with the acquire loads of tail in the slow paths. */
	store_release(&ch->pl->tail, end);
	SHMKIT_CRASH_POINT("chan.send.tail");
	prod_notify(ch);
}

/*
 * A bounded spin. The clock is read every 64 pauses, and first only after
 * the first 64, so that a wait that ends quickly (the ping-pong case)
 * costs no clock read at all. Returns 0 once budget_ns has passed since
 * that first reading; *start is then when spinning began (to within 64
 * pauses; a caller that yields sets it before its first yield).
 */
struct spin {
	uint64_t n;
	uint64_t start;
};

static inline int spin_more(struct spin *sp, uint64_t budget_ns)
{
	uint64_t now;

	shmkit__cpu_relax();
	if ((++sp->n & 63) != 0)
		return 1;
	now = shmkit__now_ns();
	if (!sp->start)
		sp->start = now;
	return now - sp->start <= budget_ns;
}

/* The budget after a spin that paid off. */
static inline uint64_t spin_grow(uint64_t ns)
{
	if (ns >= SPIN_GROW_NS)
		return ns; /* learned: keep */
	return ns * 2 > SPIN_GROW_NS ? SPIN_GROW_NS : ns * 2;
}

/* A wait that slept ended `waited` ns after it began spinning. */
static inline void spin_learn(struct shmkit_chan *ch, uint64_t waited)
{
	uint64_t s = waited + waited / 2;
	struct rusage ru;

	/* Preempted since the last look: our CPU is shared. One system
	 * call, after a sleep that cost two. */
	if (getrusage(RUSAGE_THREAD, &ru) == 0 && ru.ru_nivcsw != ch->nivcsw) {
		ch->nivcsw = ru.ru_nivcsw;
		ch->spin_ns = SPIN_MIN_NS;
		return;
	}
	if (waited < SPIN_MAX_NS && s > ch->spin_ns)
		ch->spin_ns = s > SPIN_MAX_NS ? SPIN_MAX_NS : s;
}

/*
 * Producer waits for room for `need` bytes: spin while the consumer is
 * active, then sleep on the lane's tx_seq (the waiter half of the
 * handshake above, with tx_sleep/tx_seq/head for rx_sleepers/rx_seq/tail)
 * for at most a slice, checking the consumer's liveness between slices.
 * Returns 0 when there may be room, or an error.
 */
static int prod_wait(struct shmkit_chan *ch, uint64_t need, uint64_t deadline,
		     uint64_t *since, unsigned *fruitless)
{
	struct shmkit_chan_lane *l = ch->pl;
	struct spin sp = {0, 0};
	uint64_t pos, s, slice, budget = ch->spin_ns;
	int32_t me = note_cpu(ch, &ch->pl->cpu);
	int64_t r;
	int rc;

	/* Never spin past the caller's deadline. */
	if (deadline != UINT64_MAX) {
		uint64_t now = shmkit__now_ns();

		budget = deadline <= now	   ? 0
			 : deadline - now < budget ? deadline - now
						   : budget;
	}

	/* No spinning when the consumer last waited on our CPU. Else look
	 * at head only every few pauses: the consumer writes that line, and
	 * polling it hard slows the very consumer we wait for. */
	if (!me || load_relaxed(&ch->hdr->cons_cpu) != me) {
		do {
			if (sp.n % 8)
				continue;
			r = prod_room(ch, ch->tail, need, &pos);
			if (r != -EAGAIN) {
				if (r >= 0)
					ch->spin_ns = spin_grow(ch->spin_ns);
				return r < 0 ? (int)r : 0;
			}
		} while (spin_more(&sp, budget));
		ch->spin_ns = ch->spin_ns / 2 < SPIN_MIN_NS ? SPIN_MIN_NS
							    : ch->spin_ns / 2;
		if (!*since)
			*since = sp.start ? sp.start : shmkit__now_ns();
	}
	rc = shmkit__chan_cons_gone(ch);
	if (rc < 0)
		return rc;
	slice = shmkit__chan_slice(deadline);
	if (!slice)
		return -ETIMEDOUT;
	if (shmkit__chan_nap(fruitless, slice))
		return 0; /* see SHMKIT__NAP_NS */
	store_relaxed(&l->tx_sleep, 1);
	/* Orders the tx_sleep store before the head load in prod_room();
	 * pairs with the fence in cons_txcheck(). */
	fence_seq_cst();
	/* Pairs with the release fetch_add in wake_tx(). */
	s = load_acquire(&l->tx_seq);
	r = prod_room(ch, ch->tail, need, &pos);
	if (r == -EAGAIN) {
		uint64_t h0 = ch->head, t0 = shmkit__now_ns();
		int woken;

		SHMKIT_CRASH_POINT("chan.send.sleep");
		woken = shmkit__futex_wait(&l->tx_seq, s, slice) == 0;
		/* Fruitless: woken, and the consumer's head did not move. */
		*fruitless = shmkit__fruitless(
			*fruitless, woken && load_relaxed(&l->head) == h0, t0,
			shmkit__now_ns());
	}
	store_relaxed(&l->tx_sleep, 0);
	return r < 0 && r != -EAGAIN ? (int)r : 0;
}

/* Find room, waiting per timeout. Returns bytes to advance and *pos. */
static __attribute__((noinline)) int64_t
prod_acquire_slow(struct shmkit_chan *ch, uint64_t need, uint64_t *pos,
		  int64_t timeout_ns)
{
	uint64_t deadline, since = 0; /* when the first failed spin began */
	unsigned fruitless = 0;
	int64_t r;
	int rc;

	if (timeout_ns == 0) {
		uint64_t now = shmkit__now_ns();

		if (now >= ch->live_next_ns) {
			ch->live_next_ns = now + LIVE_TRY_NS;
			rc = shmkit__chan_cons_gone(ch);
			if (rc < 0)
				return rc;
		}
		return -EAGAIN;
	}
	deadline = shmkit__chan_deadline(timeout_ns);
	for (;;) {
		rc = prod_wait(ch, need, deadline, &since, &fruitless);
		if (rc < 0)
			return rc;
		r = prod_room(ch, ch->tail, need, pos);
		if (r != -EAGAIN) {
			if (since)
				spin_learn(ch, shmkit__now_ns() - since);
			return r;
		}
		if (shmkit__now_ns() >= deadline)
			return -ETIMEDOUT;
	}
}

/* Room at once (the common case, inline), or wait for it. */
static inline int64_t prod_acquire(struct shmkit_chan *ch, uint64_t need,
				   uint64_t *pos, int64_t timeout_ns)
{
	int64_t r = prod_room(ch, ch->tail, need, pos);

	if (likely(r != -EAGAIN))
		return r;
	return prod_acquire_slow(ch, need, pos, timeout_ns);
}

/* Everything but the common case: a pad, no room by the last head seen. */
static __attribute__((noinline)) int send_slow(struct shmkit_chan *ch,
					       const void *msg, size_t len,
					       int64_t timeout_ns)
{
	uint64_t pos;
	unsigned char *p;
	int64_t adv = prod_acquire(ch, framed(len), &pos, timeout_ns);

	if (adv < 0)
		return (int)adv;
	SHMKIT_CRASH_POINT("chan.send.reserved");
	p = prod_frame(ch, ch->tail, pos, len);
	if (len)
		memcpy(p, msg, len);
	SHMKIT_CRASH_POINT("chan.send.written");
	prod_commit(ch, prod_first(ch, ch->tail, pos, len),
		    ch->tail + (uint64_t)adv);
	return 0;
}

/*
 * The rest of send's fast path: copy, commit. Inlined where the payload
 * is small, so that the whole path makes no call; called out of line
 * (send_fill_big()) to copy a larger one with memcpy(). One function, so
 * each crash point is one site.
 */
static inline __attribute__((always_inline)) int
send_fill(struct shmkit_chan *ch, const void *msg, size_t len, uint64_t off,
	  uint64_t end)
{
	msg_copy(ch->pring + off + SHMKIT_REC_HDR, msg, len);
	SHMKIT_CRASH_POINT("chan.send.fast_written");
	prod_commit(ch, rec_word((uint32_t)len, SHMKIT_REC_MSG), end);
	return 0;
}

static __attribute__((noinline)) int send_fill_big(struct shmkit_chan *ch,
						   const void *msg, size_t len,
						   uint64_t off, uint64_t end)
{
	return send_fill(ch, msg, len, off, end);
}

int shmkit_chan_send(struct shmkit_chan *ch, const void *msg, size_t len,
		     int64_t timeout_ns)
{
	uint64_t tail, off, end;
	int rc = shmkit__chan_check(ch, SHMKIT_CHAN_PRODUCER);

	if (unlikely(rc < 0))
		return rc;
	if (unlikely(len > ch->max_msg || (len && !msg)))
		return len > ch->max_msg ? -EMSGSIZE : -EINVAL;
	ch->res_active = 0;
	/* The common case, prod_room() without its rare branches: the
	 * record fits before the ring's end, and there is room by the last
	 * head seen. */
	tail = ch->tail;
	off = tail & ch->mask;
	end = tail + framed(len);
	if (unlikely(off + framed(len) > ch->ring_size) ||
	    unlikely(end + SHMKIT_REC_HDR - ch->head > ch->ring_size))
		return send_slow(ch, msg, len, timeout_ns);
	SHMKIT_CRASH_POINT("chan.send.fast_reserved");
	if (unlikely(len > MSG_COPY_INLINE))
		return send_fill_big(ch, msg, len, off, end);
	return send_fill(ch, msg, len, off, end);
}

int shmkit_chan_reserve(struct shmkit_chan *ch, size_t len, void **ptr,
			int64_t timeout_ns)
{
	uint64_t pos;
	int64_t adv;
	int rc = shmkit__chan_check(ch, SHMKIT_CHAN_PRODUCER);

	if (rc < 0)
		return rc;
	if (!ptr)
		return -EINVAL;
	*ptr = NULL;
	if (len > ch->max_msg)
		return -EMSGSIZE;
	ch->res_active = 0;
	adv = prod_acquire(ch, framed(len), &pos, timeout_ns);
	if (adv < 0)
		return (int)adv;
	SHMKIT_CRASH_POINT("chan.reserve.reserved");
	ch->res_pos = pos;
	ch->res_adv = (uint64_t)adv;
	ch->res_cap = len;
	ch->res_active = 1;
	*ptr = ch->pring + (pos & ch->mask) + SHMKIT_REC_HDR;
	return 0;
}

int shmkit_chan_commit(struct shmkit_chan *ch, size_t len)
{
	int rc = shmkit__chan_check(ch, SHMKIT_CHAN_PRODUCER);

	if (rc < 0)
		return rc;
	if (!ch->res_active || len > ch->res_cap)
		return -EINVAL;
	ch->res_active = 0;
	/* The header is written now, with the final length; the record is
	 * shortened, never lengthened, so it stays inside the reservation. */
	prod_frame(ch, ch->tail, ch->res_pos, len);
	SHMKIT_CRASH_POINT("chan.commit.written");
	prod_commit(ch, prod_first(ch, ch->tail, ch->res_pos, len),
		    ch->res_pos + framed(len));
	return 0;
}

int shmkit_chan_send_batch(struct shmkit_chan *ch,
			   const struct shmkit_chan_msg *msgs, unsigned n,
			   int64_t timeout_ns)
{
	uint64_t tail, pos, first;
	unsigned k;
	int64_t adv;
	int rc = shmkit__chan_check(ch, SHMKIT_CHAN_PRODUCER);

	if (rc < 0)
		return rc;
	if (!msgs || n == 0)
		return -EINVAL;
	for (k = 0; k < n; k++)
		if (msgs[k].len > ch->max_msg || (msgs[k].len && !msgs[k].buf))
			return msgs[k].len > ch->max_msg ? -EMSGSIZE : -EINVAL;
	ch->res_active = 0;
	/* The first message may wait; the rest take only the room there is. */
	adv = prod_acquire(ch, framed(msgs[0].len), &pos, timeout_ns);
	if (adv < 0)
		return (int)adv;
	tail = ch->tail;
	/* The first record word is written last, by the commit: the batch
	 * becomes visible at once. */
	first = prod_first(ch, tail, pos, msgs[0].len);
	for (k = 0;;) {
		unsigned char *p = prod_frame(ch, tail, pos, msgs[k].len);

		if (k)
			store_relaxed(rec_word_at(ch, ch->pring, tail),
				      prod_first(ch, tail, pos, msgs[k].len));
		if (msgs[k].len)
			memcpy(p, msgs[k].buf, msgs[k].len);
		tail += (uint64_t)adv;
		if (++k == n)
			break;
		adv = prod_room(ch, tail, framed(msgs[k].len), &pos);
		if (adv == -EAGAIN)
			break;
		if (adv < 0)
			return (int)adv;
	}
	SHMKIT_CRASH_POINT("chan.send_batch.written");
	prod_commit(ch, first, tail);
	return (int)k;
}

int shmkit_chan_flush(struct shmkit_chan *ch, int64_t timeout_ns)
{
	uint64_t deadline = shmkit__chan_deadline(timeout_ns);
	struct shmkit_chan_lane *l;
	unsigned fruitless = 0;
	int rc = shmkit__chan_check(ch, SHMKIT_CHAN_PRODUCER);

	if (rc < 0)
		return rc;
	l = ch->pl;
	for (;;) {
		/* Pairs with the release store of head in cons_publish(). */
		uint64_t h = load_acquire(&l->head), s, slice;

		if (h > ch->tail || ch->tail - h > ch->ring_size || (h & 7))
			return -EBADMSG;
		if (h == ch->tail)
			return 0;
		rc = shmkit__chan_cons_gone(ch);
		/* The consumer may have released everything and then left:
		 * that is a complete flush. Pairs as above. */
		if (rc < 0)
			return load_acquire(&l->head) == ch->tail ? 0 : rc;
		slice = shmkit__chan_slice(deadline);
		if (!slice)
			return timeout_ns == 0 ? -EAGAIN : -ETIMEDOUT;
		/* The consumer releases its last message at its next call
		 * and only then checks tx_sleep: short slices keep the
		 * delay small if it never calls again. */
		if (slice > 1000000)
			slice = 1000000;
		if (shmkit__chan_nap(&fruitless, slice))
			continue; /* see SHMKIT__NAP_NS */
		store_relaxed(&l->tx_sleep, 1);
		/* Same handshake as prod_wait(). */
		fence_seq_cst();
		s = load_acquire(&l->tx_seq);
		if (load_acquire(&l->head) != ch->tail) {
			uint64_t t0 = shmkit__now_ns();
			int woken = shmkit__futex_wait(&l->tx_seq, s, slice) ==
				    0;

			/* Fruitless: woken, and head did not move. */
			fruitless = shmkit__fruitless(
				fruitless, woken && load_relaxed(&l->head) == h,
				t0, shmkit__now_ns());
		}
		store_relaxed(&l->tx_sleep, 0);
	}
}

/* ---- consumer ------------------------------------------------------------ */

struct rec {
	uint64_t start; /* counter of the record (before any pad) */
	uint64_t head;	/* counter of the message record (after a pad) */
	uint64_t end;	/* counter after the message */
	const unsigned char *data;
	uint32_t len;
};

/*
 * Lane i is empty at counter `head` (the record word there is zero):
 * 0 if the tail agrees, 1 if the tail says a record is there after all
 * (*w then holds its word), -EBADMSG if the lane is corrupt. A tail
 * behind head is no corruption: the producer stores it after the record
 * words, so it lags them by up to one commit, and for good if the
 * producer died in between.
 */
static int lane_empty(struct shmkit_chan *ch, unsigned i, uint64_t head,
		      const unsigned char *ring, uint64_t *w)
{
	/* Pairs with the release store of tail in prod_commit(). */
	uint64_t t = load_acquire(&ch->lanes[i].tail);

	if (t == head || (head - t <= ch->ring_size && !(t & 7)))
		return 0;
	if (t - head > ch->ring_size || (t & 7))
		return -EBADMSG;
	/* The tail covers the record: its word was stored before the tail
	 * (pairs with the release store in prod_commit()). */
	*w = load_acquire(rec_word_at(ch, ring, head));
	return *w ? 1 : -EBADMSG;
}

/*
 * Framed size of the message whose record word w lies at ring offset off,
 * or 0 if w is not a message record (tag, kind) whose length fits both
 * the largest message and the ring's end.
 */
static inline uint64_t rec_msg_need(const struct shmkit_chan *ch, uint64_t w,
				    uint64_t off)
{
	uint32_t len = (uint32_t)w;
	uint64_t need = framed(len);

	if ((uint32_t)(w >> 32) != (SHMKIT_REC_TAG | SHMKIT_REC_MSG) ||
	    len > ch->max_msg || off + need > ch->ring_size)
		return 0;
	return need;
}

/*
 * The next message of lane i: 1 and *m, 0 if the lane is empty, -EBADMSG
 * if the lane is corrupt. Everything shared is read once into a local and
 * checked before use: the record word's tag, kind and length against the
 * ring end and the largest message, a pad's length against the ring end.
 * At most one pad precedes a message, so this never loops.
 */
static inline int lane_next(struct shmkit_chan *ch, unsigned i, struct rec *m)
{
	struct shmkit__cons_lane *c = &ch->cl[i];
	const unsigned char *ring = ch->rings + (uint64_t)i * ch->ring_size;
	uint64_t head = c->head, off, w, need;
	uint32_t len, info;
	int rc;

	/* One read of the record word; a peer may change it. Pairs with the
	 * release store in prod_commit(). */
	w = load_acquire(rec_word_at(ch, ring, head));
	if (unlikely(!w)) {
		rc = lane_empty(ch, i, head, ring, &w);
		if (rc <= 0)
			return rc;
	}
	m->start = head;
	for (int pads = 0;; pads++) {
		off = head & ch->mask;
		len = (uint32_t)w;
		info = (uint32_t)(w >> 32);
		if ((info & 0xffff0000u) != SHMKIT_REC_TAG)
			return -EBADMSG;
		if ((info & 0xffffu) == SHMKIT_REC_PAD) {
			uint64_t skip = ch->ring_size - off;

			if (pads || len != skip - SHMKIT_REC_HDR)
				return -EBADMSG;
			head += skip;
			/* Written before the pad's word (see prod_frame()),
			 * so it is there: the pad's acquire covers it. */
			w = load_relaxed(rec_word_at(ch, ring, head));
			continue;
		}
		need = rec_msg_need(ch, w, off);
		if (!need)
			return -EBADMSG;
		m->head = head;
		m->end = head + need;
		m->data = ring + off + SHMKIT_REC_HDR;
		m->len = len;
		return 1;
	}
}

/* Another message taken from the current lane i: after a burst of 64,
 * the next call looks at the other lanes first (it comes back if idle). */
static inline void cons_burst(struct shmkit_chan *ch, unsigned i)
{
	if (unlikely(++ch->burst >= 64)) {
		ch->burst = 0;
		ch->cur = i + 1 == ch->nlanes ? 0 : i + 1;
	}
}

/*
 * Find the next message, round-robin over lanes, staying on a busy lane
 * for a burst. Returns its lane, -EAGAIN if all are empty, -EBADMSG.
 */
static inline int cons_next(struct shmkit_chan *ch, struct rec *m)
{
	unsigned i = ch->cur;

	for (unsigned k = 0; k < ch->nlanes; k++) {
		int rc = lane_next(ch, i, m);

		if (rc > 0) {
			if (k) {
				ch->cur = i;
				ch->burst = 1;
			} else {
				cons_burst(ch, i);
			}
			return (int)i;
		}
		if (rc < 0)
			return rc;
		if (++i == ch->nlanes)
			i = 0;
	}
	return -EAGAIN;
}

/*
 * Mark [done, end) as handed to the application before it sees a byte:
 * a takeover consumer redelivers (flagged) what lies below the mark and
 * above the confirmed position. The mark is read only by the next consumer,
 * after our death released the consumer lock; the signal fence keeps the
 * compiler from sinking the store below the copy (a crash is, to this
 * thread, an asynchronous signal).
 */
static inline void cons_mark(struct shmkit_chan *ch, unsigned i, uint64_t end)
{
	/* Never below what a dead predecessor was handed: if we die before
	 * redelivering all of it, the next consumer must flag it too. */
	if (unlikely(end < ch->cl[i].redeliver))
		end = ch->cl[i].redeliver;
	store_relaxed(&ch->lanes[i].mark, end);
	atomic_signal_fence(memory_order_seq_cst);
}

static inline uint32_t rec_flags(const struct shmkit_chan *ch, unsigned i,
				 const struct rec *m)
{
	return m->start < ch->cl[i].redeliver ? SHMKIT_CHAN_REDELIVERED : 0;
}

/* Take one message without waiting: its length, or -EAGAIN etc. */
static int cons_take(struct shmkit_chan *ch, void *buf, size_t cap,
		     uint32_t *flags)
{
	struct rec m;
	int i;

	cons_publish_deferred(ch);
	i = cons_next(ch, &m);
	if (i < 0)
		return i;
	if (m.len > cap) {
		ch->cl[i].head = m.head; /* a skipped pad stays skipped */
		return -EMSGSIZE;
	}
	cons_mark(ch, (unsigned)i, m.end);
	SHMKIT_CRASH_POINT("chan.recv.marked");
	if (m.len)
		memcpy(buf, m.data, m.len);
	SHMKIT_CRASH_POINT("chan.recv.copied");
	if (flags)
		*flags = rec_flags(ch, (unsigned)i, &m);
	ch->cl[i].head = m.end;
	ch->deferred = 1ull << i;
	return (int)m.len;
}

/*
 * Something may be in lane i at counter `head`: its record word is set,
 * or the tail is past head (or makes no sense, which the reader must
 * hear). No validation; lane_next() does that.
 */
int shmkit__chan_lane_has(const struct shmkit_chan *ch, unsigned i,
			  uint64_t head)
{
	const unsigned char *ring = ch->rings + (uint64_t)i * ch->ring_size;
	uint64_t t;

	/* Pairs with the release store in prod_commit(). */
	if (load_acquire(rec_word_at(ch, ring, head)))
		return 1;
	/* Pairs with the release store of tail in prod_commit(). */
	t = load_acquire(&ch->lanes[i].tail);
	/* Ahead of head, or misaligned: lane_next() reports the latter as
	 * -EBADMSG, which a waiter must wake up to hear. */
	return t != head && (head - t > ch->ring_size || (t & 7));
}

/* Something to read in any lane. */
static inline int cons_any(struct shmkit_chan *ch)
{
	for (unsigned i = 0; i < ch->nlanes; i++)
		if (shmkit__chan_lane_has(ch, i, ch->cl[i].head))
			return 1;
	return 0;
}

/*
 * cons_any() for the spin loop: it looks only at the record word where
 * each lane's next message will start, the line the message comes in
 * (never at the tail: see prod_commit()), and prefetches the line after
 * it, so that both travel while we wait instead of one after the other
 * (a prefetch is a hint: it never faults and changes no result). A tail
 * that moves while the word stays zero is found by cons_any() before the
 * waiter sleeps.
 */
static inline int cons_any_pf(struct shmkit_chan *ch)
{
	for (unsigned i = 0; i < ch->nlanes; i++) {
		const unsigned char *ring =
			ch->rings + (uint64_t)i * ch->ring_size;
		uint64_t h = ch->cl[i].head;

		__builtin_prefetch(ring + ((h + 64) & ch->mask), 0, 3);
		/* Pairs with the release store in prod_commit(). */
		if (load_acquire(rec_word_at(ch, ring, h)))
			return 1;
	}
	return 0;
}

int shmkit__chan_any(struct shmkit_chan *ch)
{
	return cons_any(ch);
}

int shmkit__chan_ready(struct shmkit_chan *ch)
{
	cons_publish_deferred(ch);
	if (cons_any(ch))
		return 1;
	cons_publish_all(ch);
	cons_txcheck(ch);
	return 0;
}

int shmkit__chan_cons_eos(struct shmkit_chan *ch)
{
	uint64_t now = shmkit__now_ns();
	int probe = now >= ch->live_next_ns || load_relaxed(&ch->fd_eos);
	struct shmkit__death d;
	int rc;

	if (ch->reset_pending)
		return -ECONNRESET;
	if (probe) {
		ch->live_next_ns = now + LIVE_NS;
		store_relaxed(&ch->fd_eos, 0);
	}
	rc = shmkit__chan_eos(ch, &ch->cl[0].head, sizeof(ch->cl[0]), probe,
			      &d);
	if (rc == -ECONNRESET) {
		/* Reported once: acknowledged now, handed out by recv; and in
		 * the lane, so that a later consumer does not report it
		 * again. A lost death (claims == lost) leaves dead_ack. */
		if (d.claims != d.lost) {
			store_relaxed(&ch->dead_ack[d.lane], d.claims);
			store_relaxed(&ch->lanes[d.lane].dead_ack, d.claims);
		}
		store_relaxed(&ch->lost_ack[d.lane], d.lost);
		store_relaxed(&ch->lanes[d.lane].lost_ack, d.lost);
		ch->reset_pending = 1;
	}
	return rc;
}

/* What recv reports for an empty channel: 0 (nothing to report), -EPIPE,
 * -ECONNRESET (once per dead producer) or -EBADMSG. */
static int cons_end(struct shmkit_chan *ch)
{
	int rc = shmkit__chan_cons_eos(ch);

	if (rc == -ECONNRESET)
		ch->reset_pending = 0;
	return rc > 0 ? -EPIPE : rc;
}

/*
 * Consumer-side sleep (W1-W5 of the handshake) on rx_seq for at most
 * slice_ns unless something is there. W4 re-checks the tails and end of
 * stream: a producer that closed after the caller's cons_end() but before
 * W1 saw no sleeper and woke nobody. The re-check makes no system call (a
 * lane not marked CLOSED counts as alive; only a dead producer, whose
 * death the slice bounds, is left to the liveness probe). Returns 1 if a
 * message may be there, 0 after sleeping or at end of stream (which the
 * caller's next cons_end() reports); *woken is 1 if the sleep ended
 * before its time (a wake-up, or the word moved), 0 otherwise.
 */
int shmkit__chan_sleep_rx(struct shmkit_chan *ch, uint64_t slice_ns, int *woken)
{
	struct shmkit_chan_hdr *h = ch->hdr;
	struct shmkit__death d;
	uint32_t s;
	int any, end = 0;

	atomic_fetch_add_explicit(&h->rx_sleepers, 1, memory_order_relaxed);
	/* W2: pairs with P2 in prod_notify() and with the fence after the
	 * CLOSED store in shmkit_chan_close(). */
	slice_ns = shmkit__chan_rx_barrier(&ch, 1, slice_ns);
	/* W3: pairs with the release fetch_add in shmkit__chan_wake_rx(). */
	s = load_acquire(&h->rx_seq);
	any = cons_any(ch);
	if (!any)
		/* The lane state loads are acquires paired with the CLOSED
		 * store (see shmkit__chan_eos()). */
		end = shmkit__chan_eos(ch, &ch->cl[0].head, sizeof(ch->cl[0]),
				       0, &d) != 0;
	*woken = 0;
	if (!any && !end) {
		SHMKIT_CRASH_POINT("chan.recv.sleep");
		*woken = shmkit__futex_wait(&h->rx_seq, s, slice_ns) == 0;
	}
	atomic_fetch_sub_explicit(&h->rx_sleepers, 1, memory_order_relaxed);
	return any;
}

/*
 * Consumer found nothing: spin, then check for end of stream, then sleep.
 * Returns 0 to try again, or -EAGAIN/-ETIMEDOUT/-EPIPE/-EBADMSG.
 */
static int cons_wait(struct shmkit_chan *ch, int64_t timeout_ns,
		     uint64_t *deadline)
{
	struct spin sp = {0, 0};
	uint64_t now, slice, budget = ch->spin_ns;
	unsigned fruitless = 0;
	int32_t me;
	int rc, skip, woken, yielded = 0;

	if (timeout_ns == 0) {
		/* Everything handed out is confirmed by now; a lane found
		 * empty is the moment to publish it and run the fenced
		 * tx_sleep check. */
		cons_publish_all(ch);
		cons_txcheck(ch);
		/* A poller: look once more, fetching the next record's lines
		 * meanwhile (see cons_any_pf()), then end of stream. Once per
		 * call (*deadline marks it): a tail that a hostile producer
		 * keeps moving must not keep the call looping. */
		if (!*deadline) {
			*deadline = 1;
			if (cons_any_pf(ch))
				return 0;
		}
		rc = cons_end(ch);
		return rc < 0 ? rc : -EAGAIN;
	}
	/* A producer that raised tx_sleep (waiting for room, or flushing)
	 * gets head now rather than after the spin; unfenced, as in
	 * cons_confirm(). */
	for (unsigned i = 0; i < ch->nlanes; i++)
		if (unlikely(load_relaxed(&ch->lanes[i].tx_sleep)))
			cons_publish(ch, i);
	/* Spin while traffic flows (the budget doubles when spinning pays
	 * off and halves when it does not); yield instead while the
	 * producers run on our CPU (see note_cpu()). Look where we run, and
	 * where they do, whenever the clock is read. */
	me = note_cpu(ch, &ch->hdr->cons_cpu);
	skip = producers_here(ch, me);
	/* Never spin past the caller's timeout. */
	if (timeout_ns > 0 && (uint64_t)timeout_ns < budget)
		budget = (uint64_t)timeout_ns;
	while (spin_more(&sp, budget)) {
		if (skip) {
			/* One yield may hand the CPU away for another task's
			 * whole time slice, several milliseconds: a short
			 * timeout sleeps at once instead, and the deadline
			 * counts from before the first yield. */
			if (timeout_ns >= 0 &&
			    (uint64_t)timeout_ns < YIELD_MIN_TIMEOUT_NS)
				break;
			if (!sp.start)
				sp.start = shmkit__now_ns();
			sched_yield();
			yielded = 1;
			sp.n |= 63; /* long: read the clock at every one */
		}
		/* Three looks per pause: a pause is about 50 ns here, half a
		 * cache-line transfer, and the reply is noticed that much
		 * sooner on average. */
		if (cons_any_pf(ch) || cons_any_pf(ch) || cons_any_pf(ch)) {
			ch->spin_ns = spin_grow(ch->spin_ns);
			return 0;
		}
		if (skip || (sp.n & 63) == 0) {
			me = note_cpu(ch, &ch->hdr->cons_cpu);
			skip = producers_here(ch, me);
		}
	}
	if (yielded) {
		struct rusage ru;

		/* Our own yields count as involuntary switches: not the
		 * preemption spin_learn() looks for. */
		if (getrusage(RUSAGE_THREAD, &ru) == 0)
			ch->nivcsw = ru.ru_nivcsw;
	}
	/* Spinning found nothing: publish what was handed out and run the
	 * fenced tx_sleep check now, not before spinning, where their
	 * system-wide costs (the head line, the fence) fell on every message
	 * of a stream whose consumer keeps catching up with its producer. A
	 * producer waiting for room needs neither sooner: it waits only on a
	 * lane with less room than a message, which the consumer cannot
	 * empty without passing a fenced quarter-ring checkpoint. A flushing
	 * producer raises tx_sleep, which the unfenced looks in
	 * cons_confirm() and before the spin see unless they race with it;
	 * then the flusher waits for this point (the spin budget, at most
	 * SPIN_MAX_NS) or for its own 1 ms slice. */
	cons_publish_all(ch);
	cons_txcheck(ch);
	if (cons_any(ch))
		return 0;
	if (!sp.start)
		sp.start = shmkit__now_ns();
	ch->spin_ns = ch->spin_ns / 2 < SPIN_MIN_NS ? SPIN_MIN_NS
						    : ch->spin_ns / 2;
	/* The deadline counts from when this wait began spinning (a retry
	 * after a wake-up keeps the first one). */
	if (!*deadline)
		*deadline = timeout_ns < 0 ? UINT64_MAX
					   : sp.start + (uint64_t)timeout_ns;
	for (;;) {
		rc = cons_end(ch);
		if (rc < 0)
			return rc;
		now = shmkit__now_ns();
		slice = shmkit__chan_slice(*deadline);
		if (!slice)
			return -ETIMEDOUT;
		if (ch->live_next_ns > now && ch->live_next_ns - now < slice)
			slice = ch->live_next_ns - now;
		/* Sleep, unless woken twice in a row within SHMKIT__NAP_NS
		 * with nothing to read: then nap instead. */
		if (!shmkit__chan_nap(&fruitless, slice)) {
			if (shmkit__chan_sleep_rx(ch, slice, &woken))
				return 0; /* found without sleeping */
			fruitless = shmkit__fruitless(fruitless, woken, now,
						      shmkit__now_ns());
		}
		if (cons_any(ch)) {
			/* Slept, and a message came: learn from it. */
			spin_learn(ch, shmkit__now_ns() - sp.start);
			return 0;
		}
	}
}

/*
 * recv's common case, kept small (no loop over lanes, no record struct,
 * no call): the current lane holds a message that fits, no other lane
 * awaits confirmation, and nothing is to be redelivered. Returns 1 with
 * the message (*src, *len), which the caller copies out, and in *publish
 * 1 + the lane whose head the confirmation calls to publish (0: none),
 * which the caller does before the copy (cons_publish()); or 0 for the
 * general path, which reads and checks everything again (and confirms
 * again, to the same position). The steps and their order are
 * cons_take()'s: confirm, read the record word once, check it, mark,
 * copy; only the publication moves from the confirm to after the mark.
 */
static inline int cons_take_fast(struct shmkit_chan *ch, size_t cap,
				 uint32_t *flags, const void **src,
				 uint32_t *len, unsigned *publish)
{
	unsigned i = ch->cur;
	struct shmkit__cons_lane *c = &ch->cl[i];
	struct shmkit_chan_lane *l = c->lane;
	uint64_t head = c->head, off = head & ch->mask, d = ch->deferred,
		 bit = c->bit, w, need;

	if (unlikely(d & ~bit) || unlikely(c->redeliver > head))
		return 0;
	*publish = 0;
	if (likely(d)) {
		/* cons_confirm(), but the publication it may call for is
		 * left to the caller (recv_fill()): a call here would keep
		 * every local of this path alive across it. */
		cons_done(c, l);
		if (cons_pub_due(ch, c, l, head))
			*publish = i + 1;
	}
	/* One read of the record word. Pairs with the release store in
	 * prod_commit(). head is ours and 8-aligned: off is in the ring. */
	w = load_acquire((_Atomic uint64_t *)(void *)(c->ring + off));
	need = rec_msg_need(ch, w, off);
	if (unlikely(!need) || unlikely((uint32_t)w > cap))
		return 0;
	ch->deferred = bit;
	cons_burst(ch, i);
	/* cons_mark(): no redelivery is pending, so no clamp. */
	store_relaxed(&l->mark, head + need);
	atomic_signal_fence(memory_order_seq_cst);
	SHMKIT_CRASH_POINT("chan.recv.fast_marked");
	/* Private, so before the copy (the caller's). */
	if (flags)
		*flags = 0;
	c->head = head + need;
	*len = (uint32_t)w;
	*src = c->ring + off + SHMKIT_REC_HDR;
	return 1;
}

/* Everything but the common case: pads, errors, redelivery, waiting. */
static __attribute__((noinline)) int recv_slow(struct shmkit_chan *ch,
					       void *buf, size_t cap,
					       uint32_t *flags,
					       int64_t timeout_ns)
{
	uint64_t deadline = 0;
	int rc;

	if (unlikely(ch->peeked))
		ch->peeked = 0; /* an unreleased peek stays queued */
	if (unlikely(!buf && cap))
		return -EINVAL;
	for (;;) {
		rc = cons_take(ch, buf, cap, flags);
		if (likely(rc != -EAGAIN))
			return rc;
		rc = cons_wait(ch, timeout_ns, &deadline);
		if (rc < 0) {
			if (rc == -EAGAIN)
				shmkit__chan_fd_rearm(ch);
			return rc;
		}
	}
}

/*
 * The rest of recv's fast path: the publication that cons_take_fast()
 * left to us, then the copy. Inlined for a small payload and nothing to
 * publish, so that the path makes no call; out of line otherwise
 * (recv_fill_slow()). One function, so its crash point is one site.
 */
static inline __attribute__((always_inline)) int
recv_fill(struct shmkit_chan *ch, void *buf, const void *src, uint32_t len,
	  unsigned publish)
{
	/* Before the copy, as cons_confirm() would have: the bytes up to
	 * the confirmed position, which ends before this message, go back
	 * to the producer one copy sooner (a whole copy sooner matters for
	 * large messages, where a producer waits for each publication). */
	if (publish)
		cons_publish(ch, publish - 1);
	msg_copy(buf, src, len);
	SHMKIT_CRASH_POINT("chan.recv.fast_copied");
	return (int)len;
}

static __attribute__((noinline)) int recv_fill_slow(struct shmkit_chan *ch,
						    void *buf, const void *src,
						    uint32_t len,
						    unsigned publish)
{
	return recv_fill(ch, buf, src, len, publish);
}

int shmkit_chan_recv(struct shmkit_chan *ch, void *buf, size_t cap,
		     uint32_t *flags, int64_t timeout_ns)
{
	int rc = shmkit__chan_check(ch, SHMKIT_CHAN_CONSUMER);

	if (unlikely(rc < 0))
		return rc;
	if (likely(!ch->peeked && buf)) {
		const void *src;
		uint32_t len;
		unsigned publish;

		if (likely(cons_take_fast(ch, cap, flags, &src, &len,
					  &publish))) {
			if (likely(len <= MSG_COPY_INLINE) && likely(!publish))
				return recv_fill(ch, buf, src, len, 0);
			return recv_fill_slow(ch, buf, src, len, publish);
		}
	}
	return recv_slow(ch, buf, cap, flags, timeout_ns);
}

/*
 * peek's and recv_batch's start: confirm what the last call handed out,
 * then the next message (its lane, *m) as cons_next() finds it, waiting
 * per timeout_ns (cons_wait()) while there is none. Returns the lane or
 * an error (-EAGAIN only for a timeout of 0, with the descriptor
 * re-armed).
 */
static int cons_next_wait(struct shmkit_chan *ch, struct rec *m,
			  int64_t timeout_ns)
{
	uint64_t deadline = 0;
	int i, rc;

	cons_publish_deferred(ch);
	for (;;) {
		i = cons_next(ch, m);
		if (i != -EAGAIN)
			return i;
		rc = cons_wait(ch, timeout_ns, &deadline);
		if (rc < 0) {
			if (rc == -EAGAIN)
				shmkit__chan_fd_rearm(ch);
			return rc;
		}
	}
}

int shmkit_chan_peek(struct shmkit_chan *ch, const void **ptr, uint32_t *flags,
		     int64_t timeout_ns)
{
	struct rec m;
	int rc = shmkit__chan_check(ch, SHMKIT_CHAN_CONSUMER), i;

	if (rc < 0)
		return rc;
	if (!ptr)
		return -EINVAL;
	*ptr = NULL;
	ch->peeked = 0;
	i = cons_next_wait(ch, &m, timeout_ns);
	if (i < 0)
		return i;
	ch->cl[i].head = m.head;
	cons_mark(ch, (unsigned)i, m.end);
	SHMKIT_CRASH_POINT("chan.peek.marked");
	ch->peeked = i + 1;
	ch->peek_end = m.end;
	/* While the caller reads this message in place, fetch the line the
	 * next one starts in (where lane_next() will look): for messages
	 * that do not share lines, and zero-copy touches little else, that
	 * line's transfer from the producer's cache is most of a message's
	 * cost. A prefetch never faults; the offset is inside the ring. */
	__builtin_prefetch(ch->rings + (uint64_t)i * ch->ring_size +
				   (m.end & ch->mask),
			   0, 3);
	if (flags)
		*flags = rec_flags(ch, (unsigned)i, &m);
	*ptr = m.data;
	return (int)m.len;
}

int shmkit_chan_release(struct shmkit_chan *ch)
{
	int rc = shmkit__chan_check(ch, SHMKIT_CHAN_CONSUMER);
	unsigned i;

	if (rc < 0)
		return rc;
	if (!ch->peeked)
		return -EINVAL;
	i = (unsigned)ch->peeked - 1;
	ch->peeked = 0;
	ch->cl[i].head = ch->peek_end;
	/* Released explicitly: confirm now, nothing to defer. */
	cons_confirm(ch, i);
	SHMKIT_CRASH_POINT("chan.release.done");
	return 0;
}

int shmkit_chan_recv_batch(struct shmkit_chan *ch, struct shmkit_chan_msg *msgs,
			   unsigned n, int64_t timeout_ns)
{
	uint64_t lanes = 0;
	unsigned k = 0;
	struct rec m;
	int rc = shmkit__chan_check(ch, SHMKIT_CHAN_CONSUMER), i;

	if (rc < 0)
		return rc;
	if (!msgs || n == 0)
		return -EINVAL;
	ch->peeked = 0;
	i = cons_next_wait(ch, &m, timeout_ns);
	if (i < 0)
		return i;
	/* Take what is there, at most n; each mark goes up before its copy,
	 * each lane's head is published once, by the next call. */
	for (;;) {
		if (m.len > msgs[k].cap || (m.len && !msgs[k].buf)) {
			ch->cl[i].head = m.head;
			if (k == 0)
				return m.len > msgs[k].cap ? -EMSGSIZE
							   : -EINVAL;
			break;
		}
		cons_mark(ch, (unsigned)i, m.end);
		if (m.len)
			memcpy(msgs[k].buf, m.data, m.len);
		msgs[k].len = m.len;
		msgs[k].flags = rec_flags(ch, (unsigned)i, &m);
		msgs[k].lane = (uint32_t)i;
		ch->cl[i].head = m.end;
		lanes |= 1ull << i;
		if (++k == n)
			break;
		i = cons_next(ch, &m);
		if (i == -EAGAIN)
			break;
		if (i < 0) {
			rc = i;
			break;
		}
	}
	SHMKIT_CRASH_POINT("chan.recv_batch.copied");
	/* Published at the next call: a crash before that redelivers the
	 * whole batch, flagged. */
	ch->deferred = lanes;
	return k ? (int)k : rc;
}

/* ---- peers, info, close ------------------------------------------------- */

int shmkit_chan_peers(struct shmkit_chan *ch)
{
	int n = 0;

	if (!ch || load_relaxed(&fork_gen) != ch->fork_gen)
		return ch ? -ECHILD : -EINVAL;
	if (ch->role == SHMKIT_CHAN_PRODUCER)
		return shmkit__ofd_held(ch->fd, cons_lock(ch), F_WRLCK);
	for (unsigned i = 0; i < ch->nlanes; i++) {
		/* A question the kernel did not answer is an error, not
		 * "nobody": a waiter would otherwise wait out its timeout. */
		int held = shmkit__ofd_held(
			ch->fd, shmkit__chan_lane_lock(ch, i), F_WRLCK);

		if (held < 0)
			return held;
		n += held;
	}
	return n;
}

/* Claims of the other side: changes whenever a peer attaches. */
static uint32_t peer_claims(const struct shmkit_chan *ch)
{
	uint32_t n = 0;

	if (ch->role == SHMKIT_CHAN_PRODUCER)
		return load_relaxed(&ch->hdr->cons_claims);
	for (unsigned i = 0; i < ch->nlanes; i++)
		n += load_relaxed(&ch->lanes[i].claims);
	return n;
}

/*
 * Sleep for at most a slice unless a peer attached since the claims count
 * read `seen`: the waiter half of the handshake, whose waker halves are
 * attach_consumer() (fence, then tx_sleep: wake the producers) and
 * attach_producer() (fence, then rx_sleepers: wake the consumer side).
 * Either the waiter sees the new claims after its fence, or the attacher
 * sees the waiter's announcement after its own. A peer that died leaves
 * its state word as it was, so the claims count, not the state, says
 * "someone new came"; the caller asks the kernel after every slice.
 * Returns 1 if it was woken (or the claims had moved), 0 if the slice
 * ran out or a signal came.
 */
static int peer_sleep(struct shmkit_chan *ch, uint32_t seen, uint64_t slice)
{
	int woken = 1;
	uint32_t s;

	if (ch->role == SHMKIT_CHAN_PRODUCER) {
		struct shmkit_chan_lane *l = ch->pl;

		store_relaxed(&l->tx_sleep, 1);
		/* Orders the tx_sleep store before the claims load; pairs
		 * with the fence in attach_consumer(). */
		fence_seq_cst();
		/* Pairs with the release fetch_add in wake_tx(). */
		s = load_acquire(&l->tx_seq);
		if (peer_claims(ch) == seen)
			woken = shmkit__futex_wait(&l->tx_seq, s, slice) == 0;
		store_relaxed(&l->tx_sleep, 0);
		return woken;
	}
	atomic_fetch_add_explicit(&ch->hdr->rx_sleepers, 1,
				  memory_order_relaxed);
	/* Orders the announcement before the claims loads; pairs with the
	 * fence in attach_producer() after its claim. */
	fence_seq_cst();
	/* Pairs with the release fetch_add in shmkit__chan_wake_rx(). */
	s = load_acquire(&ch->hdr->rx_seq);
	if (peer_claims(ch) == seen)
		woken = shmkit__futex_wait(&ch->hdr->rx_seq, s, slice) == 0;
	atomic_fetch_sub_explicit(&ch->hdr->rx_sleepers, 1,
				  memory_order_relaxed);
	return woken;
}

int shmkit_chan_wait_peer(struct shmkit_chan *ch, int64_t timeout_ns)
{
	uint64_t deadline = 0, slice, t0;
	unsigned fruitless = 0;
	uint32_t seen;
	int n, woken;

	for (;;) {
		/* Read before asking the kernel: a peer that attaches after
		 * the question moves it. */
		seen = ch ? peer_claims(ch) : 0;
		n = shmkit_chan_peers(ch);
		if (n != 0)
			return n; /* peers, or an error */
		if (timeout_ns == 0)
			return -EAGAIN;
		if (!deadline)
			deadline = shmkit__chan_deadline(timeout_ns);
		slice = shmkit__chan_slice(deadline);
		if (!slice)
			return -ETIMEDOUT;
		/*
		 * Woken twice in a row within SHMKIT__NAP_NS and still nobody
		 * there: peers that come and go faster than we look, or a
		 * writer that keeps bumping the words we watch. Either would
		 * keep us looping; nap instead, so that the CPU we use stays
		 * bounded whatever the other side does. A peer that stays
		 * is seen within a nap.
		 */
		if (shmkit__chan_nap(&fruitless, slice))
			continue;
		t0 = shmkit__now_ns();
		woken = peer_sleep(ch, seen, slice);
		fruitless = shmkit__fruitless(fruitless, woken, t0,
					      shmkit__now_ns());
	}
}

int shmkit_chan_info(struct shmkit_chan *ch, struct shmkit_chan_info *info)
{
	struct shmkit_chan_info out;
	int rc, held;

	if (!ch || !info || info->sz < sizeof(*info))
		return -EINVAL;
	rc = shmkit_chan_peers(ch);
	if (rc < 0)
		return rc;
	/* Filled aside, so that a failed lock query leaves *info alone. */
	memset(&out, 0, sizeof(out));
	out.capacity_bytes = ch->ring_size;
	out.max_msg_bytes = ch->max_msg;
	out.max_producers = ch->nlanes;
	for (unsigned i = 0; i < ch->nlanes; i++) {
		uint64_t h, t;

		if (lane_extent(ch, i, &h, &t) == 0)
			out.queued_bytes += t - h;
		held = shmkit__ofd_held(ch->fd, shmkit__chan_lane_lock(ch, i),
					F_WRLCK);
		if (held < 0)
			return held;
		out.producers += (uint32_t)held;
	}
	if (ch->role == SHMKIT_CHAN_PRODUCER) {
		out.producers++; /* our own lock is invisible to us */
		out.consumer = (uint32_t)rc;
		out.lane = (uint32_t)ch->lane;
	} else {
		out.consumer = 1;
	}
	/* A caller built against a newer header may pass more: we fill our
	 * size and say so in sz. */
	out.sz = sizeof(out);
	memcpy(info, &out, sizeof(out));
	return 0;
}

void shmkit_chan_close(struct shmkit_chan *ch)
{
	if (!ch)
		return;
	if (load_relaxed(&fork_gen) != ch->fork_gen) {
		/* A forked child shares the parent's locks: touch nothing
		 * shared, just unmap (the segment layer knows). The helper
		 * thread did not cross the fork; its descriptor did. */
		if (ch->efd >= 0)
			close(ch->efd);
		chan_free(ch);
		return;
	}
	shmkit__chan_fd_stop(ch);
	if (ch->role == SHMKIT_CHAN_PRODUCER && ch->pl) {
		/* Pairs with the acquire load of state in shmkit__chan_eos():
		 * every commit is visible to whoever sees CLOSED. */
		store_release(&ch->pl->state, SHMKIT_CHAN_PEER_CLOSED);
		SHMKIT_CRASH_POINT("chan.close.producer");
		/* As P2 of prod_notify(), a full fence even for a fence-less
		 * producer: orders the CLOSED store before the load of
		 * rx_sleepers; pairs with W2 in shmkit__chan_rx_barrier(),
		 * after which every waiter re-checks end of stream
		 * (shmkit__chan_sleep_rx(), select, the readiness helper). */
		fence_seq_cst();
		if (load_relaxed(&ch->hdr->rx_sleepers))
			shmkit__chan_wake_rx(ch->hdr);
		shmkit__ofd_unlock(ch->fd,
				   shmkit__chan_lane_lock(ch, ch->lane));
	} else if (ch->role == SHMKIT_CHAN_CONSUMER && ch->cl) {
		/* The last message received counts as processed; an
		 * unreleased peek stays queued (its mark makes the next
		 * consumer flag it). */
		cons_publish_deferred(ch);
		cons_publish_all(ch);
		cons_txcheck(ch);
		SHMKIT_CRASH_POINT("chan.close.consumer");
		/* Pairs with the acquire load in shmkit__chan_cons_gone(). */
		store_release(&ch->hdr->cons_state, SHMKIT_CHAN_PEER_CLOSED);
		/* Unlock, then wake: a producer woken first could ask the
		 * kernel while we still hold the lock, take us for alive and
		 * sleep a whole slice before it saw the close. */
		shmkit__ofd_unlock(ch->fd, cons_lock(ch));
		for (unsigned i = 0; i < ch->nlanes; i++)
			wake_tx(&ch->lanes[i]);
	}
	chan_free(ch);
}
