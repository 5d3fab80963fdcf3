/* SPDX-License-Identifier: MIT */
/*
 * The shared hash map: a named object in a heap holding striped robust
 * locks, bucket heads and a fixed pool of entries. Writers lock the key's
 * stripe and publish copy-on-write entries with one release store;
 * readers take no lock and validate each entry's sequence number. Owns
 * the stripe repair (a rebuild from the chains) and the checker.
 */
#define _GNU_SOURCE
#include "map.h"

#include "atomics.h"
#include "crash.h"
#include "heap.h"
#include "platform.h"
#include "segment.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define LOCK_TIMEOUT_NS 10000000000ull
#define STEAL_WAIT_NS 1000000ull
#define READ_RETRIES 64 /* optimistic reads before taking the lock */
#define DEF_CAPACITY 1024u
#define DEF_KEY_MAX 64u
#define DEF_VAL_MAX 256u
#define MAX_STRIPES 256u

struct shmkit_map {
	struct shmkit_seg *seg;
	char *base; /* the map object */
	struct shmkit__stripe *stripes;
	struct shmkit__bucket *buckets;
	char *ents;
	uint32_t capacity; /* keys */
	uint32_t nents;	   /* entries: capacity + one spare per stripe */
	uint32_t nbuckets, nstripes;
	uint32_t key_max, val_max, ent_size, kw, vw;
	uint64_t seed, lock_timeout_ns;
	int rdonly;
};

static const char *check_why = "";

const char *shmkit__map_check_why(void);
const char *shmkit__map_check_why(void)
{
	return check_why;
}

/* ---------------------------------------------------------------- helpers */

static inline struct shmkit__ent *ent(const struct shmkit_map *m, uint32_t i)
{
	return (struct shmkit__ent *)(void *)(m->ents +
					      (size_t)i * m->ent_size);
}

static uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *s = p;
	uint64_t h = seed ^ ((uint64_t)n * 0x9e3779b97f4a7c15ull), w;

	while (n >= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
		s += 8;
		n -= 8;
	}
	if (n) {
		w = 0;
		memcpy(&w, s, n);
		h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	}
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return h;
}

static inline uint32_t words(uint32_t bytes)
{
	return (bytes + 7) / 8;
}

/* Store len bytes as words (the last one zero-padded). Relaxed: the
 * bucket's sequence lock brackets them (see bucket_begin()). */
static void put_words(_Atomic uint64_t *dst, const void *src, size_t len)
{
	const unsigned char *s = src;
	uint64_t w;

	for (; len >= 8; len -= 8, s += 8, dst++) {
		memcpy(&w, s, 8);
		store_relaxed(dst, w);
	}
	if (len) {
		w = 0;
		memcpy(&w, s, len);
		store_relaxed(dst, w);
	}
}

static void get_words(void *dst, _Atomic uint64_t *src, size_t len)
{
	unsigned char *d = dst;
	uint64_t w;

	for (; len >= 8; len -= 8, d += 8, src++) {
		w = load_relaxed(src);
		memcpy(d, &w, 8);
	}
	if (len) {
		w = load_relaxed(src);
		memcpy(d, &w, len);
	}
}

static int eq_words(_Atomic uint64_t *a, const void *b, size_t len)
{
	const unsigned char *s = b;
	uint64_t w;

	for (; len >= 8; len -= 8, s += 8, a++) {
		memcpy(&w, s, 8);
		if (load_relaxed(a) != w)
			return 0;
	}
	if (len) {
		w = 0;
		memcpy(&w, s, len);
		if (load_relaxed(a) != w)
			return 0;
	}
	return 1;
}

/* Seqlock writer side (stripe lock held). begin: seq odd, then (release
 * fence) the changes; end: release store of the next even seq. Pairs
 * with the acquire load and the acquire fence in the readers
 * (read_entry(), snap_bucket()). */
static uint32_t bucket_begin(struct shmkit__bucket *bk)
{
	uint32_t v = load_relaxed(&bk->seq) | 1u;

	store_relaxed(&bk->seq, v);
	atomic_thread_fence(memory_order_release);
	return v;
}

static void bucket_end(struct shmkit__bucket *bk, uint32_t v)
{
	store_release(&bk->seq, v + 1);
}

/* Retire an entry (unlinked, stripe lock held, inside its bucket's
 * sequence lock) onto its stripe's free list. */
static void entry_free(struct shmkit_map *m, uint32_t s, uint32_t x)
{
	struct shmkit__stripe *st = &m->stripes[s];
	struct shmkit__ent *e = ent(m, x - 1);

	store_relaxed(&e->ver, load_relaxed(&e->ver) | 1u);
	store_relaxed(&e->next, load_relaxed(&st->free_head));
	store_relaxed(&st->free_head, x);
	store_relaxed(&st->nfree, load_relaxed(&st->nfree) + 1);
}

struct key {
	const void *p;
	uint32_t len;
	uint32_t hash;
	uint32_t bucket;
	uint32_t stripe;
};

static int key_of(const struct shmkit_map *m, const void *k, size_t len,
		  struct key *out)
{
	uint64_t h;

