/* SPDX-License-Identifier: MIT */
/*
 * A remover killed inside shmkit_obj_remove() must leave the name gone or
 * still naming its own block, never a live entry naming memory the heap
 * has given back: once reclaim freed the block and someone else allocated
 * it, a later remove of the name freed that someone's block (the chaos
 * test's "heap block overwritten"). Each crash point of remove is hit by a
 * helper; then reclaim, a fresh allocation at the dead object's offset,
 * and the name must not resolve to it, nor a remove of it free it.
 */
#define _GNU_SOURCE
#include "crash.h"
#include "harness.h"
#include "heap.h"

#include <shmkit.h>
#include <stdatomic.h>
#include <unistd.h>

#define CTRL 65536
#define OBJ_SIZE 1373 /* not cacheable: straight from the free lists */
#define KIND 5

struct ctrl {
	_Atomic uint64_t off; /* payload offset of the helper's object */
};

/* Creates "doomed", records its offset, removes it (killed in there). */
static int remover(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct shmkit_obj_info in;
	struct ctrl *c;

	if (argc < 1 || shmkit_seg_open(argv[0], NULL, &seg) < 0 ||
	    shmkit_heap_open(seg, NULL, &h) < 0)
		return 2;
	c = shmkit_seg_base(seg);
	if (shmkit_obj_create(h, "doomed", OBJ_SIZE, KIND, NULL, NULL, &in) !=
	    1)
		return 3;
	atomic_store(&c->off, in.off);
	if (shmkit_obj_remove(h, "doomed") < 0)
		return 4;
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return 0;
}

/* The heap checker passes; else the caller's line and the checker's why. */
#define CHECK(h, what)                                                     \
	do {                                                               \
		if (shmkit_heap_check(h) < 0)                              \
			th_fail(__FILE__, __LINE__, "%s: check: %s", what, \
				shmkit__heap_check_why());                 \
	} while (0)

static void fill(struct shmkit_heap *h, uint64_t off, unsigned char v)
{
	memset(shmkit_heap_ptr(h, off), v, OBJ_SIZE);
}

static int intact(struct shmkit_heap *h, uint64_t off, unsigned char v)
{
	const unsigned char *p = shmkit_heap_ptr(h, off);

	for (size_t i = 0; i < OBJ_SIZE; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

static void one_point(const char *name, const char *cp)
{
	struct shmkit_heap_opts o = {
		.sz = sizeof(o), .flags = SHMKIT_HEAP_CREATE, .offset = CTRL};
	struct shmkit_heap_stats st = {.sz = sizeof(st)};
	const char *args[] = {name, NULL};
	struct shmkit_obj_info in;
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct ctrl *c;
	uint64_t mine[8], dead, again;
	size_t usable;
	int n = 0, hit = -1, stw;

	ASSERT_OK(shmkit_seg_create(name, 1 << 20, NULL, &seg));
	ASSERT_OK(shmkit_heap_open(seg, &o, &h));
	c = shmkit_seg_base(seg);
	stw = th_wait(th_spawn_crash("remover", args, cp, 1), 30000);
	if (!th_was_killed(stw))
		th_fail(__FILE__, __LINE__, "%s never fired (status %d)", cp,
			stw);
	dead = atomic_load(&c->off);
	ASSERT_NE(dead, 0);

	/* The dead remover's block comes back (repair or reclaim) ... */
	ASSERT_GE(shmkit_heap_reclaim(h), 0);
	CHECK(h, cp);
	/* ... and is handed out again: the heap is otherwise empty, so
	 * one of a few allocations of its size lands on it. */
	while (n < 8 && hit < 0) {
		ASSERT_OK(shmkit_heap_alloc(h, OBJ_SIZE, 0, &mine[n]));
		fill(h, mine[n], (unsigned char)(0xa0 + n));
		if (mine[n] == dead)
			hit = n;
		n++;
	}
	if (hit < 0)
		th_fail(__FILE__, __LINE__,
			"%s: the dead remover's block %llu never came back", cp,
			(unsigned long long)dead);

	/* The name is gone: it must not name our block. */
	ASSERT_ERR(shmkit_obj_find(h, "doomed", &in), ENOENT);
	ASSERT_EQ(shmkit_obj_list(h, NULL, NULL), 0);
	ASSERT_ERR(shmkit_obj_remove(h, "doomed"), ENOENT);
	/* Our block is still ours, untouched, and nobody else gets it. */
	ASSERT_OK(shmkit_heap_usable_size(h, dead, &usable));
	ASSERT_GE(usable, OBJ_SIZE);
	ASSERT_TRUE(intact(h, dead, (unsigned char)(0xa0 + hit)));
	ASSERT_OK(shmkit_heap_alloc(h, OBJ_SIZE, 0, &again));
	ASSERT_NE(again, dead);
	ASSERT_TRUE(intact(h, dead, (unsigned char)(0xa0 + hit)));
	ASSERT_OK(shmkit_heap_free(h, again));
	for (int i = 0; i < n; i++)
		ASSERT_OK(shmkit_heap_free(h, mine[i]));
	ASSERT_OK(shmkit_heap_flush(h));
	ASSERT_GE(shmkit_heap_reclaim(h), 0);
	CHECK(h, cp);
	ASSERT_OK(shmkit_heap_stats(h, &st));
	ASSERT_EQ(st.used_blocks, 0);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));
}

static int test(void)
{
	const struct shmkit__crash_point *cps;
	size_t ncp = shmkit__crash_points(&cps);
	int points = 0;

	if (!ncp)
		SKIP("crash points not compiled in");
	for (size_t k = 0; k < ncp; k++) {
		char name[128];

		if (strncmp(cps[k].name, "obj.remove.", 11) != 0)
			continue;
		th_name(name, sizeof(name), "objrm");
		one_point(name, cps[k].name);
		points++;
	}
	ASSERT_GE(points, 3);
	fprintf(stderr, "%d crash points of obj_remove: ok\n", points);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"remover", remover},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
