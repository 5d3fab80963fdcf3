/* SPDX-License-Identifier: MIT */
/*
 * One segment mapped twice in one process (two handles, two addresses):
 * bytes written through either mapping are seen through the other, across
 * the whole data area, and offsets, not pointers, are what both share.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <shmkit.h>

#define SIZE (64 * 1024)

static int test(void)
{
	struct shmkit_seg *a, *b, *r;
	struct shmkit_seg_opts ro = {.sz = sizeof(ro),
				     .flags = SHMKIT_SEG_RDONLY};
	unsigned char *pa, *pb, *pr;
	char name[128];
	size_t n;

	th_name(name, sizeof(name), "twomaps");
	ASSERT_OK(shmkit_seg_create(name, SIZE, NULL, &a));
	ASSERT_OK(shmkit_seg_open(name, NULL, &b));
	ASSERT_OK(shmkit_seg_open(name, &ro, &r));
	pa = shmkit_seg_base(a);
	pb = shmkit_seg_base(b);
	pr = shmkit_seg_base(r);
	n = shmkit_seg_size(a);
	ASSERT_EQ(n, SIZE);
	ASSERT_EQ(shmkit_seg_size(b), n);
	ASSERT_EQ(shmkit_seg_size(r), n);
	ASSERT_TRUE(pa != pb && pa != pr && pb != pr);
	/* Distinct mappings, not overlapping views of one. */
	ASSERT_TRUE(pa + n <= pb || pb + n <= pa);

	/* Zero on creation, seen through every mapping. */
	for (size_t i = 0; i < n; i++)
		ASSERT_EQ(pb[i] | pr[i], 0);
	/* a -> b and r, everywhere in the data area. */
	for (size_t i = 0; i < n; i++)
		pa[i] = (unsigned char)(i * 7 + 1);
	for (size_t i = 0; i < n; i++) {
		ASSERT_EQ(pb[i], (unsigned char)(i * 7 + 1));
		ASSERT_EQ(pr[i], (unsigned char)(i * 7 + 1));
	}
	/* b -> a, at random offsets. */
	for (int k = 0; k < 1000; k++) {
		size_t off = th_rand() % n;
		unsigned char v = (unsigned char)th_rand();

		pb[off] = v;
		ASSERT_EQ(pa[off], v);
		ASSERT_EQ(pr[off], v);
	}
	/* An offset stored in the segment leads to the same byte in both. */
	{
		uint64_t off = n - 100;

		memcpy(pa, &off, sizeof(off));
		memcpy(pa + off, "offset", 7);
		memcpy(&off, pb, sizeof(off));
		ASSERT_STR_EQ((char *)pb + off, "offset");
	}

	shmkit_seg_close(r);
	shmkit_seg_close(a);
	/* The remaining handle still works once the other is gone. */
	pb[5] = 42;
	ASSERT_EQ(pb[5], 42);
	shmkit_seg_close(b);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
