/* SPDX-License-Identifier: MIT */
/*
 * The map's API in one process: put/get/NX/CAS/delete/add, zero-copy
 * reads and their validation, iteration, a full map (-ENOSPC, then room
 * again), lengths at and beyond the limits, a second handle and a
 * read-only one, statistics, and the checker after each phase.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <shmkit.h>

static int visit(const void *key, size_t klen, const void *val, size_t vlen,
		 void *arg)
{
	int *seen = arg;
	char kb[32];
	int i;

	if (klen < 2 || klen >= sizeof(kb) || memcmp(key, "k", 1) != 0)
		return -1;
	memcpy(kb, key, klen);
	kb[klen] = '\0';
	i = atoi(kb + 1);
	if (i < 0 || i >= 300 || vlen != 8 || memcmp(val, key, 2) != 0)
		return -1;
	seen[i]++;
	return 0;
}

static int stop(const void *key, size_t klen, const void *val, size_t vlen,
		void *arg)
{
	(void)key;
	(void)klen;
	(void)val;
	(void)vlen;
	(void)arg;
	return 7;
}

static void check(struct shmkit_map *m)
{
	extern const char *shmkit__map_check_why(void);

	if (shmkit_map_check(m) < 0)
		th_fail(__FILE__, __LINE__, "map check: %s",
			shmkit__map_check_why());
}

static int test(void)
{
	struct shmkit_heap_opts ho = {.sz = sizeof(ho),
				      .flags = SHMKIT_HEAP_CREATE};
	struct shmkit_map_opts mo = {.sz = sizeof(mo),
				     .flags = SHMKIT_MAP_CREATE,
				     .capacity = 300,
				     .key_max = 16,
				     .val_max = 64};
	struct shmkit_seg_opts so = {.sz = sizeof(so),
				     .flags = SHMKIT_SEG_RDONLY};
	struct shmkit_map_stats st = {.sz = sizeof(st)};
	struct shmkit_map *m, *m2, *mro;
	struct shmkit_heap *h, *hro;
	struct shmkit_seg *seg, *ro;
	struct shmkit_map_ref ref;
	const void *p;
	char name[128], buf[128], k[32], v[32];
	int64_t r;
	int seen[300] = {0};

	th_name(name, sizeof(name), "map");
	ASSERT_OK(shmkit_seg_create(name, 1 << 20, NULL, &seg));
	ASSERT_OK(shmkit_heap_open(seg, &ho, &h));
	ASSERT_ERR(shmkit_map_open(h, "m", NULL, &m), ENOENT);
	ASSERT_EQ(shmkit_map_open(h, "m", &mo, &m), 1);
	ASSERT_EQ(shmkit_map_open(h, "m", &mo, &m2), 0);
	check(m);

	ASSERT_ERR(shmkit_map_get(m, "a", 1, buf, sizeof(buf)), ENOENT);
	ASSERT_EQ(shmkit_map_put(m, "a", 1, "one", 3, 0), 1);
	ASSERT_EQ(shmkit_map_get(m2, "a", 1, buf, sizeof(buf)), 3);
	ASSERT_EQ(memcmp(buf, "one", 3), 0);
	ASSERT_EQ(shmkit_map_get(m, "a", 1, NULL, 0), 3);
	ASSERT_ERR(shmkit_map_get(m, "a", 1, buf, 2), EMSGSIZE);
	ASSERT_EQ(shmkit_map_put(m, "a", 1, "uno", 3, 0), 0);
	ASSERT_ERR(shmkit_map_put(m, "a", 1, "x", 1, SHMKIT_MAP_NX), EEXIST);
	ASSERT_EQ(shmkit_map_put(m, "b", 1, "", 0, SHMKIT_MAP_NX), 1);
	ASSERT_EQ(shmkit_map_get(m, "b", 1, buf, sizeof(buf)), 0);
	ASSERT_EQ(shmkit_map_put(m, "", 0, "empty key", 9, 0), 1);
	ASSERT_EQ(shmkit_map_get(m, "", 0, buf, sizeof(buf)), 9);

	/* CAS. */
	ASSERT_ERR(shmkit_map_cas(m, "a", 1, "one", 3, "dos", 3), EAGAIN);
	ASSERT_OK(shmkit_map_cas(m, "a", 1, "uno", 3, "dos", 3));
	ASSERT_EQ(shmkit_map_get(m, "a", 1, buf, sizeof(buf)), 3);
	ASSERT_EQ(memcmp(buf, "dos", 3), 0);
	ASSERT_ERR(shmkit_map_cas(m, "zz", 2, "x", 1, "y", 1), ENOENT);

	/* Zero-copy read, invalidated by a write. */
	ASSERT_EQ(shmkit_map_get_ref(m, "a", 1, &p, &ref), 3);
	ASSERT_EQ(memcmp(p, "dos", 3), 0);
	ASSERT_EQ(shmkit_map_ref_valid(m, &ref), 1);
	ASSERT_EQ(shmkit_map_put(m, "a", 1, "tres", 4, 0), 0);
	ASSERT_EQ(shmkit_map_ref_valid(m, &ref), 0);

	/* Delete. */
	ASSERT_OK(shmkit_map_del(m, "a", 1));
	ASSERT_ERR(shmkit_map_del(m, "a", 1), ENOENT);
	ASSERT_ERR(shmkit_map_get(m, "a", 1, buf, sizeof(buf)), ENOENT);

	/* Add. */
	ASSERT_OK(shmkit_map_add(m, "n", 1, 5, &r));
	ASSERT_EQ(r, 5);
	ASSERT_OK(shmkit_map_add(m, "n", 1, -7, &r));
	ASSERT_EQ(r, -2);
	ASSERT_EQ(shmkit_map_get(m, "n", 1, &r, sizeof(r)), 8);
	ASSERT_EQ(r, -2);
	ASSERT_ERR(shmkit_map_add(m, "b", 1, 1, &r), EINVAL);

	/* Limits. */
	memset(buf, 'x', sizeof(buf));
	ASSERT_EQ(shmkit_map_put(m, buf, 16, buf, 64, 0), 1);
	ASSERT_ERR(shmkit_map_put(m, buf, 17, buf, 1, 0), EMSGSIZE);
	ASSERT_ERR(shmkit_map_put(m, buf, 1, buf, 65, 0), EMSGSIZE);
	ASSERT_ERR(shmkit_map_get(m, buf, 17, v, sizeof(v)), EMSGSIZE);
	ASSERT_OK(shmkit_map_del(m, buf, 16));
	check(m);

	/* Fill to capacity (keys are spread over stripes unevenly:
	 * entries move between them). */
	ASSERT_OK(shmkit_map_del(m, "n", 1));
	ASSERT_OK(shmkit_map_del(m, "b", 1));
	ASSERT_OK(shmkit_map_del(m, "", 0));
	for (int i = 0; i < 300; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		memcpy(v, k, 8);
		ASSERT_EQ(shmkit_map_put(m, k, strlen(k), v, 8, 0), 1);
	}
	ASSERT_ERR(shmkit_map_put(m, "extra", 5, "v", 1, 0), ENOSPC);
	ASSERT_EQ(shmkit_map_put(m, "k7", 2, "k7......", 8, 0), 0);
	check(m);
	ASSERT_OK(shmkit_map_stats(m, &st));
	ASSERT_EQ(st.count, 300);
	ASSERT_EQ(st.capacity, 300);
	ASSERT_EQ(st.key_max, 16);
	ASSERT_EQ(st.val_max, 64);
	ASSERT_OK(shmkit_map_foreach(m, visit, seen));
	for (int i = 0; i < 300; i++)
		ASSERT_EQ(seen[i], 1);
	ASSERT_EQ(shmkit_map_foreach(m, stop, NULL), 7);

	/* A read-only handle reads, cannot write. */
	ASSERT_OK(shmkit_seg_open(name, &so, &ro));
	ASSERT_OK(shmkit_heap_open(ro, NULL, &hro));
	ASSERT_EQ(shmkit_map_open(hro, "m", NULL, &mro), 0);
	ASSERT_EQ(shmkit_map_get(mro, "k42", 3, buf, sizeof(buf)), 8);
	ASSERT_EQ(memcmp(buf, "k42", 3), 0);
	ASSERT_ERR(shmkit_map_put(mro, "k42", 3, "x", 1, 0), EBADF);
	shmkit_map_close(mro);
	shmkit_heap_close(hro);
	shmkit_seg_close(ro);

	/* Empty it again; the map still works. */
	for (int i = 0; i < 300; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		ASSERT_OK(shmkit_map_del(m, k, strlen(k)));
	}
	ASSERT_EQ(shmkit_map_put(m, "extra", 5, "v", 1, 0), 1);
	check(m);
	ASSERT_OK(shmkit_map_stats(m, &st));
	ASSERT_EQ(st.count, 1);
	ASSERT_EQ(st.repairs, 0);

	/* The map is a named object of its own kind. */
	{
		struct shmkit_obj_info oi;

		ASSERT_OK(shmkit_obj_find(h, "m", &oi));
		ASSERT_EQ(oi.kind, SHMKIT_OBJ_KIND_MAP);
		ASSERT_EQ(shmkit_obj_create(h, "plain", 10, 1, NULL, NULL, &oi),
			  1);
		ASSERT_ERR(shmkit_map_open(h, "plain", NULL, &mro), EPROTO);
	}
	shmkit_map_close(m2);
	shmkit_map_close(m);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
