/* SPDX-License-Identifier: MIT */
/*
 * Named objects: heap blocks found by name through the segment header's
 * directory (dir[64]), under the heap's directory mutex. Owns the
 * create-or-find protocol and the directory's repair after a dead holder.
 */
#define _GNU_SOURCE
#include "heap.h"

#include "atomics.h"
#include "crash.h"
#include "segment.h"

#include <errno.h>
#include <string.h>

#define crash_order() atomic_signal_fence(memory_order_seq_cst)

static struct shmkit_dirent *dirent(struct shmkit_heap *h, unsigned i)
{
	return &h->seg->hdr->dir[i];
}

static void ent_clear(struct shmkit_dirent *e)
{
	e->kind = 0;
	e->offset = 0;
	e->size = 0;
	memset(e->name, 0, sizeof(e->name));
	crash_order(); /* pairs with dir_repair(): state goes last */
	store_relaxed(&e->state, 0);
}

/*
 * Repair after a dead holder (dir lock held, inconsistent): an object
 * still BUILDING was being created or removed, so it is undone: its block
 * (if any, and still in use: nobody but the dead holder could free it, as
 * reclaim takes this lock first) is freed. Any other non-zero state but
 * LIVE is garbage: the entry is dropped.
 */
static int dir_repair(struct shmkit_heap *h)
{
	int rc = shmkit__heap_lock(h);

	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < SHMKIT_DIR_CAP; i++) {
		struct shmkit_dirent *e = dirent(h, i);
		uint32_t st = load_relaxed(&e->state);
		uint64_t off = e->offset;

		if (st == 0 || st == SHMKIT_DIRENT_LIVE)
			continue;
		if (st == SHMKIT_DIRENT_BUILDING && off &&
		    shmkit__heap_is_used(h, off))
			shmkit__heap_free_locked(h, off);
		ent_clear(e);
	}
	shmkit__heap_unlock(h);
	return 0;
}

int shmkit__dir_lock(struct shmkit_heap *h)
{
	struct shmkit_mutex *m = &h->hp->dir_lock;
	int rc = shmkit_mutex_lock(h->seg, m, h->lock_timeout_ns);

	if (rc != -EOWNERDEAD)
		return rc;
	SHMKIT_CRASH_POINT("obj.repair.locked");
	rc = dir_repair(h);
	if (rc < 0) {
		shmkit_mutex_unlock(h->seg, m); /* -> not recoverable */
		return rc == -ETIMEDOUT ? rc : -ENOTRECOVERABLE;
	}
	shmkit_mutex_consistent(h->seg, m);
	return 0;
}

void shmkit__dir_unlock(struct shmkit_heap *h)
{
	shmkit_mutex_unlock(h->seg, &h->hp->dir_lock);
}

static int name_ok(const char *name)
{
	size_t n;

	if (!name)
		return 0;
	n = strnlen(name, SHMKIT_OBJ_NAME_MAX + 1);
	return n >= 1 && n <= SHMKIT_OBJ_NAME_MAX;
}

/* Copy entry e into info, validating what a peer could have broken. */
static int ent_info(struct shmkit_heap *h, const struct shmkit_dirent *e,
		    struct shmkit_obj_info *info)
{
	struct shmkit_obj_info in;
	size_t usable;

	memset(&in, 0, sizeof(in));
	in.off = e->offset;
	in.size = e->size;
	in.kind = e->kind;
	memcpy(in.name, e->name, SHMKIT_OBJ_NAME_MAX);
	in.name[SHMKIT_OBJ_NAME_MAX] = '\0';
	if (!h->rdonly && (shmkit_heap_usable_size(h, in.off, &usable) < 0 ||
			   usable < in.size))
		return -EBADMSG;
	if (info)
		*info = in;
	return 0;
}

/* Entry holding name (LIVE), or -1 (lock held). */
static int lookup(struct shmkit_heap *h, const char *name)
{
	for (unsigned i = 0; i < SHMKIT_DIR_CAP; i++) {
		struct shmkit_dirent *e = dirent(h, i);

		if (load_relaxed(&e->state) == SHMKIT_DIRENT_LIVE &&
		    strncmp(e->name, name, SHMKIT_DIR_NAME) == 0)
			return (int)i;
	}
	return -1;
}

static int usable(struct shmkit_heap *h, int write)
{
	if (!h)
		return -EINVAL;
	if (h->rdonly && write)
		return -EBADF;
	return 0;
}

