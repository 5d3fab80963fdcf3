/* SPDX-License-Identifier: MIT */
/*
 * Chaos: producers and a consumer on a channel, map writers and heap users
 * sharing one data segment, each its own process; this test SIGKILLs a
 * random one every few milliseconds and starts it again. Every participant
 * logs what the library acknowledged to an append-only file after the call
 * returned (a kill in between loses the log entry, never the operation).
 * At the end: every logged message was received, untorn, in order, twice
 * only if flagged; every acknowledged map operation is visible; the heap
 * and map checkers pass and nothing leaked; no call took longer than its
 * bound; and gc leaves the shared-memory directory as it was.
 *
 * SHMKIT_CHAOS_SECONDS (default 10), SHMKIT_CHAOS_KILL_MS (mean interval
 * between kills, default 5); --soak runs SHMKIT_SOAK_SECONDS (skipped
 * unless set); --gc-tool PATH runs `PATH gc` for the final collection.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <shmkit.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NPROD 3
#define NCONS 1
#define NMAPW 2
#define NHEAP 2
#define NPART (NPROD + NCONS + NMAPW + NHEAP)
#define FIRST_CONS NPROD
#define FIRST_MAPW (NPROD + NCONS)
#define FIRST_HEAP (NPROD + NCONS + NMAPW)

#define RING_BYTES 16384u
#define MAX_MSG 1024u
#define DATA_BYTES (24u << 20)
#define MAP_KEYS 64u  /* keys per map writer */
#define MAP_CAP 1024u /* map capacity */
#define HEAP_LIVE 48u /* blocks a heap user holds at most */

/* Timeouts, and the slack on top of each that a call may take. */
#define SEND_TIMEOUT_NS 300000000ll
#define RECV_TIMEOUT_NS 200000000ll
#define LOCK_TIMEOUT_NS 2000000000ull
#define OPEN_TIMEOUT_NS 1000000000ull
#define SLACK_NS 2000000000ull

enum op {
	OP_CHAN_OPEN,
	OP_SEND,
	OP_RESERVE,
	OP_SEND_BATCH,
	OP_RECV,
	OP_PEEK,
	OP_SEG_OPEN,
	OP_HEAP_OPEN,
	OP_MAP_OPEN,
	OP_MAP_PUT,
	OP_MAP_DEL,
	OP_MAP_ADD,
	OP_MAP_GET,
	OP_HEAP_ALLOC,
	OP_HEAP_FREE,
	OP_HEAP_RECLAIM,
	OP_OBJ_CREATE,
	OP_OBJ_REMOVE,
	NOPS
};

static const char *const op_name[NOPS] = {
	"chan_open",  "chan_send",  "chan_reserve", "chan_send_batch",
	"chan_recv",  "chan_peek",  "seg_open",	    "heap_open",
	"map_open",   "map_put",    "map_del",	    "map_add",
	"map_get",    "heap_alloc", "heap_free",    "heap_reclaim",
	"obj_create", "obj_remove",
};

/* The longest each call may take: its own timeout plus SLACK_NS. */
static uint64_t op_bound(enum op op)
{
	switch (op) {
	case OP_CHAN_OPEN:
		return 2 * OPEN_TIMEOUT_NS + SLACK_NS;
	case OP_SEND:
	case OP_RESERVE:
	case OP_SEND_BATCH:
		return (uint64_t)SEND_TIMEOUT_NS + SLACK_NS;
	case OP_RECV:
	case OP_PEEK:
		return (uint64_t)RECV_TIMEOUT_NS + SLACK_NS;
	case OP_SEG_OPEN:
		return OPEN_TIMEOUT_NS + SLACK_NS;
	case OP_HEAP_OPEN:
	case OP_MAP_OPEN:
	case OP_OBJ_CREATE:
	case OP_OBJ_REMOVE:
		/* The directory lock, then the heap lock. */
		return 2 * LOCK_TIMEOUT_NS + SLACK_NS;
	default:
		return LOCK_TIMEOUT_NS + SLACK_NS;
	}
}

/*
 * Shared by the test and every participant: a file in the log directory
 * mapped shared, so that it survives any participant's death.
 */
struct board {
	_Atomic uint32_t stop; /* w: test; 1: finish cleanly and exit 0 */
	_Atomic uint32_t pad;
	_Atomic uint64_t max_ns[NOPS];
	_Atomic uint64_t calls[NOPS];
	_Atomic uint64_t timeouts[NOPS]; /* -ETIMEDOUT / -EAGAIN */
	_Atomic uint64_t resets;	 /* recv: -ECONNRESET */
	_Atomic uint64_t eos;		 /* recv: -EPIPE before the end */
	_Atomic uint64_t cons_gone;	 /* send: -ECONNRESET */
	_Atomic uint64_t redelivered;	 /* messages flagged */
	_Atomic uint64_t reclaimed;	 /* owned blocks reclaimed */
	_Atomic uint64_t nospc;		 /* heap: -ENOSPC (then reclaim) */
};

/* Log records, fixed size, one write() each. */
#define REC_MAGIC 0x43484153u
enum rec_type {
	REC_SENT = 1,	/* a: producer, inc, n */
	REC_RECV = 2,	/* a: producer, inc, n, b: flags */
	REC_INTENT = 3, /* a: writer, inc, n: value seq, b: op, c: key */
	REC_ACK = 4,	/* as INTENT, d: result */
};

struct rec {
	uint32_t magic;
	uint8_t type;
	uint8_t a;  /* producer or writer index */
	uint16_t b; /* message flags, map operation */
	uint32_t inc;
	uint32_t c; /* map key */
	uint64_t n;
	int32_t d; /* map result */
	uint32_t sum;
};

/*
 * 32 bytes: a record never straddles a page, so the one write() that
 * appends it cannot be cut short by the writer's death (the kernel checks
 * for a fatal signal between pages of a write).
 */
_Static_assert(sizeof(struct rec) == 32, "log record size");

/* Map operations. */
enum { MOP_PUT = 1, MOP_DEL = 2, MOP_ADD = 3 };

/* What every participant gets on its command line. */
struct ctx {
	const char *chan, *data, *logdir;
	unsigned who, inc;
	struct board *bd;
	int logfd;
};

static uint32_t fnv(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ *s++) * 16777619u;
	return h;
}

static void rec_seal(struct rec *r)
{
	r->magic = REC_MAGIC;
	r->sum = fnv(r, offsetof(struct rec, sum));
}

static int rec_ok(const struct rec *r)
{
	return r->magic == REC_MAGIC &&
	       r->sum == fnv(r, offsetof(struct rec, sum));
}

