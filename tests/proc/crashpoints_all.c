/* SPDX-License-Identifier: MIT */
/*
 * Every crash point compiled into the library is killed at. First the
 * table tests/crashpoints.list is checked both ways: each compiled point
 * is listed with the test that kills there (whose source names the point,
 * or iterates the point's layer), and each listed point is compiled. Then
 * a generic scenario kills a worker at every point marked "yes": the
 * worker runs through every layer (segments, heap, named objects, map,
 * synchronization, channel) on a shared "world"; after its death the
 * world must pass every checker and remain usable.
 */
#define _GNU_SOURCE
#include "crash.h"
#include "harness.h"
#include "sync.h"

#include <pthread.h>
#include <shmkit.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORLD_BYTES (4u << 20)
#define HEAP_OFF 4096u
#define MAP_KEYS 64u
#define CHAN_RING 4096u
#define CHAN_MAX 512u

/* Fixed places in the world segment's data area. */
struct world {
	struct shmkit_mutex m;	/* the mutex the sync phase contends on */
	struct shmkit_mutex em; /* the event's mutex */
	struct shmkit_event ev;
	struct shmkit_sem sem;
};

/* ---- the table ---------------------------------------------------------- */

struct entry {
	char point[96];
	char test[96];
	int generic;
};

#define MAXE 256
static struct entry table[MAXE];
static int ntable;

