/* SPDX-License-Identifier: MIT */
/*
 * The heap inside a segment: a TLSF allocator (two-level segregated free
 * lists, O(1) alloc and free, immediate coalescing) under one robust mutex,
 * fronted by a per-handle cache of small blocks that needs no lock. Owns
 * the owner records, the crash repair (intent redo, then a rebuild of the
 * free lists by a walk of the block chain) and the checker.
 */
#define _GNU_SOURCE
#include "heap.h"

#include "atomics.h"
#include "crash.h"
#include "platform.h"
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOCK_TIMEOUT_NS 10000000000ull /* default: 10 s */
#define INIT_WAIT_NS 2000000000ull     /* for a heap being formatted */
#define CACHE_MAX_BYTES (4u << 20)

/* Orders the stores of a crash-atomic step for the repairer: a process
 * killed at any instruction has issued every store before the fence and
 * none after it. Pairs with heap_repair(), which runs after the death. */
#define crash_order() atomic_signal_fence(memory_order_seq_cst)

static const char *check_why = "";

/* ------------------------------------------------------- process identity */

static unsigned fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static int32_t self_pid;
static uint32_t self_start;
static unsigned self_gen = ~0u;

static void atfork_child(void)
{
	fork_gen++;
}

static void atfork_register(void)
{
	pthread_atfork(NULL, NULL, atfork_child);
}

/* Start time of process pid (clock ticks since boot, field 22 of
 * /proc/PID/stat). 1 found, 0 gone or zombie, -errno cannot tell. */
static int proc_start(int32_t pid, uint64_t *start)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd, i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? 0 : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0 && errno == ESRCH)
		return 0;
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -EIO;
	p += 2;
	if (*p == 'Z' || *p == 'X' || *p == 'x')
		return 0;
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

void shmkit__proc_self(int32_t *pid, uint32_t *start)
{
	uint64_t st = 0;

	pthread_once(&atfork_once, atfork_register);
	if (self_gen != fork_gen) {
		self_pid = (int32_t)getpid();
		if (proc_start(self_pid, &st) <= 0)
			st = 0;
		self_start = (uint32_t)st;
		self_gen = fork_gen;
	}
	*pid = self_pid;
	*start = self_start;
}

int shmkit__proc_alive(int32_t pid, uint32_t start)
{
	uint64_t st;
	int r;

	if (pid <= 0)
		return 0;
	r = proc_start(pid, &st);
	if (r < 0)
		return 1; /* cannot tell: never "dead" wrongly */
	return r && (uint32_t)st == start;
}

/* ----------------------------------------------------------- block access */

static inline struct shmkit__blk *blk(const struct shmkit_heap *h, uint64_t off)
{
	return (struct shmkit__blk *)(void *)(h->data + off);
}

static inline struct shmkit__free_links *links(const struct shmkit_heap *h,
					       uint64_t off)
{
	return (struct shmkit__free_links *)(void *)(h->data + off +
						     SHMKIT__GRAN);
}

static inline uint32_t blk_check(uint64_t off, uint32_t size_g)
{
	uint64_t x = (off ^ (uint64_t)size_g << 40) * 0x9e3779b97f4a7c15ull;

	return (uint32_t)(x >> 32) ^ 0x5348424bu;
}

static inline int off_ok(const struct shmkit_heap *h, uint64_t off)
{
	return off >= h->arena_off && off < h->arena_end &&
	       !(off & (SHMKIT__GRAN - 1));
}

/*
 * Read and validate the header at off: in the arena, size within it,
 * check word right. Fills *size_g and *tag. 0 or -EBADMSG.
 */
static inline int blk_get(const struct shmkit_heap *h, uint64_t off,
			  uint32_t *size_g, uint32_t *tag)
{
	struct shmkit__blk *b;
	uint32_t sz;

	if (unlikely(!off_ok(h, off)))
		return -EBADMSG;
	b = blk(h, off);
	sz = load_relaxed(&b->size_g);
	if (unlikely(sz < SHMKIT__MIN_BLK_G ||
		     (uint64_t)sz << SHMKIT__GRAN_SHIFT > h->arena_end - off ||
		     load_relaxed(&b->check) != blk_check(off, sz)))
		return -EBADMSG;
	*size_g = sz;
	*tag = load_relaxed(&b->tag);
	return 0;
}

static inline uint64_t blk_bytes(uint32_t size_g)
{
	return (uint64_t)size_g << SHMKIT__GRAN_SHIFT;
}

/* ------------------------------------------------------------ TLSF lists */

#define SL_BITS ((1u << SHMKIT__NSL) - 1)

static inline void mapping(uint32_t n, int *fl, int *sl)
{
	int f;

	if (n < SHMKIT__NSL) {
		*fl = 0;
		*sl = (int)n;
		return;
	}
	f = 31 - __builtin_clz(n);
	*fl = f - 3;
	*sl = (int)(n >> (f - 4)) & (SHMKIT__NSL - 1);
}

static void list_insert(struct shmkit_heap *h, uint64_t b, uint32_t size_g)
{
	struct shmkit__heap *hp = h->hp;
	uint64_t head;
	int fl, sl;

	mapping(size_g, &fl, &sl);
	head = load_relaxed(&hp->heads[fl][sl]);
	store_relaxed(&links(h, b)->next, head);
	store_relaxed(&links(h, b)->prev, 0);
	if (head && off_ok(h, head))
		store_relaxed(&links(h, head)->prev, b);
	store_relaxed(&hp->heads[fl][sl], b);
	store_relaxed(&hp->sl_bitmap[fl],
		      load_relaxed(&hp->sl_bitmap[fl]) | 1u << sl);
	store_relaxed(&hp->fl_bitmap, load_relaxed(&hp->fl_bitmap) | 1u << fl);
	store_relaxed(&hp->free_bytes,
		      load_relaxed(&hp->free_bytes) + blk_bytes(size_g));
	store_relaxed(&hp->free_blocks, load_relaxed(&hp->free_blocks) + 1);
}

/* Unlink free block b. Its neighbours are validated: -EBADMSG if the
 * links do not agree with each other. */
static int list_remove(struct shmkit_heap *h, uint64_t b, uint32_t size_g)
{
	struct shmkit__heap *hp = h->hp;
	uint64_t next = load_relaxed(&links(h, b)->next);
	uint64_t prev = load_relaxed(&links(h, b)->prev);
	int fl, sl;

	mapping(size_g, &fl, &sl);
	if ((next && !off_ok(h, next)) || (prev && !off_ok(h, prev)))
		return -EBADMSG;
	if (prev) {
		if (load_relaxed(&links(h, prev)->next) != b)
			return -EBADMSG;
		store_relaxed(&links(h, prev)->next, next);
	} else {
		if (load_relaxed(&hp->heads[fl][sl]) != b)
			return -EBADMSG;
		store_relaxed(&hp->heads[fl][sl], next);
		if (!next) {
			uint32_t m = load_relaxed(&hp->sl_bitmap[fl]) &
				     ~(1u << sl);

			store_relaxed(&hp->sl_bitmap[fl], m);
			if (!m)
				store_relaxed(&hp->fl_bitmap,
					      load_relaxed(&hp->fl_bitmap) &
						      ~(1u << fl));
		}
	}
	if (next)
		store_relaxed(&links(h, next)->prev, prev);
	store_relaxed(&hp->free_bytes,
		      load_relaxed(&hp->free_bytes) - blk_bytes(size_g));
	store_relaxed(&hp->free_blocks, load_relaxed(&hp->free_blocks) - 1);
	return 0;
}