	if (unlikely(!k && len))
		return -EINVAL;
	if (unlikely(len > m->key_max))
		return -EMSGSIZE;
	h = hash_bytes(k, len, m->seed);
	out->p = k;
	out->len = (uint32_t)len;
	out->hash = (uint32_t)(h >> 32);
	out->bucket = (uint32_t)h & (m->nbuckets - 1);
	out->stripe = out->bucket & (m->nstripes - 1);
	return 0;
}

static inline int ent_is(struct shmkit__ent *e, const struct key *k)
{
	return load_relaxed(&e->hash) == k->hash &&
	       load_relaxed(&e->klen) == k->len &&
	       eq_words(e->data, k->p, k->len);
}

/* ------------------------------------------------------ repair and locks */

/*
 * Rebuild stripe s (lock held, owner died): what its chains reach is the
 * truth; every other entry whose home is s goes (again) on the free list,
 * marked free (odd ver), and a bucket sequence lock left open is closed
 * (every change inside one is a single store: done or not). A broken
 * chain is corruption, not a crash: -EBADMSG.
 */
static int stripe_rebuild(struct shmkit_map *m, uint32_t s)
{
	struct shmkit__stripe *st = &m->stripes[s];
	uint32_t count = 0, nfree = 0, head = 0;
	unsigned char *seen = calloc(m->nents / 8 + 1, 1);

	if (!seen)
		return -ENOMEM;
	for (uint32_t b = s; b < m->nbuckets; b += m->nstripes) {
		struct shmkit__bucket *bk = &m->buckets[b];
		uint32_t x = load_relaxed(&bk->head), steps = 0, v;

		while (x) {
			struct shmkit__ent *e;

			if (x > m->nents || ++steps > m->nents ||
			    (seen[(x - 1) / 8] & 1u << (x - 1) % 8))
				goto bad;
			e = ent(m, x - 1);
			if (load_relaxed(&e->home) != s)
				goto bad;
			seen[(x - 1) / 8] |= (unsigned char)(1u << (x - 1) % 8);
			v = load_relaxed(&e->ver);
			if (v & 1)
				store_relaxed(&e->ver, v + 1);
			count++;
			x = load_relaxed(&e->next);
		}
		/* Close a sequence lock the dead writer left open: every
		 * change inside it was a single store, done or not. */
		v = load_relaxed(&bk->seq);
		if (v & 1)
			bucket_end(bk, v);
	}
	for (uint32_t i = m->nents; i-- > 0;) {
		struct shmkit__ent *e = ent(m, i);

		if (load_relaxed(&e->home) != s || (seen[i / 8] & 1u << i % 8))
			continue;
		store_relaxed(&e->ver, load_relaxed(&e->ver) | 1u);
		atomic_thread_fence(memory_order_release);
		store_relaxed(&e->next, head);
		head = i + 1;
		nfree++;
	}
	store_relaxed(&st->free_head, head);
	store_relaxed(&st->nfree, nfree);
	store_relaxed(&st->count, count);
	free(seen);
	return 0;
bad:
	free(seen);
	return -EBADMSG;
}

static int stripe_lock_t(struct shmkit_map *m, uint32_t s, uint64_t timeout,
			 int try)
{
	struct shmkit__stripe *st = &m->stripes[s];
	int rc = try ? shmkit_mutex_trylock(m->seg, &st->lock)
		     : shmkit_mutex_lock(m->seg, &st->lock, timeout);

	if (likely(rc != -EOWNERDEAD))
		return rc;
	SHMKIT_CRASH_POINT("map.repair.locked");
	rc = stripe_rebuild(m, s);
	if (rc < 0) {
		shmkit_mutex_unlock(m->seg, &st->lock); /* not recoverable */
		return -ENOTRECOVERABLE;
	}
	store_relaxed(&st->repairs, load_relaxed(&st->repairs) + 1);
	shmkit_mutex_consistent(m->seg, &st->lock);
	return 0;
}

static inline int stripe_lock(struct shmkit_map *m, uint32_t s)
{
	return stripe_lock_t(m, s, m->lock_timeout_ns, 0);
}

static inline void stripe_unlock(struct shmkit_map *m, uint32_t s)
{
	shmkit_mutex_unlock(m->seg, &m->stripes[s].lock);
}

/* ------------------------------------------------------- writer helpers */

/*
 * Find k in its bucket (stripe lock held). *link is the word that points
 * at the entry found (bucket head or a predecessor's next); *found its
 * index + 1, or 0. 0 or -EBADMSG (a chain that is not one).
 */
static int find_locked(struct shmkit_map *m, const struct key *k,
		       _Atomic uint32_t **link, uint32_t *found)
{
	_Atomic uint32_t *l = &m->buckets[k->bucket].head;
	uint32_t x = load_relaxed(l), steps = 0;

	while (x) {
		struct shmkit__ent *e;

		if (unlikely(x > m->nents || ++steps > m->nents))
			return -EBADMSG;
		e = ent(m, x - 1);
		if (unlikely(load_relaxed(&e->home) != k->stripe))
			return -EBADMSG;
		if (ent_is(e, k)) {
			*link = l;
			*found = x;
			return 0;
		}
		l = &e->next;
		x = load_relaxed(l);
	}
	*link = l;
	*found = 0;
	return 0;
}

