/* SPDX-License-Identifier: MIT */
/*
 * shmkit bench workloads: one job is one measurement by two forked worker
 * processes (ping-pong, streaming, wake-up, idle wait) or one (memcpy).
 * Every message carries its sequence number and a pattern that is checked
 * on arrival. Also the histogram, the hog process and the watchdog.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* ---- histogram -------------------------------------------------------------- */

static unsigned hist_index(uint64_t v)
{
	unsigned msb;

	if (v < BENCH_HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	if (msb > 40)
		return BENCH_HIST_BUCKETS - 1;
	/* v in [2^msb, 2^(msb+1)): 32 equal sub-buckets. */
	return BENCH_HIST_SUB + (msb - 5) * BENCH_HIST_SUB +
	       (unsigned)((v >> (msb - 5)) - BENCH_HIST_SUB);
}

/* The middle of bucket i. */
static uint64_t hist_value(unsigned i)
{
	unsigned msb, sub;
	uint64_t lo, width;

	if (i < BENCH_HIST_SUB)
		return i;
	msb = (i - BENCH_HIST_SUB) / BENCH_HIST_SUB + 5;
	sub = (i - BENCH_HIST_SUB) % BENCH_HIST_SUB;
	width = 1ull << (msb - 5);
	lo = (1ull << msb) + sub * width;
	return lo + width / 2;
}

void bench_hist_add(struct bench_hist *h, uint64_t v)
{
	if (h->n == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->n++;
	h->b[hist_index(v)]++;
}

uint64_t bench_hist_pct(const struct bench_hist *h, double q)
{
	uint64_t rank, seen = 0, v;

	if (h->n == 0)
		return 0;
	if (q >= 1)
		return h->max;
	rank = (uint64_t)(q * (double)h->n);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			v = hist_value(i);
			if (v < h->min)
				v = h->min;
			if (v > h->max)
				v = h->max;
			return v;
		}
	}
	return h->max;
}

/* ---- message pattern -------------------------------------------------------- */

/*
 * Word k of message seq in direction salt: one multiply per message, so
 * that checking costs little next to the fastest transports, yet a stale,
 * torn, duplicated or misdirected message never matches.
 */
static uint64_t word_base(uint64_t seq, uint64_t salt)
{
	return (seq ^ salt << 32) * 0x9e3779b97f4a7c15ull;
}

#define WORD_STEP 0xd6e8feb86659fd93ull

static uint64_t word_k(uint64_t base, unsigned k)
{
	return base + (uint64_t)k * WORD_STEP;
}

#define SAMPLES 16

/* Offset of pattern word k of message seq, or 0 past the last one. */
static size_t word_at(size_t len, uint64_t seq, unsigned k)
{
	size_t words = (len - BENCH_HDR_SIZE) / 8, stride;

	if (len <= 256)
		return k < words ? BENCH_HDR_SIZE + 8 * (size_t)k : 0;
	if (k >= SAMPLES)
		return 0;
	stride = words / SAMPLES;
	return BENCH_HDR_SIZE + 8 * (k * stride + (size_t)((seq + k) % stride));
}

void bench_fill(void *buf, size_t len, uint64_t seq, uint32_t flags,
		uint64_t salt)
{
	struct bench_hdr *h = buf;
	uint64_t w = word_base(seq, salt);

	h->seq = seq;
	h->stamp_ns = 0;
	h->len = (uint32_t)len;
	h->flags = flags;
	/* Word k is word_k(base, k): one addition per word. The fastest
	 * transports move a 64-byte message in tens of instructions, so
	 * the pattern must cost no more than that. */
	if (len <= 256) {
		unsigned char *p = (unsigned char *)buf + BENCH_HDR_SIZE;
		size_t words = (len - BENCH_HDR_SIZE) / 8;

		for (size_t k = 0; k < words; k++, w += WORD_STEP)
			memcpy(p + 8 * k, &w, 8);
		return;
	}
	for (unsigned k = 0; k < SAMPLES; k++, w += WORD_STEP)
		memcpy((char *)buf + word_at(len, seq, k), &w, 8);
}

/* pattern_ok() for messages over 256 bytes: the sampled words. Out of
 * line, so that the common small case stays short. */