/*
 * A free block of at least n granules: the head of the first non-empty
 * list whose every block is large enough. 0 none, -EBADMSG corrupt.
 */
static int64_t list_find(struct shmkit_heap *h, uint32_t n, uint32_t *size_g)
{
	struct shmkit__heap *hp = h->hp;
	uint32_t slmap, flmap, sz, tag;
	uint64_t b, r = n;
	int fl, sl;

	if (n >= SHMKIT__NSL)
		r += (1u << (31 - __builtin_clz(n) - 4)) - 1;
	if (r > UINT32_MAX)
		return 0;
	mapping((uint32_t)r, &fl, &sl);
	if (fl >= SHMKIT__NFL)
		return 0;
	/* Bits beyond the lists are a peer's scribbles: ignored here, the
	 * checker reports them. */
	slmap = load_relaxed(&hp->sl_bitmap[fl]) & (~0u << sl) & SL_BITS;
	if (!slmap) {
		flmap = fl + 1 >= 32 ? 0
				     : load_relaxed(&hp->fl_bitmap) &
					       (~0u << (fl + 1));
		if (!flmap)
			return 0;
		fl = __builtin_ctz(flmap);
		if (fl >= SHMKIT__NFL)
			return -EBADMSG;
		slmap = load_relaxed(&hp->sl_bitmap[fl]) & SL_BITS;
		if (!slmap)
			return -EBADMSG;
	}
	sl = __builtin_ctz(slmap);
	b = load_relaxed(&hp->heads[fl][sl]);
	if (blk_get(h, b, &sz, &tag) < 0 ||
	    (tag & SHMKIT__B_STATE) != SHMKIT__B_FREE || sz < n)
		return -EBADMSG;
	*size_g = sz;
	return (int64_t)b;
}

/* ------------------------------------------------ intents: split / merge */

/*
 * The values of an intent, read once from the record (a peer may change
 * the record at any time: only these locals are used).
 */
struct intent {
	uint64_t a, b;
	uint32_t as, bs;
};

static void intent_apply(struct shmkit_heap *h, const struct intent *it)
{
	uint64_t a = it->a, b = it->b;
	uint32_t as = it->as, bs = it->bs;
	uint64_t last = a, nxt;
	uint32_t last_g = as;

	store_relaxed(&blk(h, a)->size_g, as);
	store_relaxed(&blk(h, a)->check, blk_check(a, as));
	if (b) {
		store_relaxed(&blk(h, b)->size_g, bs);
		store_relaxed(&blk(h, b)->prev_g, as);
		store_relaxed(&blk(h, b)->tag, SHMKIT__B_FREE);
		store_relaxed(&blk(h, b)->check, blk_check(b, bs));
		last = b;
		last_g = bs;
	}
	nxt = last + blk_bytes(last_g);
	if (nxt < h->arena_end)
		store_relaxed(&blk(h, nxt)->prev_g, last_g);
}

/* Read an intent found after a death into *it and validate it:
 * everything in the arena and consistent. 0 or -EBADMSG. */
static int intent_read(struct shmkit_heap *h, struct intent *it)
{
	struct shmkit__heap_intent *in = &h->hp->intent;
	uint64_t a = load_relaxed(&in->a_off), b = load_relaxed(&in->b_off);
	uint32_t as = load_relaxed(&in->a_size_g);
	uint32_t bs = load_relaxed(&in->b_size_g);
	uint64_t end;

	if (!off_ok(h, a) || as < 1)
		return -EBADMSG;
	end = a + blk_bytes(as);
	if (b) {
		if (b != end || !off_ok(h, b) || bs < SHMKIT__MIN_BLK_G)
			return -EBADMSG;
		end = b + blk_bytes(bs);
	}
	if (end > h->arena_end)
		return -EBADMSG;
	it->a = a;
	it->b = b;
	it->as = as;
	it->bs = bs;
	return 0;
}

/* Resize block a to as granules and, if b, create free block b of bs
 * granules right after it: crash-atomic through the intent record. */
static void resize(struct shmkit_heap *h, uint64_t a, uint32_t as, uint64_t b,
		   uint32_t bs)
{
	struct shmkit__heap_intent *in = &h->hp->intent;
	const struct intent it = {.a = a, .b = b, .as = as, .bs = bs};

	store_relaxed(&in->a_off, a);
	store_relaxed(&in->a_size_g, as);
	store_relaxed(&in->b_off, b);
	store_relaxed(&in->b_size_g, bs);
	crash_order();
	store_relaxed(&in->op, 1);
	crash_order();
	SHMKIT_CRASH_POINT("heap.resize.intent");
	intent_apply(h, &it);
	crash_order();
	SHMKIT_CRASH_POINT("heap.resize.applied");
	store_relaxed(&in->op, 0);
}

/* ------------------------------------------------ owner records, liveness */

/*
 * Is the process that claimed record r alive? 1 alive or cannot tell,
 * 0 gone. Never "gone" for a live process: a slot record is judged by the
 * slot's OFD lock, which does not depend on PID namespaces.
 */
static int rec_alive(struct shmkit_heap *h, uint32_t r)
{
	struct shmkit__heap_rec *rec = &h->hp->recs[r];
	int32_t slot = load_relaxed(&rec->slot);
	const struct shmkit_seg *seg = h->seg;
	int held;

	if (r == h->rec)
		return 1;
	if (slot < 0 || slot >= (int32_t)SHMKIT_NSLOTS || seg->fd < 0)
		return shmkit__proc_alive(load_relaxed(&rec->pid),
					  load_relaxed(&rec->start));
	/* The slot was re-taken (or released) since the claim. */
	if (load_relaxed(&seg->hdr->slots[slot].attach_ns) !=
	    load_relaxed(&rec->attach_ns))
		return 0;
	if (slot == seg->slot)
		return 1; /* our own attachment: this process */
	held = shmkit__ofd_held(seg->fd, SHMKIT_LOCK_SLOT0 + slot, F_WRLCK);
	return held != 0;
}

/* Is the owner named by tag t alive? rec_live caches per-record verdicts
 * (-1 unknown) during one walk. */
static int tag_live(struct shmkit_heap *h, uint32_t t, signed char *rec_live)
{
	uint32_t r = (t >> SHMKIT__B_REC_SHIFT) & 0xffu;
	struct shmkit__heap_rec *rec;

	if (r == 0 || r >= SHMKIT__NREC)
		return 0;
	rec = &h->hp->recs[r];
	if ((load_relaxed(&rec->gen) & 0xffffu) != t >> SHMKIT__B_GEN_SHIFT)
		return 0;
	if (load_relaxed(&rec->state) != 1)
		return 0;
	if (rec_live[r] < 0)
		rec_live[r] = (signed char)rec_alive(h, r);
	return rec_live[r];
}