/*
 * Pop stripe s's free list (its lock held) if it holds at least min
 * entries. Index + 1, 0, -EBADMSG.
 */
static int64_t pop_free(struct shmkit_map *m, uint32_t s, uint32_t min)
{
	struct shmkit__stripe *st = &m->stripes[s];
	uint32_t x = load_relaxed(&st->free_head), nx;
	struct shmkit__ent *e;

	if (!x || load_relaxed(&st->nfree) < min)
		return 0;
	if (x > m->nents)
		return -EBADMSG;
	e = ent(m, x - 1);
	nx = load_relaxed(&e->next);
	if (load_relaxed(&e->home) != s || nx > m->nents)
		return -EBADMSG;
	store_relaxed(&st->free_head, nx);
	store_relaxed(&st->nfree, load_relaxed(&st->nfree) - 1);
	return x;
}

/*
 * A free entry for stripe s (its lock held): its own list, else one
 * taken from another stripe (try-locks first, then short waits, so two
 * stealers never wait on each other for long). Every stripe keeps one
 * spare entry that only a replace (copy-on-write) may take, and gets it
 * back at once: an insert takes an entry only from a list holding two or
 * more, so exactly capacity keys fit and a full map can still be
 * updated. Index + 1, 0 if full, or a negative errno.
 */
static int64_t take_entry(struct shmkit_map *m, uint32_t s, int insert)
{
	int64_t x = pop_free(m, s, insert ? 2 : 1);

	if (x)
		return x;
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t k = 1; k < m->nstripes; k++) {
			uint32_t t = (s + k) & (m->nstripes - 1);

			if (load_relaxed(&m->stripes[t].nfree) < 2)
				continue;
			if (stripe_lock_t(m, t, STEAL_WAIT_NS, pass == 0) < 0)
				continue;
			x = pop_free(m, t, 2);
			if (x > 0) {
				SHMKIT_CRASH_POINT("map.steal.popped");
				store_relaxed(&ent(m, (uint32_t)x - 1)->home,
					      s);
			}
			stripe_unlock(m, t);
			if (x)
				return x;
		}
	}
	return 0;
}

/* Write a free entry x for (k, val) whose next is nx, marked linked.
 * Nobody reads a free entry: no reader's chain reaches it. */
static void entry_fill(struct shmkit_map *m, uint32_t x, const struct key *k,
		       const void *val, size_t vlen, uint32_t nx)
{
	struct shmkit__ent *e = ent(m, x - 1);

	store_relaxed(&e->hash, k->hash);
	store_relaxed(&e->klen, k->len);
	store_relaxed(&e->vlen, (uint32_t)vlen);
	put_words(e->data, k->p, k->len);
	put_words(e->data + m->kw, val, vlen);
	store_relaxed(&e->next, nx);
	store_relaxed(&e->ver, (load_relaxed(&e->ver) | 1u) + 1);
}

/*
 * Insert or replace under the stripe lock. expect: NULL for a plain put;
 * else the value the key must hold (CAS). Returns 1 inserted, 0 replaced,
 * or -EEXIST (nx and present), -ENOENT / -EAGAIN (CAS), -ENOSPC, ...
 */
static int upsert(struct shmkit_map *m, const struct key *k, const void *val,
		  size_t vlen, int nx, const void *expect, size_t elen)
{
	struct shmkit__bucket *bk;
	_Atomic uint32_t *link;
	uint32_t found, next, v;
	int64_t x;
	int rc;

	rc = stripe_lock(m, k->stripe);
	if (unlikely(rc < 0))
		return rc;
	rc = find_locked(m, k, &link, &found);
	if (unlikely(rc < 0))
		goto out;
	if (found && nx) {
		rc = -EEXIST;
		goto out;
	}
	if (expect) {
		struct shmkit__ent *o;

		if (!found) {
			rc = -ENOENT;
			goto out;
		}
		o = ent(m, found - 1);
		if (load_relaxed(&o->vlen) != elen ||
		    !eq_words(o->data + m->kw, expect, elen)) {
			rc = -EAGAIN;
			goto out;
		}
	}
	x = take_entry(m, k->stripe, !found);
	if (x <= 0) {
		rc = x == 0 ? -ENOSPC : (int)x;
		goto out;
	}
	SHMKIT_CRASH_POINT("map.put.taken");
	bk = &m->buckets[k->bucket];
	next = found ? load_relaxed(&ent(m, found - 1)->next)
		     : load_relaxed(&bk->head);
	entry_fill(m, (uint32_t)x, k, val, vlen, next);
	SHMKIT_CRASH_POINT("map.put.written");
	v = bucket_begin(bk);
	/* The commit: one store, inside the bucket's sequence lock. */
	store_relaxed(found ? link : &bk->head, (uint32_t)x);
	SHMKIT_CRASH_POINT("map.put.linked");
	if (found) {
		entry_free(m, k->stripe, found);
		rc = 0;
	} else {
		struct shmkit__stripe *st = &m->stripes[k->stripe];

		store_relaxed(&st->count, load_relaxed(&st->count) + 1);
		rc = 1;
	}
	bucket_end(bk, v);
	SHMKIT_CRASH_POINT("map.put.done");
out:
	stripe_unlock(m, k->stripe);
	return rc;
}