static __attribute__((noinline)) int
pattern_ok_sampled(const void *buf, size_t len, uint64_t seq, uint64_t w)
{
	uint64_t got;

	for (unsigned k = 0; k < SAMPLES; k++, w += WORD_STEP) {
		memcpy(&got, (const char *)buf + word_at(len, seq, k), 8);
		if (got != w)
			return 0;
	}
	return 1;
}

/* The pattern of message seq is intact (the header is checked apart). */
static int pattern_ok(const void *buf, size_t len, uint64_t seq, uint64_t salt)
{
	uint64_t w = word_base(seq, salt), got;

	if (len <= 256) {
		const unsigned char *p =
			(const unsigned char *)buf + BENCH_HDR_SIZE;
		size_t words = (len - BENCH_HDR_SIZE) / 8;

		for (size_t k = 0; k < words; k++, w += WORD_STEP) {
			memcpy(&got, p + 8 * k, 8);
			if (got != w)
				return 0;
		}
		return 1;
	}
	return pattern_ok_sampled(buf, len, seq, w);
}

/* bench_check() once a message failed the fast checks: find and describe
 * what is wrong. */
static __attribute__((noinline, cold)) int
check_report(const void *buf, size_t len, uint64_t seq, uint64_t salt,
	     int seq_only, uint32_t *flags, struct bench_bad *bad, char *why,
	     size_t whylen)
{
	const struct bench_hdr *h = buf;
	uint64_t base = word_base(seq, salt);
	size_t off;

	memset(bad, 0, sizeof(*bad));
	bad->want_seq = seq;
	bad->got_seq = h->seq;
	if (h->seq != seq) {
		snprintf(why, whylen, "message %llu arrived as number %llu",
			 (unsigned long long)seq, (unsigned long long)h->seq);
		return -EBADMSG;
	}
	if (h->len != len || (h->flags & ~BENCH_STOP)) {
		snprintf(why, whylen,
			 "message %llu: header says %u bytes, flags %#x "
			 "(expected %zu bytes, flags 0 or %#x)",
			 (unsigned long long)seq, (unsigned)h->len,
			 (unsigned)h->flags, len, BENCH_STOP);
		return -EBADMSG;
	}
	*flags = h->flags;
	if (seq_only)
		return 0;
	for (unsigned k = 0; (off = word_at(len, seq, k)) != 0; k++) {
		uint64_t w, want = word_k(base, k);

		memcpy(&w, (const char *)buf + off, 8);
		if (w != want) {
			bad->off = off;
			bad->want = want;
			bad->got = w;
			snprintf(why, whylen,
				 "message %llu: wrong bytes at offset %zu "
				 "(expected %#018llx, got %#018llx)",
				 (unsigned long long)seq, off,
				 (unsigned long long)want,
				 (unsigned long long)w);
			return -EBADMSG;
		}
	}
	return 0;
}

int bench_check(const void *buf, size_t len, uint64_t seq, uint64_t salt,
		int seq_only, uint32_t *flags, struct bench_bad *bad, char *why,
		size_t whylen)
{
	const struct bench_hdr *h = buf;

	if (__builtin_expect(h->seq == seq && h->len == len &&
				     !(h->flags & ~BENCH_STOP) &&
				     (seq_only ||
				      pattern_ok(buf, len, seq, salt)),
			     1)) {
		*flags = h->flags;
		return 0;
	}
	return check_report(buf, len, seq, salt, seq_only, flags, bad, why,
			    whylen);
}

/* ---- what the two workers of a job share -------------------------------- */

struct bench_side {
	int32_t status;	 /* 0 ok, else failed (why) */
	int32_t cpu;	 /* sched_getcpu() after placement */
	int32_t cpu_end; /* and after the workload */
	int32_t pin_ok;
	uint32_t pad;
	uint64_t sent, received, verified, errors;
	uint64_t count;	  /* rounds or messages timed */
	uint64_t span_ns; /* over which they were timed */
	uint64_t cpu_ns;  /* CPU time over the test (B) */
	uint64_t wall_ns; /* the test's wall time (B) */
	int32_t bad_dir;  /* first bad message received: BENCH_BAD_* */
	struct bench_bad bad;
	char why[200];
};

struct bench_shm {
	_Alignas(64) _Atomic uint32_t arrive; /* barrier */
	_Atomic uint32_t abort;		      /* a side failed */
	_Atomic uint32_t waiting;	      /* idle test: B is waiting */
	struct bench_side side[2];
	struct bench_hist hist; /* written by the side that times */
};

