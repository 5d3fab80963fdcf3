/* SPDX-License-Identifier: MIT */
/*
 * Shared layout of the hash map (a named object in a heap): header,
 * striped robust locks, bucket heads, and a fixed pool of entries with a
 * per-entry sequence number for lock-free readers. map.c owns every byte;
 * docs/ARCHITECTURE.md ("Heap and map") mirrors it.
 */
#ifndef SHMKIT_MAP_H
#define SHMKIT_MAP_H

#include "shmkit.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SHMKIT__MAP_MAGIC 0x5041414du /* "MAAP" */
#define SHMKIT__MAP_VERSION 1u
#define SHMKIT__MAP_MAX_CAP (1u << 28)
#define SHMKIT__MAP_MAX_KEY 4096u
#define SHMKIT__MAP_MAX_VAL (1u << 20)

/* Map header at the start of the object. Written once by the creator
 * (inside shmkit_obj_create's init, before the name is published). */
struct shmkit__map {
	uint32_t magic;	      /* 0x00 */
	uint32_t version;     /* 0x04 */
	uint32_t capacity;    /* 0x08 entries */
	uint32_t nbuckets;    /* 0x0c power of two */
	uint32_t nstripes;    /* 0x10 power of two, <= nbuckets */
	uint32_t key_max;     /* 0x14 bytes */
	uint32_t val_max;     /* 0x18 bytes */
	uint32_t ent_size;    /* 0x1c bytes per entry, multiple of 8 */
	uint64_t seed;	      /* 0x20 hash seed */
	uint64_t stripes_off; /* 0x28 from the map's start */
	uint64_t buckets_off; /* 0x30 */
	uint64_t ents_off;    /* 0x38 */
	uint64_t total;	      /* 0x40 bytes of the whole object */
	uint64_t reserved[7]; /* 0x48 */
};

/*
 * Stripe: the lock of the buckets b with b % nstripes == s and of the
 * entries whose home is s (its free list and the entries linked in its
 * buckets). One per cache line pair.
 */
struct shmkit__stripe {
	struct shmkit_mutex lock;   /* 0x00 */
	_Atomic uint32_t free_head; /* 0x20 entry index + 1, 0: none */
	_Atomic uint32_t count;	    /* 0x24 entries linked (keys) */
	_Atomic uint32_t nfree;	    /* 0x28 entries on the free list */
	uint32_t pad;		    /* 0x2c */
	_Atomic uint64_t repairs;   /* 0x30 */
	uint64_t reserved[9];	    /* 0x38 */
};

/*
 * Bucket: a sequence lock over its chain. seq is odd while the holder of
 * the bucket's stripe lock changes the chain or an entry linked in it;
 * a reader that sees the same even seq before and after its walk read a
 * consistent chain and consistent entries.
 */
struct shmkit__bucket {
	_Atomic uint32_t seq;  /* w: stripe lock holder; r: readers */
	_Atomic uint32_t head; /* entry index + 1, 0: empty */
};

/*
 * Entry. Every field is written by the holder of its home stripe's lock
 * (readers load them relaxed, inside their bucket's sequence lock).
 *   ver: odd while the entry is free, even while linked (for repair and
 *   the checker).
 * key and value follow as 8-byte words (key_max, val_max rounded up).
 */
struct shmkit__ent {
	_Atomic uint32_t ver;
	_Atomic uint32_t next; /* chain or free list: index + 1, 0 ends */
	_Atomic uint32_t hash; /* low 32 bits of the key's hash */
	_Atomic uint32_t home; /* stripe owning this entry */
	_Atomic uint32_t klen;
	_Atomic uint32_t vlen;
	_Atomic uint64_t data[]; /* key words, then value words */
};

_Static_assert(sizeof(struct shmkit__map) == 0x80, "map header");
_Static_assert(sizeof(struct shmkit__stripe) == 0x80, "stripe");
_Static_assert(offsetof(struct shmkit__stripe, free_head) == 0x20, "stripe");
_Static_assert(sizeof(struct shmkit__ent) == 24, "entry header");
_Static_assert(sizeof(struct shmkit__bucket) == 8, "bucket");
_Static_assert(offsetof(struct shmkit__ent, data) == 24, "entry data");

#endif /* SHMKIT_MAP_H */