/* ------------------------------------------------------------- readers */

/*
 * Lock-free lookup inside the bucket's sequence lock: walk the chain with
 * relaxed loads, copy the value of the match (up to cap bytes into buf,
 * if any), then check that the bucket's seq did not move. Returns the
 * value length, -ENOENT, or -EAGAIN after too many restarts (the caller
 * then takes the lock). Every index is checked and the walk is bounded,
 * so a chain changing (or corrupt) under it costs a restart, never a
 * wild read or an endless loop.
 */
static int read_entry(struct shmkit_map *m, const struct key *k, void *buf,
		      size_t cap, struct shmkit_map_ref *ref, const void **ptr)
{
	struct shmkit__bucket *bk = &m->buckets[k->bucket];

	for (int tries = 0; tries < READ_RETRIES; tries++) {
		/* Acquire: pairs with the release store in bucket_end(). */
		uint32_t s1 = load_acquire(&bk->seq), s2;
		uint32_t x, steps = 0, vlen = 0, hit = 0;

		if (unlikely(s1 & 1))
			continue;
		x = load_relaxed(&bk->head);
		while (x) {
			struct shmkit__ent *e;

			if (unlikely(x > m->nents || ++steps > m->nents))
				break;
			e = ent(m, x - 1);
			if (ent_is(e, k)) {
				vlen = load_relaxed(&e->vlen);
				if (unlikely(vlen > m->val_max))
					break;
				if (buf && vlen <= cap)
					get_words(buf, e->data + m->kw, vlen);
				if (ptr)
					*ptr = (const void *)(e->data + m->kw);
				hit = x;
				break;
			}
			x = load_relaxed(&e->next);
		}
		/* Pairs with the release fence in bucket_begin(): the
		 * loads above happen before this re-check. */
		atomic_thread_fence(memory_order_acquire);
		s2 = load_relaxed(&bk->seq);
		if (unlikely(s1 != s2 || (x && !hit)))
			continue;
		if (!hit)
			return -ENOENT;
		if (ref) {
			ref->ent = k->bucket + 1;
			ref->ver = s1;
		}
		return (int)vlen;
	}
	return -EAGAIN;
}

/* The same under the stripe lock (after too many restarts). */
static int read_locked(struct shmkit_map *m, const struct key *k, void *buf,
		       size_t cap, struct shmkit_map_ref *ref, const void **ptr)
{
	_Atomic uint32_t *link;
	uint32_t found, vlen;
	struct shmkit__ent *e;
	int rc;

	if (m->rdonly)
		return -EAGAIN;
	rc = stripe_lock(m, k->stripe);
	if (rc < 0)
		return rc;
	rc = find_locked(m, k, &link, &found);
	if (rc == 0 && !found)
		rc = -ENOENT;
	if (rc == 0) {
		e = ent(m, found - 1);
		vlen = load_relaxed(&e->vlen);
		if (vlen > m->val_max) {
			rc = -EBADMSG;
		} else {
			if (buf && vlen <= cap)
				get_words(buf, e->data + m->kw, vlen);
			if (ref) {
				ref->ent = k->bucket + 1;
				ref->ver = load_relaxed(
					&m->buckets[k->bucket].seq);
			}
			if (ptr)
				*ptr = (const void *)(e->data + m->kw);
			rc = (int)vlen;
		}
	}
	stripe_unlock(m, k->stripe);
	return rc;
}

/* ------------------------------------------------------------------ API */

int shmkit_map_get(struct shmkit_map *m, const void *key, size_t klen,
		   void *val, size_t cap)
{
	struct key k;
	int rc;

	if (unlikely(!m || (!val && cap)))
		return -EINVAL;
	rc = key_of(m, key, klen, &k);
	if (unlikely(rc < 0))
		return rc;
	rc = read_entry(m, &k, val, cap, NULL, NULL);
	if (unlikely(rc == -EAGAIN))
		rc = read_locked(m, &k, val, cap, NULL, NULL);
	if (rc >= 0 && val && (size_t)rc > cap)
		return -EMSGSIZE;
	return rc;
}

int shmkit_map_get_ref(struct shmkit_map *m, const void *key, size_t klen,
		       const void **val, struct shmkit_map_ref *ref)
{
	struct key k;
	int rc;

	if (!m || !val || !ref)
		return -EINVAL;
	rc = key_of(m, key, klen, &k);
	if (rc < 0)
		return rc;
	rc = read_entry(m, &k, NULL, 0, ref, val);
	if (rc == -EAGAIN)
		rc = read_locked(m, &k, NULL, 0, ref, val);
	return rc;
}

int shmkit_map_ref_valid(struct shmkit_map *m, const struct shmkit_map_ref *ref)
{
	if (!m || !ref || !ref->ent || ref->ent > m->nbuckets)
		return -EINVAL;
	/* The caller's loads of the value come before this load; pairs
	 * with the release fence in bucket_begin(). */
	atomic_thread_fence(memory_order_acquire);
	return load_relaxed(&m->buckets[ref->ent - 1].seq) == ref->ver;
}