static int side_fail(struct bench_side *s, const char *what, int rc)
{
	if (!s->status) {
		s->status = rc ? rc : -1;
		snprintf(s->why, sizeof(s->why), "%s: %s", what,
			 rc == -EBADMSG ? "message of the wrong size"
					: strerror(-rc));
	}
	return -1;
}

static const char *const bad_dir_name[] = {"", "A to B", "B to A", "copy"};

/* A message that travelled in direction dir failed its check. */
static int bad_msg(struct bench_side *s, int dir, const struct bench_bad *bad,
		   const char *why)
{
	s->errors++;
	if (!s->status) {
		s->status = -EBADMSG;
		s->bad_dir = dir;
		s->bad = *bad;
		snprintf(s->why, sizeof(s->why), "verification, %s: %s",
			 bad_dir_name[dir], why);
	}
	return -1;
}

/* Both workers here before either starts; gives up if the other failed. */
static int barrier(struct bench_shm *sh)
{
	uint64_t t0 = bench_now_ns();
	unsigned spins = 0;

	atomic_fetch_add(&sh->arrive, 1);
	while (atomic_load(&sh->arrive) < 2) {
		if (atomic_load(&sh->abort))
			return -ECANCELED;
		if (++spins < 10000) {
			bench_relax();
			continue;
		}
		sched_yield();
		if (bench_now_ns() - t0 > 10000000000ull)
			return -ETIMEDOUT;
	}
	return 0;
}

static uint64_t cpu_time_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) *
		       1000000000ull +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) *
		       1000ull;
}

/* ---- workloads -------------------------------------------------------------- */

struct wctx {
	struct bench_job *j;
	struct bench_tp *t;
	struct bench_side *s;
	unsigned char *m; /* outgoing */
	unsigned char *r; /* incoming */
	int side;	  /* 0: A, 1: B */
	int seq_only;
	struct bench_bad bad;
	char why[160];
};

static int xsend(struct wctx *w, uint64_t seq, uint32_t flags, uint64_t salt,
		 uint64_t stamp)
{
	int rc;

	bench_fill(w->m, w->j->size, seq, flags, salt);
	if (stamp)
		((struct bench_hdr *)w->m)->stamp_ns = bench_now_ns();
	if (w->j->corrupt && (w->s->sent + 1) % w->j->corrupt == 0) {
		/* A byte of the pattern, or the sequence number where the
		 * transport carries nothing else. */
		size_t off = word_at(w->j->size, seq, 0);

		if (w->seq_only || !off)
			((struct bench_hdr *)w->m)->seq ^= 1;
		else
			w->m[off] ^= 1;
	}
	rc = w->t->ops->send(w->t, w->m, w->j->size);
	if (rc < 0)
		return side_fail(w->s, "send", rc);
	w->s->sent++;
	return 0;
}

/* Receive and verify message seq; its flags in *flags. */
static int xrecv(struct wctx *w, uint64_t seq, uint64_t salt, uint32_t *flags)
{
	int rc = w->t->ops->recv(w->t, w->r, w->j->size);

	if (rc < 0)
		return side_fail(w->s, "receive", rc);
	w->s->received++;
	if (bench_check(w->r, w->j->size, seq, salt, w->seq_only, flags,
			&w->bad, w->why, sizeof(w->why)) < 0)
		return bad_msg(w->s, w->side ? BENCH_BAD_AB : BENCH_BAD_BA,
			       &w->bad, w->why);
	w->s->verified++;
	return 0;
}

static uint64_t end_time(const struct bench_job *j, uint64_t t0)
{
	return t0 + (uint64_t)(j->dur_s * 1e9);
}

