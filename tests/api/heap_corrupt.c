/* SPDX-License-Identifier: MIT */
/*
 * A peer scribbles on the heap: a broken block size, a broken check word,
 * a free-list link into the void, a cycle in a free list, a bitmap bit
 * for an empty list. Every call returns (no hang, no crash): the checker
 * says -EBADMSG, a free of a damaged block -EINVAL, and damage the block
 * chain survives (links, bitmaps) is repaired by a rebuild.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "heap.h"
#include "segment.h"

#include <shmkit.h>

static struct shmkit__blk *hdr_of(struct shmkit_heap *h, uint64_t off)
{
	return (struct shmkit__blk *)((char *)shmkit_heap_ptr(h, off) - 16);
}

static struct shmkit_heap *fresh(struct shmkit_seg *seg, uint64_t *offs, int n)
{
	struct shmkit_heap_opts o = {.sz = sizeof(o),
				     .flags = SHMKIT_HEAP_CREATE |
					      SHMKIT_HEAP_NOCACHE,
				     .lock_timeout_ns = 100000000};
	struct shmkit_heap *h;

	memset(seg->data, 0, seg->data_size);
	atomic_store(&seg->hdr->heap_init, 0);
	if (shmkit_heap_open(seg, &o, &h) < 0)
		return NULL;
	for (int i = 0; i < n; i++)
		if (shmkit_heap_alloc(h, 100 + (size_t)i * 50, 0, &offs[i]) < 0)
			return NULL;
	return h;
}

static int test(void)
{
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	uint64_t offs[8], x;
	int rc;

	ASSERT_OK(shmkit_seg_create_anon(1 << 20, NULL, &seg));

	/* A block's size: the check word no longer matches. */
	h = fresh(seg, offs, 8);
	ASSERT_TRUE(h != NULL);
	atomic_store(&hdr_of(h, offs[3])->size_g, 0x7fffffffu);
	ASSERT_ERR(shmkit_heap_check(h), EBADMSG);
	ASSERT_ERR(shmkit_heap_free(h, offs[3]), EINVAL);
	rc = shmkit_heap_free(h, offs[2]); /* its neighbour is broken */
	ASSERT_TRUE(rc == 0 || rc == -EBADMSG);
	shmkit_heap_close(h);

	/* A size and its check word forged together, pointing past the end. */
	h = fresh(seg, offs, 8);
	ASSERT_TRUE(h != NULL);
	{
		struct shmkit__blk *b = hdr_of(h, offs[5]);
		uint64_t boff = offs[5] - 16;
		uint32_t g = 1u << 20;
		uint64_t xx =
			(boff ^ (uint64_t)g << 40) * 0x9e3779b97f4a7c15ull;

		atomic_store(&b->size_g, g);
		atomic_store(&b->check, (uint32_t)(xx >> 32) ^ 0x5348424bu);
	}
	ASSERT_ERR(shmkit_heap_check(h), EBADMSG);
	ASSERT_ERR(shmkit_heap_free(h, offs[5]), EINVAL);
	shmkit_heap_close(h);

	/* Free-list links: a link into the void and a cycle. The chain is
	 * intact, so an allocation that trips on them rebuilds the lists. */
	h = fresh(seg, offs, 8);
	ASSERT_TRUE(h != NULL);
	for (int i = 0; i < 8; i += 2)
		ASSERT_OK(shmkit_heap_free(h, offs[i]));
	atomic_store((_Atomic uint64_t *)shmkit_heap_ptr(h, offs[0]),
		     (uint64_t)0x123457);
	atomic_store((_Atomic uint64_t *)shmkit_heap_ptr(h, offs[2]),
		     offs[2] - 16);
	ASSERT_ERR(shmkit_heap_check(h), EBADMSG);
	for (int i = 0; i < 20; i++) {
		rc = shmkit_heap_alloc(h, 100, 0, &x);
		ASSERT_TRUE(rc == 0 || rc == -EBADMSG);
	}
	shmkit_heap_close(h);

	/* Bitmap bits for lists that are empty, and beyond the lists. */
	h = fresh(seg, offs, 8);
	ASSERT_TRUE(h != NULL);
	atomic_store(&h->hp->fl_bitmap, 0xffffffffu);
	atomic_store(&h->hp->sl_bitmap[3], 0xffffffffu);
	ASSERT_ERR(shmkit_heap_check(h), EBADMSG);
	rc = shmkit_heap_alloc(h, 100, 0, &x);
	ASSERT_TRUE(rc == 0 || rc == -EBADMSG);
	rc = shmkit_heap_alloc(h, 3000, 0, &x);
	ASSERT_TRUE(rc == 0 || rc == -EBADMSG);
	shmkit_heap_close(h);

	/* The segment header's heap place: refused at open. */
	h = fresh(seg, offs, 1);
	ASSERT_TRUE(h != NULL);
	shmkit_heap_close(h);
	seg->hdr->heap_off = 8;
	ASSERT_ERR(shmkit_heap_open(seg, NULL, &h), EBADMSG);
	seg->hdr->heap_off = 0;
	seg->hdr->heap_size = seg->data_size + 4096;
	ASSERT_ERR(shmkit_heap_open(seg, NULL, &h), EBADMSG);
	shmkit_seg_close(seg);
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