int shmkit_obj_create(struct shmkit_heap *h, const char *name, size_t size,
		      uint32_t kind,
		      int (*init)(struct shmkit_heap *h, uint64_t off,
				  size_t size, void *arg),
		      void *arg, struct shmkit_obj_info *info)
{
	struct shmkit_dirent *e;
	uint64_t off;
	int rc, i, slot = -1;

	rc = usable(h, 1);
	if (rc < 0)
		return rc;
	if (!name_ok(name) || kind == 0)
		return -EINVAL;
	rc = shmkit__dir_lock(h);
	if (rc < 0)
		return rc;
	i = lookup(h, name);
	if (i >= 0) {
		e = dirent(h, (unsigned)i);
		rc = e->kind != kind ? -EPROTO : ent_info(h, e, info);
		goto out;
	}
	for (unsigned j = 0; j < SHMKIT_DIR_CAP; j++) {
		if (load_relaxed(&dirent(h, j)->state) == 0) {
			slot = (int)j;
			break;
		}
	}
	if (slot < 0) {
		rc = -ENOSPC;
		goto out;
	}
	e = dirent(h, (unsigned)slot);
	e->kind = kind;
	e->offset = 0;
	e->size = size;
	memset(e->name, 0, sizeof(e->name));
	memcpy(e->name, name, strlen(name));
	crash_order(); /* pairs with dir_repair(): fields before state */
	store_relaxed(&e->state, SHMKIT_DIRENT_BUILDING);
	/* Owned until published: a crash between alloc and the offset
	 * store leaves a block shmkit_heap_reclaim() frees. */
	rc = shmkit_heap_alloc(h, size ? size : 1,
			       SHMKIT_HEAP_OWNED | SHMKIT_HEAP_ZERO, &off);
	if (rc < 0) {
		ent_clear(e);
		goto out;
	}
	SHMKIT_CRASH_POINT("obj.create.allocated");
	e->offset = off;
	crash_order(); /* pairs with dir_repair() */
	SHMKIT_CRASH_POINT("obj.create.recorded");
	if (init) {
		rc = init(h, off, size, arg);
		if (rc < 0) {
			shmkit_heap_free(h, off);
			ent_clear(e);
			goto out;
		}
	}
	rc = shmkit_heap_set_owned(h, off, 0);
	if (rc < 0) {
		shmkit_heap_free(h, off);
		ent_clear(e);
		goto out;
	}
	SHMKIT_CRASH_POINT("obj.create.initialised");
	/* Release: readers of state (inspectors) see a complete entry;
	 * lock holders are ordered by the dir mutex anyway. */
	store_release(&e->state, SHMKIT_DIRENT_LIVE);
	SHMKIT_CRASH_POINT("obj.create.published");
	rc = ent_info(h, e, info);
	if (rc == 0)
		rc = 1;
out:
	shmkit__dir_unlock(h);
	return rc;
}

int shmkit_obj_find(struct shmkit_heap *h, const char *name,
		    struct shmkit_obj_info *info)
{
	int rc, i;

	rc = usable(h, 0);
	if (rc < 0)
		return rc;
	if (!name_ok(name))
		return -EINVAL;
	if (h->rdonly) {
		/* No lock on a read-only handle: a best-effort snapshot. */
		for (unsigned j = 0; j < SHMKIT_DIR_CAP; j++) {
			struct shmkit_dirent *e = dirent(h, j);

			/* Pairs with the release store of LIVE. */
			if (load_acquire(&e->state) == SHMKIT_DIRENT_LIVE &&
			    strncmp(e->name, name, SHMKIT_DIR_NAME) == 0)
				return ent_info(h, e, info);
		}
		return -ENOENT;
	}
	rc = shmkit__dir_lock(h);
	if (rc < 0)
		return rc;
	i = lookup(h, name);
	rc = i < 0 ? -ENOENT : ent_info(h, dirent(h, (unsigned)i), info);
	shmkit__dir_unlock(h);
	return rc;
}

int shmkit_obj_list(struct shmkit_heap *h,
		    int (*fn)(const struct shmkit_obj_info *info, void *arg),
		    void *arg)
{
	struct shmkit_obj_info v[SHMKIT_DIR_CAP];
	int rc, n = 0;

	rc = usable(h, 0);
	if (rc < 0)
		return rc;
	if (!h->rdonly) {
		rc = shmkit__dir_lock(h);
		if (rc < 0)
			return rc;
	}
	for (unsigned j = 0; j < SHMKIT_DIR_CAP; j++) {
		struct shmkit_dirent *e = dirent(h, j);

		/* Pairs with the release store of LIVE. */
		if (load_acquire(&e->state) == SHMKIT_DIRENT_LIVE &&
		    ent_info(h, e, &v[n]) == 0)
			n++;
	}
	if (!h->rdonly)
		shmkit__dir_unlock(h);
	/* Callbacks run without the lock: they may call obj functions. */
	for (int j = 0; j < n && fn; j++) {
		rc = fn(&v[j], arg);
		if (rc)
			return rc;
	}
	return n;
}

int shmkit_obj_remove(struct shmkit_heap *h, const char *name)
{
	struct shmkit_dirent *e;
	uint64_t off;
	int rc, i;

	rc = usable(h, 1);
	if (rc < 0)
		return rc;
	if (!name_ok(name))
		return -EINVAL;
	rc = shmkit__dir_lock(h);
	if (rc < 0)
		return rc;
	i = lookup(h, name);
	if (i < 0) {
		rc = -ENOENT;
		goto out;
	}
	e = dirent(h, (unsigned)i);
	off = e->offset;
	/*
	 * Unpublish first: from here to the clear below, a crash leaves a
	 * BUILDING entry, which the repair undoes (frees the block, drops
	 * the entry). A LIVE entry whose block is owned by a dead remover
	 * would dangle once reclaim freed the block, and a later remove of
	 * the name would free whoever was given that memory next.
	 */
	store_relaxed(&e->state, SHMKIT_DIRENT_BUILDING);
	crash_order(); /* pairs with dir_repair(): before the tag changes */
	SHMKIT_CRASH_POINT("obj.remove.unpublished");
	/* Own the block before the entry goes: a crash after the clear and
	 * before the free leaves a block shmkit_heap_reclaim() frees, never
	 * one freed twice. */
	rc = shmkit_heap_set_owned(h, off, 1);
	if (rc < 0 && rc != -EINVAL) {
		/* Nothing changed: publish it again. Release: pairs with
		 * the acquire loads of LIVE by lock-free readers. */
		store_release(&e->state, SHMKIT_DIRENT_LIVE);
		goto out;
	}
	SHMKIT_CRASH_POINT("obj.remove.owned");
	ent_clear(e);
	SHMKIT_CRASH_POINT("obj.remove.cleared");
	rc = 0;
	if (shmkit__heap_is_used(h, off))
		rc = shmkit_heap_free(h, off);
out:
	shmkit__dir_unlock(h);
	return rc;
}
