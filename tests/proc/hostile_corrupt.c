/* SPDX-License-Identifier: MIT */
/*
 * A hostile peer corrupts shared state while others use it: the segment
 * header and directory, the heap's control block and block headers, lock
 * words, the map's buckets and entries, channel lanes and records. First,
 * one definite corruption of each kind must give its documented error
 * (-EPROTO/-EBADMSG/-ENOTRECOVERABLE); then, for each region, the hostile
 * scribbles at random while worker processes call the map, the heap, a
 * mutex, the channel and fresh opens: every call must return within its
 * bound with success or a documented error, and nobody may crash or hang.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "layout.h"

#include <fcntl.h>
#include <poll.h>
#include <shmkit.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORLD_BYTES (2u << 20)
#define HEAP_OFF 4096u
#define LOCK_NS 300000000ull
#define CHAN_NS 50000000ll
#define SLACK_NS 1000000000ull

/* Fixed places in the world's data area, before the heap. */
struct world {
	struct shmkit_mutex m;
	_Atomic uint32_t stop;	    /* w: test; workers finish */
	_Atomic uint32_t started;   /* workers up */
	_Atomic uint64_t errors[8]; /* documented errors seen, by worker */
	_Atomic uint64_t calls[8];
};

struct names {
	char world[128];
	char chan[128];
};

/* ---- the world ---------------------------------------------------------- */

static void world_create(const struct names *n)
{
	struct shmkit_heap_opts ho = {.sz = sizeof(ho),
				      .flags = SHMKIT_HEAP_CREATE,
				      .offset = HEAP_OFF};
	struct shmkit_map_opts mo = {.sz = sizeof(mo),
				     .flags = SHMKIT_MAP_CREATE,
				     .capacity = 256,
				     .key_max = 16,
				     .val_max = 64};
	struct shmkit_chan_opts co = {.sz = sizeof(co),
				      .capacity_bytes = 8192,
				      .max_msg_bytes = 512,
				      .max_producers = 2};
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct shmkit_map *m;
	struct shmkit_chan *ch;
	struct world *w;

	ASSERT_OK(shmkit_seg_create(n->world, WORLD_BYTES, NULL, &seg));
	w = shmkit_seg_base(seg);
	ASSERT_OK(shmkit_mutex_init(seg, &w->m, NULL));
	ASSERT_OK(shmkit_heap_open(seg, &ho, &h));
	ASSERT_EQ(shmkit_map_open(h, "m", &mo, &m), 1);
	for (int i = 0; i < 100; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%d", i);
		ASSERT_GE(shmkit_map_put(m, k, strlen(k), "value", 5, 0), 0);
	}
	shmkit_map_close(m);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_chan_create(n->chan, &co, SHMKIT_CHAN_PRODUCER, &ch));
	for (int i = 0; i < 20; i++)
		ASSERT_OK(shmkit_chan_send(ch, "0123456789abcdef", 16, 0));
	shmkit_chan_close(ch);
}

static void world_remove(const struct names *n)
{
	shmkit_seg_unlink(n->world);
	shmkit_chan_unlink(n->chan);
}

/* The whole file of a named segment, mapped raw (header included). */
struct raw {
	unsigned char *p;
	size_t size;
};