static void log_rec(struct ctx *c, struct rec *r)
{
	rec_seal(r);
	if (write(c->logfd, r, sizeof(*r)) != (ssize_t)sizeof(*r)) {
		perror("chaos: log write");
		_exit(5);
	}
}

static uint64_t now_ns(void)
{
	return th_now_ns();
}

static void note(struct ctx *c, enum op op, uint64_t t0, int rc)
{
	uint64_t dt = now_ns() - t0;
	uint64_t cur =
		atomic_load_explicit(&c->bd->max_ns[op], memory_order_relaxed);

	while (dt > cur && !atomic_compare_exchange_weak_explicit(
				   &c->bd->max_ns[op], &cur, dt,
				   memory_order_relaxed, memory_order_relaxed))
		;
	atomic_fetch_add_explicit(&c->bd->calls[op], 1, memory_order_relaxed);
	if (rc == -ETIMEDOUT || rc == -EAGAIN)
		atomic_fetch_add_explicit(&c->bd->timeouts[op], 1,
					  memory_order_relaxed);
}

/* A participant hit something no peer's death can explain. */
static void bad(struct ctx *c, const char *what, int rc)
{
	fprintf(stderr, "chaos: participant %u (inc %u): %s: %d (%s)\n", c->who,
		c->inc, what, rc, rc < 0 ? strerror(-rc) : "-");
	_exit(3);
}

static int stopping(const struct ctx *c)
{
	return atomic_load_explicit(&c->bd->stop, memory_order_relaxed) != 0;
}

/*
 * Self-tests of the checks (SHMKIT_CHAOS_SELFTEST, no kills): "lose" drops
 * one receive from the consumer's log, "ack" logs an acknowledgement of a
 * put never made, "leak" leaves a segment behind. The check must fail.
 */
static int selftest(const char *what)
{
	const char *e = getenv("SHMKIT_CHAOS_SELFTEST");

	return e && strcmp(e, what) == 0;
}

/* Participant's private PRNG. */
static uint64_t rnd_state;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 0x2545F4914F6CDD1Dull;
}

static void ctx_init(struct ctx *c, int argc, char **argv)
{
	char path[4096];
	int fd;

	if (argc < 5) {
		fprintf(stderr, "chaos: bad participant arguments\n");
		_exit(2);
	}
	c->chan = argv[0];
	c->data = argv[1];
	c->logdir = argv[2];
	c->who = (unsigned)atoi(argv[3]);
	c->inc = (unsigned)atoi(argv[4]);
	/* From the run's seed (the test exports TH_SEED), so that a failing
	 * run's choices can be replayed; each participant and incarnation
	 * draws its own sequence. The kills still land where timing puts
	 * them. */
	rnd_state = (th_seed() ^ ((uint64_t)c->who << 48) ^
		     ((uint64_t)c->inc << 24) ^ 0x9e3779b97f4a7c15ull) |
		    1;
	snprintf(path, sizeof(path), "%s/board", c->logdir);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		_exit(2);
	c->bd = mmap(NULL, sizeof(struct board), PROT_READ | PROT_WRITE,
		     MAP_SHARED, fd, 0);
	close(fd);
	if (c->bd == MAP_FAILED)
		_exit(2);
	snprintf(path, sizeof(path), "%s/log-%u", c->logdir, c->who);
	c->logfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (c->logfd < 0)
		_exit(2);
}

/* ---- messages ----------------------------------------------------------- */

struct mhdr {
	uint16_t prod;
	uint16_t len;
	uint32_t inc;
	uint64_t n;
	uint32_t sum;
	uint32_t pad;
};

static size_t msg_len(unsigned prod, uint32_t inc, uint64_t n)
{
	uint64_t x = (n + 1) * 0x9E3779B97F4A7C15ull ^ inc ^ prod;

	return sizeof(struct mhdr) +
	       (x >> 40) % (MAX_MSG - sizeof(struct mhdr));
}

static void msg_fill(unsigned char *m, unsigned prod, uint32_t inc, uint64_t n)
{
	size_t len = msg_len(prod, inc, n);
	struct mhdr h = {.prod = (uint16_t)prod,
			 .len = (uint16_t)len,
			 .inc = inc,
			 .n = n};

	for (size_t i = sizeof(h); i < len; i++)
		m[i] = (unsigned char)(n * 31 + i * 7 + prod + inc);
	h.sum = fnv(m + sizeof(h), len - sizeof(h));
	memcpy(m, &h, sizeof(h));
}

/* 1 if m (len bytes) is a whole message; *h gets its header. */
static int msg_ok(const unsigned char *m, size_t len, struct mhdr *h)
{
	if (len < sizeof(*h))
		return 0;
	memcpy(h, m, sizeof(*h));
	return h->prod < NPROD && h->len == len &&
	       len == msg_len(h->prod, h->inc, h->n) &&
	       h->sum == fnv(m + sizeof(*h), len - sizeof(*h));
}

static struct shmkit_chan *chan_attach(struct ctx *c, enum shmkit_chan_role r)
{
	struct shmkit_chan *ch = NULL;

	for (;;) {
		uint64_t t0 = now_ns();
		int rc = shmkit_chan_open(c->chan, r, NULL, &ch);

		note(c, OP_CHAN_OPEN, t0, rc);
		if (rc == 0)
			return ch;
		/* A dead consumer's lock (or lane) is released when the
		 * kernel has finished tearing it down. */
		if (rc != -EBUSY)
			bad(c, "chan_open", rc);
		if (stopping(c))
			_exit(0);
		usleep(200);
	}
}

