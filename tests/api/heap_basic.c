/* SPDX-License-Identifier: MIT */
/*
 * The heap's API in one process: create-or-open, alloc/free of many sizes
 * with patterns, alignment, double free and bogus offsets, -ENOSPC and
 * recovery from it, statistics, walk, owned blocks reclaimed after their
 * handle closed, and the checker after every phase.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "heap.h"

#include <shmkit.h>

#define N 2000

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 31 + i * 7);
}

static int same(const unsigned char *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed * 31 + i * 7))
			return 0;
	return 1;
}

static void check(struct shmkit_heap *h)
{
	int rc = shmkit_heap_check(h);

	if (rc < 0)
		th_fail(__FILE__, __LINE__, "heap check: %s",
			shmkit__heap_check_why());
}

static int count_owned(const struct shmkit_heap_block *b, void *arg)
{
	if (b->state == SHMKIT_HEAP_USED && (b->flags & SHMKIT_HEAP_OWNED))
		++*(int *)arg;
	return 0;
}

static void random_phase(struct shmkit_heap *h, char *base)
{
	static uint64_t off[N];
	static size_t len[N];

	memset(off, 0, sizeof(off));
	for (int round = 0; round < 20 * N; round++) {
		int i = (int)(th_rand() % N);

		if (off[i]) {
			ASSERT_TRUE(same((unsigned char *)base + off[i], len[i],
					 (uint64_t)i));
			ASSERT_OK(shmkit_heap_free(h, off[i]));
			off[i] = 0;
		} else {
			len[i] = th_rand() % 4 ? 1 + th_rand() % 512
					       : 1 + th_rand() % 20000;
			ASSERT_OK(shmkit_heap_alloc(h, len[i], 0, &off[i]));
			ASSERT_EQ(off[i] % 16, 0);
			fill((unsigned char *)base + off[i], len[i],
			     (uint64_t)i);
		}
	}
	check(h);
	for (int i = 0; i < N; i++) {
		if (!off[i])
			continue;
		ASSERT_TRUE(same((unsigned char *)base + off[i], len[i],
				 (uint64_t)i));
		ASSERT_OK(shmkit_heap_free(h, off[i]));
	}
	check(h);
}

static int test(void)
{
	struct shmkit_heap_opts o = {.sz = sizeof(o), .flags = 0};
	struct shmkit_heap_stats st = {.sz = sizeof(st)};
	struct shmkit_heap *h, *h2;
	struct shmkit_seg *seg;
	uint64_t a, b, big, offs[64];
	size_t us;
	char *base;
	int owned = 0, n;

	ASSERT_OK(shmkit_seg_create_anon(8 << 20, NULL, &seg));
	base = shmkit_seg_base(seg);
	ASSERT_ERR(shmkit_heap_open(seg, &o, &h), ENOENT);
	o.flags = SHMKIT_HEAP_CREATE;
	ASSERT_OK(shmkit_heap_open(seg, &o, &h));
	ASSERT_EQ(shmkit_heap_seg(h), seg);
	check(h);

	/* Basics: distinct blocks, usable size, pointers. */
	ASSERT_OK(shmkit_heap_alloc(h, 100, SHMKIT_HEAP_ZERO, &a));
	ASSERT_OK(shmkit_heap_alloc(h, 100, 0, &b));
	ASSERT_NE(a, b);
	ASSERT_OK(shmkit_heap_usable_size(h, a, &us));
	ASSERT_GE(us, 100);
	ASSERT_EQ((char *)shmkit_heap_ptr(h, a), base + a);
	for (int i = 0; i < 100; i++)
		ASSERT_EQ(base[a + (uint64_t)i], 0);
	ASSERT_EQ(shmkit_heap_ptr(h, 1ull << 40), NULL);

	/* Errors: double free, inside a block, out of range, misaligned. */
	ASSERT_OK(shmkit_heap_free(h, b));
	ASSERT_ERR(shmkit_heap_free(h, b), EINVAL);
	ASSERT_ERR(shmkit_heap_free(h, a + 16), EINVAL);
	ASSERT_ERR(shmkit_heap_free(h, a + 3), EINVAL);
	ASSERT_ERR(shmkit_heap_free(h, 1ull << 40), EINVAL);
	ASSERT_ERR(shmkit_heap_free(h, 0), EINVAL);
	ASSERT_ERR(shmkit_heap_alloc(h, 10, 0x100, &b), EINVAL);
	ASSERT_ERR(shmkit_heap_alloc_aligned(h, 10, 48, 0, &b), EINVAL);
	ASSERT_ERR(shmkit_heap_alloc_aligned(h, 10, 8192, 0, &b), EINVAL);
	ASSERT_OK(shmkit_heap_free(h, a));
	check(h);

	/* Alignment. */
	for (size_t al = 16; al <= 4096; al <<= 1) {
		ASSERT_OK(shmkit_heap_alloc_aligned(h, 40, al, 0, &a));
		ASSERT_EQ((uintptr_t)(base + a) % al, 0);
		memset(base + a, 0xab, 40);
		check(h);
		ASSERT_OK(shmkit_heap_free(h, a));
	}
	check(h);

	random_phase(h, base);

	/* Exhaust, fail cleanly, recover. */
	ASSERT_ERR(shmkit_heap_alloc(h, 9 << 20, 0, &big), ENOSPC);
	n = 0;
	while (n < 64 && shmkit_heap_alloc(h, 256 << 10, 0, &offs[n]) == 0)
		n++;
	ASSERT_GT(n, 20);
	ASSERT_LT(n, 64);
	ASSERT_ERR(shmkit_heap_alloc(h, 256 << 10, 0, &big), ENOSPC);
	check(h);
	for (int i = 0; i < n; i++)
		ASSERT_OK(shmkit_heap_free(h, offs[i]));
	ASSERT_OK(shmkit_heap_flush(h));
	check(h);
	ASSERT_OK(shmkit_heap_stats(h, &st));
	ASSERT_EQ(st.free_blocks, 1);
	ASSERT_EQ(st.used_blocks, 0);
	ASSERT_EQ(st.cached_blocks, 0);
	ASSERT_EQ(st.free_bytes, st.heap_bytes);
	ASSERT_GE(st.largest_free, st.heap_bytes - 64);
	ASSERT_EQ(st.owners, 1);

	/* A second handle sees the same heap; its owned blocks are
	 * reclaimed once it is closed, its plain ones are not. */
	ASSERT_OK(shmkit_heap_open(seg, NULL, &h2));
	ASSERT_OK(shmkit_heap_alloc(h2, 64, SHMKIT_HEAP_OWNED, &a));
	ASSERT_OK(shmkit_heap_alloc(h2, 64, 0, &b));
	ASSERT_OK(shmkit_heap_alloc(h2, 5000, SHMKIT_HEAP_OWNED, &big));
	ASSERT_OK(shmkit_heap_walk(h, count_owned, &owned));
	ASSERT_EQ(owned, 2);
	ASSERT_EQ(shmkit_heap_reclaim(h), 0); /* h2 is alive */
	shmkit_heap_close(h2);
	ASSERT_EQ(shmkit_heap_reclaim(h), 2);
	ASSERT_ERR(shmkit_heap_free(h, a), EINVAL);
	ASSERT_OK(shmkit_heap_free(h, b));
	check(h);

	/* Ownership moves: set_owned on a plain block, then clear it. */
	ASSERT_OK(shmkit_heap_alloc(h, 64, 0, &a));
	ASSERT_OK(shmkit_heap_set_owned(h, a, 1));
	owned = 0;
	ASSERT_OK(shmkit_heap_walk(h, count_owned, &owned));
	ASSERT_EQ(owned, 1);
	ASSERT_OK(shmkit_heap_set_owned(h, a, 0));
	owned = 0;
	ASSERT_OK(shmkit_heap_walk(h, count_owned, &owned));
	ASSERT_EQ(owned, 0);
	ASSERT_OK(shmkit_heap_free(h, a));

	/* No cache: same behaviour through the locked path only. */
	o.flags = SHMKIT_HEAP_NOCACHE;
	ASSERT_OK(shmkit_heap_open(seg, &o, &h2));
	random_phase(h2, base);
	shmkit_heap_close(h2);
	shmkit_heap_close(h);

	/* Reopen: everything was returned. */
	ASSERT_OK(shmkit_heap_open(seg, NULL, &h));
	ASSERT_OK(shmkit_heap_stats(h, &st));
	ASSERT_EQ(st.free_blocks, 1);
	ASSERT_EQ(st.owners, 1);
	check(h);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);

	/* A heap on part of the data area. */
	ASSERT_OK(shmkit_seg_create_anon(1 << 20, NULL, &seg));
	o.flags = SHMKIT_HEAP_CREATE;
	o.offset = 4096;
	o.size_bytes = 64 << 10;
	ASSERT_OK(shmkit_heap_open(seg, &o, &h));
	ASSERT_OK(shmkit_heap_alloc(h, 1000, 0, &a));
	ASSERT_GE(a, 4096);
	ASSERT_LT(a, 4096 + (64 << 10));
	ASSERT_ERR(shmkit_heap_alloc(h, 64 << 10, 0, &b), ENOSPC);
	check(h);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