/* Release the records of dead processes (lock held). */
static void recs_sweep(struct shmkit_heap *h, signed char *rec_live)
{
	for (uint32_t r = 1; r < SHMKIT__NREC; r++) {
		struct shmkit__heap_rec *rec = &h->hp->recs[r];

		if (load_relaxed(&rec->state) != 1)
			continue;
		if (rec_live[r] < 0)
			rec_live[r] = (signed char)rec_alive(h, r);
		if (!rec_live[r]) {
			store_relaxed(&rec->state, 0);
			store_relaxed(&rec->cached_bytes, 0);
			store_relaxed(&rec->cached_blocks, 0);
		}
	}
}

/* ------------------------------------------------------ repair / rebuild */

/*
 * Rebuild everything but the block chain from the chain itself (lock
 * held): redo a pending intent, drop dead owners' records, then walk the
 * chain, coalescing free runs (a dead owner's cached blocks count as free)
 * into fresh lists, and recount. 0, or -EBADMSG if the chain is broken
 * (not something a crash can do: corruption).
 */
static int heap_rebuild(struct shmkit_heap *h)
{
	struct shmkit__heap *hp = h->hp;
	signed char rec_live[SHMKIT__NREC];
	uint64_t off, run = 0, nblocks = 0;
	uint32_t prev_g = 0, run_g = 0;

	memset(rec_live, -1, sizeof(rec_live));
	if (load_relaxed(&hp->intent.op)) {
		struct intent it;

		if (intent_read(h, &it) < 0)
			return -EBADMSG;
		intent_apply(h, &it);
		crash_order();
		store_relaxed(&hp->intent.op, 0);
	}
	/* Validate the whole chain before changing anything. */
	for (off = h->arena_off; off < h->arena_end;) {
		uint32_t sz, tag, st;

		if (blk_get(h, off, &sz, &tag) < 0)
			return -EBADMSG;
		st = tag & SHMKIT__B_STATE;
		if (st < SHMKIT__B_FREE || st > SHMKIT__B_CACHED)
			return -EBADMSG;
		off += blk_bytes(sz);
	}
	if (off != h->arena_end)
		return -EBADMSG;
	recs_sweep(h, rec_live);
	store_relaxed(&hp->fl_bitmap, 0);
	for (int i = 0; i <= SHMKIT__NFL; i++)
		store_relaxed(&hp->sl_bitmap[i], 0);
	for (int i = 0; i < SHMKIT__NFL; i++)
		for (int j = 0; j < SHMKIT__NSL; j++)
			store_relaxed(&hp->heads[i][j], 0);
	store_relaxed(&hp->free_bytes, 0);
	store_relaxed(&hp->free_blocks, 0);
	for (off = h->arena_off; off < h->arena_end;) {
		uint32_t sz, tag, st;
		int free_now;

		if (blk_get(h, off, &sz, &tag) < 0)
			return -EBADMSG;
		st = tag & SHMKIT__B_STATE;
		/* prev_g is redundant with the sizes: heal it. */
		store_relaxed(&blk(h, off)->prev_g, prev_g);
		free_now =
			st == SHMKIT__B_FREE ||
			(st == SHMKIT__B_CACHED && !tag_live(h, tag, rec_live));
		if (free_now && run) {
			resize(h, run, run_g + sz, 0, 0);
			run_g += sz;
			off += blk_bytes(sz);
			prev_g = run_g;
			continue;
		}
		if (run) {
			list_insert(h, run, run_g);
			run = 0;
		}
		nblocks++;
		if (free_now) {
			store_relaxed(&blk(h, off)->tag, SHMKIT__B_FREE);
			run = off;
			run_g = sz;
		}
		prev_g = sz;
		off += blk_bytes(sz);
	}
	if (run)
		list_insert(h, run, run_g);
	store_relaxed(&hp->nblocks, nblocks);
	return 0;
}

int shmkit__heap_lock(struct shmkit_heap *h)
{
	struct shmkit__heap *hp = h->hp;
	int rc = shmkit_mutex_lock(h->seg, &hp->lock, h->lock_timeout_ns);

	if (likely(rc == 0))
		return 0;
	if (rc != -EOWNERDEAD)
		return rc;
	SHMKIT_CRASH_POINT("heap.repair.locked");
	rc = heap_rebuild(h);
	if (rc < 0) {
		/* Unlocking without consistent() makes the mutex say
		 * -ENOTRECOVERABLE to everyone from now on. */
		shmkit_mutex_unlock(h->seg, &hp->lock);
		return -ENOTRECOVERABLE;
	}
	store_relaxed(&hp->repairs, load_relaxed(&hp->repairs) + 1);
	shmkit_mutex_consistent(h->seg, &hp->lock);
	return 0;
}

void shmkit__heap_unlock(struct shmkit_heap *h)
{
	shmkit_mutex_unlock(h->seg, &h->hp->lock);
}

/* ------------------------------------------------ allocation under lock */

/* Take n granules out of free block b (already unlisted) of b_g granules;
 * the rest, if big enough, becomes a free block. */
static void carve(struct shmkit_heap *h, uint64_t b, uint32_t b_g, uint32_t n)
{
	if (b_g - n >= SHMKIT__MIN_BLK_G) {
		uint64_t r = b + blk_bytes(n);

		resize(h, b, n, r, b_g - n);
		list_insert(h, r, b_g - n);
		store_relaxed(&h->hp->nblocks,
			      load_relaxed(&h->hp->nblocks) + 1);
	}
}

/* Allocate a block of n granules with tag (lock held). Block offset, 0 if
 * no room, -EBADMSG. */
static int64_t alloc_locked(struct shmkit_heap *h, uint32_t n, uint32_t tag)
{
	uint32_t sz;
	int64_t b = list_find(h, n, &sz);

	if (b <= 0)
		return b;
	if (list_remove(h, (uint64_t)b, sz) < 0)
		return -EBADMSG;
	SHMKIT_CRASH_POINT("heap.alloc.unlisted");
	carve(h, (uint64_t)b, sz, n);
	store_relaxed(&blk(h, (uint64_t)b)->tag, tag);
	SHMKIT_CRASH_POINT("heap.alloc.tagged");
	return b;
}

/* Aligned: the payload at a multiple of align (> 16, a power of two). */
static int64_t alloc_aligned_locked(struct shmkit_heap *h, uint32_t n,
				    uint64_t align, uint32_t tag)
{
	uint64_t extra = align / SHMKIT__GRAN + SHMKIT__MIN_BLK_G;
	uint64_t p, b, gap_g;
	uint32_t sz;
	int64_t r;

	if ((uint64_t)n + extra > UINT32_MAX)
		return 0;
	r = list_find(h, (uint32_t)(n + extra), &sz);
	if (r <= 0)
		return r;
	b = (uint64_t)r;
	if (list_remove(h, b, sz) < 0)
		return -EBADMSG;
	/* Align the payload address (data base is page-aligned). */
	p = (b + SHMKIT__GRAN + align - 1) & ~(align - 1);
	while (p != b + SHMKIT__GRAN &&
	       p - SHMKIT__GRAN - b < SHMKIT__MIN_BLK_G * SHMKIT__GRAN)
		p += align;
	gap_g = (p - SHMKIT__GRAN - b) / SHMKIT__GRAN;
	if (gap_g) {
		/* The front gap stays free; the block starts at p - 16. */
		resize(h, b, (uint32_t)gap_g, p - SHMKIT__GRAN,
		       sz - (uint32_t)gap_g);
		list_insert(h, b, (uint32_t)gap_g);
		store_relaxed(&h->hp->nblocks,
			      load_relaxed(&h->hp->nblocks) + 1);
		b = p - SHMKIT__GRAN;
		sz -= (uint32_t)gap_g;
	}
	carve(h, b, sz, n);
	store_relaxed(&blk(h, b)->tag, tag);
	return (int64_t)b;
}

