/* SPDX-License-Identifier: MIT */
/*
 * Threads with their own mappings of one segment share a map: two
 * writers replace and delete values whose every byte derives from their
 * sequence number, two readers check that no value they read (copied or
 * zero-copy and validated) is ever torn, and everyone adds to shared
 * counters, whose totals must be exact. Run under ThreadSanitizer (label
 * "threads").
 */
#define _GNU_SOURCE
#include "harness.h"

#include <pthread.h>
#include <shmkit.h>
#include <stdatomic.h>

#define KEYS 64
#define OPS 20000
#define CTRS 4

static char name[128];
static atomic_int failures;

static size_t mkval(unsigned char *v, uint64_t seq)
{
	size_t len = 8 + seq % 50;

	memcpy(v, &seq, 8);
	for (size_t i = 8; i < len; i++)
		v[i] = (unsigned char)(seq * 13 + i);
	return len;
}

static int good(const unsigned char *v, int len)
{
	uint64_t seq;

	if (len < 8)
		return 0;
	memcpy(&seq, v, 8);
	if ((size_t)len != 8 + seq % 50)
		return 0;
	for (int i = 8; i < len; i++)
		if (v[i] != (unsigned char)(seq * 13 + (uint64_t)i))
			return 0;
	return 1;
}

static void *run(void *arg)
{
	int me = (int)(uintptr_t)arg, writer = me < 2;
	uint64_t seed = (uint64_t)me * 0x9e3779b97f4a7c15ull + 1;
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct shmkit_map *m;

	if (shmkit_seg_open(name, NULL, &seg) < 0 ||
	    shmkit_heap_open(seg, NULL, &h) < 0 ||
	    shmkit_map_open(h, "m", NULL, &m) < 0) {
		atomic_fetch_add(&failures, 1);
		return NULL;
	}
	for (int op = 0; op < OPS; op++) {
		unsigned char v[64], cp[64];
		char k[16];
		int len;

		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		snprintf(k, sizeof(k), "key%d", (int)(seed % KEYS));
		if (op % 10 == 0) {
			snprintf(k, sizeof(k), "ctr%d", (int)(seed % CTRS));
			if (shmkit_map_add(m, k, strlen(k), 1, NULL) < 0)
				atomic_fetch_add(&failures, 1);
		} else if (writer && (seed >> 32) % 5 == 0) {
			int rc = shmkit_map_del(m, k, strlen(k));

			if (rc < 0 && rc != -ENOENT)
				atomic_fetch_add(&failures, 1);
		} else if (writer) {
			len = (int)mkval(v, seed >> 8);
			if (shmkit_map_put(m, k, strlen(k), v, (size_t)len, 0) <
			    0)
				atomic_fetch_add(&failures, 1);
		} else if (op & 1) {
			len = shmkit_map_get(m, k, strlen(k), v, sizeof(v));
			if (len != -ENOENT && !good(v, len))
				atomic_fetch_add(&failures, 1);
		} else {
			struct shmkit_map_ref ref;
			const void *p;

			len = shmkit_map_get_ref(m, k, strlen(k), &p, &ref);
			if (len == -ENOENT)
				continue;
			if (len < 0 || len > (int)sizeof(cp)) {
				atomic_fetch_add(&failures, 1);
				continue;
			}
			/* Copy with atomics (a seqlock reader), then
			 * validate: valid implies untorn. */
			for (int i = 0; i < (len + 7) / 8; i++) {
				uint64_t w = atomic_load_explicit(
					(_Atomic uint64_t *)p + i,
					memory_order_relaxed);

				memcpy(cp + i * 8, &w, 8);
			}
			if (shmkit_map_ref_valid(m, &ref) == 1 &&
			    !good(cp, len))
				atomic_fetch_add(&failures, 1);
		}
	}
	shmkit_map_close(m);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return NULL;
}

static int test(void)
{
	struct shmkit_heap_opts ho = {.sz = sizeof(ho),
				      .flags = SHMKIT_HEAP_CREATE};
	struct shmkit_map_opts mo = {.sz = sizeof(mo),
				     .flags = SHMKIT_MAP_CREATE,
				     .capacity = 256,
				     .key_max = 16,
				     .val_max = 64,
				     .stripes = 4};
	pthread_t t[4];
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct shmkit_map *m;
	int64_t total = 0;

	th_name(name, sizeof(name), "mmt");
	ASSERT_OK(shmkit_seg_create(name, 1 << 20, NULL, &seg));
	ASSERT_OK(shmkit_heap_open(seg, &ho, &h));
	ASSERT_EQ(shmkit_map_open(h, "m", &mo, &m), 1);
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(pthread_create(&t[i], NULL, run,
					 (void *)(uintptr_t)i),
			  0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	ASSERT_EQ(atomic_load(&failures), 0);
	for (int i = 0; i < CTRS; i++) {
		char k[16];
		int64_t v = 0;
		int len;

		snprintf(k, sizeof(k), "ctr%d", i);
		len = shmkit_map_get(m, k, strlen(k), &v, sizeof(v));
		if (len == 8)
			total += v;
	}
	ASSERT_EQ(total, 4 * OPS / 10);
	ASSERT_OK(shmkit_map_check(m));
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