static int role_producer(int argc, char **argv)
{
	static unsigned char m[MAX_MSG];
	struct ctx c;
	struct shmkit_chan *ch;
	uint64_t n = 0;

	ctx_init(&c, argc, argv);
	ch = chan_attach(&c, SHMKIT_CHAN_PRODUCER);
	while (!stopping(&c)) {
		size_t len = msg_len(c.who, c.inc, n);
		unsigned k = (unsigned)(rnd() % 100);
		uint64_t t0 = now_ns();
		int rc, sent = 1;

		msg_fill(m, c.who, c.inc, n);
		if (k < 70) {
			rc = shmkit_chan_send(ch, m, len, SEND_TIMEOUT_NS);
			note(&c, OP_SEND, t0, rc);
		} else if (k < 85) {
			void *p;

			rc = shmkit_chan_reserve(ch, len, &p, SEND_TIMEOUT_NS);
			note(&c, OP_RESERVE, t0, rc);
			if (rc == 0) {
				memcpy(p, m, len);
				rc = shmkit_chan_commit(ch, len);
				if (rc < 0)
					bad(&c, "chan_commit", rc);
			}
		} else {
			/* Two messages in one batch. */
			static unsigned char m2[MAX_MSG];
			struct shmkit_chan_msg b[2] = {
				{.buf = m, .len = len},
				{.buf = m2,
				 .len = msg_len(c.who, c.inc, n + 1)}};

			msg_fill(m2, c.who, c.inc, n + 1);
			rc = shmkit_chan_send_batch(ch, b, 2, SEND_TIMEOUT_NS);
			note(&c, OP_SEND_BATCH, t0, rc);
			if (rc > 0) {
				sent = rc;
				rc = 0;
			}
		}
		if (rc == 0) {
			for (int i = 0; i < sent; i++, n++) {
				struct rec r = {.type = REC_SENT,
						.a = (uint8_t)c.who,
						.inc = c.inc,
						.n = n};

				log_rec(&c, &r);
			}
			/* Bursts, then a pause: keeps the logs small. */
			if (rnd() % 16 == 0)
				usleep((useconds_t)(200 + rnd() % 2000));
			continue;
		}
		if (rc == -ECONNRESET) {
			atomic_fetch_add(&c.bd->cons_gone, 1);
			continue;
		}
		if (rc != -ETIMEDOUT && rc != -EAGAIN)
			bad(&c, "send", rc);
	}
	shmkit_chan_close(ch);
	return 0;
}

static void cons_log(struct ctx *c, const void *p, size_t len, uint32_t fl)
{
	static int dropped;
	struct mhdr h;
	struct rec r = {.type = REC_RECV};

	if (!msg_ok(p, len, &h)) {
		fprintf(stderr, "chaos: torn or foreign message, %zu bytes\n",
			len);
		_exit(4);
	}
	if (h.n == 5 && !dropped && selftest("lose")) {
		dropped = 1;
		return;
	}
	r.a = (uint8_t)h.prod;
	r.inc = h.inc;
	r.n = h.n;
	r.b = (uint16_t)fl;
	log_rec(c, &r);
	if (fl & SHMKIT_CHAN_REDELIVERED)
		atomic_fetch_add(&c->bd->redelivered, 1);
}

static int role_consumer(int argc, char **argv)
{
	static unsigned char buf[MAX_MSG];
	struct ctx c;
	struct shmkit_chan *ch;

	ctx_init(&c, argc, argv);
	ch = chan_attach(&c, SHMKIT_CHAN_CONSUMER);
	for (;;) {
		unsigned k = (unsigned)(rnd() % 100);
		uint64_t t0 = now_ns();
		uint32_t fl = 0;
		int rc;

		if (k < 80) {
			rc = shmkit_chan_recv(ch, buf, sizeof(buf), &fl,
					      RECV_TIMEOUT_NS);
			note(&c, OP_RECV, t0, rc);
			if (rc >= 0)
				cons_log(&c, buf, (size_t)rc, fl);
		} else {
			const void *p;

			rc = shmkit_chan_peek(ch, &p, &fl, RECV_TIMEOUT_NS);
			note(&c, OP_PEEK, t0, rc);
			if (rc >= 0) {
				cons_log(&c, p, (size_t)rc, fl);
				rc = shmkit_chan_release(ch);
				if (rc < 0)
					bad(&c, "chan_release", rc);
			}
		}
		if (rc >= 0 || rc == -ETIMEDOUT || rc == -EAGAIN)
			continue;
		if (rc == -ECONNRESET) {
			atomic_fetch_add(&c.bd->resets, 1);
			continue;
		}
		if (rc == -EPIPE) {
			/* Every producer gone and everything received: the
			 * end if the test is stopping, else all producers
			 * happen to be dead at once. */
			if (stopping(&c))
				break;
			atomic_fetch_add(&c.bd->eos, 1);
			usleep(500);
			continue;
		}
		bad(&c, "recv", rc);
	}
	shmkit_chan_close(ch);
	return 0;
}

/* ---- map writers -------------------------------------------------------- */

/* A value: its seq, then bytes derived from it; length from seq. */
static size_t val_make(unsigned char *v, uint64_t seq)
{
	size_t len = 8 + seq % 41;

	memcpy(v, &seq, 8);
	for (size_t i = 8; i < len; i++)
		v[i] = (unsigned char)(seq * 13 + i);
	return len;
}

/* The seq of a value read back, or 0 if it is not a whole value. */
static uint64_t val_seq(const unsigned char *v, int len)
{
	uint64_t seq;

	if (len < 8)
		return 0;
	memcpy(&seq, v, 8);
	if ((size_t)len != 8 + seq % 41)
		return 0;
	for (int i = 8; i < len; i++)
		if (v[i] != (unsigned char)(seq * 13 + (uint64_t)i))
			return 0;
	return seq;
}

static int key_make(char *k, size_t cap, unsigned writer, unsigned key)
{
	if (key == MAP_KEYS)
		return snprintf(k, cap, "ctr-%u", writer);
	return snprintf(k, cap, "w%u-k%u", writer, key);
}

struct data {
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct shmkit_map *m;
};

static void data_open(struct ctx *c, struct data *d, int map, uint32_t hflags)
{
	struct shmkit_seg_opts so = {.sz = sizeof(so),
				     .open_timeout_ns = OPEN_TIMEOUT_NS};
	struct shmkit_heap_opts ho = {.sz = sizeof(ho),
				      .flags = hflags,
				      .lock_timeout_ns = LOCK_TIMEOUT_NS};
	struct shmkit_map_opts mo = {.sz = sizeof(mo),
				     .lock_timeout_ns = LOCK_TIMEOUT_NS};
	uint64_t t0 = now_ns();
	int rc = shmkit_seg_open(c->data, &so, &d->seg);

	note(c, OP_SEG_OPEN, t0, rc);
	if (rc < 0)
		bad(c, "seg_open", rc);
	t0 = now_ns();
	rc = shmkit_heap_open(d->seg, &ho, &d->h);
	note(c, OP_HEAP_OPEN, t0, rc);
	if (rc < 0)
		bad(c, "heap_open", rc);
	d->m = NULL;
	if (!map)
		return;
	t0 = now_ns();
	rc = shmkit_map_open(d->h, "chaos", &mo, &d->m);
	note(c, OP_MAP_OPEN, t0, rc);
	if (rc < 0)
		bad(c, "map_open", rc);
}

static void data_close(struct data *d)
{
	shmkit_map_close(d->m);
	shmkit_heap_close(d->h);
	shmkit_seg_close(d->seg);
}