/* Free block b (validated, state USED or CACHED) and coalesce (lock
 * held). 0 or -EBADMSG. */
static int free_blk_locked(struct shmkit_heap *h, uint64_t b, uint32_t sz)
{
	uint32_t nsz, ntag, psz, ptag, prev_g;
	uint64_t nxt, p;

	store_relaxed(&blk(h, b)->tag, SHMKIT__B_FREE);
	SHMKIT_CRASH_POINT("heap.free.tagged");
	nxt = b + blk_bytes(sz);
	if (nxt < h->arena_end) {
		if (blk_get(h, nxt, &nsz, &ntag) < 0)
			return -EBADMSG;
		if ((ntag & SHMKIT__B_STATE) == SHMKIT__B_FREE) {
			if (list_remove(h, nxt, nsz) < 0)
				return -EBADMSG;
			SHMKIT_CRASH_POINT("heap.free.next_unlisted");
			resize(h, b, sz + nsz, 0, 0);
			sz += nsz;
			store_relaxed(&h->hp->nblocks,
				      load_relaxed(&h->hp->nblocks) - 1);
		}
	}
	prev_g = load_relaxed(&blk(h, b)->prev_g);
	if (prev_g) {
		p = b - blk_bytes(prev_g);
		if (p > b || blk_get(h, p, &psz, &ptag) < 0 || psz != prev_g)
			return -EBADMSG;
		if ((ptag & SHMKIT__B_STATE) == SHMKIT__B_FREE) {
			if (list_remove(h, p, psz) < 0)
				return -EBADMSG;
			SHMKIT_CRASH_POINT("heap.free.prev_unlisted");
			resize(h, p, psz + sz, 0, 0);
			b = p;
			sz += psz;
			store_relaxed(&h->hp->nblocks,
				      load_relaxed(&h->hp->nblocks) - 1);
		}
	}
	list_insert(h, b, sz);
	SHMKIT_CRASH_POINT("heap.free.listed");
	return 0;
}

/* Validate a payload offset handed in by a caller. Block offset or
 * -EINVAL; *sz and *tag filled. */
static int64_t user_blk(struct shmkit_heap *h, uint64_t off, uint32_t *sz,
			uint32_t *tag)
{
	if (off < h->arena_off + SHMKIT__GRAN || off >= h->arena_end ||
	    (off & (SHMKIT__GRAN - 1)))
		return -EINVAL;
	if (blk_get(h, off - SHMKIT__GRAN, sz, tag) < 0)
		return -EINVAL;
	return (int64_t)(off - SHMKIT__GRAN);
}

int shmkit__heap_free_locked(struct shmkit_heap *h, uint64_t off)
{
	uint32_t sz, tag;
	int64_t b = user_blk(h, off, &sz, &tag);

	if (b < 0)
		return (int)b;
	if ((tag & SHMKIT__B_STATE) != SHMKIT__B_USED)
		return -EINVAL;
	return free_blk_locked(h, (uint64_t)b, sz);
}

int shmkit__heap_is_used(struct shmkit_heap *h, uint64_t off)
{
	uint32_t sz, tag;

	if (user_blk(h, off, &sz, &tag) < 0)
		return 0;
	return (tag & SHMKIT__B_STATE) == SHMKIT__B_USED;
}

int shmkit__heap_set_owned_locked(struct shmkit_heap *h, uint64_t off,
				  int owned)
{
	uint32_t sz, tag;
	int64_t b = user_blk(h, off, &sz, &tag);

	if (b < 0)
		return (int)b;
	if ((tag & SHMKIT__B_STATE) != SHMKIT__B_USED)
		return -EINVAL;
	if (owned && !h->rec)
		return -ENOSPC;
	tag = SHMKIT__B_USED |
	      (owned ? SHMKIT__B_OWNED | h->tag
		     : tag & ~(SHMKIT__B_STATE | SHMKIT__B_OWNED));
	store_relaxed(&blk(h, (uint64_t)b)->tag, tag);
	return 0;
}

/* ------------------------------------------------------------- the cache */

static void cache_publish(struct shmkit_heap *h)
{
	struct shmkit__heap_rec *rec = &h->hp->recs[h->rec];

	store_relaxed(&rec->cached_bytes, h->cached_bytes);
	store_relaxed(&rec->cached_blocks, h->cached_blocks);
}

/* Return the last n blocks of bin i to the heap (lock held). */
static int bin_flush_locked(struct shmkit_heap *h, unsigned i, uint32_t n)
{
	struct shmkit__bin *bin = &h->bins[i];
	int rc = 0;

	while (n-- && bin->n) {
		uint64_t b = bin->off[--bin->n];
		uint32_t sz, tag;

		if (blk_get(h, b, &sz, &tag) < 0 ||
		    (tag & SHMKIT__B_STATE) != SHMKIT__B_CACHED) {
			rc = -EBADMSG;
			continue; /* someone broke it: forget it */
		}
		h->cached_bytes -= blk_bytes(sz);
		h->cached_blocks--;
		SHMKIT_CRASH_POINT("heap.flush.popped");
		if (free_blk_locked(h, b, sz) < 0)
			rc = -EBADMSG;
	}
	cache_publish(h);
	return rc;
}

static int cache_flush_all_locked(struct shmkit_heap *h)
{
	int rc = 0;

	for (unsigned i = 0; i < SHMKIT__NBIN; i++)
		if (h->bins[i].n && bin_flush_locked(h, i, h->bins[i].n) < 0)
			rc = -EBADMSG;
	return rc;
}

/* Fill bin i (blocks of i + 2 granules) with up to half its capacity. */
static int bin_refill(struct shmkit_heap *h, unsigned i)
{
	struct shmkit__bin *bin = &h->bins[i];
	uint32_t n = i + SHMKIT__MIN_BLK_G, want = SHMKIT__BIN_CAP / 2;
	uint64_t room = h->cache_limit > h->cached_bytes
				? h->cache_limit - h->cached_bytes
				: 0;
	int rc;

	if (room / blk_bytes(n) < want)
		want = (uint32_t)(room / blk_bytes(n));
	if (!want)
		return 0;
	rc = shmkit__heap_lock(h);
	if (rc < 0)
		return rc;
	while (want--) {
		int64_t b = alloc_locked(h, n, SHMKIT__B_CACHED | h->tag);
		uint32_t sz = n, tag;

		if (b <= 0)
			break;
		blk_get(h, (uint64_t)b, &sz, &tag);
		bin->off[bin->n++] = (uint64_t)b;
		h->cached_bytes += blk_bytes(sz);
		h->cached_blocks++;
		SHMKIT_CRASH_POINT("heap.refill.pushed");
	}
	cache_publish(h);
	shmkit__heap_unlock(h);
	return 0;
}

