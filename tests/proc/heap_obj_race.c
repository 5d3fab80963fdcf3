/* SPDX-License-Identifier: MIT */
/*
 * Named objects across processes. Racing create-or-find: four processes
 * create the same twenty names at once; each name must be created exactly
 * once, every process must get the same offset, and nobody may see an
 * object before its init ran. Then creators and removers are killed at
 * every crash point of the directory (and inside its repair): the next
 * user repairs, the name is either absent or complete, reclaim returns the
 * dead creator's block, and the heap checker passes.
 */
#define _GNU_SOURCE
#include "crash.h"
#include "harness.h"
#include "heap.h"

#include <sched.h>
#include <shmkit.h>
#include <stdatomic.h>
#include <unistd.h>

#define PROCS 4
#define NAMES 20
#define CTRL 65536
#define MAGIC 0x6f626a21u

struct ctrl {
	_Atomic uint32_t go;
	_Atomic uint32_t created[NAMES];
	_Atomic uint64_t off[PROCS][NAMES];
	_Atomic uint32_t bad;
};

struct obj {
	uint32_t magic;
	int32_t creator;
};

static int init_obj(struct shmkit_heap *h, uint64_t off, size_t size, void *arg)
{
	struct obj *o = shmkit_heap_ptr(h, off);

	(void)size;
	(void)arg;
	o->creator = (int32_t)getpid();
	sched_yield(); /* widen the window a racer could see */
	o->magic = MAGIC;
	return 0;
}

static int open_heap(const char *name, struct shmkit_seg **seg,
		     struct shmkit_heap **h)
{
	if (shmkit_seg_open(name, NULL, seg) < 0)
		return -1;
	return shmkit_heap_open(*seg, NULL, h);
}

