/* SPDX-License-Identifier: MIT */
/*
 * Four processes race to create the same map, then read and write it at
 * once: each owns a set of keys (its own reads must be exact), reads the
 * others' keys (never torn), and adds to shared counters, whose totals
 * must be exact. The checker passes after.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <sched.h>
#include <shmkit.h>
#include <stdatomic.h>

#define PROCS 4
#define OWN 200
#define OPS 20000
#define CTRS 8
#define CTRL 4096

static size_t mkval(unsigned char *v, uint64_t seq)
{
	size_t len = 8 + seq % 40;

	memcpy(v, &seq, 8);
	for (size_t i = 8; i < len; i++)
		v[i] = (unsigned char)(seq * 7 + i);
	return len;
}

static uint64_t seq_of(const unsigned char *v, int len)
{
	uint64_t seq;

	if (len < 8)
		return 0;
	memcpy(&seq, v, 8);
	if ((size_t)len != 8 + seq % 40)
		return 0;
	for (int i = 8; i < len; i++)
		if (v[i] != (unsigned char)(seq * 7 + (uint64_t)i))
			return 0;
	return seq;
}

static int proc(int argc, char **argv)
{
	static uint64_t mine[OWN];
	struct shmkit_heap_opts ho = {
		.sz = sizeof(ho), .flags = SHMKIT_HEAP_CREATE, .offset = CTRL};
	struct shmkit_map_opts mo = {.sz = sizeof(mo),
				     .flags = SHMKIT_MAP_CREATE,
				     .capacity = PROCS * OWN + CTRS,
				     .key_max = 16,
				     .val_max = 48};
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct shmkit_map *m;
	_Atomic int *go, *created;
	int me, rc;

	if (argc < 2 || shmkit_seg_open(argv[0], NULL, &seg) < 0)
		return 2;
	me = atoi(argv[1]);
	go = shmkit_seg_base(seg);
	created = go + 1;
	while (!atomic_load(go))
		sched_yield();
	if (shmkit_heap_open(seg, &ho, &h) < 0)
		return 3;
	rc = shmkit_map_open(h, "shared", &mo, &m);
	if (rc < 0)
		return 4;
	atomic_fetch_add(created, rc);
	for (int op = 0; op < OPS; op++) {
		uint64_t r = th_rand();
		unsigned char v[64];
		char k[16];
		int i = (int)(r % OWN), len;

		if (op % 8 == 0) {
			snprintf(k, sizeof(k), "c%d", (int)(r % CTRS));
			if (shmkit_map_add(m, k, strlen(k), 3, NULL) < 0)
				return 5;
		} else if (op % 2) {
			/* Someone's key: whole or absent. */
			snprintf(k, sizeof(k), "p%d-%d", (int)(r % PROCS), i);
			len = shmkit_map_get(m, k, strlen(k), v, sizeof(v));
			if (len != -ENOENT && !seq_of(v, len))
				return 6;
		} else {
			snprintf(k, sizeof(k), "p%d-%d", me, i);
			len = shmkit_map_get(m, k, strlen(k), v, sizeof(v));
			if (!mine[i] && len != -ENOENT)
				return 7; /* deleted key still there */
			if (mine[i] && len < 0)
				return 10; /* written key missing */
			if (mine[i] && !seq_of(v, len))
				return 11; /* torn */
			if (mine[i] && seq_of(v, len) != mine[i])
				return 12; /* stale */
			if ((r >> 40) % 4 == 0 && mine[i]) {
				if (shmkit_map_del(m, k, strlen(k)) < 0)
					return 8;
				mine[i] = 0;
			} else {
				uint64_t seq = (r >> 8) | 1;

				if (shmkit_map_put(m, k, strlen(k), v,
						   mkval(v, seq), 0) < 0)
					return 9;
				mine[i] = seq;
			}
		}
	}
	shmkit_map_close(m);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return 0;
}

static int test(void)
{
	struct shmkit_map_stats st = {.sz = sizeof(st)};
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct shmkit_map *m;
	_Atomic int *go;
	char name[128], idx[PROCS][8];
	pid_t pids[PROCS];
	int64_t total = 0;

	th_name(name, sizeof(name), "mmulti");
	ASSERT_OK(shmkit_seg_create(name, 4 << 20, NULL, &seg));
	go = shmkit_seg_base(seg);
	for (int p = 0; p < PROCS; p++) {
		const char *args[] = {name, idx[p], NULL};

		snprintf(idx[p], sizeof(idx[p]), "%d", p);
		pids[p] = th_spawn("proc", args, NULL);
	}
	atomic_store(go, 1);
	for (int p = 0; p < PROCS; p++) {
		int stw = th_wait(pids[p], 60000 * th_slow_factor());

		if (!th_exited_ok(stw))
			th_fail(__FILE__, __LINE__, "proc %d status %#x", p,
				stw);
	}
	ASSERT_EQ(atomic_load(go + 1), 1); /* created exactly once */
	ASSERT_OK(shmkit_heap_open(seg, NULL, &h));
	ASSERT_EQ(shmkit_map_open(h, "shared", NULL, &m), 0);
	for (int i = 0; i < CTRS; i++) {
		char k[16];
		int64_t v = 0;

		snprintf(k, sizeof(k), "c%d", i);
		if (shmkit_map_get(m, k, strlen(k), &v, sizeof(v)) == 8)
			total += v;
	}
	ASSERT_EQ(total, 3 * PROCS * (OPS / 8));
	ASSERT_OK(shmkit_map_check(m));
	ASSERT_OK(shmkit_map_stats(m, &st));
	ASSERT_EQ(st.repairs, 0);
	ASSERT_LE(st.count, PROCS * OWN + CTRS);
	shmkit_map_close(m);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"proc", proc}, {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
