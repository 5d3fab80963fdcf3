/* SPDX-License-Identifier: MIT */
/*
 * Several processes allocate and free at random from one heap, every
 * block filled with a pattern that names it and verified before it is
 * freed (an overlap shows as a broken pattern); blocks also travel
 * between processes through a shared mailbox and are freed by another
 * process than the one that allocated them. The checker passes after.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "heap.h"

#include <shmkit.h>
#include <stdatomic.h>

#define WORKERS 3
#define OPS 30000
#define LIVE 300
#define BOXES 256
#define CTRL 65536 /* the heap starts after the mailbox */

static void fill(unsigned char *p, uint64_t off, uint32_t len)
{
	memcpy(p, &len, 4);
	for (uint32_t i = 4; i < len; i++)
		p[i] = (unsigned char)(off * 131 + i * 7 + (off >> 8));
}

static int intact(const unsigned char *p, uint64_t off, uint32_t maxlen)
{
	uint32_t len;

	memcpy(&len, p, 4);
	if (len < 4 || len > maxlen)
		return 0;
	for (uint32_t i = 4; i < len; i++)
		if (p[i] != (unsigned char)(off * 131 + i * 7 + (off >> 8)))
			return 0;
	return 1;
}

static uint32_t rand_len(void)
{
	uint64_t r = th_rand();

	return r % 16 ? 4 + (uint32_t)(r >> 8) % 509
		      : 4 + (uint32_t)(r >> 8) % 12000;
}

static int take_and_free(struct shmkit_heap *h, unsigned char *base,
			 uint64_t off)
{
	size_t us;

	if (shmkit_heap_usable_size(h, off, &us) < 0)
		return 0;
	if (!intact(base + off, off, (uint32_t)us))
		return 0;
	return shmkit_heap_free(h, off) == 0;
}

static int worker(int argc, char **argv)
{
	static uint64_t mine[LIVE];
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	_Atomic uint64_t *box;
	unsigned char *base;

	if (argc < 1 || shmkit_seg_open(argv[0], NULL, &seg) < 0 ||
	    shmkit_heap_open(seg, NULL, &h) < 0)
		return 2;
	base = shmkit_seg_base(seg);
	box = (_Atomic uint64_t *)(void *)base;
	for (int op = 0; op < OPS; op++) {
		int i = (int)(th_rand() % LIVE);
		uint64_t r = th_rand() % 8;

		if (!mine[i]) {
			uint32_t len = rand_len();

			if (shmkit_heap_alloc(h, len, 0, &mine[i]) < 0)
				return 3;
			fill(base + mine[i], mine[i], len);
		} else if (r == 0) {
			/* Hand it over; free whatever was in the box. */
			uint64_t old = atomic_exchange(&box[th_rand() % BOXES],
						       mine[i]);

			mine[i] = 0;
			if (old && !take_and_free(h, base, old))
				return 4;
		} else {
			if (!take_and_free(h, base, mine[i]))
				return 5;
			mine[i] = 0;
		}
	}
	for (int i = 0; i < LIVE; i++)
		if (mine[i] && !take_and_free(h, base, mine[i]))
			return 6;
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return 0;
}

static int test(void)
{
	struct shmkit_heap_opts o = {
		.sz = sizeof(o), .flags = SHMKIT_HEAP_CREATE, .offset = CTRL};
	struct shmkit_heap_stats st = {.sz = sizeof(st)};
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	_Atomic uint64_t *box;
	unsigned char *base;
	char name[128];
	const char *args[] = {name, NULL};
	pid_t pids[WORKERS];
	int rc;

	th_name(name, sizeof(name), "hmulti");
	ASSERT_OK(shmkit_seg_create(name, 32 << 20, NULL, &seg));
	ASSERT_OK(shmkit_heap_open(seg, &o, &h));
	base = shmkit_seg_base(seg);
	box = (_Atomic uint64_t *)(void *)base;
	for (int i = 0; i < WORKERS; i++)
		pids[i] = th_spawn("worker", args, NULL);
	for (int i = 0; i < WORKERS; i++) {
		int stw = th_wait(pids[i], 60000 * th_slow_factor());

		if (!th_exited_ok(stw))
			th_fail(__FILE__, __LINE__, "worker %d: status %#x", i,
				stw);
	}
	for (int i = 0; i < BOXES; i++) {
		uint64_t off = atomic_load(&box[i]);

		if (off)
			ASSERT_TRUE(take_and_free(h, base, off));
	}
	ASSERT_OK(shmkit_heap_flush(h));
	rc = shmkit_heap_check(h);
	if (rc < 0)
		th_fail(__FILE__, __LINE__, "check: %s",
			shmkit__heap_check_why());
	ASSERT_OK(shmkit_heap_stats(h, &st));
	ASSERT_EQ(st.used_blocks, 0);
	ASSERT_EQ(st.cached_blocks, 0);
	ASSERT_EQ(st.free_blocks, 1);
	ASSERT_EQ(st.repairs, 0);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"worker", worker},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