/* --------------------------------------------------------------- the API */

static int heap_usable(const struct shmkit_heap *h)
{
	if (unlikely(!h))
		return -EINVAL;
	if (unlikely(h->fork_gen != fork_gen))
		return -ECHILD;
	if (unlikely(h->rdonly))
		return -EBADF;
	return 0;
}

/* Granules for a payload of size bytes (0 if too large). */
static inline uint32_t need_of(size_t size)
{
	uint64_t g;

	if (size > SHMKIT__HEAP_MAX)
		return 0;
	g = ((uint64_t)size + SHMKIT__GRAN - 1) / SHMKIT__GRAN + 1;
	return g < SHMKIT__MIN_BLK_G ? SHMKIT__MIN_BLK_G : (uint32_t)g;
}

static int alloc_slow(struct shmkit_heap *h, uint32_t n, uint64_t align,
		      uint32_t tag, int64_t *out)
{
	int64_t b;
	int rc, pass;

	rc = shmkit__heap_lock(h);
	if (rc < 0)
		return rc;
	for (pass = 0;; pass++) {
		b = align > SHMKIT__GRAN
			    ? alloc_aligned_locked(h, n, align, tag)
			    : alloc_locked(h, n, tag);
		if (b > 0)
			break;
		if (pass == 0 && b == 0 && h->cached_blocks) {
			cache_flush_all_locked(h);
			continue;
		}
		/* No room, or lists corrupt: rebuild (frees dead owners'
		 * caches, recovers from broken links) and try once more. */
		if (pass <= 1 && heap_rebuild(h) == 0) {
			pass = 1;
			continue;
		}
		break;
	}
	shmkit__heap_unlock(h);
	if (b < 0)
		return -EBADMSG;
	if (b == 0)
		return -ENOSPC;
	*out = b;
	return 0;
}

static int do_alloc(struct shmkit_heap *h, size_t size, size_t align,
		    uint32_t flags, uint64_t *off)
{
	uint32_t n, tag;
	int64_t b;
	int rc = heap_usable(h);

	if (unlikely(rc < 0))
		return rc;
	if (unlikely(!off || (flags & ~(SHMKIT_HEAP_OWNED | SHMKIT_HEAP_ZERO))))
		return -EINVAL;
	if (unlikely((flags & SHMKIT_HEAP_OWNED) && !h->rec))
		return -ENOSPC;
	n = need_of(size);
	if (unlikely(!n))
		return -ENOSPC;
	tag = SHMKIT__B_USED | h->tag |
	      (flags & SHMKIT_HEAP_OWNED ? SHMKIT__B_OWNED : 0);
	if (likely(align <= SHMKIT__GRAN &&
		   n - SHMKIT__MIN_BLK_G < SHMKIT__NBIN)) {
		struct shmkit__bin *bin = &h->bins[n - SHMKIT__MIN_BLK_G];

		if (!bin->n && h->cache_limit)
			bin_refill(h, n - SHMKIT__MIN_BLK_G);
		if (likely(bin->n)) {
			uint64_t bo = bin->off[--bin->n];
			struct shmkit__blk *bh = blk(h, bo);
			uint32_t sz = load_relaxed(&bh->size_g);

			SHMKIT_CRASH_POINT("heap.cache.popped");
			/* Ours since we cached it; relaxed: a walker
			 * reads it under the lock and only counts it. */
			store_relaxed(&bh->tag, tag);
			h->cached_bytes -= blk_bytes(sz);
			h->cached_blocks--;
			cache_publish(h);
			*off = bo + SHMKIT__GRAN;
			goto done;
		}
	}
	rc = alloc_slow(h, n, align, tag, &b);
	if (rc < 0)
		return rc;
	*off = (uint64_t)b + SHMKIT__GRAN;
done:
	if (flags & SHMKIT_HEAP_ZERO)
		memset(h->data + *off, 0, size);
	return 0;
}

int shmkit_heap_alloc(struct shmkit_heap *h, size_t size, uint32_t flags,
		      uint64_t *off)
{
	return do_alloc(h, size, SHMKIT__GRAN, flags, off);
}

int shmkit_heap_alloc_aligned(struct shmkit_heap *h, size_t size, size_t align,
			      uint32_t flags, uint64_t *off)
{
	if (!align || (align & (align - 1)) || align > SHMKIT_PAGE)
		return -EINVAL;
	return do_alloc(h, size, align, flags, off);
}

int shmkit_heap_free(struct shmkit_heap *h, uint64_t off)
{
	uint32_t sz, tag;
	int64_t b;
	int rc = heap_usable(h);

	if (unlikely(rc < 0))
		return rc;
	b = user_blk(h, off, &sz, &tag);
	if (unlikely(b < 0))
		return (int)b;
	if (unlikely((tag & SHMKIT__B_STATE) != SHMKIT__B_USED))
		return -EINVAL; /* double free, or not a block */
	if (likely(sz - SHMKIT__MIN_BLK_G < SHMKIT__NBIN &&
		   h->cached_bytes + blk_bytes(sz) <= h->cache_limit)) {
		unsigned i = sz - SHMKIT__MIN_BLK_G;
		struct shmkit__bin *bin = &h->bins[i];

		if (unlikely(bin->n == SHMKIT__BIN_CAP)) {
			rc = shmkit__heap_lock(h);
			if (rc < 0)
				return rc;
			bin_flush_locked(h, i, SHMKIT__BIN_CAP / 2);
			shmkit__heap_unlock(h);
		}
		/* CAS: of two racing frees of one block exactly one wins.
		 * Relaxed: the block's bytes are handed on by our own later
		 * unlock or by this handle's own later alloc. */
		if (!atomic_compare_exchange_strong_explicit(
			    &blk(h, (uint64_t)b)->tag, &tag,
			    SHMKIT__B_CACHED | h->tag, memory_order_relaxed,
			    memory_order_relaxed))
			return -EINVAL;
		SHMKIT_CRASH_POINT("heap.cache.tagged");
		bin->off[bin->n++] = (uint64_t)b;
		h->cached_bytes += blk_bytes(sz);
		h->cached_blocks++;
		cache_publish(h);
		return 0;
	}
	rc = shmkit__heap_lock(h);
	if (rc < 0)
		return rc;
	/* Re-validate under the lock: another process may have freed it. */
	b = user_blk(h, off, &sz, &tag);
	if (b < 0 || (tag & SHMKIT__B_STATE) != SHMKIT__B_USED)
		rc = -EINVAL;
	else
		rc = free_blk_locked(h, (uint64_t)b, sz);
	shmkit__heap_unlock(h);
	return rc;
}

void *shmkit_heap_ptr(const struct shmkit_heap *h, uint64_t off)
{
	if (!h || off < h->arena_off + SHMKIT__GRAN || off >= h->arena_end)
		return NULL;
	return h->data + off;
}

int shmkit_heap_usable_size(struct shmkit_heap *h, uint64_t off, size_t *size)
{
	uint32_t sz, tag;

	if (!h || !size)
		return -EINVAL;
	if (user_blk(h, off, &sz, &tag) < 0 ||
	    (tag & SHMKIT__B_STATE) != SHMKIT__B_USED)
		return -EINVAL;
	*size = (size_t)(blk_bytes(sz) - SHMKIT__GRAN);
	return 0;
}