static const char *tests_dir(void)
{
	static char dir[4096];
	char *slash;

	/* This file is tests/proc/crashpoints_all.c. */
	snprintf(dir, sizeof(dir), "%s", __FILE__);
	slash = strrchr(dir, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	slash = strrchr(dir, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	return dir;
}

static void table_read(void)
{
	char path[4200], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/crashpoints.list", tests_dir());
	f = fopen(path, "r");
	if (!f)
		th_fail(__FILE__, __LINE__, "cannot read %s", path);
	while (fgets(line, sizeof(line), f)) {
		struct entry *e = &table[ntable];
		char gen[16];

		if (line[0] == '#' || line[strspn(line, " \t\n")] == '\0')
			continue;
		ASSERT_LT(ntable, MAXE);
		if (sscanf(line, "%95s %95s %15s", e->point, e->test, gen) != 3)
			th_fail(__FILE__, __LINE__, "bad line in %s: %s", path,
				line);
		if (strcmp(gen, "yes") && strcmp(gen, "no"))
			th_fail(__FILE__, __LINE__, "%s: generic is %s",
				e->point, gen);
		e->generic = strcmp(gen, "yes") == 0;
		for (int i = 0; i < ntable; i++)
			if (strcmp(table[i].point, e->point) == 0)
				th_fail(__FILE__, __LINE__, "%s listed twice",
					e->point);
		ntable++;
	}
	fclose(f);
}

/* Does the test's source kill at this point: name it, or iterate its
 * layer's points ("heap." with shmkit__crash_points)? */
static int test_covers(const struct entry *e)
{
	char path[4300], quoted[128], layer[64];
	const char *dot = strchr(e->point, '.');
	char *src;
	long len;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s.c", tests_dir(), e->test);
	f = fopen(path, "r");
	if (!f)
		th_fail(__FILE__, __LINE__, "%s: test %s does not exist",
			e->point, path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	src = malloc((size_t)len + 1);
	ASSERT_TRUE(src != NULL);
	ASSERT_EQ(fread(src, 1, (size_t)len, f), (size_t)len);
	src[len] = '\0';
	fclose(f);
	snprintf(quoted, sizeof(quoted), "\"%s\"", e->point);
	snprintf(layer, sizeof(layer), "\"%.*s.\"", (int)(dot - e->point),
		 e->point);
	ok = strstr(src, quoted) ||
	     (strstr(src, layer) && strstr(src, "shmkit__crash_points"));
	free(src);
	return ok;
}

/* ---- the world ---------------------------------------------------------- */

struct names {
	char world[128];  /* segment with sync objects, heap, map "m" */
	char chan[128];	  /* channel */
	char prefix[128]; /* the worker's own segments start with this */
};

static void world_create(const struct names *n)
{
	struct shmkit_heap_opts ho = {.sz = sizeof(ho),
				      .flags = SHMKIT_HEAP_CREATE,
				      .offset = HEAP_OFF};
	struct shmkit_map_opts mo = {.sz = sizeof(mo),
				     .flags = SHMKIT_MAP_CREATE,
				     .capacity = MAP_KEYS,
				     .key_max = 16,
				     .val_max = 32,
				     .stripes = 4};
	struct shmkit_chan_opts co = {.sz = sizeof(co),
				      .capacity_bytes = CHAN_RING,
				      .max_msg_bytes = CHAN_MAX,
				      .max_producers = 2};
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct shmkit_map *m;
	struct shmkit_chan *ch;
	struct world *w;

	ASSERT_OK(shmkit_seg_create(n->world, WORLD_BYTES, NULL, &seg));
	w = shmkit_seg_base(seg);
	ASSERT_OK(shmkit_mutex_init(seg, &w->m, NULL));
	ASSERT_OK(shmkit_mutex_init(seg, &w->em, NULL));
	ASSERT_OK(shmkit_event_init(seg, &w->ev));
	ASSERT_OK(shmkit_sem_init(seg, &w->sem, 0));
	ASSERT_OK(shmkit_heap_open(seg, &ho, &h));
	ASSERT_EQ(shmkit_map_open(h, "m", &mo, &m), 1);
	shmkit_map_close(m);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_chan_create(n->chan, &co, SHMKIT_CHAN_PRODUCER, &ch));
	shmkit_chan_close(ch);
}

static int rm_prefixed(const struct shmkit_seg_info *in, void *arg)
{
	const char *prefix = arg;

	if (strncmp(in->name, prefix, strlen(prefix)) == 0)
		shmkit_seg_unlink(in->name);
	return 0;
}

static void world_remove(const struct names *n)
{
	shmkit_seg_unlink(n->world);
	shmkit_chan_unlink(n->chan);
	shmkit_seg_list(rm_prefixed, (void *)n->prefix);
}

/* ---- messages ----------------------------------------------------------- */

static uint32_t fnv(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ *s++) * 16777619u;
	return h;
}

/* seq (4 bytes), checksum of the rest (4), then bytes from seq. */
static size_t msg_make(unsigned char *m, uint32_t seq)
{
	size_t len = 8 + (seq * 2654435761u >> 9) % (CHAN_MAX - 8);
	uint32_t sum;

	for (size_t i = 8; i < len; i++)
		m[i] = (unsigned char)(seq + i);
	sum = fnv(m + 8, len - 8);
	memcpy(m, &seq, 4);
	memcpy(m + 4, &sum, 4);
	return len;
}

static int msg_check(const unsigned char *m, int len, uint32_t *seq)
{
	uint32_t sum;

	if (len < 8)
		return 0;
	memcpy(seq, m, 4);
	memcpy(&sum, m + 4, 4);
	return (size_t)len == 8 + (*seq * 2654435761u >> 9) % (CHAN_MAX - 8) &&
	       sum == fnv(m + 8, (size_t)len - 8);
}

/* ---- the worker: every layer, in turn ----------------------------------- */

static void must(int ok, const char *what, int rc)
{
	if (!ok) {
		fprintf(stderr, "worker: %s: %d (%s)\n", what, rc,
			rc < 0 ? strerror(-rc) : "-");
		_exit(3);
	}
}

static void phase_seg(const char *prefix)
{
	struct shmkit_seg_opts so = {.sz = sizeof(so),
				     .flags = SHMKIT_SEG_SCOPED};
	struct shmkit_seg *a, *b;
	char name[200];
	int rc;

	/* Scoped: created, opened again, closed twice (the last removes). */
	snprintf(name, sizeof(name), "%s-a", prefix);
	rc = shmkit_seg_create(name, 8192, &so, &a);
	must(rc == 0, "seg_create", rc);
	rc = shmkit_seg_open(name, NULL, &b);
	must(rc == 0, "seg_open", rc);
	shmkit_seg_close(b);
	shmkit_seg_close(a);
	/* Persistent, removed by name. */
	snprintf(name, sizeof(name), "%s-b", prefix);
	rc = shmkit_seg_create(name, 8192, NULL, &a);
	must(rc == 0, "seg_create", rc);
	shmkit_seg_close(a);
	rc = shmkit_seg_unlink(name);
	must(rc == 0, "seg_unlink", rc);
}

/* A heap formatted from scratch in a segment of the worker's own. */
static void phase_heap_init(const char *prefix)
{
	struct shmkit_seg_opts so = {.sz = sizeof(so),
				     .flags = SHMKIT_SEG_SCOPED};
	struct shmkit_heap_opts ho = {.sz = sizeof(ho),
				      .flags = SHMKIT_HEAP_CREATE};
	struct shmkit_seg *s;
	struct shmkit_heap *h;
	char name[200];
	int rc;

	snprintf(name, sizeof(name), "%s-h", prefix);
	rc = shmkit_seg_create(name, 1 << 20, &so, &s);
	must(rc == 0, "seg_create", rc);
	rc = shmkit_heap_open(s, &ho, &h);
	must(rc == 0, "heap_open create", rc);
	shmkit_heap_close(h);
	shmkit_seg_close(s);
}

static void phase_heap(struct shmkit_heap *h)
{
	uint64_t small[100], big[4];
	int rc;

	/* Cached sizes: refill, pop, tag; frees fill a bin and flush. */
	for (int i = 0; i < 100; i++) {
		rc = shmkit_heap_alloc(h, 48, 0, &small[i]);
		must(rc == 0, "heap_alloc small", rc);
	}
	for (int i = 0; i < 100; i++) {
		rc = shmkit_heap_free(h, small[i]);
		must(rc == 0, "heap_free small", rc);
	}
	rc = shmkit_heap_flush(h);
	must(rc == 0, "heap_flush", rc);
	/* Big blocks: splits; frees that merge with the next and the
	 * previous block. */
	for (int i = 0; i < 4; i++) {
		rc = shmkit_heap_alloc(h, 10000, SHMKIT_HEAP_OWNED, &big[i]);
		must(rc == 0, "heap_alloc big", rc);
	}
	rc = shmkit_heap_free(h, big[1]);
	must(rc == 0, "heap_free", rc);
	rc = shmkit_heap_free(h, big[0]); /* merges with the next */
	must(rc == 0, "heap_free", rc);
	rc = shmkit_heap_free(h, big[2]); /* merges with the previous */
	must(rc == 0, "heap_free", rc);
	rc = shmkit_heap_free(h, big[3]);
	must(rc == 0, "heap_free", rc);
}

static int obj_init(struct shmkit_heap *h, uint64_t off, size_t size, void *arg)
{
	(void)arg;
	memset(shmkit_heap_ptr(h, off), 0x5a, size);
	return 0;
}

static void phase_obj(struct shmkit_heap *h)
{
	struct shmkit_obj_info oi;
	int rc;

	rc = shmkit_obj_create(h, "cp-a", 100, 1, obj_init, NULL, &oi);
	must(rc >= 0, "obj_create", rc);
	rc = shmkit_obj_create(h, "cp-b", 3000, 1, obj_init, NULL, &oi);
	must(rc >= 0, "obj_create", rc);
	rc = shmkit_obj_remove(h, "cp-a");
	must(rc == 0, "obj_remove", rc);
	rc = shmkit_obj_remove(h, "cp-b");
	must(rc == 0, "obj_remove", rc);
}

static void phase_map(struct shmkit_heap *h)
{
	struct shmkit_map *m;
	char k[16], v[32];
	int rc;

	rc = shmkit_map_open(h, "m", NULL, &m);
	must(rc == 0, "map_open", rc);
	/* Filling the map makes stripes steal entries from each other. */
	for (unsigned i = 0; i < MAP_KEYS; i++) {
		snprintf(k, sizeof(k), "k%u", i);
		snprintf(v, sizeof(v), "v%u-%u", i, i * 7);
		rc = shmkit_map_put(m, k, strlen(k), v, strlen(v), 0);
		must(rc >= 0, "map_put", rc);
	}
	for (unsigned i = 0; i < MAP_KEYS; i += 2) {
		snprintf(k, sizeof(k), "k%u", i);
		rc = shmkit_map_del(m, k, strlen(k));
		must(rc == 0, "map_del", rc);
	}
	rc = shmkit_map_add(m, "ctr", 3, 1, NULL);
	must(rc == 0, "map_add", rc);
	rc = shmkit_map_add(m, "ctr", 3, 1, NULL); /* in place */
	must(rc == 0, "map_add", rc);
	shmkit_map_close(m);
}

struct sync_arg {
	struct shmkit_seg *seg;
	struct world *w;
	atomic_int held; /* the partner holds w->m */
};

/* Up to 2 s for cond, polled every 100 us: a loaded machine may take a
 * while to get the other thread there (the scenario retries a point that
 * was not reached). */
#define WAIT_FOR(cond)                                \
	for (int i_ = 0; i_ < 20000 && !(cond); i_++) \
	usleep(100)

/*
 * The other thread: holds the mutex until the main one waits for it, then
 * signals the event and posts the semaphore once the main one sleeps on
 * them (each seen in the object's word: WAITERS, the event's waiter
 * count, the semaphore's WAITERS), so that every sleeping and waking
 * point is passed however late either thread runs.
 */
static void *sync_partner(void *p)
{
	struct sync_arg *a = p;
	struct shmkit__mutex *m = (struct shmkit__mutex *)(void *)&a->w->m;
	struct shmkit__event *ev = (struct shmkit__event *)(void *)&a->w->ev;
	struct shmkit__sem *sem = (struct shmkit__sem *)(void *)&a->w->sem;

	if (shmkit_mutex_lock(a->seg, &a->w->m, 5000000000ull) < 0)
		_exit(3);
	atomic_store(&a->held, 1);
	WAIT_FOR(atomic_load(&m->word) & SHMKIT__M_WAITERS);
	usleep(1000); /* into the futex */
	shmkit_mutex_unlock(a->seg, &a->w->m);
	WAIT_FOR(atomic_load(&ev->wstate) & SHMKIT__E_CNT_MASK);
	usleep(1000);
	shmkit_event_signal(a->seg, &a->w->ev);
	WAIT_FOR(atomic_load(&sem->word) & SHMKIT__S_WAITERS);
	usleep(1000);
	shmkit_sem_post(a->seg, &a->w->sem);
	return NULL;
}

static void phase_sync(struct shmkit_seg *seg, struct world *w)
{
	struct sync_arg a = {seg, w, 0};
	pthread_t t;
	int rc;

	/* A dead holder (the scenario's first death) is recovered here. */
	rc = shmkit_mutex_lock(seg, &w->m, 5000000000ull);
	if (rc == -EOWNERDEAD)
		rc = shmkit_mutex_consistent(seg, &w->m);
	must(rc == 0, "mutex_lock", rc);
	rc = shmkit_mutex_unlock(seg, &w->m);
	must(rc == 0, "mutex_unlock", rc);
	rc = shmkit_mutex_lock(seg, &w->em, 5000000000ull);
	must(rc == 0, "mutex_lock em", rc);
	must(pthread_create(&t, NULL, sync_partner, &a) == 0, "thread", 0);
	/* Contended: the partner holds it (a loaded machine may start the
	 * thread late: wait for it, up to 5 s). */
	for (int i = 0; i < 50000 && !atomic_load(&a.held); i++)
		usleep(100);
	rc = shmkit_mutex_lock(seg, &w->m, 5000000000ull);
	must(rc == 0, "mutex_lock contended", rc);
	shmkit_mutex_unlock(seg, &w->m);
	/* Woken by the partner's signal (or a timeout: spurious is fine). */
	rc = shmkit_event_wait(seg, &w->ev, &w->em, 1000000000ull);
	must(rc == 0 || rc == -ETIMEDOUT, "event_wait", rc);
	shmkit_mutex_unlock(seg, &w->em);
	rc = shmkit_sem_wait(seg, &w->sem, 1000000000ull);
	must(rc == 0 || rc == -ETIMEDOUT, "sem_wait", rc);
	pthread_join(t, NULL);
	/* Uncontended signal with nobody waiting, post and take. */
	shmkit_event_broadcast(seg, &w->ev);
	shmkit_sem_post(seg, &w->sem);
	shmkit_sem_trywait(seg, &w->sem);
}

static void phase_chan(const char *chan, const char *prefix)
{
	static unsigned char m[CHAN_MAX];
	struct shmkit_chan *p, *c, *x;
	struct shmkit_chan_msg b[4];
	uint32_t seq = 0, fl;
	const void *ptr;
	void *w;
	char name[200];
	int rc;

	rc = shmkit_chan_open(chan, SHMKIT_CHAN_PRODUCER, NULL, &p);
	must(rc == 0, "chan_open producer", rc);
	rc = shmkit_chan_open(chan, SHMKIT_CHAN_CONSUMER, NULL, &c);
	must(rc == 0, "chan_open consumer", rc);
	/* Send, receive, send again round the ring (pads), in every way. */
	for (int round = 0; round < 6; round++) {
		for (int i = 0; i < 3; i++) {
			size_t len = msg_make(m, seq);

			rc = shmkit_chan_send(p, m, len, 0);
			if (rc == -EAGAIN)
				break;
			must(rc == 0, "chan_send", rc);
			seq++;
		}
		rc = shmkit_chan_reserve(p, 64, &w, 0);
		if (rc == 0) {
			size_t len = msg_make(m, seq);

			rc = shmkit_chan_reserve(p, len, &w, 0);
			must(rc == 0, "chan_reserve", rc);
			memcpy(w, m, len);
			rc = shmkit_chan_commit(p, len);
			must(rc == 0, "chan_commit", rc);
			seq++;
		}
		{
			static unsigned char m2[CHAN_MAX];
			struct shmkit_chan_msg s[2] = {
				{.buf = m, .len = msg_make(m, seq)},
				{.buf = m2, .len = msg_make(m2, seq + 1)}};

			rc = shmkit_chan_send_batch(p, s, 2, 0);
			must(rc > 0 || rc == -EAGAIN, "chan_send_batch", rc);
			if (rc > 0)
				seq += (uint32_t)rc;
		}
		rc = shmkit_chan_recv(c, m, sizeof(m), &fl, 0);
		must(rc >= 0, "chan_recv", rc);
		rc = shmkit_chan_peek(c, &ptr, &fl, 0);
		must(rc >= 0, "chan_peek", rc);
		rc = shmkit_chan_release(c);
		must(rc == 0, "chan_release", rc);
		for (int i = 0; i < 4; i++) {
			static unsigned char bb[4][CHAN_MAX];

			b[i].buf = bb[i];
			b[i].cap = CHAN_MAX;
		}
		rc = shmkit_chan_recv_batch(c, b, 4, 0);
		must(rc > 0, "chan_recv_batch", rc);
	}
	/* Full: the producer sleeps until its timeout. */
	for (;;) {
		size_t len = msg_make(m, seq);

		rc = shmkit_chan_send(p, m, len, 5000000);
		if (rc == -ETIMEDOUT)
			break;
		must(rc == 0, "chan_send", rc);
		seq++;
	}
	/* Drain; then the consumer sleeps until its timeout. */
	for (;;) {
		rc = shmkit_chan_recv(c, m, sizeof(m), &fl, 5000000);
		if (rc == -ETIMEDOUT)
			break;
		must(rc >= 0, "chan_recv", rc);
	}
	shmkit_chan_close(p);
	shmkit_chan_close(c);
	/* A channel of its own, created and removed. */
	snprintf(name, sizeof(name), "%s-c", prefix);
	rc = shmkit_chan_create(name, NULL, SHMKIT_CHAN_CONSUMER, &x);
	must(rc == 0, "chan_create", rc);
	shmkit_chan_close(x);
	shmkit_chan_unlink(name);
}

/* argv: world chan prefix */
static int role_worker(int argc, char **argv)
{
	struct shmkit_heap_opts ho = {.sz = sizeof(ho)};
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	int rc;

	if (argc < 3)
		return 2;
	phase_seg(argv[2]);
	phase_heap_init(argv[2]);
	rc = shmkit_seg_open(argv[0], NULL, &seg);
	must(rc == 0, "seg_open world", rc);
	rc = shmkit_heap_open(seg, &ho, &h);
	must(rc == 0, "heap_open", rc);
	phase_heap(h);
	phase_obj(h);
	phase_map(h);
	phase_sync(seg, shmkit_seg_base(seg));
	phase_chan(argv[1], argv[2]);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return 0;
}

/*
 * Dies holding a lock (argv[1]: heap, map, obj, mutex), so that the
 * worker's path goes through the recovery points. The crash point set
 * by the test ends heap/map/obj; the mutex holder kills itself.
 */
static int role_holder(int argc, char **argv)
{
	struct shmkit_heap_opts ho = {.sz = sizeof(ho),
				      .flags = SHMKIT_HEAP_NOCACHE};
	struct shmkit_obj_info oi;
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct shmkit_map *m;
	struct world *w;
	uint64_t off;

	if (argc < 2 || shmkit_seg_open(argv[0], NULL, &seg) < 0)
		return 2;
	w = shmkit_seg_base(seg);
	if (strcmp(argv[1], "mutex") == 0) {
		if (shmkit_mutex_lock(seg, &w->m, 5000000000ull) < 0)
			return 3;
		kill(getpid(), SIGKILL);
	}
	if (shmkit_heap_open(seg, &ho, &h) < 0)
		return 3;
	if (strcmp(argv[1], "heap") == 0)
		shmkit_heap_alloc(h, 20000, 0, &off);
	if (strcmp(argv[1], "obj") == 0)
		shmkit_obj_create(h, "cp-holder", 64, 1, NULL, NULL, &oi);
	if (strcmp(argv[1], "map") == 0 &&
	    shmkit_map_open(h, "m", NULL, &m) == 0)
		shmkit_map_put(m, "k1", 2, "holder", 6, 0);
	return 4; /* the crash point should have ended us */
}

/* ---- the checks after a death ------------------------------------------- */

static int gc_prefixed(const struct shmkit_seg_info *in, void *arg)
{
	const char *prefix = arg;

	if (strncmp(in->name, prefix, strlen(prefix)) != 0)
		return 0;
	ASSERT_GE(shmkit_seg_gc(in->name, 0), 0);
	return 0;
}

static int stat_prefixed(const struct shmkit_seg_info *in, void *arg)
{
	const char *prefix = arg;

	if (strncmp(in->name, prefix, strlen(prefix)) != 0)
		return 0;
	/* What gc leaves is whole. */
	if (in->state != SHMKIT_STATE_OK)
		th_fail(__FILE__, __LINE__, "%s left in state %d", in->name,
			(int)in->state);
	return 0;
}

static int map_whole(const void *k, size_t kl, const void *v, size_t vl,
		     void *arg)
{
	(void)arg;
	if (kl == 3 && memcmp(k, "ctr", 3) == 0) {
		ASSERT_EQ(vl, 8);
		return 0;
	}
	if (kl == 2 && memcmp(k, "k1", 2) == 0 && vl == 6 &&
	    memcmp(v, "holder", 6) == 0)
		return 0;
	/* "v<i>-<7i>" for key "k<i>". */
	{
		char kk[17] = {0}, want[40];
		unsigned i;

		ASSERT_LT(kl, sizeof(kk));
		memcpy(kk, k, kl);
		ASSERT_EQ(sscanf(kk, "k%u", &i), 1);
		snprintf(want, sizeof(want), "v%u-%u", i, i * 7);
		ASSERT_EQ(vl, strlen(want));
		ASSERT_TRUE(memcmp(v, want, vl) == 0);
	}
	return 0;
}

static void verify(const struct names *n, const char *point)
{
	struct shmkit_heap_opts ho = {.sz = sizeof(ho),
				      .flags = SHMKIT_HEAP_NOCACHE,
				      .lock_timeout_ns = 5000000000ull};
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct shmkit_map *m;
	struct shmkit_chan *c, *p;
	struct world *w;
	unsigned char buf[CHAN_MAX];
	uint32_t fl, seq, last = UINT32_MAX;
	int rc;

	/* Segments: gc takes what the death left; the rest is whole. */
	ASSERT_OK(shmkit_seg_list(gc_prefixed, (void *)n->prefix));
	ASSERT_OK(shmkit_seg_list(stat_prefixed, (void *)n->prefix));

	ASSERT_OK(shmkit_seg_open(n->world, NULL, &seg));
	w = shmkit_seg_base(seg);
	ASSERT_OK(shmkit_heap_open(seg, &ho, &h));
	ASSERT_GE(shmkit_heap_reclaim(h), 0);
	rc = shmkit_heap_check(h);
	if (rc < 0)
		th_fail(__FILE__, __LINE__, "%s: heap check %d", point, rc);
	ASSERT_GE(shmkit_obj_list(h, NULL, NULL), 0);
	ASSERT_OK(shmkit_map_open(h, "m", NULL, &m));
	rc = shmkit_map_check(m);
	if (rc < 0)
		th_fail(__FILE__, __LINE__, "%s: map check %d", point, rc);
	ASSERT_OK(shmkit_map_foreach(m, map_whole, NULL));
	ASSERT_GE(shmkit_map_put(m, "after", 5, "x", 1, 0), 0);
	shmkit_map_close(m);

	/* Synchronization: recoverable, usable. */
	rc = shmkit_mutex_lock(seg, &w->m, 5000000000ull);
	if (rc == -EOWNERDEAD)
		rc = shmkit_mutex_consistent(seg, &w->m);
	if (rc < 0)
		th_fail(__FILE__, __LINE__, "%s: mutex %d", point, rc);
	ASSERT_OK(shmkit_mutex_unlock(seg, &w->m));
	rc = shmkit_mutex_lock(seg, &w->em, 5000000000ull);
	if (rc == -EOWNERDEAD)
		rc = shmkit_mutex_consistent(seg, &w->em);
	ASSERT_OK(rc);
	ASSERT_OK(shmkit_mutex_unlock(seg, &w->em));
	ASSERT_OK(shmkit_event_signal(seg, &w->ev));
	ASSERT_GE(shmkit_sem_value(seg, &w->sem), 0);
	ASSERT_OK(shmkit_sem_post(seg, &w->sem));
	ASSERT_OK(shmkit_sem_wait(seg, &w->sem, 1000000000ull));

	/* The channel: whatever is queued is whole and in order (a
	 * repeat only flagged), and it still carries messages. */
	ASSERT_OK(shmkit_chan_open(n->chan, SHMKIT_CHAN_CONSUMER, NULL, &c));
	for (;;) {
		rc = shmkit_chan_recv(c, buf, sizeof(buf), &fl, 0);
		if (rc == -EAGAIN || rc == -EPIPE)
			break;
		if (rc == -ECONNRESET)
			continue;
		if (rc < 0)
			th_fail(__FILE__, __LINE__, "%s: recv %d", point, rc);
		if (!msg_check(buf, rc, &seq))
			th_fail(__FILE__, __LINE__, "%s: torn message", point);
		if (last != UINT32_MAX && seq <= last &&
		    !(fl & SHMKIT_CHAN_REDELIVERED))
			th_fail(__FILE__, __LINE__,
				"%s: message %u after %u, not flagged", point,
				seq, last);
		if (last == UINT32_MAX || seq > last)
			last = seq;
	}
	ASSERT_OK(shmkit_chan_open(n->chan, SHMKIT_CHAN_PRODUCER, NULL, &p));
	ASSERT_OK(shmkit_chan_send(p, "after", 5, 1000000000));
	rc = shmkit_chan_recv(c, buf, sizeof(buf), &fl, 1000000000);
	ASSERT_EQ(rc, 5);
	shmkit_chan_close(p);
	shmkit_chan_close(c);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
}

/* The lock a worker finds held by a dead process, for recovery points. */
static const char *holder_for(const char *point)
{
	if (strcmp(point, "heap.repair.locked") == 0)
		return "heap";
	if (strcmp(point, "map.repair.locked") == 0)
		return "map";
	if (strcmp(point, "obj.repair.locked") == 0)
		return "obj";
	if (strcmp(point, "sync.mutex.lock.recovered") == 0 ||
	    strcmp(point, "sync.mutex.consistent") == 0)
		return "mutex";
	return NULL;
}

static const char *holder_point(const char *what)
{
	if (strcmp(what, "heap") == 0)
		return "heap.alloc.tagged";
	if (strcmp(what, "map") == 0)
		return "map.put.written";
	if (strcmp(what, "obj") == 0)
		return "obj.create.recorded";
	return NULL;
}

/* Kill a worker at the n-th pass of point; 1 if it died there. */
static int scenario(const char *point, long nth)
{
	struct names n;
	const char *args[] = {n.world, n.chan, n.prefix, NULL};
	const char *hold = holder_for(point);
	int st;

	th_name(n.world, sizeof(n.world), "cpa-w");
	th_name(n.chan, sizeof(n.chan), "cpa-c");
	th_name(n.prefix, sizeof(n.prefix), "cpa-p");
	world_create(&n);
	if (hold) {
		const char *hargs[] = {n.world, hold, NULL};

		st = th_wait(th_spawn_crash("holder", hargs, holder_point(hold),
					    1),
			     30000);
		ASSERT_TRUE(th_was_killed(st));
	}
	st = th_wait(th_spawn_crash("worker", args, point, nth), 60000);
	if (st == -ETIMEDOUT)
		th_fail(__FILE__, __LINE__, "%s:%ld: worker hangs", point, nth);
	if (!th_was_killed(st) && !th_exited_ok(st))
		th_fail(__FILE__, __LINE__, "%s:%ld: worker failed (0x%x)",
			point, nth, st);
	verify(&n, point);
	world_remove(&n);
	return th_was_killed(st);
}

/* Every library file's points are in this binary (static linking pulls
 * only what is referenced). */
static void *const referenced[] = {
	(void *)shmkit_seg_create, (void *)shmkit_seg_list,
	(void *)shmkit_seg_recv,   (void *)shmkit_seg_check,
	(void *)shmkit_mutex_lock, (void *)shmkit_heap_alloc,
	(void *)shmkit_obj_create, (void *)shmkit_map_put,
	(void *)shmkit_chan_send,  (void *)shmkit_chan_select,
};

static int test(void)
{
	const struct shmkit__crash_point *cp;
	size_t ncp = shmkit__crash_points(&cp);
	int reached = 0, later = 0, generic = 0;

	ASSERT_TRUE(referenced[0] != NULL);
	if (ncp == 0)
		SKIP("crash points compiled out");
	table_read();

	/* Both ways: compiled -> listed, listed -> compiled. */
	for (size_t i = 0; i < ncp; i++) {
		int found = 0;

		if (strncmp(cp[i].name, "test.", 5) == 0)
			continue; /* a test's own point */
		for (int k = 0; k < ntable; k++)
			found |= strcmp(table[k].point, cp[i].name) == 0;
		if (!found)
			th_fail(__FILE__, __LINE__,
				"crash point %s (%s:%d) is not in "
				"tests/crashpoints.list: add it with the test "
				"that kills there",
				cp[i].name, cp[i].file, cp[i].line);
	}
	for (int k = 0; k < ntable; k++) {
		int found = 0;

		for (size_t i = 0; i < ncp; i++)
			found |= strcmp(table[k].point, cp[i].name) == 0;
		if (!found)
			th_fail(__FILE__, __LINE__,
				"tests/crashpoints.list: %s is not compiled "
				"into the library",
				table[k].point);
		if (!test_covers(&table[k]))
			th_fail(__FILE__, __LINE__,
				"tests/crashpoints.list: %s does not kill at "
				"%s (it names neither the point nor its layer)",
				table[k].test, table[k].point);
	}

	/* The generic scenario: first pass (must be reached), and a later
	 * one (reached or not, the world must be fine). */
	for (int k = 0; k < ntable; k++) {
		const char *pt = table[k].point;
		int ok;

		if (!table[k].generic)
			continue;
		generic++;
		/* Contention in the sync phase depends on timing: retry. */
		ok = 0;
		for (int tries = 0; tries < 3 && !ok; tries++)
			ok = scenario(pt, 1);
		if (!ok)
			th_fail(__FILE__, __LINE__,
				"generic scenario never reaches %s (mark it "
				"\"no\" in tests/crashpoints.list if only its "
				"own test can)",
				pt);
		reached++;
		later += scenario(pt, 2 + (long)(th_rand() % 4));
	}
	fprintf(stderr,
		"crash points: %zu compiled, %d listed, %d killed at by the "
		"generic scenario (%d also at a later pass)\n",
		ncp, ntable, reached, later);
	ASSERT_GT(generic, 0);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {
		{"worker", role_worker}, {"holder", role_holder}, {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
