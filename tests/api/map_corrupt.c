/* SPDX-License-Identifier: MIT */
/*
 * A peer scribbles on a map: bucket heads out of range, chains that loop,
 * an entry of a foreign stripe, a sequence word stuck odd, broken lengths,
 * a broken header. Every call returns, with -EBADMSG where the damage is
 * in its way, never a hang or a crash; readers give up their optimistic
 * walk and find the damage under the lock.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "map.h"

#include <shmkit.h>

struct fixture {
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct shmkit_map *m;
	struct shmkit__map *hdr;
	struct shmkit__bucket *bk;
	char *ents;
};

static void setup(struct fixture *f, const char *name)
{
	struct shmkit_heap_opts ho = {.sz = sizeof(ho),
				      .flags = SHMKIT_HEAP_CREATE};
	struct shmkit_map_opts mo = {.sz = sizeof(mo),
				     .flags = SHMKIT_MAP_CREATE,
				     .capacity = 64,
				     .key_max = 16,
				     .val_max = 16,
				     .stripes = 4,
				     .lock_timeout_ns = 100000000};
	struct shmkit_obj_info oi;
	char k[16];

	ASSERT_OK(shmkit_seg_create_anon(1 << 20, NULL, &f->seg));
	ASSERT_OK(shmkit_heap_open(f->seg, &ho, &f->h));
	ASSERT_EQ(shmkit_map_open(f->h, name, &mo, &f->m), 1);
	for (int i = 0; i < 40; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		ASSERT_EQ(shmkit_map_put(f->m, k, strlen(k), "v", 1, 0), 1);
	}
	ASSERT_OK(shmkit_obj_find(f->h, name, &oi));
	f->hdr = shmkit_heap_ptr(f->h, oi.off);
	f->bk = (struct shmkit__bucket *)((char *)f->hdr + f->hdr->buckets_off);
	f->ents = (char *)f->hdr + f->hdr->ents_off;
}

static void teardown(struct fixture *f)
{
	shmkit_map_close(f->m);
	shmkit_heap_close(f->h);
	shmkit_seg_close(f->seg);
}

static struct shmkit__ent *ent(struct fixture *f, uint32_t i)
{
	return (struct shmkit__ent *)(f->ents + (size_t)i * f->hdr->ent_size);
}

static int each(const void *k, size_t kl, const void *v, size_t vl, void *a)
{
	(void)k;
	(void)kl;
	(void)v;
	(void)vl;
	(void)a;
	return 0;
}

/* Every key: the call returns a documented value. */
static void all_calls(struct fixture *f, int want_bad)
{
	int bad = 0;

	/*
	 * Every get first: a put or delete on the corrupt structure may
	 * rewrite the very links that were wrong (deleting the entry of a
	 * self-loop does), after which the damage no longer shows to get.
	 */
	for (int i = 0; i < 40; i++) {
		char k[16], v[16];
		int rc;

		snprintf(k, sizeof(k), "k%d", i);
		rc = shmkit_map_get(f->m, k, strlen(k), v, sizeof(v));
		ASSERT_TRUE(rc == 1 || rc == -ENOENT || rc == -EBADMSG);
		bad |= rc == -EBADMSG;
	}
	for (int i = 0; i < 40; i++) {
		char k[16];
		int rc;

		snprintf(k, sizeof(k), "k%d", i);
		rc = shmkit_map_put(f->m, k, strlen(k), "w", 1, 0);
		ASSERT_TRUE(rc >= 0 || rc == -EBADMSG || rc == -ENOSPC);
		rc = shmkit_map_del(f->m, k, strlen(k));
		ASSERT_TRUE(rc == 0 || rc == -ENOENT || rc == -EBADMSG);
	}
	if (want_bad)
		ASSERT_TRUE(bad);
	ASSERT_ERR(shmkit_map_check(f->m), EBADMSG);
	{
		int rc = shmkit_map_foreach(f->m, each, NULL);

		ASSERT_TRUE(rc == 0 || rc == -EBADMSG);
	}
}

static int test(void)
{
	struct fixture f;
	struct shmkit_map *m2;

	/* Heads out of range. */
	setup(&f, "m");
	for (uint32_t b = 0; b < f.hdr->nbuckets; b++)
		atomic_store(&f.bk[b].head, 0xfffffff0u);
	all_calls(&f, 1);
	teardown(&f);

	/* Every chain a loop through one entry. */
	setup(&f, "m");
	atomic_store(&ent(&f, 0)->next, 1);
	for (uint32_t b = 0; b < f.hdr->nbuckets; b++)
		atomic_store(&f.bk[b].head, 1);
	all_calls(&f, 1);
	teardown(&f);

	/* Sequence words stuck odd (a writer that never finished, but the
	 * stripe locks are free: not a crash, corruption). */
	setup(&f, "m");
	for (uint32_t b = 0; b < f.hdr->nbuckets; b++)
		atomic_store(&f.bk[b].seq, 1);
	for (int i = 0; i < 10; i++) {
		char k[16], v[16];
		int rc;

		snprintf(k, sizeof(k), "k%d", i);
		rc = shmkit_map_get(f.m, k, strlen(k), v, sizeof(v));
		ASSERT_EQ(rc, 1); /* found under the lock */
	}
	ASSERT_ERR(shmkit_map_check(f.m), EBADMSG);
	teardown(&f);

	/* Lengths beyond the limits, homes in foreign stripes. */
	setup(&f, "m");
	for (uint32_t i = 0; i < 64 + 4; i++) {
		atomic_store(&ent(&f, i)->vlen, 0x100000u);
		atomic_store(&ent(&f, i)->home, 7);
	}
	all_calls(&f, 1);
	teardown(&f);

	/* A header whose geometry does not add up: open refuses it. */
	setup(&f, "m");
	f.hdr->nbuckets = 3;
	ASSERT_ERR(shmkit_map_open(f.h, "m", NULL, &m2), EBADMSG);
	f.hdr->nbuckets = 64;
	f.hdr->capacity = 1u << 30;
	ASSERT_ERR(shmkit_map_open(f.h, "m", NULL, &m2), EBADMSG);
	f.hdr->magic = 0;
	ASSERT_ERR(shmkit_map_open(f.h, "m", NULL, &m2), EPROTO);
	teardown(&f);
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