/* Read another key (anyone's) and check the value is whole. */
static void map_peek(struct ctx *c, struct data *d)
{
	unsigned char v[64];
	char k[32];
	unsigned w = (unsigned)(rnd() % NMAPW);
	unsigned key = (unsigned)(rnd() % MAP_KEYS);
	uint64_t t0 = now_ns();
	int rc;

	key_make(k, sizeof(k), w, key);
	rc = shmkit_map_get(d->m, k, strlen(k), v, sizeof(v));
	note(c, OP_MAP_GET, t0, rc);
	if (rc == -ENOENT || rc == -ETIMEDOUT || rc == -EAGAIN)
		return;
	if (rc < 0)
		bad(c, "map_get", rc);
	if (!val_seq(v, rc))
		bad(c, "map_get: torn value", rc);
}

static int role_mapw(int argc, char **argv)
{
	unsigned char v[64];
	struct ctx c;
	struct data d;
	uint64_t seq;
	uint32_t n = 0;

	ctx_init(&c, argc, argv);
	data_open(&c, &d, 1, 0);
	while (!stopping(&c)) {
		unsigned k = (unsigned)(rnd() % 100);
		unsigned w = c.who - FIRST_MAPW;
		unsigned key = (unsigned)(rnd() % MAP_KEYS);
		struct rec r = {
			.type = REC_INTENT, .a = (uint8_t)w, .inc = c.inc};
		char kb[32];
		uint64_t t0;
		int rc;

		if (k < 15) {
			map_peek(&c, &d);
			continue;
		}
		/* Values are never 0 (0 means "not a value"). */
		seq = (uint64_t)c.inc << 32 | ++n;
		r.n = seq;
		r.b = k < 65 ? MOP_PUT : k < 85 ? MOP_DEL : MOP_ADD;
		if (r.b == MOP_ADD)
			key = MAP_KEYS;
		r.c = key;
		key_make(kb, sizeof(kb), w, key);
		log_rec(&c, &r);
		t0 = now_ns();
		if (r.b == MOP_PUT) {
			size_t len = val_make(v, seq);

			rc = shmkit_map_put(d.m, kb, strlen(kb), v, len, 0);
			note(&c, OP_MAP_PUT, t0, rc);
		} else if (r.b == MOP_DEL) {
			rc = shmkit_map_del(d.m, kb, strlen(kb));
			note(&c, OP_MAP_DEL, t0, rc);
			if (rc == -ENOENT)
				rc = 0;
		} else {
			rc = shmkit_map_add(d.m, kb, strlen(kb), 1, NULL);
			note(&c, OP_MAP_ADD, t0, rc);
		}
		if (rc == -ETIMEDOUT)
			continue; /* not done: the intent stays unacked */
		if (rc < 0)
			bad(&c, "map op", rc);
		r.type = REC_ACK;
		r.d = rc;
		log_rec(&c, &r);
		/* Pauses keep the logs small. */
		if (rnd() % 8 == 0)
			usleep((useconds_t)(100 + rnd() % 1000));
	}
	if (selftest("ack")) {
		struct rec r = {.type = REC_ACK,
				.a = (uint8_t)(c.who - FIRST_MAPW),
				.inc = c.inc,
				.n = (uint64_t)c.inc << 32 | ++n,
				.b = MOP_PUT,
				.c = 0};

		log_rec(&c, &r);
	}
	data_close(&d);
	return 0;
}

/* ---- heap users --------------------------------------------------------- */

struct blk {
	uint64_t off;
	uint32_t size;
	uint32_t tag;
};

static void blk_fill(struct data *d, const struct blk *b)
{
	unsigned char *p = shmkit_heap_ptr(d->h, b->off);

	for (uint32_t i = 0; i < b->size; i++)
		p[i] = (unsigned char)(b->tag + i * 3);
}

static int blk_ok(struct data *d, const struct blk *b)
{
	const unsigned char *p = shmkit_heap_ptr(d->h, b->off);

	if (!p)
		return 0;
	for (uint32_t i = 0; i < b->size; i++)
		if (p[i] != (unsigned char)(b->tag + i * 3))
			return 0;
	return 1;
}

static void heap_free_blk(struct ctx *c, struct data *d, struct blk *b)
{
	uint64_t t0;
	int rc;

	if (!blk_ok(d, b))
		bad(c, "heap block overwritten", (int)b->size);
	t0 = now_ns();
	rc = shmkit_heap_free(d->h, b->off);
	note(c, OP_HEAP_FREE, t0, rc);
	if (rc < 0)
		bad(c, "heap_free", rc);
}

/* Names of objects starting with prefix. */
struct leftovers {
	char prefix[16];
	unsigned n;
	char names[64][SHMKIT_OBJ_NAME_MAX + 1];
};

static int collect(const struct shmkit_obj_info *oi, void *arg)
{
	struct leftovers *lo = arg;

	if (lo->n < 64 &&
	    strncmp(oi->name, lo->prefix, strlen(lo->prefix)) == 0)
		snprintf(lo->names[lo->n++], sizeof(lo->names[0]), "%s",
			 oi->name);
	return 0;
}

/*
 * A heap user also keeps a scoped scratch segment per life, which a death
 * leaves stale: each life removes its predecessors' with shmkit_seg_gc(),
 * and the last life leaves its own to the test's final gc.
 */
struct scratch {
	char prefix[160];
	int removed;
};

static int gc_scratch(const struct shmkit_seg_info *in, void *arg)
{
	struct scratch *sc = arg;

	if (strncmp(in->name, sc->prefix, strlen(sc->prefix)) == 0 &&
	    shmkit_seg_gc(in->name, 0) > 0)
		sc->removed++;
	return 0;
}

static struct shmkit_seg *scratch_open(struct ctx *c)
{
	struct shmkit_seg_opts so = {.sz = sizeof(so),
				     .flags = SHMKIT_SEG_SCOPED};
	struct scratch sc = {.removed = 0};
	struct shmkit_seg *s;
	char name[200];
	int rc;

	snprintf(sc.prefix, sizeof(sc.prefix), "%s-s%u-", c->data, c->who);
	rc = shmkit_seg_list(gc_scratch, &sc);
	if (rc < 0)
		bad(c, "seg_list", rc);
	snprintf(name, sizeof(name), "%s%u", sc.prefix, c->inc);
	rc = shmkit_seg_create(name, 4096, &so, &s);
	if (rc < 0)
		bad(c, "scratch create", rc);
	memset(shmkit_seg_base(s), (int)c->inc, 4096);
	return s;
}

static struct shmkit_seg *scratch;

