/* SPDX-License-Identifier: MIT */
/*
 * Named objects in one process: create-or-find, find, list, remove, kind
 * mismatch, init callbacks (and their failure undoing the creation), a
 * full directory, bad names, and a read-only handle listing them.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <shmkit.h>

static int init_calls;

static int init_fill(struct shmkit_heap *h, uint64_t off, size_t size,
		     void *arg)
{
	memset(shmkit_heap_ptr(h, off), *(int *)arg, size);
	init_calls++;
	return 0;
}

static int init_fail(struct shmkit_heap *h, uint64_t off, size_t size,
		     void *arg)
{
	uint64_t extra;

	(void)off;
	(void)size;
	(void)arg;
	/* Allocating inside init is allowed. */
	if (shmkit_heap_alloc(h, 10, 0, &extra) < 0)
		return -EIO;
	shmkit_heap_free(h, extra);
	return -ECANCELED;
}

static int count(const struct shmkit_obj_info *in, void *arg)
{
	(void)in;
	++*(int *)arg;
	return 0;
}

static int stop_at_two(const struct shmkit_obj_info *in, void *arg)
{
	(void)in;
	return ++*(int *)arg == 2 ? 42 : 0;
}

static int test(void)
{
	struct shmkit_heap_opts o = {.sz = sizeof(o),
				     .flags = SHMKIT_HEAP_CREATE};
	struct shmkit_heap_stats st = {.sz = sizeof(st)};
	struct shmkit_seg_opts so = {.sz = sizeof(so),
				     .flags = SHMKIT_SEG_RDONLY};
	struct shmkit_obj_info a, b;
	struct shmkit_seg_info *si;
	struct shmkit_seg *seg, *ro;
	struct shmkit_heap *h, *hro;
	char name[128], big[64];
	int val = 0x5a, n;

	th_name(name, sizeof(name), "obj");
	ASSERT_OK(shmkit_seg_create(name, 1 << 20, NULL, &seg));
	ASSERT_OK(shmkit_heap_open(seg, &o, &h));

	ASSERT_EQ(shmkit_obj_create(h, "alpha", 100, 7, init_fill, &val, &a),
		  1);
	ASSERT_EQ(init_calls, 1);
	ASSERT_EQ(a.size, 100);
	ASSERT_EQ(a.kind, 7);
	ASSERT_STR_EQ(a.name, "alpha");
	ASSERT_EQ(((unsigned char *)shmkit_heap_ptr(h, a.off))[99], 0x5a);
	/* Second create finds it; init does not run again. */
	ASSERT_EQ(shmkit_obj_create(h, "alpha", 100, 7, init_fill, &val, &b),
		  0);
	ASSERT_EQ(init_calls, 1);
	ASSERT_EQ(b.off, a.off);
	ASSERT_ERR(shmkit_obj_create(h, "alpha", 100, 8, NULL, NULL, &b),
		   EPROTO);
	ASSERT_OK(shmkit_obj_find(h, "alpha", &b));
	ASSERT_EQ(b.off, a.off);
	ASSERT_ERR(shmkit_obj_find(h, "beta", &b), ENOENT);

	/* A failing init leaves nothing behind. */
	ASSERT_ERR(shmkit_obj_create(h, "beta", 10, 7, init_fail, NULL, &b),
		   ECANCELED);
	ASSERT_ERR(shmkit_obj_find(h, "beta", &b), ENOENT);

	/* Names and arguments. */
	memset(big, 'x', sizeof(big));
	big[48] = '\0';
	ASSERT_ERR(shmkit_obj_create(h, big, 10, 7, NULL, NULL, &b), EINVAL);
	big[47] = '\0';
	ASSERT_EQ(shmkit_obj_create(h, big, 10, 7, NULL, NULL, &b), 1);
	ASSERT_ERR(shmkit_obj_create(h, "", 10, 7, NULL, NULL, &b), EINVAL);
	ASSERT_ERR(shmkit_obj_create(h, "k0", 10, 0, NULL, NULL, &b), EINVAL);
	ASSERT_ERR(shmkit_obj_create(h, "huge", 1 << 21, 7, NULL, NULL, &b),
		   ENOSPC);

	/* Fill the directory. */
	for (int i = 2; i < 64; i++) {
		char nm[16];

		snprintf(nm, sizeof(nm), "o%d", i);
		ASSERT_EQ(shmkit_obj_create(h, nm, 32, 9, NULL, NULL, &b), 1);
	}
	ASSERT_ERR(shmkit_obj_create(h, "one-more", 32, 9, NULL, NULL, &b),
		   ENOSPC);
	n = 0;
	ASSERT_EQ(shmkit_obj_list(h, count, &n), 64);
	ASSERT_EQ(n, 64);
	n = 0;
	ASSERT_EQ(shmkit_obj_list(h, stop_at_two, &n), 42);

	/* The segment's inspection counts them; a read-only handle lists
	 * them without the lock. */
	si = calloc(1, sizeof(*si));
	ASSERT_TRUE(si != NULL);
	si->sz = sizeof(*si);
	ASSERT_OK(shmkit_seg_stat(name, si));
	ASSERT_EQ(si->dir_used, 64);
	free(si);
	ASSERT_OK(shmkit_seg_open(name, &so, &ro));
	ASSERT_OK(shmkit_heap_open(ro, NULL, &hro));
	ASSERT_EQ(shmkit_obj_list(hro, NULL, NULL), 64);
	ASSERT_OK(shmkit_obj_find(hro, "alpha", &b));
	ASSERT_EQ(b.off, a.off);
	ASSERT_ERR(shmkit_obj_remove(hro, "alpha"), EBADF);
	ASSERT_ERR(shmkit_heap_alloc(hro, 10, 0, &b.off), EBADF);
	ASSERT_OK(shmkit_heap_stats(hro, &st));
	ASSERT_GT(st.used_blocks, 63);
	shmkit_heap_close(hro);
	shmkit_seg_close(ro);

	/* Remove everything; the heap is whole again. */
	ASSERT_OK(shmkit_obj_remove(h, "alpha"));
	ASSERT_ERR(shmkit_obj_remove(h, "alpha"), ENOENT);
	ASSERT_OK(shmkit_obj_remove(h, big));
	for (int i = 2; i < 64; i++) {
		char nm[16];

		snprintf(nm, sizeof(nm), "o%d", i);
		ASSERT_OK(shmkit_obj_remove(h, nm));
	}
	ASSERT_EQ(shmkit_obj_list(h, NULL, NULL), 0);
	ASSERT_OK(shmkit_heap_flush(h));
	ASSERT_OK(shmkit_heap_check(h));
	ASSERT_OK(shmkit_heap_stats(h, &st));
	ASSERT_EQ(st.used_blocks, 0);
	ASSERT_EQ(st.free_blocks, 1);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