/* A: ping, wait for the pong, time the round trip. */
static void pingpong_a(struct wctx *w, struct bench_hist *h)
{
	uint64_t t0 = bench_now_ns(), end = end_time(w->j, t0);
	uint64_t warm = t0 + (uint64_t)(w->j->dur_s * 1e9 / 5), prev = t0;
	uint64_t first = 0, last = 0, seq, n = 0;
	uint32_t fl;

	if (warm > t0 + 50000000ull)
		warm = t0 + 50000000ull;
	for (seq = 1;; seq++) {
		uint64_t t;

		if (xsend(w, seq, 0, BENCH_SALT_AB, 0) < 0 ||
		    xrecv(w, seq, BENCH_SALT_BA, &fl) < 0)
			return;
		t = bench_now_ns();
		/* Past the warm-up; or the only round there was, when one
		 * round took the whole time (busy polling, CPUs taken). */
		if (prev >= warm || (t >= end && n == 0)) {
			if (!first)
				first = prev;
			bench_hist_add(h, t - prev);
			n++;
			last = t;
		}
		prev = t;
		if (t >= end)
			break;
	}
	xsend(w, seq + 1, BENCH_STOP, BENCH_SALT_AB, 0);
	w->s->count = n;
	w->s->span_ns = last - first;
}

/* B: answer every ping until the stop message. */
static void pingpong_b(struct wctx *w)
{
	uint32_t fl = 0;

	for (uint64_t seq = 1;; seq++) {
		if (xrecv(w, seq, BENCH_SALT_AB, &fl) < 0 || (fl & BENCH_STOP))
			return;
		if (xsend(w, seq, 0, BENCH_SALT_BA, 0) < 0)
			return;
	}
}

static void stream_a(struct wctx *w)
{
	uint64_t end = end_time(w->j, bench_now_ns()), seq;
	uint64_t mask = w->j->size >= 4096 ? 0 : 63;

	for (seq = 1;; seq++) {
		if (xsend(w, seq, 0, BENCH_SALT_AB, 0) < 0)
			return;
		if ((seq & mask) == 0 && bench_now_ns() >= end)
			break;
	}
	xsend(w, seq + 1, BENCH_STOP, BENCH_SALT_AB, 0);
}