int shmkit_heap_set_owned(struct shmkit_heap *h, uint64_t off, int owned)
{
	int rc = heap_usable(h);

	if (rc < 0)
		return rc;
	rc = shmkit__heap_lock(h);
	if (rc < 0)
		return rc;
	rc = shmkit__heap_set_owned_locked(h, off, owned);
	shmkit__heap_unlock(h);
	return rc;
}

int shmkit_heap_flush(struct shmkit_heap *h)
{
	int rc = heap_usable(h);

	if (rc < 0)
		return rc;
	if (!h->cached_blocks)
		return 0;
	rc = shmkit__heap_lock(h);
	if (rc < 0)
		return rc;
	rc = cache_flush_all_locked(h);
	shmkit__heap_unlock(h);
	return rc;
}

/* ------------------------------------------------------------ open/close */

static uint64_t self_ident(void)
{
	int32_t pid;
	uint32_t start;

	shmkit__proc_self(&pid, &start);
	return 1ull << 63 | (uint64_t)(start & 0x7fffffffu) << 32 |
	       (uint32_t)pid;
}

static int ident_alive(uint64_t id)
{
	int32_t pid = (int32_t)(uint32_t)id;
	uint32_t start = (uint32_t)(id >> 32) & 0x7fffffffu;
	uint64_t st;
	int r = proc_start(pid, &st);

	if (r < 0)
		return 1;
	return r && ((uint32_t)st & 0x7fffffffu) == start;
}

/* Map the heap at [off, off + size) of the data area into h's fields. */
static void geometry(struct shmkit_heap *h, uint64_t off, uint64_t size)
{
	h->hp = (struct shmkit__heap *)(void *)(h->data + off);
	h->arena_off = off + sizeof(struct shmkit__heap);
	h->arena_end = (off + size) & ~(uint64_t)(SHMKIT__GRAN - 1);
}

static int format(struct shmkit_heap *h, uint64_t off, uint64_t size)
{
	struct shmkit__heap *hp;
	uint64_t a;
	uint32_t g;
	int rc;

	geometry(h, off, size);
	hp = h->hp;
	memset((void *)hp, 0, sizeof(*hp));
	hp->version = SHMKIT__HEAP_VERSION;
	hp->self_off = off;
	hp->size = size;
	hp->arena_off = h->arena_off;
	hp->arena_end = h->arena_end;
	rc = shmkit_mutex_init(h->seg, &hp->lock, NULL);
	if (rc == 0)
		rc = shmkit_mutex_init(h->seg, &hp->dir_lock, NULL);
	if (rc < 0)
		return rc;
	a = h->arena_off;
	g = (uint32_t)((h->arena_end - a) >> SHMKIT__GRAN_SHIFT);
	store_relaxed(&blk(h, a)->size_g, g);
	store_relaxed(&blk(h, a)->prev_g, 0);
	store_relaxed(&blk(h, a)->tag, SHMKIT__B_FREE);
	store_relaxed(&blk(h, a)->check, blk_check(a, g));
	list_insert(h, a, g);
	store_relaxed(&hp->nblocks, 1);
	SHMKIT_CRASH_POINT("heap.init.formatted");
	/* Pairs with the acquire load of magic in attach(). */
	store_release(&hp->magic, SHMKIT__HEAP_MAGIC);
	return 0;
}

/* Validate an existing heap's control block against the segment. */
static int attach(struct shmkit_heap *h, uint64_t off, uint64_t size)
{
	struct shmkit__heap *hp;

	if ((off & (SHMKIT__GRAN - 1)) || off > h->seg->data_size ||
	    size > h->seg->data_size - off || size > SHMKIT__HEAP_MAX ||
	    size < sizeof(struct shmkit__heap) + 2 * SHMKIT__GRAN)
		return -EBADMSG;
	geometry(h, off, size);
	hp = h->hp;
	/* Pairs with the release store of magic in format(). */
	if (load_acquire(&hp->magic) != SHMKIT__HEAP_MAGIC ||
	    hp->version != SHMKIT__HEAP_VERSION || hp->self_off != off ||
	    hp->size != size || hp->arena_off != h->arena_off ||
	    hp->arena_end != h->arena_end)
		return -EBADMSG;
	return 0;
}

/* Create (once, whoever comes first) or find the segment's heap. */
static int heap_init(struct shmkit_heap *h, const struct shmkit_heap_opts *o,
		     uint32_t flags)
{
	struct shmkit_hdr *hdr = h->seg->hdr;
	uint64_t deadline = shmkit__now_ns() + INIT_WAIT_NS, me = 0;
	uint64_t v, off, size;
	int rc;

	for (;;) {
		/* Pairs with the release store of READY below. */
		v = load_acquire(&hdr->heap_init);
		if (v == SHMKIT__HEAP_READY) {
			off = hdr->heap_off;
			size = hdr->heap_size;
			return attach(h, off, size);
		}
		if (v != 0 && !(v >> 63))
			return -EBADMSG;
		if (v && ident_alive(v)) {
			/* Being formatted: wait for READY, bounded. */
			if (shmkit__now_ns() > deadline)
				return -ETIMEDOUT;
			shmkit__sleep_ns(1000000);
			continue;
		}
		if (!(flags & SHMKIT_HEAP_CREATE))
			return -ENOENT;
		if (h->rdonly)
			return -EBADF;
		if (!me)
			me = self_ident();
		/* Nobody, or a dead builder: take over. Relaxed: the
		 * heap is published by the READY store, not by this. */
		if (!atomic_compare_exchange_strong_explicit(
			    &hdr->heap_init, &v, me, memory_order_relaxed,
			    memory_order_relaxed))
			continue;
		SHMKIT_CRASH_POINT("heap.init.claimed");
		off = o ? o->offset : 0;
		size = o && o->size_bytes ? o->size_bytes
					  : h->seg->data_size - off;
		if (size > SHMKIT__HEAP_MAX)
			size = SHMKIT__HEAP_MAX;
		if ((off & (SHMKIT__GRAN - 1)) || off > h->seg->data_size ||
		    size > h->seg->data_size - off ||
		    size < sizeof(struct shmkit__heap) + 4 * SHMKIT__GRAN)
			rc = -EINVAL;
		else
			rc = format(h, off, size);
		v = me;
		if (rc < 0) {
			/* Relaxed: nothing was published. */
			atomic_compare_exchange_strong_explicit(
				&hdr->heap_init, &v, 0, memory_order_relaxed,
				memory_order_relaxed);
			return rc;
		}
		hdr->heap_off = off;
		hdr->heap_size = size;
		/* Release: pairs with the acquire load at the top of the
		 * loop. A CAS from our identity: if we were (wrongly) taken
		 * over, the other formatter publishes, we look again. */
		if (!atomic_compare_exchange_strong_explicit(
			    &hdr->heap_init, &v, SHMKIT__HEAP_READY,
			    memory_order_release, memory_order_relaxed))
			continue;
		return 1;
	}
}