static int racer(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct ctrl *c;
	int me, order[NAMES];

	if (argc < 2 || open_heap(argv[0], &seg, &h) < 0)
		return 2;
	me = atoi(argv[1]);
	c = shmkit_seg_base(seg);
	for (int i = 0; i < NAMES; i++)
		order[i] = i;
	for (int i = NAMES - 1; i > 0; i--) {
		int j = (int)(th_rand() % (uint64_t)(i + 1)), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	while (!atomic_load(&c->go))
		sched_yield();
	for (int k = 0; k < NAMES; k++) {
		struct shmkit_obj_info in;
		struct obj *o;
		char nm[32];
		int i = order[k], rc;

		snprintf(nm, sizeof(nm), "race-%d", i);
		rc = shmkit_obj_create(h, nm, sizeof(struct obj), 3, init_obj,
				       NULL, &in);
		if (rc < 0)
			return 3;
		if (rc == 1)
			atomic_fetch_add(&c->created[i], 1);
		o = shmkit_heap_ptr(h, in.off);
		if (!o || o->magic != MAGIC)
			atomic_fetch_add(&c->bad, 1);
		atomic_store(&c->off[me][i], in.off);
	}
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return 0;
}

/* Creates and removes "crashy" in a loop until killed. */
static int churner(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shmkit_heap *h;

	if (argc < 1 || open_heap(argv[0], &seg, &h) < 0)
		return 2;
	for (int i = 0; i < 2000; i++) {
		struct shmkit_obj_info in;

		if (shmkit_obj_create(h, "crashy", 200, 4, init_obj, NULL,
				      &in) < 0)
			return 3;
		if (shmkit_obj_remove(h, "crashy") < 0)
			return 4;
	}
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return 0;
}

static int finder(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct shmkit_obj_info in;

	if (argc < 1 || open_heap(argv[0], &seg, &h) < 0)
		return 2;
	shmkit_obj_find(h, "crashy", &in);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return 0;
}

static void check(struct shmkit_heap *h, const char *what)
{
	if (shmkit_heap_check(h) < 0)
		th_fail(__FILE__, __LINE__, "%s: check: %s", what,
			shmkit__heap_check_why());
}

static int test(void)
{
	const struct shmkit__crash_point *cps;
	struct shmkit_heap_opts o = {
		.sz = sizeof(o), .flags = SHMKIT_HEAP_CREATE, .offset = CTRL};
	struct shmkit_heap_stats st = {.sz = sizeof(st)};
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct ctrl *c;
	char name[128], idx[PROCS][8];
	pid_t pids[PROCS];
	size_t ncp = shmkit__crash_points(&cps);
	int points = 0;

	th_name(name, sizeof(name), "objrace");
	ASSERT_OK(shmkit_seg_create(name, 4 << 20, NULL, &seg));
	ASSERT_OK(shmkit_heap_open(seg, &o, &h));
	c = shmkit_seg_base(seg);
	for (int p = 0; p < PROCS; p++) {
		const char *args[] = {name, idx[p], NULL};

		snprintf(idx[p], sizeof(idx[p]), "%d", p);
		pids[p] = th_spawn("racer", args, NULL);
	}
	atomic_store(&c->go, 1);
	for (int p = 0; p < PROCS; p++)
		ASSERT_TRUE(th_exited_ok(th_wait(pids[p], 30000)));
	ASSERT_EQ(atomic_load(&c->bad), 0);
	for (int i = 0; i < NAMES; i++) {
		ASSERT_EQ(atomic_load(&c->created[i]), 1);
		for (int p = 1; p < PROCS; p++)
			ASSERT_EQ(atomic_load(&c->off[p][i]),
				  atomic_load(&c->off[0][i]));
	}
	ASSERT_EQ(shmkit_obj_list(h, NULL, NULL), NAMES);
	check(h, "race");

	if (!ncp) {
		fprintf(stderr, "crash points not compiled in: race only\n");
		goto out;
	}
	for (size_t k = 0; k < ncp; k++) {
		const char *cp = cps[k].name;
		const char *args[] = {name, NULL};
		int killed = 0;

		if (strncmp(cp, "obj.", 4) != 0)
			continue;
		points++;
		for (int round = 0; round < 5; round++) {
			long n = 1 + (long)(th_rand() % 40);
			struct shmkit_obj_info in;
			struct obj *ob;
			int stw, rc;

			if (strcmp(cp, "obj.repair.locked") == 0) {
				pid_t p = th_spawn_crash("churner", args,
							 "obj.create.recorded",
							 n);

				ASSERT_TRUE(th_was_killed(th_wait(p, 30000)));
				stw = th_wait(th_spawn_crash("finder", args, cp,
							     1),
					      30000);
			} else {
				stw = th_wait(th_spawn_crash("churner", args,
							     cp, n),
					      30000);
			}
			if (th_was_killed(stw))
				killed++;
			else
				ASSERT_TRUE(th_exited_ok(stw));
			/* Whatever the dead left, the name now resolves to
			 * a complete object or is created afresh. */
			rc = shmkit_obj_create(h, "crashy", 200, 4, init_obj,
					       NULL, &in);
			ASSERT_GE(rc, 0);
			ob = shmkit_heap_ptr(h, in.off);
			ASSERT_EQ(ob->magic, MAGIC);
			ASSERT_GE(shmkit_heap_reclaim(h), 0);
			check(h, cp);
			ASSERT_OK(shmkit_obj_remove(h, "crashy"));
			check(h, cp);
		}
		if (!killed)
			th_fail(__FILE__, __LINE__, "%s never fired", cp);
	}
	ASSERT_GE(points, 5);
out:
	for (int i = 0; i < NAMES; i++) {
		char nm[32];

		snprintf(nm, sizeof(nm), "race-%d", i);
		ASSERT_OK(shmkit_obj_remove(h, nm));
	}
	ASSERT_OK(shmkit_heap_flush(h));
	ASSERT_GE(shmkit_heap_reclaim(h), 0);
	check(h, "end");
	ASSERT_OK(shmkit_heap_stats(h, &st));
	ASSERT_EQ(st.used_blocks, 0);
	ASSERT_EQ(st.cached_blocks, 0);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"racer", racer},
					       {"churner", churner},
					       {"finder", finder},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