static int writable(const struct shmkit_map *m)
{
	if (unlikely(!m))
		return -EINVAL;
	return m->rdonly ? -EBADF : 0;
}

int shmkit_map_put(struct shmkit_map *m, const void *key, size_t klen,
		   const void *val, size_t vlen, uint32_t flags)
{
	struct key k;
	int rc = writable(m);

	if (unlikely(rc < 0))
		return rc;
	if (unlikely((flags & ~SHMKIT_MAP_NX) || (!val && vlen)))
		return -EINVAL;
	if (unlikely(vlen > m->val_max))
		return -EMSGSIZE;
	rc = key_of(m, key, klen, &k);
	if (unlikely(rc < 0))
		return rc;
	return upsert(m, &k, val, vlen, flags & SHMKIT_MAP_NX, NULL, 0);
}

int shmkit_map_cas(struct shmkit_map *m, const void *key, size_t klen,
		   const void *old, size_t oldlen, const void *val, size_t vlen)
{
	struct key k;
	int rc = writable(m);

	if (rc < 0)
		return rc;
	if ((!val && vlen) || (!old && oldlen))
		return -EINVAL;
	if (vlen > m->val_max)
		return -EMSGSIZE;
	if (oldlen > m->val_max)
		return -EAGAIN; /* cannot be the current value */
	rc = key_of(m, key, klen, &k);
	if (rc < 0)
		return rc;
	rc = upsert(m, &k, val, vlen, 0, old ? old : (const void *)"", oldlen);
	return rc < 0 ? rc : 0;
}

int shmkit_map_del(struct shmkit_map *m, const void *key, size_t klen)
{
	_Atomic uint32_t *link;
	uint32_t found;
	struct key k;
	int rc = writable(m);

	if (rc < 0)
		return rc;
	rc = key_of(m, key, klen, &k);
	if (rc < 0)
		return rc;
	rc = stripe_lock(m, k.stripe);
	if (rc < 0)
		return rc;
	rc = find_locked(m, &k, &link, &found);
	if (rc == 0 && !found)
		rc = -ENOENT;
	if (rc == 0) {
		struct shmkit__stripe *st = &m->stripes[k.stripe];
		struct shmkit__bucket *bk = &m->buckets[k.bucket];
		uint32_t v = bucket_begin(bk);

		/* The commit: one store inside the sequence lock. */
		store_relaxed(link, load_relaxed(&ent(m, found - 1)->next));
		SHMKIT_CRASH_POINT("map.del.unlinked");
		entry_free(m, k.stripe, found);
		store_relaxed(&st->count, load_relaxed(&st->count) - 1);
		bucket_end(bk, v);
	}
	stripe_unlock(m, k.stripe);
	return rc;
}

int shmkit_map_add(struct shmkit_map *m, const void *key, size_t klen,
		   int64_t delta, int64_t *result)
{
	_Atomic uint32_t *link;
	uint32_t found = 0;
	struct key k;
	int rc = writable(m);

	if (rc < 0)
		return rc;
	if (m->val_max < 8)
		return -EMSGSIZE;
	rc = key_of(m, key, klen, &k);
	if (rc < 0)
		return rc;
	rc = stripe_lock(m, k.stripe);
	if (rc < 0)
		return rc;
	rc = find_locked(m, &k, &link, &found);
	if (rc == 0 && found) {
		struct shmkit__ent *e = ent(m, found - 1);
		uint64_t nv;
		uint32_t v;

		if (load_relaxed(&e->vlen) != 8) {
			rc = -EINVAL;
			goto out;
		}
		nv = load_relaxed(&e->data[m->kw]) + (uint64_t)delta;
		/* In place, inside the bucket's sequence lock: one store. */
		v = bucket_begin(&m->buckets[k.bucket]);
		SHMKIT_CRASH_POINT("map.add.odd");
		store_relaxed(&e->data[m->kw], nv);
		bucket_end(&m->buckets[k.bucket], v);
		if (result)
			*result = (int64_t)nv;
	}
out:
	stripe_unlock(m, k.stripe);
	if (rc == 0 && !found) {
		/* New key: insert the delta (a racing add may win; then
		 * add to what it stored). */
		rc = upsert(m, &k, &delta, 8, 1, NULL, 0);
		if (rc == -EEXIST)
			return shmkit_map_add(m, key, klen, delta, result);
		if (rc >= 0 && result)
			*result = delta;
	}
	return rc < 0 ? rc : 0;
}

/* One bucket's chain copied out consistently: each entry validated. */
struct snap {
	unsigned char *buf;
	size_t cap, n;
};