static struct raw raw_map(const char *name)
{
	char path[4096];
	struct raw r;
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", shmkit_shm_dir(), name);
	fd = open(path, O_RDWR);
	ASSERT_GE(fd, 0);
	ASSERT_OK(fstat(fd, &st));
	r.size = (size_t)st.st_size;
	r.p = mmap(NULL, r.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_TRUE(r.p != MAP_FAILED);
	close(fd);
	return r;
}

static uint64_t rd64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* Where things are (from the data area's start). */
struct places {
	uint64_t heap_off; /* heap control block */
	uint64_t map_off;  /* map object */
	uint64_t map_size;
};

static struct places places_of(const char *world)
{
	struct shmkit_heap_opts ho = {.sz = sizeof(ho),
				      .flags = SHMKIT_HEAP_NOCACHE};
	struct shmkit_obj_info oi;
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct raw r = raw_map(world);
	struct places pl;

	pl.heap_off = rd64(r.p + 0x58);
	munmap(r.p, r.size);
	ASSERT_OK(shmkit_seg_open(world, NULL, &seg));
	ASSERT_OK(shmkit_heap_open(seg, &ho, &h));
	ASSERT_OK(shmkit_obj_find(h, "m", &oi));
	pl.map_off = oi.off;
	pl.map_size = oi.size;
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return pl;
}

/* ---- workers ------------------------------------------------------------ */

/*
 * Each worker checks every return against the errors documented for the
 * call, and its duration against the call's timeout plus slack; it exits 3
 * on anything else, 0 when told to stop.
 */
static int in_set(int rc, const int *ok)
{
	if (rc >= 0)
		return 1;
	for (; *ok; ok++)
		if (rc == -*ok)
			return 1;
	return 0;
}

static const int heap_errs[] = {ENOSPC,		 EINVAL, ETIMEDOUT, EBADMSG,
				ENOTRECOVERABLE, ENOENT, EAGAIN,    0};
static const int map_errs[] = {ENOENT, ENOSPC,	  EMSGSIZE, EEXIST,
			       EAGAIN, ETIMEDOUT, EBADMSG,  ENOTRECOVERABLE,
			       EINVAL, EPROTO,	  0};
static const int mutex_errs[] = {
	EOWNERDEAD, ETIMEDOUT, ENOTRECOVERABLE, EBADMSG, EINVAL, EPERM, 0};
static const int chan_errs[] = {EAGAIN,		 ETIMEDOUT, EBADMSG, EPIPE,
				ECONNRESET,	 EMSGSIZE,  EBUSY,   EPROTO,
				ENOTRECOVERABLE, 0};
static const int open_errs[] = {EPROTO, EBADMSG, ETIMEDOUT, ENOTRECOVERABLE,
				EACCES, ENOENT,	 EINVAL,    0};

struct wctx {
	const char *what;
	struct world *w;
	int idx;
};

static void check(struct wctx *c, const char *call, int rc, const int *ok,
		  uint64_t t0, uint64_t timeout_ns)
{
	uint64_t dt = th_now_ns() - t0;
	uint64_t bound = (timeout_ns + SLACK_NS) * (uint64_t)th_slow_factor();

	atomic_fetch_add(&c->w->calls[c->idx], 1);
	if (rc < 0)
		atomic_fetch_add(&c->w->errors[c->idx], 1);
	if (!in_set(rc, ok)) {
		fprintf(stderr, "%s: %s returned %d (%s): not documented\n",
			c->what, call, rc, strerror(-rc));
		_exit(3);
	}
	if (dt > bound) {
		fprintf(stderr, "%s: %s took %.1f ms (bound %.1f ms)\n",
			c->what, call, dt / 1e6, bound / 1e6);
		_exit(3);
	}
}

static int stopping(struct wctx *c)
{
	return atomic_load(&c->w->stop) != 0;
}

/* argv: world chan kind */
static int role_worker(int argc, char **argv)
{
	struct shmkit_heap_opts ho = {.sz = sizeof(ho),
				      .lock_timeout_ns = LOCK_NS};
	struct shmkit_map_opts mo = {.sz = sizeof(mo),
				     .lock_timeout_ns = LOCK_NS};
	struct shmkit_seg_opts so = {.sz = sizeof(so),
				     .open_timeout_ns = 100000000ull};
	struct shmkit_chan_opts co = {.sz = sizeof(co),
				      .open_timeout_ns = 100000000ull};
	struct shmkit_seg *seg;
	struct shmkit_heap *h = NULL;
	struct shmkit_map *m = NULL;
	struct shmkit_chan *ch = NULL;
	struct wctx c;
	uint64_t t0, offs[32];
	unsigned char buf[600];
	unsigned n = 0;
	int rc;

	if (argc < 4 || shmkit_seg_open(argv[0], NULL, &seg) < 0)
		return 2;
	c.what = argv[2];
	c.w = shmkit_seg_base(seg);
	c.idx = atoi(argv[3]);
	/* Handles made before the corruption starts. */
	if (strcmp(c.what, "heap") == 0 || strcmp(c.what, "map") == 0) {
		if (shmkit_heap_open(seg, &ho, &h) < 0)
			return 2;
		if (strcmp(c.what, "map") == 0 &&
		    shmkit_map_open(h, "m", &mo, &m) < 0)
			return 2;
	}
	if (strcmp(c.what, "prod") == 0 &&
	    shmkit_chan_open(argv[1], SHMKIT_CHAN_PRODUCER, NULL, &ch) < 0)
		return 2;
	if (strcmp(c.what, "cons") == 0 &&
	    shmkit_chan_open(argv[1], SHMKIT_CHAN_CONSUMER, NULL, &ch) < 0)
		return 2;
	atomic_fetch_add(&c.w->started, 1);
	for (uint64_t it = 0; !stopping(&c); it++) {
		t0 = th_now_ns();
		if (m) {
			char k[16];
			int len = snprintf(k, sizeof(k), "k%u",
					   (unsigned)(th_rand() % 120));

			switch (it % 4) {
			case 0:
				rc = shmkit_map_get(m, k, (size_t)len, buf,
						    sizeof(buf));
				check(&c, "map_get", rc, map_errs, t0, LOCK_NS);
				if (rc > 64) {
					fprintf(stderr, "map_get: %d bytes\n",
						rc);
					_exit(3);
				}
				break;
			case 1:
				rc = shmkit_map_put(m, k, (size_t)len, "v2", 2,
						    0);
				check(&c, "map_put", rc, map_errs, t0, LOCK_NS);
				break;
			case 2:
				rc = shmkit_map_del(m, k, (size_t)len);
				check(&c, "map_del", rc, map_errs, t0, LOCK_NS);
				break;
			default:
				rc = shmkit_map_add(m, "ctr", 3, 1, NULL);
				check(&c, "map_add", rc, map_errs, t0, LOCK_NS);
			}
		} else if (h) {
			if (n < 32 && th_rand() % 2) {
				rc = shmkit_heap_alloc(h, 1 + th_rand() % 2000,
						       0, &offs[n]);
				check(&c, "heap_alloc", rc, heap_errs, t0,
				      LOCK_NS);
				if (rc == 0) {
					void *p = shmkit_heap_ptr(h, offs[n]);

					/* An offset the heap hands out is
					 * inside the heap. */
					if (!p) {
						fprintf(stderr, "alloc: "
								"offset out "
								"of heap\n");
						_exit(3);
					}
					n++;
				}
			} else if (n) {
				rc = shmkit_heap_free(h, offs[--n]);
				check(&c, "heap_free", rc, heap_errs, t0,
				      LOCK_NS);
			} else {
				rc = shmkit_heap_check(h);
				check(&c, "heap_check", rc, heap_errs, t0,
				      LOCK_NS);
			}
		} else if (strcmp(c.what, "mutex") == 0) {
			rc = shmkit_mutex_lock(seg, &c.w->m, LOCK_NS);
			check(&c, "mutex_lock", rc, mutex_errs, t0, LOCK_NS);
			if (rc == -EOWNERDEAD)
				rc = shmkit_mutex_consistent(seg, &c.w->m);
			if (rc == 0) {
				t0 = th_now_ns();
				rc = shmkit_mutex_unlock(seg, &c.w->m);
				check(&c, "mutex_unlock", rc, mutex_errs, t0,
				      0);
			}
		} else if (strcmp(c.what, "prod") == 0) {
			memset(buf, 'm', 256);
			rc = shmkit_chan_send(ch, buf, 16 + th_rand() % 200,
					      CHAN_NS);
			check(&c, "chan_send", rc, chan_errs, t0, CHAN_NS);
		} else if (strcmp(c.what, "cons") == 0) {
			uint32_t fl;

			rc = shmkit_chan_recv(ch, buf, sizeof(buf), &fl,
					      CHAN_NS);
			check(&c, "chan_recv", rc, chan_errs, t0, CHAN_NS);
			if (rc > 512) {
				fprintf(stderr, "recv: %d bytes\n", rc);
				_exit(3);
			}
		} else {
			/* A newcomer: open everything afresh. */
			struct shmkit_seg *s2;
			struct shmkit_heap *h2;
			struct shmkit_map *m2;
			struct shmkit_chan *c2;

			rc = shmkit_seg_open(argv[0], &so, &s2);
			check(&c, "seg_open", rc, open_errs, t0, 100000000ull);
			if (rc == 0) {
				t0 = th_now_ns();
				rc = shmkit_heap_open(s2, &ho, &h2);
				check(&c, "heap_open", rc, open_errs, t0,
				      LOCK_NS);
				if (rc == 0) {
					t0 = th_now_ns();
					rc = shmkit_map_open(h2, "m", &mo, &m2);
					check(&c, "map_open", rc, map_errs, t0,
					      2 * LOCK_NS);
					if (rc >= 0)
						shmkit_map_close(m2);
					shmkit_heap_close(h2);
				}
				shmkit_seg_close(s2);
			}
			t0 = th_now_ns();
			rc = shmkit_chan_open(argv[1], SHMKIT_CHAN_PRODUCER,
					      &co, &c2);
			check(&c, "chan_open", rc, chan_errs, t0,
			      2 * 100000000ull);
			if (rc == 0)
				shmkit_chan_close(c2);
			usleep(2000);
		}
	}
	shmkit_chan_close(ch);
	shmkit_map_close(m);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return 0;
}

/* ---- definite corruptions: their documented errors ---------------------- */

static void definite(void)
{
	struct shmkit_heap_opts ho = {.sz = sizeof(ho),
				      .flags = SHMKIT_HEAP_NOCACHE,
				      .lock_timeout_ns = LOCK_NS};
	struct names n;
	struct places pl;
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct shmkit_map *m;
	struct shmkit_chan *c;
	struct world *w;
	struct raw r;
	unsigned char *d;
	uint64_t off;
	char buf[600];
	uint32_t fl;

	th_name(n.world, sizeof(n.world), "hc-w");
	th_name(n.chan, sizeof(n.chan), "hc-c");
	world_create(&n);
	pl = places_of(n.world);
	ASSERT_OK(shmkit_seg_open(n.world, NULL, &seg));
	w = shmkit_seg_base(seg);
	ASSERT_OK(shmkit_heap_open(seg, &ho, &h));
	ASSERT_OK(shmkit_map_open(h, "m", NULL, &m));
	r = raw_map(n.world);
	d = r.p + SHMKIT_HDR_SIZE;

	/* A block header that is not one: the heap checker says so, and
	 * the heap refuses to go on once its lock holder finds it. */
	ASSERT_OK(shmkit_heap_alloc(h, 1000, 0, &off));
	memset(d + off - 16, 0xa5, 16);
	ASSERT_ERR(shmkit_heap_check(h), EBADMSG);
	/* A bucket head pointing outside the entries. */
	{
		uint64_t buckets = rd64(d + pl.map_off + 0x30);
		uint32_t bogus = 0x7fffffff;

		int rc;

		for (int b = 0; b < 4; b++)
			memcpy(d + pl.map_off + buckets + 8 * b + 4, &bogus, 4);
		rc = shmkit_map_check(m);
		ASSERT_TRUE(rc == -EBADMSG || rc == -ENOTRECOVERABLE);
	}
	/* A lock word no shmkit process writes: free, with garbage in the
	 * owner half. */
	{
		uint64_t word = 0x00000000deadbeefull << 32;

		memcpy(&w->m, &word, 8);
		ASSERT_ERR(shmkit_mutex_lock(seg, &w->m, LOCK_NS), EBADMSG);
		ASSERT_ERR(shmkit_mutex_trylock(seg, &w->m), EBADMSG);
	}
	/* The segment header: a newcomer is refused before anything is
	 * touched (users attached already go on). */
	{
		struct shmkit_seg *s2;
		uint32_t v = 99;

		memcpy(r.p + 0x08, &v, 4);
		ASSERT_ERR(shmkit_seg_open(n.world, NULL, &s2), EPROTO);
		v = SHMKIT_LAYOUT_VERSION;
		memcpy(r.p + 0x08, &v, 4);
		memset(r.p + 0x38, 0xff, 8); /* data_size */
		ASSERT_ERR(shmkit_seg_open(n.world, NULL, &s2), EBADMSG);
	}
	shmkit_map_close(m);
	shmkit_heap_close(h);
	munmap(r.p, r.size);
	shmkit_seg_close(seg);

	/* A lane's tail behind its head and not on a record boundary: the
	 * consumer says -EBADMSG. (A tail up to a ring behind is no error:
	 * it lags the record words by a commit, for good if the producer
	 * died in between; chan_crash kills there.) */
	ASSERT_OK(shmkit_chan_open(n.chan, SHMKIT_CHAN_CONSUMER, NULL, &c));
	for (int i = 0; i < 20; i++)
		ASSERT_EQ(shmkit_chan_recv(c, buf, sizeof(buf), &fl, 0), 16);
	r = raw_map(n.chan);
	{
		unsigned char *hdr = r.p + SHMKIT_HDR_SIZE;
		uint64_t lane_off = rd64(hdr + 0x28), t = 12;

		/* lanes[0].tail = 12, below what was received. */
		memcpy(hdr + lane_off, &t, 8);
	}
	ASSERT_ERR(shmkit_chan_recv(c, buf, sizeof(buf), &fl, 0), EBADMSG);
	shmkit_chan_close(c);
	/* The channel header: an older format (6), or a reserved flag this
	 * library does not know, and a newcomer is refused. */
	{
		unsigned char *hdr = r.p + SHMKIT_HDR_SIZE;
		uint32_t v = 6, keep;

		memcpy(&keep, hdr + 0x08, 4);
		memcpy(hdr + 0x08, &v, 4);
		ASSERT_ERR(shmkit_chan_open(n.chan, SHMKIT_CHAN_CONSUMER, NULL,
					    &c),
			   EPROTO);
		memcpy(hdr + 0x08, &keep, 4);
		v = 1;
		memcpy(hdr + 0x14, &v, 4);
		ASSERT_ERR(shmkit_chan_open(n.chan, SHMKIT_CHAN_PRODUCER, NULL,
					    &c),
			   EPROTO);
		/* Restored, the header passes and the lane's bad tail
		 * (above) is what an opener hears of. */
		v = 0;
		memcpy(hdr + 0x14, &v, 4);
		ASSERT_ERR(shmkit_chan_open(n.chan, SHMKIT_CHAN_PRODUCER, NULL,
					    &c),
			   EBADMSG);
	}
	munmap(r.p, r.size);
	world_remove(&n);
}

/*
 * The readiness helper thread reads the shared heads. A peer that rewrites
 * one must not make it read outside the ring (a misaligned head past the
 * last lane's end) or keep the descriptor readable after recv said -EAGAIN
 * and re-armed it (a head moved back onto a consumed record).
 */
/*
 * A channel for the descriptor and select cases: 8 KiB lanes, 512-byte
 * messages, nprod producers; a producer and a consumer handle on it.
 */
static void chan_pair(char *name, size_t len, const char *tag, unsigned nprod,
		      struct shmkit_chan **p, struct shmkit_chan **c)
{
	struct shmkit_chan_opts co = {.sz = sizeof(co),
				      .capacity_bytes = 8192,
				      .max_msg_bytes = 512,
				      .max_producers = nprod};

	th_name(name, len, tag);
	ASSERT_OK(shmkit_chan_create(name, &co, SHMKIT_CHAN_PRODUCER, p));
	ASSERT_OK(shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, NULL, c));
}

/* The first lane of a channel mapped raw (its header's lane offset). */
static unsigned char *lanes_of(const struct raw *r)
{
	return r->p + SHMKIT_HDR_SIZE + rd64(r->p + SHMKIT_HDR_SIZE + 0x28);
}

static void fd_heads(void)
{
	struct shmkit_chan *p, *c;
	struct pollfd pfd = {.events = POLLIN};
	unsigned char *lanes;
	char name[128], buf[64];
	uint64_t bad[2] = {0, 5 * 8192 - 1};
	uint32_t fl;
	struct raw r;

	chan_pair(name, sizeof(name), "hc-fd", 2, &p, &c);
	pfd.fd = shmkit_chan_fd(c);
	ASSERT_GE(pfd.fd, 0);
	for (int i = 0; i < 5; i++)
		ASSERT_OK(shmkit_chan_send(p, "0123456789abcdef", 16, 0));
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(shmkit_chan_recv(c, buf, sizeof(buf), &fl, 0), 16);
	ASSERT_ERR(shmkit_chan_recv(c, buf, sizeof(buf), &fl, 0), EAGAIN);
	ASSERT_EQ(poll(&pfd, 1, 50), 0);
	r = raw_map(name);
	lanes = lanes_of(&r);
	/* lanes[0].head back to 0, then lanes[1].head misaligned and four
	 * rings past the end of lane 1, the last ring in the segment. */
	for (int k = 0; k < 2; k++) {
		memcpy(lanes + 256 * k + 0x40, &bad[k], 8);
		/* The helper looks at least every 10 ms: it may say "maybe". */
		ASSERT_GE(poll(&pfd, 1, 200), 0);
		ASSERT_ERR(shmkit_chan_recv(c, buf, sizeof(buf), &fl, 0),
			   EAGAIN);
		/* The re-arm restored the head: readable no more. */
		ASSERT_EQ(poll(&pfd, 1, 100), 0);
		ASSERT_EQ(rd64(lanes + 256 * k + 0x40), k ? 0 : 5 * 24);
	}
	/* And the channel still works. */
	ASSERT_OK(shmkit_chan_send(p, "0123456789abcdef", 16, 0));
	ASSERT_EQ(poll(&pfd, 1, 1000), 1);
	ASSERT_EQ(shmkit_chan_recv(c, buf, sizeof(buf), &fl, 0), 16);
	munmap(r.p, r.size);
	shmkit_chan_close(c);
	shmkit_chan_close(p);
	ASSERT_OK(shmkit_chan_unlink(name));
}

/*
 * A misaligned tail less than a ring behind head, with the producer alive
 * and idle: recv says -EBADMSG, so select and the descriptor must say
 * "ready" (they used to take such a tail for "nothing there" and wait).
 */
static void select_bad_tail(void)
{
	struct shmkit_chan *p, *c;
	struct pollfd pfd = {.events = POLLIN};
	unsigned char *lanes;
	char name[128], buf[64];
	uint64_t bad = 5 * 24 - 3, ready = 0, t0;
	struct raw r;

	chan_pair(name, sizeof(name), "hc-st", 1, &p, &c);
	pfd.fd = shmkit_chan_fd(c);
	ASSERT_GE(pfd.fd, 0);
	for (int i = 0; i < 5; i++)
		ASSERT_OK(shmkit_chan_send(p, "0123456789abcdef", 16, 0));
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(shmkit_chan_recv(c, buf, sizeof(buf), NULL, 0), 16);
	ASSERT_ERR(shmkit_chan_recv(c, buf, sizeof(buf), NULL, 0), EAGAIN);
	ASSERT_EQ(poll(&pfd, 1, 50), 0);
	r = raw_map(name);
	lanes = lanes_of(&r);
	ASSERT_EQ(rd64(lanes), 5 * 24); /* tail, at head */
	memcpy(lanes, &bad, 8);
	t0 = th_now_ns();
	ASSERT_EQ(shmkit_chan_select(&c, 1, &ready, 2000000000ll), 1);
	ASSERT_EQ(ready, 1);
	ASSERT_LT(th_now_ns() - t0, 1000000000ull);
	ASSERT_EQ(poll(&pfd, 1, 1000), 1);
	ASSERT_ERR(shmkit_chan_recv(c, buf, sizeof(buf), NULL, 0), EBADMSG);
	munmap(r.p, r.size);
	shmkit_chan_close(c);
	shmkit_chan_close(p);
	ASSERT_OK(shmkit_chan_unlink(name));
}

/* A misaligned head: flush says -EBADMSG, not a timeout. */
static void flush_bad_head(void)
{
	struct shmkit_chan *p, *c;
	unsigned char *lanes;
	char name[128];
	uint64_t bad = 3;
	struct raw r;

	chan_pair(name, sizeof(name), "hc-fh", 1, &p, &c);
	ASSERT_OK(shmkit_chan_send(p, "0123456789abcdef", 16, 0));
	r = raw_map(name);
	lanes = lanes_of(&r);
	memcpy(lanes + 0x40, &bad, 8);
	ASSERT_ERR(shmkit_chan_flush(p, 0), EBADMSG);
	ASSERT_ERR(shmkit_chan_flush(p, 100000000ll), EBADMSG);
	munmap(r.p, r.size);
	shmkit_chan_close(c);
	shmkit_chan_close(p);
	ASSERT_OK(shmkit_chan_unlink(name));
}

/* ---- random scribbling while workers run -------------------------------- */

enum region {
	R_SEG_HEADER,
	R_HEAP_CTL,
	R_HEAP_BLOCKS,
	R_LOCKS,
	R_MAP,
	R_CHAN,
	NREGIONS
};

static const char *const region_name[NREGIONS] = {
	"segment header and directory",
	"heap control block",
	"heap blocks",
	"lock words",
	"map buckets and entries",
	"channel lanes and records",
};

static const char *const workers[] = {"map",  "heap", "mutex",
				      "prod", "cons", "opener"};
#define NWORKERS (int)(sizeof(workers) / sizeof(workers[0]))

static void scribble(unsigned char *p, size_t len)
{
	uint64_t x = th_rand();
	size_t at = (size_t)(th_rand() % len);
	unsigned k = (unsigned)(th_rand() % 4);

	/* A byte, a small word, a big word, or zeroes. */
	if (k == 0)
		p[at] = (unsigned char)x;
	else if (k == 1 && at + 4 <= len)
		memcpy(p + at, &x, 4);
	else if (k == 2 && at + 8 <= len)
		memcpy(p + at, &x, 8);
	else
		memset(p + at, 0, len - at < 8 ? len - at : 8);
}

static void one_region(enum region rg)
{
	struct names n;
	struct places pl;
	struct shmkit_seg *seg;
	struct world *w;
	struct raw r, rc;
	unsigned char *d;
	pid_t pids[NWORKERS];
	uint64_t calls = 0, errors = 0, until;

	th_name(n.world, sizeof(n.world), "hc-w");
	th_name(n.chan, sizeof(n.chan), "hc-c");
	world_create(&n);
	pl = places_of(n.world);
	ASSERT_OK(shmkit_seg_open(n.world, NULL, &seg));
	w = shmkit_seg_base(seg);
	r = raw_map(n.world);
	rc = raw_map(n.chan);
	d = r.p + SHMKIT_HDR_SIZE;
	for (int i = 0; i < NWORKERS; i++) {
		char idx[8];
		const char *args[] = {n.world, n.chan, workers[i], idx, NULL};

		snprintf(idx, sizeof(idx), "%d", i);
		pids[i] = th_spawn("worker", args, NULL);
	}
	for (int i = 0; i < 2000 && atomic_load(&w->started) < NWORKERS; i++)
		usleep(1000);

	until = th_now_ns() + 400000000ull;
	while (th_now_ns() < until) {
		for (int k = 0; k < 8; k++) {
			switch (rg) {
			case R_SEG_HEADER:
				/* Header fields, slots and directory. */
				scribble(r.p, 0x1680);
				break;
			case R_HEAP_CTL:
				/* Not its two lock words (R_LOCKS). */
				scribble(d + pl.heap_off + 0x70, 0x27b0 - 0x70);
				break;
			case R_HEAP_BLOCKS:
				scribble(d + pl.heap_off + 0x27b0,
					 WORLD_BYTES - HEAP_OFF - 0x27b0);
				break;
			case R_LOCKS: {
				/* The heap's two, a stripe's, ours. */
				unsigned char *locks[4] = {
					d + pl.heap_off + 0x30,
					d + pl.heap_off + 0x50,
					d + pl.map_off + 0x80,
					(unsigned char *)&w->m};

				scribble(locks[th_rand() % 4], 32);
				break;
			}
			case R_MAP:
				scribble(d + pl.map_off + 0x80 * 3,
					 pl.map_size - 0x80 * 3);
				break;
			default:
				scribble(rc.p + SHMKIT_HDR_SIZE,
					 rc.size - SHMKIT_HDR_SIZE);
			}
		}
		usleep(200);
	}
	atomic_store(&w->stop, 1);
	for (int i = 0; i < NWORKERS; i++) {
		int st = th_wait(pids[i], 20000);

		if (st == -ETIMEDOUT)
			th_fail(__FILE__, __LINE__, "%s: worker %s hangs",
				region_name[rg], workers[i]);
		if (!th_exited_ok(st))
			th_fail(__FILE__, __LINE__,
				"%s: worker %s failed (status 0x%x)",
				region_name[rg], workers[i], st);
		calls += atomic_load(&w->calls[i]);
		errors += atomic_load(&w->errors[i]);
	}
	fprintf(stderr, "%-30s %8llu calls, %7llu documented errors\n",
		region_name[rg], (unsigned long long)calls,
		(unsigned long long)errors);
	ASSERT_GT(calls, 0);
	munmap(r.p, r.size);
	munmap(rc.p, rc.size);
	shmkit_seg_close(seg);
	world_remove(&n);
}

static int test(void)
{
	definite();
	fd_heads();
	select_bad_tail();
	flush_bad_head();
	for (int rg = 0; rg < NREGIONS; rg++)
		one_region((enum region)rg);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"worker", role_worker},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