static int role_heap(int argc, char **argv)
{
	struct blk live[HEAP_LIVE];
	char objs[8][SHMKIT_OBJ_NAME_MAX + 1];
	unsigned nlive = 0, nobj = 0, objn = 0;
	struct ctx c;
	struct data d;

	ctx_init(&c, argc, argv);
	/* Never closed (see struct scratch); kept reachable. */
	scratch = scratch_open(&c);
	data_open(&c, &d, 0, 0);
	/* Objects our previous lives left behind (they are dead). */
	{
		struct leftovers lo = {.n = 0};

		snprintf(lo.prefix, sizeof(lo.prefix), "h%u-", c.who);
		if (shmkit_obj_list(d.h, collect, &lo) < 0)
			bad(&c, "obj_list", -1);
		for (unsigned i = 0; i < lo.n; i++) {
			uint64_t t0 = now_ns();
			int rc = shmkit_obj_remove(d.h, lo.names[i]);

			note(&c, OP_OBJ_REMOVE, t0, rc);
			if (rc < 0 && rc != -ENOENT)
				bad(&c, "obj_remove", rc);
		}
	}
	while (!stopping(&c)) {
		unsigned k = (unsigned)(rnd() % 100);
		uint64_t t0 = now_ns();
		int rc;

		if (k < 45 && nlive < HEAP_LIVE) {
			struct blk *b = &live[nlive];

			b->size = (uint32_t)(1 + rnd() % 3000);
			b->tag = (uint32_t)rnd();
			rc = shmkit_heap_alloc(d.h, b->size, SHMKIT_HEAP_OWNED,
					       &b->off);
			note(&c, OP_HEAP_ALLOC, t0, rc);
			if (rc == -ENOSPC) {
				atomic_fetch_add(&c.bd->nospc, 1);
				rc = shmkit_heap_reclaim(d.h);
				if (rc > 0)
					atomic_fetch_add(&c.bd->reclaimed,
							 (uint64_t)rc);
				continue;
			}
			if (rc < 0)
				bad(&c, "heap_alloc", rc);
			blk_fill(&d, b);
			nlive++;
		} else if (k < 85 && nlive) {
			unsigned i = (unsigned)(rnd() % nlive);

			heap_free_blk(&c, &d, &live[i]);
			live[i] = live[--nlive];
		} else if (k < 92) {
			struct shmkit_obj_info oi;

			if (nobj == 8 || (nobj && rnd() % 2)) {
				nobj--;
				rc = shmkit_obj_remove(d.h, objs[nobj]);
				note(&c, OP_OBJ_REMOVE, t0, rc);
				/* -ENOENT: removed by a previous life that
				 * died before forgetting it: not ours. */
				if (rc < 0 && rc != -ENOENT)
					bad(&c, "obj_remove", rc);
				continue;
			}
			snprintf(objs[nobj], sizeof(objs[nobj]), "h%u-%u-%u",
				 c.who, c.inc, objn++);
			rc = shmkit_obj_create(d.h, objs[nobj],
					       (size_t)(16 + rnd() % 500), 7,
					       NULL, NULL, &oi);
			note(&c, OP_OBJ_CREATE, t0, rc);
			if (rc == -ENOSPC)
				continue; /* the directory is full */
			if (rc != 1)
				bad(&c, "obj_create", rc);
			nobj++;
		} else if (k < 97) {
			rc = shmkit_heap_flush(d.h);
			if (rc < 0)
				bad(&c, "heap_flush", rc);
		} else {
			rc = shmkit_heap_reclaim(d.h);
			note(&c, OP_HEAP_RECLAIM, t0, rc);
			if (rc < 0)
				bad(&c, "heap_reclaim", rc);
			atomic_fetch_add(&c.bd->reclaimed, (uint64_t)rc);
		}
		if (rnd() % 64 == 0)
			usleep((useconds_t)(100 + rnd() % 1000));
	}
	while (nlive)
		heap_free_blk(&c, &d, &live[--nlive]);
	while (nobj) {
		int rc = shmkit_obj_remove(d.h, objs[--nobj]);

		if (rc < 0 && rc != -ENOENT)
			bad(&c, "obj_remove", rc);
	}
	data_close(&d);
	return 0;
}

/* ---- the test: supervisor, killer, checker ------------------------------ */

struct part {
	pid_t pid;
	unsigned inc;
};

static struct part parts[NPART];
static char chan_name[128], data_name[128], logdir[4096], shmdir[4096];

static const char *role_of(unsigned who)
{
	if (who < FIRST_CONS)
		return "producer";
	if (who < FIRST_MAPW)
		return "consumer";
	if (who < FIRST_HEAP)
		return "mapw";
	return "heap";
}

static void start(unsigned who)
{
	char w[16], inc[16];
	const char *args[] = {chan_name, data_name, logdir, w, inc, NULL};

	snprintf(w, sizeof(w), "%u", who);
	snprintf(inc, sizeof(inc), "%u", ++parts[who].inc);
	parts[who].pid = th_spawn(role_of(who), args, NULL);
}