static int snap_bucket(struct shmkit_map *m, uint32_t b, struct snap *sn)
{
	struct shmkit__bucket *bk = &m->buckets[b];
	size_t rec = 8 + (size_t)(m->kw + m->vw) * 8;

	for (int tries = 0; tries < READ_RETRIES * 4; tries++) {
		/* Acquire: pairs with bucket_end(). */
		uint32_t s1 = load_acquire(&bk->seq), steps = 0, x;
		int ok = 1;

		if (s1 & 1)
			continue;
		x = load_relaxed(&bk->head);
		sn->n = 0;
		while (x) {
			struct shmkit__ent *e;
			unsigned char *r;
			uint32_t kl, vl;

			if (x > m->nents || ++steps > m->nents) {
				ok = 0;
				break;
			}
			if (sn->n == sn->cap) {
				size_t nc = sn->cap ? sn->cap * 2 : 16;
				unsigned char *nb = realloc(sn->buf, nc * rec);

				if (!nb)
					return -ENOMEM;
				sn->buf = nb;
				sn->cap = nc;
			}
			e = ent(m, x - 1);
			kl = load_relaxed(&e->klen);
			vl = load_relaxed(&e->vlen);
			if (kl > m->key_max || vl > m->val_max) {
				ok = 0;
				break;
			}
			r = sn->buf + sn->n * rec;
			memcpy(r, &kl, 4);
			memcpy(r + 4, &vl, 4);
			get_words(r + 8, e->data, kl);
			get_words(r + 8 + m->kw * 8, e->data + m->kw, vl);
			sn->n++;
			x = load_relaxed(&e->next);
		}
		/* Pairs with the release fence in bucket_begin(). */
		atomic_thread_fence(memory_order_acquire);
		if (ok && load_relaxed(&bk->seq) == s1)
			return 0;
	}
	return -EAGAIN;
}

int shmkit_map_foreach(struct shmkit_map *m,
		       int (*fn)(const void *key, size_t klen, const void *val,
				 size_t vlen, void *arg),
		       void *arg)
{
	struct snap sn = {NULL, 0, 0};
	size_t rec;
	int rc = 0;

	if (!m || !fn)
		return -EINVAL;
	rec = 8 + (size_t)(m->kw + m->vw) * 8;
	for (uint32_t b = 0; b < m->nbuckets && rc == 0; b++) {
		if (!load_relaxed(&m->buckets[b].head))
			continue;
		rc = snap_bucket(m, b, &sn);
		if (rc == -EAGAIN && !m->rdonly) {
			/* Busy bucket: copy it under its lock. */
			rc = stripe_lock(m, b & (m->nstripes - 1));
			if (rc == 0) {
				rc = snap_bucket(m, b, &sn);
				stripe_unlock(m, b & (m->nstripes - 1));
				if (rc == -EAGAIN)
					rc = -EBADMSG;
			}
		}
		for (size_t i = 0; i < sn.n && rc == 0; i++) {
			unsigned char *r = sn.buf + i * rec;
			uint32_t kl, vl;

			memcpy(&kl, r, 4);
			memcpy(&vl, r + 4, 4);
			rc = fn(r + 8, kl, r + 8 + m->kw * 8, vl, arg);
		}
	}
	free(sn.buf);
	return rc;
}

int shmkit_map_stats(struct shmkit_map *m, struct shmkit_map_stats *st)
{
	if (!m || !st || st->sz < sizeof(*st))
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->sz = sizeof(*st);
	st->capacity = m->capacity;
	st->key_max = m->key_max;
	st->val_max = m->val_max;
	st->buckets = m->nbuckets;
	st->stripes = m->nstripes;
	st->bytes = ((struct shmkit__map *)(void *)m->base)->total;
	for (uint32_t s = 0; s < m->nstripes; s++) {
		st->count += load_relaxed(&m->stripes[s].count);
		st->repairs += load_relaxed(&m->stripes[s].repairs);
	}
	return 0;
}

#define BAD(why)                 \
	do {                     \
		check_why = why; \
		rc = -EBADMSG;   \
		goto out;        \
	} while (0)