/* Claim an owner record (lock held). Sets h->rec/tag, or leaves 0. */
static void rec_claim(struct shmkit_heap *h)
{
	signed char rec_live[SHMKIT__NREC];
	int32_t pid;
	uint32_t start;

	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t r = 1; r < SHMKIT__NREC; r++) {
			struct shmkit__heap_rec *rec = &h->hp->recs[r];
			uint32_t gen;

			if (load_relaxed(&rec->state) != 0)
				continue;
			shmkit__proc_self(&pid, &start);
			gen = load_relaxed(&rec->gen) + 1;
			store_relaxed(&rec->pid, pid);
			store_relaxed(&rec->start, start);
			if (h->seg->slot >= 0 && h->seg->fd >= 0) {
				int32_t sl = h->seg->slot;

				store_relaxed(&rec->slot, sl);
				store_relaxed(
					&rec->attach_ns,
					load_relaxed(&h->seg->hdr->slots[sl]
							      .attach_ns));
			} else {
				store_relaxed(&rec->slot, -1);
				store_relaxed(&rec->attach_ns, 0);
			}
			store_relaxed(&rec->cached_bytes, 0);
			store_relaxed(&rec->cached_blocks, 0);
			store_relaxed(&rec->gen, gen);
			store_relaxed(&rec->state, 1);
			h->rec = r;
			h->rec_gen = gen & 0xffffu;
			h->tag = r << SHMKIT__B_REC_SHIFT |
				 h->rec_gen << SHMKIT__B_GEN_SHIFT;
			return;
		}
		memset(rec_live, -1, sizeof(rec_live));
		recs_sweep(h, rec_live);
	}
}

int shmkit_heap_open(struct shmkit_seg *seg,
		     const struct shmkit_heap_opts *opts,
		     struct shmkit_heap **out)
{
	struct shmkit_heap_opts o = {0};
	struct shmkit_heap *h;
	int rc;

	if (!seg || !out)
		return -EINVAL;
	*out = NULL;
	if (opts) {
		if (opts->sz < offsetof(struct shmkit_heap_opts, cache_bytes) +
				       sizeof(opts->cache_bytes))
			return -EINVAL;
		o = *opts;
	}
	if (o.flags & ~(SHMKIT_HEAP_CREATE | SHMKIT_HEAP_NOCACHE))
		return -EINVAL;
	pthread_once(&atfork_once, atfork_register);
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->seg = seg;
	h->data = seg->data;
	h->rdonly = seg->rdonly;
	h->fork_gen = fork_gen;
	h->lock_timeout_ns = o.lock_timeout_ns ? o.lock_timeout_ns
					       : LOCK_TIMEOUT_NS;
	rc = heap_init(h, &o, o.flags);
	if (rc < 0) {
		free(h);
		return rc;
	}
	if (!h->rdonly) {
		rc = shmkit__heap_lock(h);
		if (rc < 0) {
			free(h);
			return rc;
		}
		rec_claim(h);
		shmkit__heap_unlock(h);
		if (h->rec && !(o.flags & SHMKIT_HEAP_NOCACHE)) {
			uint64_t lim = (h->arena_end - h->arena_off) / 64;

			if (o.cache_bytes)
				lim = o.cache_bytes;
			h->cache_limit = lim > CACHE_MAX_BYTES ? CACHE_MAX_BYTES
							       : lim;
		}
	}
	*out = h;
	return 0;
}

void shmkit_heap_close(struct shmkit_heap *h)
{
	if (!h)
		return;
	if (h->fork_gen == fork_gen && !h->rdonly && h->rec &&
	    shmkit__heap_lock(h) == 0) {
		cache_flush_all_locked(h);
		store_relaxed(&h->hp->recs[h->rec].state, 0);
		store_relaxed(&h->hp->recs[h->rec].cached_bytes, 0);
		store_relaxed(&h->hp->recs[h->rec].cached_blocks, 0);
		shmkit__heap_unlock(h);
	}
	free(h);
}

struct shmkit_seg *shmkit_heap_seg(const struct shmkit_heap *h)
{
	return h ? h->seg : NULL;
}

/* ------------------------------------------------- statistics, checking */

int shmkit_heap_stats(struct shmkit_heap *h, struct shmkit_heap_stats *st)
{
	struct shmkit__heap *hp;
	uint64_t arena, fb, nfree, nb, cb = 0, cn = 0;
	int locked = 0;

	if (!h || !st || st->sz < sizeof(*st))
		return -EINVAL;
	if (h->fork_gen != fork_gen)
		return -ECHILD;
	hp = h->hp;
	memset(st, 0, sizeof(*st));
	st->sz = sizeof(*st);
	if (!h->rdonly && shmkit__heap_lock(h) == 0)
		locked = 1;
	arena = h->arena_end - h->arena_off;
	fb = load_relaxed(&hp->free_bytes);
	nfree = load_relaxed(&hp->free_blocks);
	nb = load_relaxed(&hp->nblocks);
	for (uint32_t r = 1; r < SHMKIT__NREC; r++) {
		if (load_relaxed(&hp->recs[r].state) != 1)
			continue;
		st->owners++;
		cb += load_relaxed(&hp->recs[r].cached_bytes);
		cn += load_relaxed(&hp->recs[r].cached_blocks);
	}
	st->heap_bytes = arena;
	st->free_bytes = fb;
	st->free_blocks = nfree;
	st->cached_bytes = cb;
	st->cached_blocks = cn;
	st->used_bytes = arena > fb + cb ? arena - fb - cb : 0;
	st->used_blocks = nb > nfree + cn ? nb - nfree - cn : 0;
	st->owners_max = SHMKIT__NREC - 1;
	st->repairs = load_relaxed(&hp->repairs);
	/* Largest free block: the highest non-empty list. */
	uint32_t flm = load_relaxed(&hp->fl_bitmap);

	if (flm) {
		int fl = 31 - __builtin_clz(flm);
		uint32_t slm = fl < SHMKIT__NFL
				       ? load_relaxed(&hp->sl_bitmap[fl]) &
						 SL_BITS
				       : 0;

		if (slm) {
			int sl = 31 - __builtin_clz(slm);
			uint64_t b = load_relaxed(&hp->heads[fl][sl]);
			uint64_t best = 0, bound = nfree + 1;

			if (locked) {
				while (b && off_ok(h, b) && bound--) {
					uint32_t sz, tag;

					if (blk_get(h, b, &sz, &tag) < 0)
						break;
					if (blk_bytes(sz) > best)
						best = blk_bytes(sz);
					b = load_relaxed(&links(h, b)->next);
				}
			} else {
				/* Lower bound of the list's class. */
				best = fl == 0 ? (uint64_t)sl
					       : (uint64_t)(16 + sl)
							 << (fl - 1);
				best <<= SHMKIT__GRAN_SHIFT;
			}
			st->largest_free =
				best > SHMKIT__GRAN ? best - SHMKIT__GRAN : 0;
		}
	}
	if (locked)
		shmkit__heap_unlock(h);
	return 0;
}

#define BAD(why)                 \
	do {                     \
		check_why = why; \
		return -EBADMSG; \
	} while (0)