/* A participant that ended by itself, other than at the end, failed. */
static void check_exit(unsigned who, int st, int stopping_now)
{
	if (stopping_now && th_exited_ok(st))
		return;
	th_fail(__FILE__, __LINE__,
		"%s %u (inc %u) ended by itself: status 0x%x (exit %d, "
		"signal %d)",
		role_of(who), who, parts[who].inc, st,
		WIFEXITED(st) ? WEXITSTATUS(st) : -1,
		WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* Read a log: the whole records (a kill never leaves half of one here,
 * but a torn tail would be skipped, not misread). */
static struct rec *log_read(unsigned who, size_t *n)
{
	char path[4200];
	struct stat st;
	struct rec *r;
	size_t got = 0, k = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/log-%u", logdir, who);
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		*n = 0;
		return NULL;
	}
	ASSERT_OK(fstat(fd, &st));
	r = malloc((size_t)st.st_size + sizeof(*r));
	ASSERT_TRUE(r != NULL);
	while (got < (size_t)st.st_size) {
		ssize_t m = read(fd, (char *)r + got, (size_t)st.st_size - got);

		ASSERT_GT(m, 0);
		got += (size_t)m;
	}
	close(fd);
	for (size_t i = 0; i < got / sizeof(*r); i++) {
		if (!rec_ok(&r[i])) {
			/* Only the very last record could be partial. */
			ASSERT_EQ(i, got / sizeof(*r) - 1);
			continue;
		}
		r[k++] = r[i];
	}
	*n = k;
	return r;
}

static int cmp_msg(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	if (x->a != y->a)
		return x->a < y->a ? -1 : 1;
	if (x->inc != y->inc)
		return x->inc < y->inc ? -1 : 1;
	if (x->n != y->n)
		return x->n < y->n ? -1 : 1;
	return 0;
}

struct figures {
	uint64_t kills, sent, received, dups, map_acks, map_intents;
	uint64_t unacked_visible;
};

/*
 * Messages: every logged send was received; each (producer, life) stream
 * arrived as a gap-free prefix, in order, and a message came twice only
 * with the redelivery flag set.
 */
static void check_messages(struct figures *f)
{
	size_t nr = 0, ns, total = 0;
	struct rec *rv = log_read(FIRST_CONS, &nr);
	uint64_t *last[NPROD];
	struct rec *rs;

	f->received = nr;
	/* Order: within a stream (a producer's life), first deliveries
	 * come in increasing order; redeliveries are flagged. */
	for (unsigned p = 0; p < NPROD; p++) {
		last[p] = malloc((parts[p].inc + 1) * sizeof(uint64_t));
		ASSERT_TRUE(last[p] != NULL);
		for (unsigned i = 0; i <= parts[p].inc; i++)
			last[p][i] = UINT64_MAX;
	}
	for (size_t i = 0; i < nr; i++) {
		uint64_t *l;

		ASSERT_EQ(rv[i].type, REC_RECV);
		ASSERT_LT(rv[i].a, NPROD);
		ASSERT_LE(rv[i].inc, parts[rv[i].a].inc);
		if (rv[i].b & SHMKIT_CHAN_REDELIVERED)
			continue;
		l = &last[rv[i].a][rv[i].inc];
		if (*l != UINT64_MAX && rv[i].n <= *l)
			th_fail(__FILE__, __LINE__,
				"out of order: P%u life %u: %llu after %llu",
				rv[i].a, rv[i].inc, (unsigned long long)rv[i].n,
				(unsigned long long)*l);
		*l = rv[i].n;
	}
	for (unsigned p = 0; p < NPROD; p++)
		free(last[p]);
	qsort(rv, nr, sizeof(*rv), cmp_msg);
	/* Duplicates only flagged: at most one unflagged copy. */
	for (size_t i = 0; i < nr;) {
		size_t j = i;
		unsigned unflagged = 0;

		while (j < nr && cmp_msg(&rv[i], &rv[j]) == 0) {
			unflagged += !(rv[j].b & SHMKIT_CHAN_REDELIVERED);
			j++;
		}
		if (unflagged > 1)
			th_fail(__FILE__, __LINE__,
				"P%u life %u message %llu received %u times "
				"unflagged",
				rv[i].a, rv[i].inc, (unsigned long long)rv[i].n,
				unflagged);
		f->dups += j - i - 1;
		i = j;
	}
	/* Every logged send was received; streams have no gap. */
	for (unsigned p = 0; p < NPROD; p++) {
		rs = log_read(p, &ns);
		total += ns;
		for (size_t i = 0; i < ns; i++) {
			struct rec key = rs[i];

			ASSERT_EQ(key.type, REC_SENT);
			if (!bsearch(&key, rv, nr, sizeof(*rv), cmp_msg))
				th_fail(__FILE__, __LINE__,
					"lost: P%u life %u message %llu was "
					"sent (logged) and never received",
					key.a, key.inc,
					(unsigned long long)key.n);
		}
		free(rs);
	}
	for (size_t i = 0; i < nr; i++) {
		/* The first message of a stream is 0; each next one
		 * follows its predecessor. */
		if (i == 0 || rv[i].a != rv[i - 1].a ||
		    rv[i].inc != rv[i - 1].inc) {
			if (rv[i].n != 0)
				th_fail(__FILE__, __LINE__,
					"gap: P%u life %u starts at %llu",
					rv[i].a, rv[i].inc,
					(unsigned long long)rv[i].n);
		} else if (rv[i].n > rv[i - 1].n + 1) {
			th_fail(__FILE__, __LINE__,
				"gap: P%u life %u: %llu after %llu", rv[i].a,
				rv[i].inc, (unsigned long long)rv[i].n,
				(unsigned long long)rv[i - 1].n);
		}
	}
	f->sent = total;
	free(rv);
}

/*
 * Map: per key, the value now is the one of the last acknowledged
 * operation, or of an operation attempted after it whose acknowledgement
 * was not logged (in flight when its writer died). Counters are at least
 * the acknowledged adds and at most those plus the unacknowledged ones.
 */
static void check_map(struct shmkit_map *m, struct figures *f)
{
	for (unsigned w = 0; w < NMAPW; w++) {
		size_t n;
		struct rec *r = log_read(FIRST_MAPW + w, &n);
		/* Per key: index of the last ACK, and whether any intent
		 * after it may have happened. */
		static int64_t last_ack[MAP_KEYS + 1];
		uint64_t acked_adds = 0, loose_adds = 0;

		for (unsigned k = 0; k <= MAP_KEYS; k++)
			last_ack[k] = -1;
		for (size_t i = 0; i < n; i++) {
			ASSERT_LE(r[i].c, MAP_KEYS);
			if (r[i].type == REC_ACK) {
				last_ack[r[i].c] = (int64_t)i;
				f->map_acks++;
				if (r[i].b == MOP_ADD)
					acked_adds++;
			} else {
				ASSERT_EQ(r[i].type, REC_INTENT);
				f->map_intents++;
				/* An intent not followed by its ack. */
				if (r[i].b == MOP_ADD &&
				    (i + 1 == n || r[i + 1].type != REC_ACK ||
				     r[i + 1].n != r[i].n))
					loose_adds++;
			}
		}
		for (unsigned k = 0; k < MAP_KEYS; k++) {
			unsigned char v[64];
			char kb[32];
			int len, ok = 0;
			uint64_t seq;

			key_make(kb, sizeof(kb), w, k);
			len = shmkit_map_get(m, kb, strlen(kb), v, sizeof(v));
			ASSERT_TRUE(len >= 0 || len == -ENOENT);
			seq = len >= 0 ? val_seq(v, len) : 0;
			if (len >= 0 && !seq)
				th_fail(__FILE__, __LINE__, "torn value %s",
					kb);
			/* What the last ack left... */
			if (last_ack[k] >= 0) {
				const struct rec *a = &r[last_ack[k]];

				ok = a->b == MOP_PUT ? (len >= 0 && seq == a->n)
						     : len == -ENOENT;
			} else {
				ok = len == -ENOENT;
			}
			if (ok)
				continue;
			/* ...or an operation attempted after it. */
			for (size_t i = (size_t)(last_ack[k] + 1); i < n; i++) {
				if (r[i].type != REC_INTENT || r[i].c != k)
					continue;
				if ((r[i].b == MOP_PUT && len >= 0 &&
				     seq == r[i].n) ||
				    (r[i].b == MOP_DEL && len == -ENOENT))
					ok = 1;
			}
			if (!ok)
				th_fail(__FILE__, __LINE__,
					"map key %s: value seq %llx (len %d) "
					"is not its last acknowledged one",
					kb, (unsigned long long)seq, len);
			f->unacked_visible++;
		}
		/* The counter. */
		{
			char kb[32];
			int64_t v = 0;
			int len;

			key_make(kb, sizeof(kb), w, MAP_KEYS);
			len = shmkit_map_get(m, kb, strlen(kb), &v, sizeof(v));
			if (len == -ENOENT)
				v = 0;
			else
				ASSERT_EQ(len, 8);
			if (v < (int64_t)acked_adds ||
			    v > (int64_t)(acked_adds + loose_adds))
				th_fail(__FILE__, __LINE__,
					"counter %s = %lld, acknowledged adds "
					"%llu, unacknowledged %llu",
					kb, (long long)v,
					(unsigned long long)acked_adds,
					(unsigned long long)loose_adds);
		}
		free(r);
	}
}

/* The shared-memory directory's entries, sorted, as one string. */
static char *listing(void)
{
	struct dirent **ents;
	size_t cap = 1, len = 0;
	char *s;
	int n = scandir(shmdir, &ents, NULL, alphasort);

	ASSERT_GE(n, 0);
	for (int i = 0; i < n; i++)
		cap += strlen(ents[i]->d_name) + 1;
	s = malloc(cap);
	ASSERT_TRUE(s != NULL);
	s[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (strcmp(ents[i]->d_name, ".") &&
		    strcmp(ents[i]->d_name, ".."))
			len += (size_t)sprintf(s + len, "%s\n",
					       ents[i]->d_name);
		free(ents[i]);
	}
	free(ents);
	return s;
}

static int gc_one(const struct shmkit_seg_info *in, void *arg)
{
	int *removed = arg;

	if (shmkit_seg_gc(in->name, 0) > 0)
		(*removed)++;
	return 0;
}

static const char *gc_tool;
static int soak;

/* Remove every file of dir, then dir. */
static void rm_dir(const char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	rmdir(dir);
}

/* However the test ends: participants killed, private directories gone
 * (the logs stay with SHMKIT_CHAOS_KEEP=1). */
static void cleanup(void)
{
	for (unsigned i = 0; i < NPART; i++)
		if (parts[i].pid > 0 && kill(parts[i].pid, SIGKILL) == 0)
			waitpid(parts[i].pid, NULL, 0);
	if (shmdir[0])
		rm_dir(shmdir);
	if (logdir[0] && !getenv("SHMKIT_CHAOS_KEEP"))
		rm_dir(logdir);
	else if (logdir[0])
		fprintf(stderr, "chaos: logs kept in %s\n", logdir);
}

static double env_num(const char *name, double dflt)
{
	const char *e = getenv(name);

	return e && *e ? atof(e) : dflt;
}

static int test(void)
{
	struct shmkit_chan_opts co = {.sz = sizeof(co),
				      .capacity_bytes = RING_BYTES,
				      .max_msg_bytes = MAX_MSG,
				      .max_producers = NPROD + 2,
				      .flags = SHMKIT_CHAN_SCOPED};
	struct shmkit_seg_opts so = {.sz = sizeof(so),
				     .flags = SHMKIT_SEG_SCOPED};
	struct shmkit_heap_opts ho = {.sz = sizeof(ho),
				      .flags = SHMKIT_HEAP_CREATE |
					       SHMKIT_HEAP_NOCACHE,
				      .lock_timeout_ns = LOCK_TIMEOUT_NS};
	struct shmkit_map_opts mo = {.sz = sizeof(mo),
				     .flags = SHMKIT_MAP_CREATE,
				     .capacity = MAP_CAP,
				     .key_max = 32,
				     .val_max = 64,
				     .lock_timeout_ns = LOCK_TIMEOUT_NS};
	struct shmkit_heap_stats hs0 = {.sz = sizeof(hs0)},
				 hs1 = {.sz = sizeof(hs1)};
	struct shmkit_chan *pc;
	struct shmkit_seg *cseg, *dseg;
	struct shmkit_heap *h;
	struct shmkit_map *m;
	struct figures f = {0};
	struct board *bd;
	double secs, kill_ms;
	uint64_t t_end, t_start;
	char *before, *pre_gc, *after, path[4200], seed[32];
	int fd, removed = 0;

	secs = soak ? env_num("SHMKIT_SOAK_SECONDS", 0)
		    : env_num("SHMKIT_CHAOS_SECONDS", 10);
	if (soak && secs <= 0)
		SKIP("soak: set SHMKIT_SOAK_SECONDS");
	kill_ms = env_num("SHMKIT_CHAOS_KILL_MS", 5);
	/* Participants seed from this run's seed (see ctx_init()). */
	snprintf(seed, sizeof(seed), "%llu", (unsigned long long)th_seed());
	ASSERT_OK(setenv("TH_SEED", seed, 1));
	if (kill_ms < 1)
		kill_ms = 1;

	/* A private shared-memory directory (on tmpfs) and log directory:
	 * nobody else's segments come or go in the listing we compare. */
	snprintf(shmdir, sizeof(shmdir), "/dev/shm/shmkit-chaos-%d.XXXXXX",
		 (int)getpid());
	if (!mkdtemp(shmdir))
		SKIP("no /dev/shm to make a private directory in");
	ASSERT_OK(setenv("SHMKIT_SHM_DIR", shmdir, 1));
	snprintf(logdir, sizeof(logdir), "%s/shmkit-chaos-log-%d.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	ASSERT_TRUE(mkdtemp(logdir) != NULL);
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/board", logdir);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	ASSERT_GE(fd, 0);
	ASSERT_OK(ftruncate(fd, sizeof(struct board)));
	bd = mmap(NULL, sizeof(*bd), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_TRUE(bd != MAP_FAILED);
	close(fd);
	before = listing();

	/* The channel and the data segment, scoped, kept alive by this
	 * process's handles until the end. */
	th_name(chan_name, sizeof(chan_name), "chaos-chan");
	th_name(data_name, sizeof(data_name), "chaos-data");
	ASSERT_OK(
		shmkit_chan_create(chan_name, &co, SHMKIT_CHAN_PRODUCER, &pc));
	ASSERT_OK(shmkit_seg_open(chan_name, NULL, &cseg));
	shmkit_chan_close(pc);
	ASSERT_OK(shmkit_seg_create(data_name, DATA_BYTES, &so, &dseg));
	ASSERT_OK(shmkit_heap_open(dseg, &ho, &h));
	ASSERT_EQ(shmkit_map_open(h, "chaos", &mo, &m), 1);
	ASSERT_OK(shmkit_heap_stats(h, &hs0));

	for (unsigned i = 0; i < NPART; i++)
		start(i);
	t_start = th_now_ns();
	t_end = t_start + (uint64_t)(secs * 1e9);
	while (th_now_ns() < t_end) {
		unsigned victim = (unsigned)(th_rand() % NPART);
		int st;

		usleep((useconds_t)(1000 +
				    th_rand() %
					    (uint64_t)(2000 * kill_ms - 1000)));
		/* Anyone who ended by itself failed (look without
		 * reaping; th_wait reaps and forgets it). */
		for (unsigned i = 0; i < NPART; i++) {
			siginfo_t si = {0};

			if (waitid(P_PID, (id_t)parts[i].pid, &si,
				   WEXITED | WNOHANG | WNOWAIT) == 0 &&
			    si.si_pid == parts[i].pid) {
				pid_t pid = parts[i].pid;

				parts[i].pid =
					0; /* reaped: not ours any more */
				check_exit(i, th_wait(pid, 1000), 0);
			}
		}
		if (selftest("lose") || selftest("ack") || selftest("leak"))
			continue;
		st = th_kill(parts[victim].pid);
		parts[victim].pid = 0;
		if (!th_was_killed(st))
			check_exit(victim, st, 0);
		f.kills++;
		start(victim);
	}

	/* Stop: everyone finishes cleanly; the consumer drains to the end
	 * of the stream once the producers have closed. */
	atomic_store(&bd->stop, 1);
	for (unsigned i = 0; i < NPART; i++) {
		int st = th_wait(parts[i].pid, 60000);

		parts[i].pid = 0;
		if (st == -ETIMEDOUT)
			th_fail(__FILE__, __LINE__, "%s %u hangs at the end",
				role_of(i), i);
		check_exit(i, st, 1);
	}

	/* Checkers and logs. */
	ASSERT_OK(shmkit_map_check(m));
	check_messages(&f);
	check_map(m, &f);
	{
		static struct leftovers lo = {.prefix = "h"};
		int rc;

		ASSERT_GE(shmkit_obj_list(h, collect, &lo), 0);
		for (unsigned i = 0; i < lo.n; i++)
			ASSERT_OK(shmkit_obj_remove(h, lo.names[i]));
		rc = shmkit_heap_reclaim(h);
		ASSERT_GE(rc, 0);
		bd->reclaimed += (uint64_t)rc;
	}
	ASSERT_OK(shmkit_heap_check(h));
	ASSERT_OK(shmkit_heap_stats(h, &hs1));
	/* Nothing leaked: every block is back but the map's. */
	if (hs1.used_blocks != hs0.used_blocks ||
	    hs1.used_bytes != hs0.used_bytes || hs1.cached_blocks)
		th_fail(__FILE__, __LINE__,
			"heap leak: %llu blocks / %llu bytes used, %llu / "
			"%llu at the start",
			(unsigned long long)hs1.used_blocks,
			(unsigned long long)hs1.used_bytes,
			(unsigned long long)hs0.used_blocks,
			(unsigned long long)hs0.used_bytes);

	/* Bounds. */
	fprintf(stderr, "%-16s %10s %10s %10s %10s\n", "call", "calls",
		"timeouts", "max ms", "bound ms");
	for (int op = 0; op < NOPS; op++) {
		uint64_t mx = atomic_load(&bd->max_ns[op]);
		uint64_t bound =
			op_bound((enum op)op) * (uint64_t)th_slow_factor();

		fprintf(stderr, "%-16s %10llu %10llu %10.2f %10.0f\n",
			op_name[op], (unsigned long long)bd->calls[op],
			(unsigned long long)bd->timeouts[op], mx / 1e6,
			bound / 1e6);
		if (mx > bound)
			th_fail(__FILE__, __LINE__,
				"%s took %.1f ms, bound %.1f ms", op_name[op],
				mx / 1e6, bound / 1e6);
	}

	/* Everything closed, gc: the directory is as it was. The heap
	 * users' last lives left their scratch segments stale. */
	shmkit_map_close(m);
	shmkit_heap_close(h);
	shmkit_seg_close(dseg);
	shmkit_seg_close(cseg);
	pre_gc = listing();
	if (strcmp(before, pre_gc) == 0)
		th_fail(__FILE__, __LINE__, "nothing left for gc to do");
	if (selftest("leak")) {
		struct shmkit_seg *x;

		ASSERT_OK(shmkit_seg_create("chaos-leak", 4096, NULL, &x));
		shmkit_seg_close(x);
	}
	if (gc_tool) {
		char cmd[8400];

		snprintf(cmd, sizeof(cmd), "'%s' gc >&2", gc_tool);
		ASSERT_EQ(system(cmd), 0);
	} else {
		ASSERT_OK(shmkit_seg_list(gc_one, &removed));
	}
	after = listing();
	if (strcmp(before, after) != 0)
		th_fail(__FILE__, __LINE__, "%s after gc:\n%s\nbefore:\n%s",
			shmdir, after, before);

	fprintf(stderr,
		"chaos: %.0f s, kills survived %llu, messages sent (logged) "
		"%llu, received %llu (redelivered, flagged %llu; duplicates "
		"%llu), producer deaths reported %llu, map operations "
		"acknowledged %llu of %llu attempted, owned heap blocks "
		"reclaimed %llu, lost 0\n",
		(th_now_ns() - t_start) / 1e9, (unsigned long long)f.kills,
		(unsigned long long)f.sent, (unsigned long long)f.received,
		(unsigned long long)bd->redelivered, (unsigned long long)f.dups,
		(unsigned long long)bd->resets, (unsigned long long)f.map_acks,
		(unsigned long long)f.map_intents,
		(unsigned long long)bd->reclaimed);
	ASSERT_GT(f.kills, 0);
	ASSERT_GT(f.sent, 0);
	ASSERT_GT(f.map_acks, 0);

	free(before);
	free(pre_gc);
	free(after);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"producer", role_producer},
					       {"consumer", role_consumer},
					       {"mapw", role_mapw},
					       {"heap", role_heap},
					       {NULL, NULL}};

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--soak") == 0)
			soak = 1;
		else if (strcmp(argv[i], "--gc-tool") == 0 && i + 1 < argc)
			gc_tool = argv[++i];
	}
	return th_run(argc, argv, roles, test);
}
