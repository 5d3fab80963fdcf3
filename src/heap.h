/* SPDX-License-Identifier: MIT */
/*
 * Shared layout of the heap inside a segment (TLSF free lists, owner
 * records, the intent record of a split or merge) and the handle, plus the
 * internal calls obj.c and map.c make. heap.c owns every byte described
 * here; docs/ARCHITECTURE.md ("Heap and map") mirrors it.
 */
#ifndef SHMKIT_HEAP_H
#define SHMKIT_HEAP_H

#include "layout.h"
#include "shmkit.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SHMKIT__HEAP_MAGIC 0x50414548u /* "HEAP", release-stored last */
#define SHMKIT__HEAP_VERSION 1u

/* hdr->heap_init: 0 none, READY, else the builder's identity (bit 63). */
#define SHMKIT__HEAP_READY 1ull

/* Granule: every block size and offset is a multiple of it. */
#define SHMKIT__GRAN 16u
#define SHMKIT__GRAN_SHIFT 4
/* Smallest block: header plus one granule of payload (two free links
 * need 16 bytes). */
#define SHMKIT__MIN_BLK_G 2u
/* TLSF geometry: first level by power of two, 16 second-level lists. */
#define SHMKIT__NFL 29
#define SHMKIT__NSL 16
/* Owner records (index 0 means "no owner"). */
#define SHMKIT__NREC 128
/* Largest heap: block sizes are 32-bit granule counts. */
#define SHMKIT__HEAP_MAX (((uint64_t)1 << 35) - SHMKIT_PAGE)

/*
 * Block header, 16 bytes before every payload. Offsets of blocks are
 * byte offsets from the segment's data area, multiples of 16.
 *   tag bits 0..3  state (FREE, USED, CACHED; 0 is never valid)
 *       bit  4     OWNED: reclaim the block when its owner is gone
 *       bits 8..15 owner record index (0: none)
 *       bits 16..31 owner record generation (low 16 bits)
 * size_g and prev_g change only under the heap lock, inside an intent
 * (split, merge); tag changes under the lock, or on the cache fast path by
 * the handle whose record the tag names (CAS USED -> CACHED on free).
 */
struct shmkit__blk {
	_Atomic uint32_t size_g; /* granules, header included */
	_Atomic uint32_t prev_g; /* granules of the physical predecessor */
	_Atomic uint32_t tag;	 /* state | flags | owner */
	_Atomic uint32_t check;	 /* blk_check(offset, size_g) */
};

#define SHMKIT__B_FREE 1u
#define SHMKIT__B_USED 2u
#define SHMKIT__B_CACHED 3u
#define SHMKIT__B_STATE 0xfu
#define SHMKIT__B_OWNED 0x10u
#define SHMKIT__B_REC_SHIFT 8
#define SHMKIT__B_GEN_SHIFT 16

/* Links of a free block, in its payload. 0 ends a list. */
struct shmkit__free_links {
	_Atomic uint64_t next;
	_Atomic uint64_t prev;
};

/*
 * Intent of a split or a merge: the sizes every affected header must end
 * with. Written (op last) before the first header changes and cleared
 * after the last; the repairer redoes it, so it is idempotent.
 *   block a at a_off gets a_size_g;
 *   if b_off: block b at b_off gets b_size_g, prev_g a_size_g, FREE;
 *   the block after the last of them gets prev_g = that one's size.
 */
struct shmkit__heap_intent {
	_Atomic uint32_t op; /* 0 none, 1 pending */
	_Atomic uint32_t a_size_g;
	_Atomic uint64_t a_off;
	_Atomic uint64_t b_off;
	_Atomic uint32_t b_size_g;
	uint32_t pad;
};

/*
 * Owner record: one per open heap handle that allocates (claimed at open,
 * released at close, under the heap lock). Its liveness: if the handle's
 * segment handle holds an attachment slot, that slot's OFD lock (released
 * by the kernel on death, the same in every PID namespace) with the slot's
 * attach time unchanged; else (anonymous segments) the pid and the process
 * start time. Every tag naming an older generation is dead.
 */
struct shmkit__heap_rec {
	_Atomic uint32_t state; /* w: claim/release (lock); 0 free, 1 used */
	_Atomic uint32_t gen;	/* w: claim (lock); bumped on every claim */
	_Atomic int32_t pid;	/* w: claimer; r: liveness, statistics */
	_Atomic uint32_t start; /* low 32 bits of the process start time */
	_Atomic int32_t slot;	/* attachment slot of the claimer, -1: none */
	uint32_t pad;
	_Atomic uint64_t attach_ns; /* that slot's attach_ns at the claim */
	/* w: the record's handle (relaxed); r: statistics. */
	_Atomic uint64_t cached_bytes;
	_Atomic uint64_t cached_blocks;
};