/* The checker proper (lock held). */
static int check_locked(struct shmkit_heap *h)
{
	struct shmkit__heap *hp = h->hp;
	uint64_t off, nb = 0, nfree = 0, fbytes = 0, listed = 0;
	uint32_t prev_g = 0, prev_st = 0;

	if (load_relaxed(&hp->intent.op))
		BAD("intent pending");
	for (off = h->arena_off; off < h->arena_end;) {
		uint32_t sz, tag, st;

		if (blk_get(h, off, &sz, &tag) < 0)
			BAD("block header");
		if (load_relaxed(&blk(h, off)->prev_g) != prev_g)
			BAD("prev size");
		st = tag & SHMKIT__B_STATE;
		if (st < SHMKIT__B_FREE || st > SHMKIT__B_CACHED)
			BAD("block state");
		if (st == SHMKIT__B_FREE && prev_st == SHMKIT__B_FREE)
			BAD("adjacent free blocks");
		if (((tag >> SHMKIT__B_REC_SHIFT) & 0xffu) >= SHMKIT__NREC)
			BAD("owner index");
		if (st == SHMKIT__B_FREE) {
			nfree++;
			fbytes += blk_bytes(sz);
		}
		nb++;
		prev_g = sz;
		prev_st = st;
		off += blk_bytes(sz);
	}
	if (off != h->arena_end)
		BAD("chain end");
	if (nb != load_relaxed(&hp->nblocks))
		BAD("block count");
	if (nfree != load_relaxed(&hp->free_blocks) ||
	    fbytes != load_relaxed(&hp->free_bytes))
		BAD("free counters");
	for (int fl = 0; fl < SHMKIT__NFL; fl++) {
		uint32_t slm = load_relaxed(&hp->sl_bitmap[fl]);

		if (slm & ~SL_BITS)
			BAD("second-level bitmap beyond the lists");
		if (!!slm != !!(load_relaxed(&hp->fl_bitmap) & 1u << fl))
			BAD("first-level bitmap");
		for (int sl = 0; sl < SHMKIT__NSL; sl++) {
			uint64_t b = load_relaxed(&hp->heads[fl][sl]), p = 0;

			if (!!b != !!(slm & 1u << sl))
				BAD("second-level bitmap");
			while (b) {
				uint32_t sz, tag;
				int f, s;

				if (++listed > nfree)
					BAD("list longer than free count");
				if (blk_get(h, b, &sz, &tag) < 0 ||
				    (tag & SHMKIT__B_STATE) != SHMKIT__B_FREE)
					BAD("listed block not free");
				mapping(sz, &f, &s);
				if (f != fl || s != sl)
					BAD("block in wrong list");
				if (load_relaxed(&links(h, b)->prev) != p)
					BAD("back link");
				p = b;
				b = load_relaxed(&links(h, b)->next);
			}
		}
	}
	if (load_relaxed(&hp->fl_bitmap) >> SHMKIT__NFL)
		BAD("bitmap beyond levels");
	if (listed != nfree)
		BAD("free block not listed");
	return 0;
}

int shmkit_heap_check(struct shmkit_heap *h)
{
	int rc = heap_usable(h);

	if (rc < 0)
		return rc;
	rc = shmkit__heap_lock(h);
	if (rc < 0)
		return rc;
	rc = check_locked(h);
	shmkit__heap_unlock(h);
	return rc;
}

const char *shmkit__heap_check_why(void)
{
	return check_why;
}

int shmkit_heap_walk(struct shmkit_heap *h,
		     int (*fn)(const struct shmkit_heap_block *b, void *arg),
		     void *arg)
{
	signed char rec_live[SHMKIT__NREC];
	uint64_t off;
	int rc = heap_usable(h);

	if (rc < 0)
		return rc;
	if (!fn)
		return -EINVAL;
	memset(rec_live, -1, sizeof(rec_live));
	rc = shmkit__heap_lock(h);
	if (rc < 0)
		return rc;
	for (off = h->arena_off; off < h->arena_end && rc == 0;) {
		struct shmkit_heap_block bi;
		uint32_t sz, tag, r;

		if (blk_get(h, off, &sz, &tag) < 0 ||
		    (tag & SHMKIT__B_STATE) < SHMKIT__B_FREE ||
		    (tag & SHMKIT__B_STATE) > SHMKIT__B_CACHED) {
			rc = -EBADMSG;
			break;
		}
		memset(&bi, 0, sizeof(bi));
		bi.off = off + SHMKIT__GRAN;
		bi.size = blk_bytes(sz) - SHMKIT__GRAN;
		bi.state = tag & SHMKIT__B_STATE;
		bi.flags = tag & SHMKIT__B_OWNED ? SHMKIT_HEAP_OWNED : 0;
		r = (tag >> SHMKIT__B_REC_SHIFT) & 0xffu;
		if (bi.state != SHMKIT_HEAP_FREE && r && r < SHMKIT__NREC) {
			bi.owner_pid = load_relaxed(&h->hp->recs[r].pid);
			bi.owner_alive = tag_live(h, tag, rec_live);
		}
		rc = fn(&bi, arg);
		off += blk_bytes(sz);
	}
	shmkit__heap_unlock(h);
	return rc;
}

/* Reclaim (dir lock, then heap lock, held by the caller of this). */
static int reclaim_locked(struct shmkit_heap *h)
{
	signed char rec_live[SHMKIT__NREC];
	uint64_t off;
	int n = 0;

	memset(rec_live, -1, sizeof(rec_live));
	recs_sweep(h, rec_live);
	for (off = h->arena_off; off < h->arena_end;) {
		uint32_t sz, tag, st;

		if (blk_get(h, off, &sz, &tag) < 0)
			return -EBADMSG;
		st = tag & SHMKIT__B_STATE;
		if ((st == SHMKIT__B_CACHED ||
		     (st == SHMKIT__B_USED && (tag & SHMKIT__B_OWNED))) &&
		    !tag_live(h, tag, rec_live)) {
			uint64_t p = load_relaxed(&blk(h, off)->prev_g);

			if (free_blk_locked(h, off, sz) < 0)
				return -EBADMSG;
			n += st == SHMKIT__B_USED;
			/* The block may have merged into its predecessor:
			 * continue from the start of the merged block. */
			if (p && off - blk_bytes((uint32_t)p) >= h->arena_off) {
				uint32_t psz, ptag;
				uint64_t po = off - blk_bytes((uint32_t)p);

				if (blk_get(h, po, &psz, &ptag) == 0 &&
				    (ptag & SHMKIT__B_STATE) ==
					    SHMKIT__B_FREE &&
				    po + blk_bytes(psz) > off)
					off = po;
			}
			if (blk_get(h, off, &sz, &tag) < 0)
				return -EBADMSG;
		}
		off += blk_bytes(sz);
	}
	return n;
}

int shmkit_heap_reclaim(struct shmkit_heap *h)
{
	int rc = heap_usable(h);

	if (rc < 0)
		return rc;
	/* The directory first: its repair un-owns the blocks of objects
	 * whose creator died after publishing them. */
	rc = shmkit__dir_lock(h);
	if (rc < 0)
		return rc;
	rc = shmkit__heap_lock(h);
	if (rc == 0) {
		rc = reclaim_locked(h);
		shmkit__heap_unlock(h);
	}
	shmkit__dir_unlock(h);
	return rc;
}