/* B: the rate is taken from the first message to the stop message. */
static void stream_b(struct wctx *w)
{
	uint64_t t0 = 0;
	uint32_t fl = 0;

	for (uint64_t seq = 1;; seq++) {
		if (xrecv(w, seq, BENCH_SALT_AB, &fl) < 0)
			return;
		if (seq == 1)
			t0 = bench_now_ns();
		if (fl & BENCH_STOP) {
			w->s->span_ns = bench_now_ns() - t0;
			w->s->count = seq - 1;
			return;
		}
	}
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A: sleep 1-3 ms (the receiver goes to sleep), then send, stamped. */
static void wake_a(struct wctx *w)
{
	uint64_t end = end_time(w->j, bench_now_ns()),
		 rng = 0x9e3779b97f4a7c15ull;
	uint64_t seq;

	for (seq = 1; bench_now_ns() < end; seq++) {
		struct timespec ts = {
			0, 1000000 + (long)(xorshift(&rng) % 2000000)};

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		if (xsend(w, seq, 0, BENCH_SALT_AB, 1) < 0)
			return;
	}
	xsend(w, seq, BENCH_STOP, BENCH_SALT_AB, 0);
}

static void wake_b(struct wctx *w, struct bench_hist *h)
{
	uint64_t c0 = cpu_time_ns(), t0 = bench_now_ns();
	uint32_t fl = 0;

	for (uint64_t seq = 1;; seq++) {
		uint64_t t;

		if (xrecv(w, seq, BENCH_SALT_AB, &fl) < 0)
			return;
		t = bench_now_ns();
		if (fl & BENCH_STOP)
			break;
		bench_hist_add(h, t - ((struct bench_hdr *)w->r)->stamp_ns);
		w->s->count++;
	}
	w->s->wall_ns = bench_now_ns() - t0;
	w->s->cpu_ns = cpu_time_ns() - c0;
}

/* A: wait until B waits, let it wait dur_s, then send one message. */
static void idle_a(struct wctx *w, struct bench_shm *sh)
{
	struct timespec ts;
	double d = w->j->dur_s;

	while (!atomic_load(&sh->waiting)) {
		if (atomic_load(&sh->abort))
			return;
		usleep(1000);
	}
	ts.tv_sec = (time_t)d;
	ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	xsend(w, 1, BENCH_STOP, BENCH_SALT_AB, 0);
}

static void idle_b(struct wctx *w, struct bench_shm *sh)
{
	uint64_t c0, t0;
	uint32_t fl;

	c0 = cpu_time_ns();
	t0 = bench_now_ns();
	atomic_store(&sh->waiting, 1);
	if (xrecv(w, 1, BENCH_SALT_AB, &fl) < 0)
		return;
	w->s->wall_ns = bench_now_ns() - t0;
	w->s->cpu_ns = cpu_time_ns() - c0;
	w->s->count = 1;
}

/* One process copies size-byte blocks around a 4 MiB arena (like a
 * message going into a ring and out of it, without the other CPU). */
static void memcpy_work(struct wctx *w)
{
	size_t size = w->j->size, arena = 4u << 20;
	unsigned char *src, *dst;
	uint64_t t0, end, seq = 0, n = 0;
	uint32_t fl;

	if (arena < 2 * size)
		arena = 2 * size;
	src = malloc(arena);
	dst = malloc(arena);
	if (!src || !dst) {
		side_fail(w->s, "malloc", -ENOMEM);
		goto out;
	}
	memset(src, 1, arena);
	memset(dst, 2, arena);
	t0 = bench_now_ns();
	end = end_time(w->j, t0);
	do {
		size_t off = (size_t)(seq * size % (arena - size + 1)) & ~63ul;
		size_t so = arena - size - off;

		seq++;
		/* The pattern in the source, checked in the copy: the
		 * copy cannot be optimised away or go wrong unseen. */
		bench_fill(src + so, size, seq, 0, BENCH_SALT_AB);
		memcpy(dst + off, src + so, size);
		w->s->sent++;
		w->s->received++;
		if (bench_check(dst + off, size, seq, BENCH_SALT_AB, 0, &fl,
				&w->bad, w->why, sizeof(w->why)) < 0) {
			bad_msg(w->s, BENCH_BAD_COPY, &w->bad, w->why);
			goto out;
		}
		w->s->verified++;
		n++;
	} while ((n & 15) || bench_now_ns() < end);
	w->s->count = n;
	w->s->span_ns = bench_now_ns() - t0;
out:
	free(src);
	free(dst);
}

/* ---- workers ---------------------------------------------------------------- */

static void place(struct bench_job *j, int side, struct bench_side *s)
{
	cpu_set_t set;

	if (j->pinned) {
		CPU_ZERO(&set);
		CPU_SET(j->cpu[side], &set);
		s->pin_ok = sched_setaffinity(0, sizeof(set), &set) == 0;
	}
	s->cpu = sched_getcpu();
	if (j->pinned && s->cpu != j->cpu[side])
		s->pin_ok = 0;
}

static void worker(struct bench_job *j, int side)
{
	struct bench_shm *sh = j->sh;
	struct bench_side *s = &sh->side[side];
	struct bench_tp *t = &j->tp;
	struct wctx w = {.j = j, .t = t, .s = s, .side = side};
	int rc;

	place(j, side, s);
	w.seq_only = (j->ops->flags & BENCH_TP_FLOOR) != 0;
	w.m = malloc(j->size);
	w.r = malloc(j->size);
	if (!w.m || !w.r) {
		side_fail(s, "malloc", -ENOMEM);
		goto out;
	}
	memset(w.m, 0, j->size);
	memset(w.r, 0, j->size);
	if (j->work == BW_MEMCPY) {
		memcpy_work(&w);
		s->cpu_end = sched_getcpu();
		goto out;
	}
	t->side = side;
	rc = t->ops->attach(t);
	if (rc < 0) {
		if (!s->status) {
			s->status = rc;
			snprintf(s->why, sizeof(s->why), "%s",
				 t->why[0] ? t->why : strerror(-rc));
		}
		atomic_store(&sh->abort, 1);
		atomic_fetch_add(&sh->arrive, 1);
		goto out;
	}
	rc = barrier(sh);
	if (rc < 0) {
		side_fail(s, "waiting for the other process", rc);
		goto detach;
	}
	if (side == 0 && t->ops->ready)
		t->ops->ready(t);
	switch (j->work) {
	case BW_PINGPONG:
		if (side == 0)
			pingpong_a(&w, &sh->hist);
		else
			pingpong_b(&w);
		break;
	case BW_STREAM:
		if (side == 0)
			stream_a(&w);
		else
			stream_b(&w);
		break;
	case BW_WAKE:
		if (side == 0)
			wake_a(&w);
		else
			wake_b(&w, &sh->hist);
		break;
	case BW_IDLE:
		if (side == 0)
			idle_a(&w, sh);
		else
			idle_b(&w, sh);
		break;
	case BW_MEMCPY:
		break;
	}
	s->cpu_end = sched_getcpu();
	if (s->status)
		atomic_store(&sh->abort, 1);
detach:
	t->ops->detach(t);
out:
	free(w.m);
	free(w.r);
	_exit(s->status ? 1 : 0);
}

/* ---- jobs ------------------------------------------------------------------- */

static uint64_t job_counter;

static void job_fail(struct bench_job *j, const char *fmt, const char *what)
{
	j->res.ok = 0;
	if (!j->res.why[0])
		snprintf(j->res.why, sizeof(j->res.why), fmt, what);
}

int bench_job_start(struct bench_job *j)
{
	int nsides = j->work == BW_MEMCPY ? 1 : 2;
	struct bench_tp *t = &j->tp;
	int rc;

	memset(&j->res, 0, sizeof(j->res));
	memset(t, 0, sizeof(*t));
	j->res.ran = 1;
	j->pid[0] = j->pid[1] = 0;
	for (int i = 0; i < 8; i++)
		t->fd[i] = -1;
	t->ops = j->ops;
	t->size = j->size;
	t->job_id = ++job_counter;
	j->sh = mmap(NULL, sizeof(*j->sh), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (j->sh == MAP_FAILED) {
		j->sh = NULL;
		job_fail(j, "mmap: %s", strerror(errno));
		return -ENOMEM;
	}
	if (nsides == 2) {
		rc = j->ops->setup(t);
		if (rc < 0) {
			job_fail(j, "%s", t->why[0] ? t->why : strerror(-rc));
			j->ops->teardown(t);
			return rc;
		}
	}
	fflush(NULL);
	for (int side = 0; side < nsides; side++) {
		pid_t pid = fork();

		if (pid == 0)
			worker(j, side);
		if (pid < 0) {
			job_fail(j, "fork: %s", strerror(errno));
			atomic_store(&j->sh->abort, 1);
			break;
		}
		j->pid[side] = pid;
	}
	if (nsides == 2)
		j->ops->parent_close(t);
	j->deadline_ns =
		bench_now_ns() + (uint64_t)(j->dur_s * 1e9) + 20000000000ull;
	return 0;
}

/* Sleep until a child changes state or the time comes. */
static void wait_child_event(uint64_t until)
{
	uint64_t now = bench_now_ns();
	struct timespec ts;
	sigset_t set;

	if (now >= until)
		return;
	now = until - now;
	if (now > 100000000ull)
		now = 100000000ull; /* look again now and then */
	ts.tv_sec = (time_t)(now / 1000000000ull);
	ts.tv_nsec = (long)(now % 1000000000ull);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigtimedwait(&set, NULL, &ts);
}

static void fill_result(struct bench_job *j)
{
	struct bench_res *r = &j->res;
	struct bench_shm *sh = j->sh;
	int nsides = j->work == BW_MEMCPY ? 1 : 2;
	const struct bench_side *timer;
	int bad_seen = 0;

	for (int i = 0; i < nsides; i++) {
		const struct bench_side *s = &sh->side[i];

		r->sent += s->sent;
		r->received += s->received;
		r->verified += s->verified;
		r->errors += s->errors;
		r->cpu_seen[i] = s->cpu;
		r->cpu_seen_end[i] = s->cpu_end;
		/* The first failure, but a message that failed its check
		 * explains the other side's failure (it hung up), not the
		 * other way round. */
		if (s->status && (r->ok || (s->errors && !bad_seen))) {
			r->ok = 0;
			bad_seen = s->errors != 0;
			snprintf(r->why, sizeof(r->why), "%s", s->why);
			r->bad_dir = s->bad_dir;
			r->bad = s->bad;
		}
	}
	r->pin_ok = j->pinned && sh->side[0].pin_ok &&
		    (nsides == 1 || sh->side[1].pin_ok);
	timer = &sh->side[j->work == BW_PINGPONG || nsides == 1 ? 0 : 1];
	r->count = timer->count;
	r->secs = (double)timer->span_ns / 1e9;
	if (r->secs > 0)
		r->rate = (double)r->count / r->secs;
	r->bytes_per_s = r->rate * (double)j->size;
	if (timer->wall_ns)
		r->cpu_pct =
			100.0 * (double)timer->cpu_ns / (double)timer->wall_ns;
	r->nsamples = sh->hist.n;
	r->p50 = bench_hist_pct(&sh->hist, 0.5);
	r->p90 = bench_hist_pct(&sh->hist, 0.9);
	r->p99 = bench_hist_pct(&sh->hist, 0.99);
	r->p999 = bench_hist_pct(&sh->hist, 0.999);
	r->max = sh->hist.max;
	r->min = sh->hist.min;
	/* Every message sent arrived, and every one that arrived was
	 * checked: else the transport is broken, whatever its speed. */
	if (r->ok && (r->received != r->verified || r->sent != r->received)) {
		r->ok = 0;
		snprintf(r->why, sizeof(r->why),
			 "%llu messages sent, %llu received, %llu verified",
			 (unsigned long long)r->sent,
			 (unsigned long long)r->received,
			 (unsigned long long)r->verified);
	}
}

/* A failure names its transport and workload, whoever reads it. */
static void name_failure(struct bench_job *j)
{
	struct bench_res *r = &j->res;
	char why[sizeof(r->why)];

	if (r->ok || !r->why[0])
		return;
	snprintf(why, sizeof(why), "%s", r->why);
	/* A side's reason fits in 200 bytes (struct bench_side). */
	snprintf(r->why, sizeof(r->why), "%s %s: %.200s", j->ops->name,
		 j->label ? j->label : "job", why);
}

void bench_job_wait(struct bench_job *j)
{
	int nsides = j->work == BW_MEMCPY ? 1 : 2, left = 0, st;
	uint64_t grace = 0;

	if (!j->sh) {
		name_failure(j); /* never started: res says why */
		return;
	}
	for (int i = 0; i < nsides; i++)
		left += j->pid[i] > 0;
	j->res.ok = j->res.why[0] ? 0 : 1;
	while (left) {
		uint64_t now = bench_now_ns();

		for (int i = 0; i < nsides; i++) {
			pid_t p = j->pid[i];

			if (p <= 0 || waitpid(p, &st, WNOHANG) != p)
				continue;
			j->pid[i] = 0;
			left--;
			if (WIFSIGNALED(st)) {
				char sig[80];

				snprintf(sig, sizeof(sig), "%s",
					 strsignal(WTERMSIG(st)));
				job_fail(j, "worker killed by signal: %s", sig);
			}
			if (WIFEXITED(st) && WEXITSTATUS(st) != 0 &&
			    !j->sh->side[i].status) {
				char code[16];

				snprintf(code, sizeof(code), "%d",
					 WEXITSTATUS(st));
				job_fail(j, "worker exited with status %s",
					 code);
			}
			/* One side failed: the other gets a second to
			 * notice, then goes too. */
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				grace = now + 1000000000ull;
		}
		if (!left)
			break;
		if (now >= j->deadline_ns || (grace && now >= grace)) {
			for (int i = 0; i < nsides; i++)
				if (j->pid[i] > 0)
					kill(j->pid[i], SIGKILL);
			if (now >= j->deadline_ns)
				job_fail(j, "%s",
					 "timed out: no progress within 20 s");
			grace = 0;
			j->deadline_ns = now + 5000000000ull;
			for (int i = 0; i < nsides; i++)
				if (j->pid[i] > 0) {
					waitpid(j->pid[i], &st, 0);
					j->pid[i] = 0;
					left--;
				}
			break;
		}
		wait_child_event(grace && grace < j->deadline_ns
					 ? grace
					 : j->deadline_ns);
	}
	fill_result(j);
	name_failure(j);
	if (j->work != BW_MEMCPY)
		j->ops->teardown(&j->tp);
	munmap(j->sh, sizeof(*j->sh));
	j->sh = NULL;
}

/* ---- the hog and the timer -------------------------------------------------- */

pid_t bench_hog_start(void)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		volatile uint64_t x = 0;

		for (;;)
			x++;
	}
	return pid;
}

void bench_hog_stop(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

double bench_timer_ns(void)
{
	uint64_t v[101];

	for (int i = 0; i < 101; i++) {
		uint64_t t0 = bench_now_ns(), t1;

		for (int k = 0; k < 99; k++)
			bench_now_ns();
		t1 = bench_now_ns();
		v[i] = t1 - t0;
	}
	qsort(v, 101, sizeof(v[0]), cmp_u64);
	return (double)v[50] / 100.0;
}