/* Heap control block at the start of the heap region. */
struct shmkit__heap {
	_Atomic uint32_t magic;	      /* 0x00 w: builder, release, last */
	uint32_t version;	      /* 0x04 SHMKIT__HEAP_VERSION */
	uint64_t self_off;	      /* 0x08 data-area offset of this header */
	uint64_t size;		      /* 0x10 heap bytes from self_off */
	uint64_t arena_off;	      /* 0x18 first block */
	uint64_t arena_end;	      /* 0x20 end of the last block */
	uint64_t reserved0;	      /* 0x28 */
	struct shmkit_mutex lock;     /* 0x30 guards everything below */
	struct shmkit_mutex dir_lock; /* 0x50 guards the segment's dir[] */
	struct shmkit__heap_intent intent; /* 0x70 */
	/* Counters, w: lock holder (relaxed); r: statistics. */
	_Atomic uint64_t free_bytes;  /* 0x90 */
	_Atomic uint64_t free_blocks; /* 0x98 */
	_Atomic uint64_t nblocks;     /* 0xa0 blocks in the chain */
	_Atomic uint64_t repairs;     /* 0xa8 owner deaths repaired */
	_Atomic uint32_t fl_bitmap;   /* 0xb0 */
	uint32_t pad;		      /* 0xb4 */
	_Atomic uint32_t sl_bitmap[SHMKIT__NFL + 1];	  /* 0xb8 */
	_Atomic uint64_t heads[SHMKIT__NFL][SHMKIT__NSL]; /* 0x130 */
	struct shmkit__heap_rec recs[SHMKIT__NREC];	  /* 0xfb0, 128 x 48 */
};

_Static_assert(sizeof(struct shmkit__blk) == SHMKIT__GRAN, "block header");
_Static_assert(sizeof(struct shmkit__heap_intent) == 32, "intent");
_Static_assert(sizeof(struct shmkit__heap_rec) == 48, "record");
_Static_assert(offsetof(struct shmkit__heap, lock) == 0x30, "heap");
_Static_assert(offsetof(struct shmkit__heap, dir_lock) == 0x50, "heap");
_Static_assert(offsetof(struct shmkit__heap, intent) == 0x70, "heap");
_Static_assert(offsetof(struct shmkit__heap, free_bytes) == 0x90, "heap");
_Static_assert(offsetof(struct shmkit__heap, sl_bitmap) == 0xb8, "heap");
_Static_assert(offsetof(struct shmkit__heap, heads) == 0x130, "heap");
_Static_assert(offsetof(struct shmkit__heap, recs) == 0xfb0, "heap");
_Static_assert(sizeof(struct shmkit__heap) == 0x27b0, "heap size");
_Static_assert(sizeof(struct shmkit__heap) % SHMKIT__GRAN == 0, "arena");

/* Cache of one handle (process-private): blocks of 2..33 granules. */
#define SHMKIT__NBIN 32
#define SHMKIT__BIN_CAP 64

struct shmkit__bin {
	uint32_t n;
	uint64_t off[SHMKIT__BIN_CAP]; /* block offsets, state CACHED */
};

struct shmkit_heap {
	struct shmkit_seg *seg;
	struct shmkit__heap *hp; /* in the mapping */
	char *data;		 /* seg data base */
	uint64_t arena_off, arena_end;
	uint64_t lock_timeout_ns;
	uint32_t rec;	  /* owner record index, 0 if none */
	uint32_t rec_gen; /* its generation (low 16 bits) */
	uint32_t tag;	  /* owner bits of our tags */
	unsigned fork_gen;
	int rdonly;
	uint64_t cache_limit; /* bytes; 0: no cache */
	uint64_t cached_bytes, cached_blocks;
	struct shmkit__bin bins[SHMKIT__NBIN];
};

/*
 * Identity of this process for liveness records: pid and the low 32 bits
 * of its start time (clock ticks since boot). alive(): 1 alive or cannot
 * tell, 0 gone (never "gone" for a live process).
 */
void shmkit__proc_self(int32_t *pid, uint32_t *start);
int shmkit__proc_alive(int32_t pid, uint32_t start);

/* Lock the heap (repairing it if the holder died) / unlock. */
int shmkit__heap_lock(struct shmkit_heap *h);
void shmkit__heap_unlock(struct shmkit_heap *h);

/* Is the block at payload offset off USED (any owner)? Under the lock. */
int shmkit__heap_is_used(struct shmkit_heap *h, uint64_t off);
/* Free a USED block (lock held by the caller). 0 or -EINVAL/-EBADMSG. */
int shmkit__heap_free_locked(struct shmkit_heap *h, uint64_t off);
/* Clear or set OWNED on a USED block (lock held). */
int shmkit__heap_set_owned_locked(struct shmkit_heap *h, uint64_t off,
				  int owned);

/*
 * The named-object directory's mutex (obj.c): lock repairs the directory
 * after a dead holder. Order: directory, then heap.
 */
int shmkit__dir_lock(struct shmkit_heap *h);
void shmkit__dir_unlock(struct shmkit_heap *h);

/* Why the last failed shmkit_heap_check() failed (tests, diagnostics). */
const char *shmkit__heap_check_why(void);

#endif /* SHMKIT_HEAP_H */