int shmkit_map_check(struct shmkit_map *m)
{
	unsigned char *seen, *kbuf;
	uint32_t locked = 0, reach = 0, nfree = 0;
	int rc = writable(m);

	if (rc < 0)
		return rc;
	seen = calloc(m->nents / 8 + 1, 1);
	kbuf = malloc((size_t)m->kw * 8 + 8);
	if (!seen || !kbuf) {
		free(seen);
		free(kbuf);
		return -ENOMEM;
	}
	for (; locked < m->nstripes; locked++) {
		rc = stripe_lock(m, locked);
		if (rc < 0)
			goto out;
	}
	for (uint32_t b = 0; b < m->nbuckets; b++) {
		uint32_t s = b & (m->nstripes - 1);
		uint32_t x = load_relaxed(&m->buckets[b].head), steps = 0;

		if (load_relaxed(&m->buckets[b].seq) & 1)
			BAD("bucket sequence lock left open");
		while (x) {
			struct shmkit__ent *e;
			uint32_t kl, vl;
			uint64_t h;

			if (x > m->nents || ++steps > m->nents)
				BAD("chain link out of range or cyclic");
			if (seen[(x - 1) / 8] & 1u << (x - 1) % 8)
				BAD("entry reachable twice");
			seen[(x - 1) / 8] |= (unsigned char)(1u << (x - 1) % 8);
			e = ent(m, x - 1);
			if (load_relaxed(&e->home) != s)
				BAD("entry in a foreign stripe's bucket");
			if (load_relaxed(&e->ver) & 1)
				BAD("linked entry mid-write");
			kl = load_relaxed(&e->klen);
			vl = load_relaxed(&e->vlen);
			if (kl > m->key_max || vl > m->val_max)
				BAD("key or value length");
			get_words(kbuf, e->data, kl);
			h = hash_bytes(kbuf, kl, m->seed);
			if ((uint32_t)(h >> 32) != load_relaxed(&e->hash) ||
			    ((uint32_t)h & (m->nbuckets - 1)) != b)
				BAD("hash does not match the key or bucket");
			/* No other entry of the chain holds the same key. */
			for (uint32_t y = load_relaxed(&e->next), n = 0;
			     y && y <= m->nents && n < m->nents; n++) {
				struct shmkit__ent *f = ent(m, y - 1);
				struct key kk = {kbuf, kl, (uint32_t)(h >> 32),
						 b, s};

				if (ent_is(f, &kk))
					BAD("duplicate key");
				y = load_relaxed(&f->next);
			}
			reach++;
			x = load_relaxed(&e->next);
		}
	}
	for (uint32_t s = 0; s < m->nstripes; s++) {
		struct shmkit__stripe *st = &m->stripes[s];
		uint32_t x = load_relaxed(&st->free_head), n = 0, cnt = 0;

		for (uint32_t b = s; b < m->nbuckets; b += m->nstripes) {
			uint32_t y = load_relaxed(&m->buckets[b].head);

			while (y && y <= m->nents && cnt <= m->nents) {
				cnt++;
				y = load_relaxed(&ent(m, y - 1)->next);
			}
		}
		if (cnt != load_relaxed(&st->count))
			BAD("stripe key count");
		while (x) {
			if (x > m->nents || ++n > m->nents)
				BAD("free list link");
			if (seen[(x - 1) / 8] & 1u << (x - 1) % 8)
				BAD("free entry also linked or listed twice");
			seen[(x - 1) / 8] |= (unsigned char)(1u << (x - 1) % 8);
			if (load_relaxed(&ent(m, x - 1)->home) != s)
				BAD("free entry of another stripe");
			if (!(load_relaxed(&ent(m, x - 1)->ver) & 1))
				BAD("free entry not marked free");
			x = load_relaxed(&ent(m, x - 1)->next);
		}
		if (n != load_relaxed(&st->nfree))
			BAD("free count");
		nfree += n;
	}
	if (reach + nfree != m->nents)
		BAD("entries lost");
	rc = 0;
out:
	while (locked > 0)
		stripe_unlock(m, --locked);
	free(seen);
	free(kbuf);
	return rc;
}

/* ------------------------------------------------------------ open/close */

struct geom {
	uint32_t capacity, nents, nbuckets, nstripes, key_max, val_max,
		ent_size;
	uint64_t stripes_off, buckets_off, ents_off, total;
};

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

static int geom_of(uint32_t cap, uint32_t key_max, uint32_t val_max,
		   uint32_t nstripes, struct geom *g)
{
	if (!cap || cap > SHMKIT__MAP_MAX_CAP ||
	    key_max > SHMKIT__MAP_MAX_KEY || val_max > SHMKIT__MAP_MAX_VAL)
		return -EINVAL;
	g->capacity = cap;
	g->nbuckets = pow2_at_least(cap < 16 ? 16 : cap);
	g->nstripes = nstripes;
	if (!g->nstripes || (g->nstripes & (g->nstripes - 1)) ||
	    g->nstripes > g->nbuckets)
		return -EINVAL;
	g->key_max = key_max;
	g->val_max = val_max;
	g->ent_size = (uint32_t)sizeof(struct shmkit__ent) +
		      8 * (words(key_max) + words(val_max));
	g->stripes_off = sizeof(struct shmkit__map);
	g->buckets_off = g->stripes_off +
			 (uint64_t)g->nstripes * sizeof(struct shmkit__stripe);
	g->ents_off =
		(g->buckets_off +
		 (uint64_t)g->nbuckets * sizeof(struct shmkit__bucket) + 63) &
		~63ull;
	g->nents = cap + g->nstripes;
	g->total = g->ents_off + (uint64_t)g->nents * g->ent_size;
	return 0;
}

static void map_fields(struct shmkit_map *m, const struct geom *g,
		       uint64_t seed)
{
	m->capacity = g->capacity;
	m->nents = g->nents;
	m->nbuckets = g->nbuckets;
	m->nstripes = g->nstripes;
	m->key_max = g->key_max;
	m->val_max = g->val_max;
	m->ent_size = g->ent_size;
	m->kw = words(g->key_max);
	m->vw = words(g->val_max);
	m->seed = seed;
	m->stripes =
		(struct shmkit__stripe *)(void *)(m->base + g->stripes_off);
	m->buckets =
		(struct shmkit__bucket *)(void *)(m->base + g->buckets_off);
	m->ents = m->base + g->ents_off;
}

struct init_arg {
	struct geom g;
};

/* Runs inside shmkit_obj_create(), before the name is visible. */
static int map_init(struct shmkit_heap *h, uint64_t off, size_t size, void *arg)
{
	struct init_arg *ia = arg;
	struct shmkit__map *hdr = shmkit_heap_ptr(h, off);
	struct shmkit_map m;
	uint64_t seed = 0;
	int rc;

	if (!hdr || size < ia->g.total)
		return -EINVAL;
	memset(&m, 0, sizeof(m));
	m.seg = shmkit_heap_seg(h);
	m.base = (char *)hdr;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = shmkit__now_ns() ^ (uint64_t)getpid() << 32;
	map_fields(&m, &ia->g, seed);
	hdr->version = SHMKIT__MAP_VERSION;
	hdr->capacity = ia->g.capacity;
	hdr->nbuckets = ia->g.nbuckets;
	hdr->nstripes = ia->g.nstripes;
	hdr->key_max = ia->g.key_max;
	hdr->val_max = ia->g.val_max;
	hdr->ent_size = ia->g.ent_size;
	hdr->seed = seed;
	hdr->stripes_off = ia->g.stripes_off;
	hdr->buckets_off = ia->g.buckets_off;
	hdr->ents_off = ia->g.ents_off;
	hdr->total = ia->g.total;
	for (uint32_t s = 0; s < m.nstripes; s++) {
		rc = shmkit_mutex_init(m.seg, &m.stripes[s].lock, NULL);
		if (rc < 0)
			return rc;
	}
	/* The object is zeroed: buckets empty, entries ver 0. Deal the
	 * entries round-robin onto the stripes' free lists. */
	for (uint32_t i = m.nents; i-- > 0;) {
		uint32_t s = i & (m.nstripes - 1);
		struct shmkit__stripe *st = &m.stripes[s];

		store_relaxed(&ent(&m, i)->ver, 1); /* free: odd */
		store_relaxed(&ent(&m, i)->home, s);
		store_relaxed(&ent(&m, i)->next, load_relaxed(&st->free_head));
		store_relaxed(&st->free_head, i + 1);
		store_relaxed(&st->nfree, load_relaxed(&st->nfree) + 1);
	}
	hdr->magic = SHMKIT__MAP_MAGIC;
	return 0;
}

int shmkit_map_open(struct shmkit_heap *h, const char *name,
		    const struct shmkit_map_opts *opts, struct shmkit_map **out)
{
	struct shmkit_map_opts o = {0};
	struct shmkit_obj_info info;
	struct shmkit__map *hdr;
	struct shmkit_map *m;
	struct init_arg ia;
	struct geom g;
	int rc, created;

	if (!h || !name || !out)
		return -EINVAL;
	*out = NULL;
	if (opts) {
		if (opts->sz <
		    offsetof(struct shmkit_map_opts, lock_timeout_ns) +
			    sizeof(opts->lock_timeout_ns))
			return -EINVAL;
		o = *opts;
	}
	if (o.flags & ~SHMKIT_MAP_CREATE)
		return -EINVAL;
	if (o.flags & SHMKIT_MAP_CREATE) {
		uint32_t cap = o.capacity ? o.capacity : DEF_CAPACITY;
		uint32_t ns = o.stripes;

		if (!ns) {
			ns = pow2_at_least(cap < 16 ? 16 : cap) / 4;
			if (ns > MAX_STRIPES)
				ns = MAX_STRIPES;
			if (!ns)
				ns = 1;
		}
		rc = geom_of(cap, o.key_max ? o.key_max : DEF_KEY_MAX,
			     o.val_max ? o.val_max : DEF_VAL_MAX, ns, &ia.g);
		if (rc < 0)
			return rc;
		rc = shmkit_obj_create(h, name, ia.g.total, SHMKIT_OBJ_KIND_MAP,
				       map_init, &ia, &info);
	} else {
		rc = shmkit_obj_find(h, name, &info);
		if (rc == 0 && info.kind != SHMKIT_OBJ_KIND_MAP)
			rc = -EPROTO;
	}
	if (rc < 0)
		return rc;
	created = rc == 1;
	hdr = shmkit_heap_ptr(h, info.off);
	if (!hdr || info.size < sizeof(*hdr))
		return -EBADMSG;
	/* Validate everything the geometry derives from, against the size
	 * of the object the directory gave. */
	if (hdr->magic != SHMKIT__MAP_MAGIC ||
	    hdr->version != SHMKIT__MAP_VERSION)
		return -EPROTO;
	rc = geom_of(hdr->capacity, hdr->key_max, hdr->val_max, hdr->nstripes,
		     &g);
	if (rc < 0 || g.nbuckets != hdr->nbuckets ||
	    g.ent_size != hdr->ent_size || g.stripes_off != hdr->stripes_off ||
	    g.buckets_off != hdr->buckets_off || g.ents_off != hdr->ents_off ||
	    g.total != hdr->total || g.total > info.size ||
	    !shmkit_heap_ptr(h, info.off + g.total - 1))
		return -EBADMSG;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->seg = shmkit_heap_seg(h);
	m->rdonly = m->seg->rdonly;
	m->base = (char *)hdr;
	m->lock_timeout_ns = o.lock_timeout_ns ? o.lock_timeout_ns
					       : LOCK_TIMEOUT_NS;
	map_fields(m, &g, hdr->seed);
	*out = m;
	return created;
}

void shmkit_map_close(struct shmkit_map *m)
{
	free(m);
}
