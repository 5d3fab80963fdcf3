/* SPDX-License-Identifier: MIT */
/*
 * shmkit bench output: the aligned tables with units in the column names
 * and ratios to the pipe and to the floors, the JSON document (context,
 * results, verification, targets) and the gnuplot data and script.
 */
#define _GNU_SOURCE
#include "bench.h"
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_git.h" /* SHMKIT_GIT_REV, made at build time */

#ifndef SHMKIT_BUILD_TYPE
#define SHMKIT_BUILD_TYPE ""
#endif

/* CMAKE_BUILD_TYPE, which may be empty. */
static const char *build_type(void)
{
	return SHMKIT_BUILD_TYPE[0] ? SHMKIT_BUILD_TYPE : "default";
}

static const char *compiler(void)
{
#if defined(__clang__)
	return "clang " __clang_version__;
#elif defined(__GNUC__)
	return "gcc " __VERSION__;
#else
	return "unknown";
#endif
}

static int res_ok(const struct bench_res *x)
{
	return x->ran && x->ok;
}

/* ---- derived figures ------------------------------------------------------------ */

/* How many times slower the round trip became with the busy process. */
static double slowdown(const struct bench_res *alone,
		       const struct bench_res *hog)
{
	if (!res_ok(alone) || !res_ok(hog) || hog->rate <= 0)
		return NAN;
	return alone->rate / hog->rate;
}

static double ratio(double a, double b)
{
	return b > 0 && isfinite(a) && isfinite(b) ? a / b : NAN;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * x compared with y: x's rate over y's (p50 0), or, with p50, y's median
 * round trip over x's, each less `less` ns. When both were measured in
 * the same rounds, side by side, the ratio is taken round by round and
 * the median of those returned: a slow spell of the machine then falls
 * on both sides of each ratio. Else the ratio of the two figures.
 */
static double paired(const struct bench_res *x, const struct bench_res *y,
		     int p50, double less)
{
	double v[BENCH_MAX_ROUNDS];
	int n = x->nrounds;

	if (!res_ok(x) || !res_ok(y))
		return NAN;
	if (n < 2 || y->nrounds != n) {
		if (p50)
			return ratio((double)y->p50 - less,
				     (double)x->p50 - less);
		return ratio(x->rate, y->rate);
	}
	for (int k = 0; k < n; k++) {
		v[k] = p50 ? ratio((double)y->round_p50[k] - less,
				   (double)x->round_p50[k] - less)
			   : ratio(x->round_rate[k], y->round_rate[k]);
		if (!isfinite(v[k]))
			return NAN;
	}
	return bench_median(v, n);
}

/* The stream index memcpy ran at. */
static int memcpy_idx(const struct bench_run *r)
{
	return r->sizes[1] ? 1 : 0;
}

/* The floor a stream of index s is compared with: ring, or memcpy. */
static const char *stream_floor(const struct bench_run *r, int s)
{
	return s == memcpy_idx(r) ? "memcpy" : "ring";
}

/* x's stream s against transport name's: how many times its rate. */
static double stream_vs(struct bench_run *r, const struct bench_res *x,
			const char *name, int s)
{
	struct bench_row *w = bench_row(r, name);

	return w ? paired(x, &w->stream[s], 0, 0) : NAN;
}

/* x's ping-pong median against transport name's: x / name (vs, 1) or
 * name / x (vs 0, how many times faster x is). */
static double pp_vs(struct bench_run *r, const struct bench_res *x,
		    const char *name, int over)
{
	struct bench_row *w = bench_row(r, name);

	if (!w)
		return NAN;
	return over ? paired(&w->pp, x, 1, 0) : paired(x, &w->pp, 1, 0);
}

static void def_target(struct bench_target *t, const char *name,
		       const char *desc, const char *cmp, double limit)
{
	t->name = name;
	t->desc = desc;
	t->cmp = cmp;
	t->limit = limit;
	t->measured = NAN;
}

/* Enough samples in x, and in each of its rounds, for a ratio to mean
 * something (a run whose machine stalled for the whole measurement, or
 * a round, has one or two; and a ratio is taken round by round). */
static int enough(const struct bench_res *x, uint64_t min)
{
	if (!res_ok(x) || x->count < min)
		return 0;
	for (int k = 0; k < x->nrounds; k++)
		if (x->round_count[k] < min)
			return 0;
	return 1;
}

/* The fewest samples in a round of x (its count if not in rounds). */
static uint64_t fewest(const struct bench_res *x)
{
	uint64_t m = x->count;

	for (int k = 0; k < x->nrounds; k++)
		if (x->round_count[k] < m)
			m = x->round_count[k];
	return m;
}

static const struct bench_res *res_of(struct bench_run *r, const char *name,
				      int what)
{
	struct bench_row *w = bench_row(r, name);

	if (!w)
		return NULL;
	return what < 0 ? &w->pp : &w->stream[what];
}

/* Give t a value only if both results have min samples; else say why. */
static void target_ratio(struct bench_run *r, struct bench_target *t,
			 const char *a, const char *b, int what, uint64_t min)
{
	const struct bench_res *x = res_of(r, a, what), *y = res_of(r, b, what);

	if (!x || !y || !res_ok(x) || !res_ok(y))
		return;
	if (!enough(x, min) || !enough(y, min)) {
		snprintf(t->note, sizeof(t->note),
			 "too few samples (%s %llu, %s %llu%s): the machine "
			 "stalled; run again",
			 a, (unsigned long long)fewest(x), b,
			 (unsigned long long)fewest(y),
			 x->nrounds > 1 ? " in a round" : "");
		return;
	}
	if (what < 0) {
		/* Each round trip contains one clock read: taken off both. */
		t->measured = paired(y, x, 1, r->timer_ns);
		snprintf(t->note, sizeof(t->note),
			 "medians less one %.0f ns clock read each",
			 r->timer_ns);
	} else {
		t->measured = paired(x, y, 0, 0);
	}
	if (isfinite(t->measured) && x->nrounds > 1 &&
	    y->nrounds == x->nrounds) {
		size_t len = strlen(t->note);

		snprintf(t->note + len, sizeof(t->note) - len,
			 "%smedian of %d rounds' ratios", len ? "; " : "",
			 x->nrounds);
	}
}

void bench_targets(struct bench_run *r, struct bench_target *t)
{
	struct bench_row *ch = bench_row(r, "chan");
	int is64 = r->pp_size == 64;
	int big = r->sizes[1] == (1u << 20);

	memset(t, 0, sizeof(*t) * BENCH_NTARGETS);
	def_target(&t[0], "pingpong_median_vs_floor",
		   "ping-pong median, 64-byte messages, default wait, within "
		   "1.5x of the cache-line floor",
		   "<=", 1.5);
	def_target(&t[1], "stream_64B_vs_ring",
		   "64-byte messages streamed, one call each: at least the "
		   "plain busy-polling ring's rate",
		   ">=", 1.0);
	def_target(&t[2], "stream_64B_vs_pipe",
		   "64-byte messages streamed: at least 20x a pipe",
		   ">=", 20.0);
	if (is64) {
		target_ratio(r, &t[0], "chan", "floor", -1, 100);
		target_ratio(r, &t[1], "chan", "ring", 0, 100);
		target_ratio(r, &t[2], "chan", "pipe", 0, 100);
	} else {
		for (int i = 0; i < 3; i++)
			snprintf(t[i].note, sizeof(t[i].note),
				 "needs 64-byte messages");
	}

	def_target(&t[3], "stream_1MiB_vs_memcpy",
		   "1 MiB messages (send/recv, copy in and out): at least 0.8x "
		   "single-process memcpy bandwidth",
		   ">=", 0.8);
	if (big)
		target_ratio(r, &t[3], "chan", "memcpy", 1, 10);
	else
		snprintf(t[3].note, sizeof(t[3].note),
			 "needs the 1 MiB stream");

	def_target(&t[4], "idle_receiver_cpu",
		   "a receiver waiting with no traffic uses under 1% of a CPU "
		   "(percent)",
		   "<", 1.0);
	if (ch && res_ok(&ch->idle)) {
		t[4].measured = ch->idle.cpu_pct;
		snprintf(t[4].note, sizeof(t[4].note), "over %.1f s",
			 r->idle_s);
	}

	def_target(&t[5], "loaded_pinned",
		   "ping-pong rate with a compute-bound process added falls at "
		   "most 2x, processes pinned to separate CPUs",
		   "<=", 2.0);
	t[5].measured = ch ? slowdown(&ch->pp, &ch->loaded[0]) : NAN;
	def_target(&t[6], "loaded_unpinned", "the same, processes not pinned",
		   "<=", 2.0);
	t[6].measured = ch ? slowdown(&ch->pp_unpinned, &ch->loaded[1]) : NAN;

	for (int i = 0; i < BENCH_NTARGETS; i++) {
		double m = t[i].measured;

		t[i].evaluated = isfinite(m);
		if (!t[i].evaluated) {
			if (!t[i].note[0])
				snprintf(t[i].note, sizeof(t[i].note),
					 "not measured in this run");
			continue;
		}
		if (strcmp(t[i].cmp, "<=") == 0)
			t[i].met = m <= t[i].limit;
		else if (strcmp(t[i].cmp, ">=") == 0)
			t[i].met = m >= t[i].limit;
		else
			t[i].met = m < t[i].limit;
	}
}

/* ---- verification ------------------------------------------------------------ */

/* The results of a row, in the report's order. */
static int row_results(const struct bench_row *w, const struct bench_res **out)
{
	int n = 0;

	out[n++] = &w->pp;
	out[n++] = &w->stream[0];
	out[n++] = &w->stream[1];
	out[n++] = &w->wake;
	out[n++] = &w->pp_unpinned;
	out[n++] = &w->loaded[0];
	out[n++] = &w->loaded[1];
	out[n++] = &w->idle;
	return n;
}

/*
 * Totals of a row; the first failure in *why (NULL if none), which names
 * the transport and the workload (bench_job_wait).
 */
static int row_totals(const struct bench_row *w, uint64_t *msgs,
		      uint64_t *verified, uint64_t *errors, const char **why)
{
	const struct bench_res *rr[8];
	int n = row_results(w, rr), ok = 1;

	*msgs = *verified = *errors = 0;
	*why = NULL;
	for (int i = 0; i < n; i++) {
		const struct bench_res *x = rr[i];

		if (!x->ran)
			continue;
		*msgs += x->received;
		*verified += x->verified;
		*errors += x->errors;
		if (!x->ok && ok) {
			ok = 0;
			*why = x->why;
		}
	}
	return ok;
}

int bench_all_ok(const struct bench_run *r)
{
	for (size_t i = 0; i < r->nrows; i++) {
		uint64_t m, v, e;
		const char *why;

		if (r->rows[i].selected &&
		    !row_totals(&r->rows[i], &m, &v, &e, &why))
			return 0;
	}
	return 1;
}

/* ---- table ------------------------------------------------------------------- */

/* |v| without libm (the tool does not link it). */
static double absval(double v)
{
	return v < 0 ? -v : v;
}

static void fmt(char *buf, size_t n, double v)
{
	if (!isfinite(v))
		snprintf(buf, n, "-");
	else if (absval(v) >= 100)
		snprintf(buf, n, "%.0f", v);
	else if (absval(v) >= 10)
		snprintf(buf, n, "%.1f", v);
	else if (absval(v) >= 1)
		snprintf(buf, n, "%.2f", v);
	else if (absval(v) >= 0.01)
		snprintf(buf, n, "%.3f", v);
	else
		snprintf(buf, n, "%.2g", v);
}

static void size_label(char *buf, size_t n, size_t size)
{
	if (size >= (1u << 20) && size % (1u << 20) == 0)
		snprintf(buf, n, "%zuMiB", size >> 20);
	else if (size >= 1024 && size % 1024 == 0)
		snprintf(buf, n, "%zuKiB", size >> 10);
	else
		snprintf(buf, n, "%zuB", size);
}

#define CELLS 10
#define CELL 48

struct line {
	char c[CELLS][CELL];
	const char *p[CELLS];
};

static void line_init(struct line *l)
{
	for (int i = 0; i < CELLS; i++) {
		l->c[i][0] = '\0';
		l->p[i] = l->c[i];
	}
}

static void add_line(struct cli_table *t, struct line *l)
{
	cli_table_add(t, l->p);
}

static const char *failed_cell(const struct bench_res *x)
{
	if (!x->ran)
		return "-";
	return x->ok ? NULL : "failed";
}

/* How figures measured in rounds were combined; what: "percentile"
 * or "rate". */
static void rounds_note(const struct bench_run *r, FILE *f, const char *what)
{
	if (r->rounds < 2)
		return;
	fprintf(f,
		"  %d interleaved rounds of %.3g s: each %s is the median of "
		"the rounds',\n  each VS_ the median of the rounds' ratios "
		"(every transport's round k ran\n  before any round k+1).\n",
		r->rounds, r->dur_s / r->rounds, what);
}

static void table_pingpong(struct bench_run *r, FILE *f)
{
	static const char *const h[] = {"TRANSPORT", "P50(ns)",
					"P90(ns)",   "P99(ns)",
					"P99.9(ns)", "MAX(ns)",
					"RATE(k/s)", "VS_FLOOR(x)",
					"VS_PIPE(x)"};
	static const int right[] = {0, 1, 1, 1, 1, 1, 1, 1, 1};
	struct cli_table *t = cli_table_new(9, h, right);
	char sz[32];

	if (!t)
		return;
	size_label(sz, sizeof(sz), r->pp_size);
	fprintf(f,
		"\nPing-pong round trip, %s messages, the two processes "
		"pinned to CPUs %d and %d\n",
		sz, r->cpu[0], r->cpu[1]);
	for (size_t i = 0; i < r->nrows; i++) {
		const struct bench_row *w = &r->rows[i];
		const struct bench_res *x = &w->pp;
		struct line l;
		const char *fc = failed_cell(x);

		if (!w->selected || !x->ran)
			continue;
		line_init(&l);
		snprintf(l.c[0], CELL, "%s", w->ops->name);
		if (fc) {
			for (int k = 1; k < 9; k++)
				l.p[k] = k == 1 ? fc : "-";
			add_line(t, &l);
			continue;
		}
		fmt(l.c[1], CELL, (double)x->p50);
		fmt(l.c[2], CELL, (double)x->p90);
		fmt(l.c[3], CELL, (double)x->p99);
		fmt(l.c[4], CELL, (double)x->p999);
		fmt(l.c[5], CELL, (double)x->max);
		fmt(l.c[6], CELL, x->rate / 1e3);
		fmt(l.c[7], CELL, pp_vs(r, x, "floor", 1));
		fmt(l.c[8], CELL, pp_vs(r, x, "pipe", 0));
		add_line(t, &l);
	}
	cli_table_print(t, f, 1);
	fprintf(f,
		"  percentiles from a histogram of a round's round trips; each "
		"includes one\n  clock read (%.0f ns). VS_FLOOR: median / the "
		"floor's median. VS_PIPE: the pipe's\n  median / this median "
		"(how many times faster than a pipe).\n",
		r->timer_ns);
	rounds_note(r, f, "percentile");
}

static void table_stream(struct bench_run *r, FILE *f)
{
	const char *h[CELLS];
	int right[CELLS], nc = 1, ns = r->sizes[1] ? 2 : 1;
	char heads[CELLS][CELL];
	struct cli_table *t;

	h[0] = "TRANSPORT";
	right[0] = 0;
	for (int s = 0; s < ns; s++) {
		char sz[32], fl[16];
		size_t k;

		size_label(sz, sizeof(sz), r->sizes[s]);
		snprintf(fl, sizeof(fl), "%s", stream_floor(r, s));
		for (k = 0; fl[k]; k++)
			fl[k] = (char)(fl[k] >= 'a' && fl[k] <= 'z' ? fl[k] - 32
								    : fl[k]);
		snprintf(heads[nc], CELL,
			 r->sizes[s] < 4096 ? "%s(Mmsg/s)" : "%s(msg/s)", sz);
		snprintf(heads[nc + 1], CELL, "%s(GB/s)", sz);
		snprintf(heads[nc + 2], CELL, "VS_PIPE(x)");
		snprintf(heads[nc + 3], CELL, "VS_%s(x)", fl);
		for (int c = 0; c < 4; c++) {
			h[nc + c] = heads[nc + c];
			right[nc + c] = 1;
		}
		nc += 4;
	}
	t = cli_table_new((size_t)nc, h, right);
	if (!t)
		return;
	fprintf(f, "\nStreaming, one send and one receive call per message, "
		   "pinned\n");
	for (size_t i = 0; i < r->nrows; i++) {
		const struct bench_row *w = &r->rows[i];
		struct line l;
		int any = 0;

		if (!w->selected || (w->ops->flags & BENCH_TP_FLOOR))
			continue;
		line_init(&l);
		snprintf(l.c[0], CELL, "%s", w->ops->name);
		for (int s = 0; s < ns; s++) {
			const struct bench_res *x = &w->stream[s];
			const char *fc = failed_cell(x);
			int c = 1 + 4 * s;

			any |= x->ran;
			if (fc) {
				for (int k = 0; k < 4; k++)
					l.p[c + k] = k == 0 ? fc : "-";
				continue;
			}
			fmt(l.c[c], CELL,
			    r->sizes[s] < 4096 ? x->rate / 1e6 : x->rate);
			fmt(l.c[c + 1], CELL, x->bytes_per_s / 1e9);
			fmt(l.c[c + 2], CELL, stream_vs(r, x, "pipe", s));
			fmt(l.c[c + 3], CELL,
			    stream_vs(r, x, stream_floor(r, s), s));
		}
		if (any)
			add_line(t, &l);
	}
	cli_table_print(t, f, 1);
	fprintf(f, "  rates measured at the receiver; GB = 10^9 bytes. "
		   "VS_PIPE, VS_RING, VS_MEMCPY:\n  this rate / that one's "
		   "(memcpy: one process copying the same blocks).\n");
	rounds_note(r, f, "rate");
}

static void table_wake(struct bench_run *r, FILE *f)
{
	static const char *const h[] = {"TRANSPORT",	     "WAKE_P50(us)",
					"WAKE_P99(us)",	     "WAKE_MAX(us)",
					"RECV_CPU(%)",	     "IDLE_CPU(%)",
					"UNPINNED_P50(ns)",  "LOADED_PINNED(x)",
					"LOADED_UNPINNED(x)"};
	static const int right[] = {0, 1, 1, 1, 1, 1, 1, 1, 1};
	struct cli_table *t = cli_table_new(9, h, right);

	if (!t)
		return;
	fprintf(f, "\nWake-up, idle wait, and ping-pong next to a "
		   "compute-bound process\n");
	for (size_t i = 0; i < r->nrows; i++) {
		const struct bench_row *w = &r->rows[i];
		const struct bench_res *x = &w->wake;
		struct line l;

		if (!w->selected || (w->ops->flags & BENCH_TP_MEMCPY))
			continue;
		line_init(&l);
		snprintf(l.c[0], CELL, "%s", w->ops->name);
		if (failed_cell(x)) {
			l.p[1] = failed_cell(x);
			l.p[2] = l.p[3] = l.p[4] = "-";
		} else {
			fmt(l.c[1], CELL, (double)x->p50 / 1e3);
			fmt(l.c[2], CELL, (double)x->p99 / 1e3);
			fmt(l.c[3], CELL, (double)x->max / 1e3);
			fmt(l.c[4], CELL, x->cpu_pct);
		}
		if (failed_cell(&w->idle))
			l.p[5] = failed_cell(&w->idle);
		else
			fmt(l.c[5], CELL, w->idle.cpu_pct);
		if (failed_cell(&w->pp_unpinned))
			l.p[6] = failed_cell(&w->pp_unpinned);
		else
			fmt(l.c[6], CELL, (double)w->pp_unpinned.p50);
		for (int k = 0; k < 2; k++) {
			const struct bench_res *alone = k ? &w->pp_unpinned
							  : &w->pp;

			if (failed_cell(&w->loaded[k]))
				l.p[7 + k] = failed_cell(&w->loaded[k]);
			else if (failed_cell(alone))
				l.p[7 + k] = failed_cell(alone);
			else
				fmt(l.c[7 + k], CELL,
				    slowdown(alone, &w->loaded[k]));
		}
		add_line(t, &l);
	}
	cli_table_print(t, f, 1);
	fprintf(f,
		"  WAKE: send-to-receive latency of a message sent after "
		"1-3 ms of silence\n  (timestamp in the message); RECV_CPU: "
		"the receiver's CPU use meanwhile.\n  IDLE_CPU: a receiver "
		"waiting %.1f s with no traffic. UNPINNED_P50: ping-pong\n"
		"  median with the scheduler placing the processes (often "
		"both on one CPU).\n  LOADED: round-trip rate alone / rate "
		"with one compute-bound process\n  running (1 = unaffected; "
		"LOADED_UNPINNED against the unpinned rate).\n",
		r->idle_s);
}

static void table_verify(struct bench_run *r, FILE *f)
{
	static const char *const h[] = {"TRANSPORT", "MESSAGES", "VERIFIED",
					"ERRORS", "STATUS"};
	static const int right[] = {0, 1, 1, 1, 0};
	struct cli_table *t = cli_table_new(5, h, right);

	if (!t)
		return;
	fprintf(f, "\nVerification (sequence number and content of every "
		   "message)\n");
	for (size_t i = 0; i < r->nrows; i++) {
		const struct bench_row *w = &r->rows[i];
		uint64_t m, v, e;
		const char *why;
		char st[300];
		struct line l;

		if (!w->selected)
			continue;
		line_init(&l);
		row_totals(w, &m, &v, &e, &why);
		snprintf(l.c[0], CELL, "%s", w->ops->name);
		snprintf(l.c[1], CELL, "%llu", (unsigned long long)m);
		snprintf(l.c[2], CELL, "%llu", (unsigned long long)v);
		snprintf(l.c[3], CELL, "%llu", (unsigned long long)e);
		if (why)
			snprintf(st, sizeof(st), "FAILED: %s", why);
		else
			snprintf(st, sizeof(st), "ok");
		l.p[4] = st;
		add_line(t, &l);
	}
	cli_table_print(t, f, 1);
}

static void print_target(const struct bench_target *t, FILE *f)
{
	char m[32];

	fmt(m, sizeof(m), t->measured);
	if (!t->evaluated)
		fprintf(f, "  %-8s %s (%s)\n", "n/a", t->desc, t->note);
	else
		fprintf(f, "  %-8s %s: %s (target %s %g)%s%s%s\n",
			t->met ? "met" : "NOT MET", t->desc, m, t->cmp,
			t->limit, t->note[0] ? " [" : "", t->note,
			t->note[0] ? "]" : "");
}

static void placement(struct bench_run *r, char *buf, size_t n)
{
	const struct bench_row *w = NULL;

	for (size_t i = 0; i < r->nrows; i++)
		if (r->rows[i].selected && res_ok(&r->rows[i].pp)) {
			w = &r->rows[i];
			break;
		}
	if (r->cpu[0] == r->cpu[1])
		snprintf(buf, n,
			 "one CPU allowed (%d): both processes share it",
			 r->cpu[0]);
	else if (!w)
		snprintf(buf, n, "pinned runs on CPUs %d and %d", r->cpu[0],
			 r->cpu[1]);
	else if (w->pp.pin_ok)
		snprintf(buf, n,
			 "pinned runs on CPUs %d and %d (pinning checked "
			 "with sched_getcpu)",
			 r->cpu[0], r->cpu[1]);
	else
		snprintf(buf, n,
			 "pinning to CPUs %d and %d did NOT take (seen on "
			 "%d and %d)",
			 r->cpu[0], r->cpu[1], w->pp.cpu_seen[0],
			 w->pp.cpu_seen[1]);
}

void bench_print_table(struct bench_run *r, FILE *f)
{
	struct bench_target t[BENCH_NTARGETS];
	char pl[200];

	placement(r, pl, sizeof(pl));
	fprintf(f, "shmkit bench: shmkit %s (git %s, %s build), %s\n",
		shmkit_version(), SHMKIT_GIT_REV, build_type(), r->started);
	fprintf(f, "machine: %s, %d CPUs online; %s; %s\n", r->cpu_model,
		r->cpus_online, r->kernel, compiler());
	fprintf(f, "placement: %s; load average %.2f at the start\n", pl,
		r->load_avg);
	fprintf(f,
		"%s run: %.2f s per measurement (ping-pong and streams in %d "
		"interleaved round%s), %.1f s in all; every figure is from "
		"this run\n",
		r->tiny	   ? "tiny"
		: r->quick ? "quick"
			   : "full",
		r->dur_s, r->rounds, r->rounds > 1 ? "s" : "", r->elapsed_s);
	table_pingpong(r, f);
	table_stream(r, f);
	table_wake(r, f);
	table_verify(r, f);
	bench_targets(r, t);
	fprintf(f, "\nTargets of shmkit channels, measured in this run:\n");
	for (int i = 0; i < BENCH_NTARGETS; i++)
		print_target(&t[i], f);
}

/* ---- JSON ---------------------------------------------------------------------- */

/*
 * A number member (cli_json has no writer for doubles): the same comma,
 * newline and indentation as util.c's members. Keys are our own ASCII.
 * Not finite: null.
 */
static void jnum(struct cli_json *j, const char *key, double v)
{
	if (j->depth > 0) {
		if (!j->first[j->depth])
			fputc(',', j->f);
		fputc('\n', j->f);
		for (int i = 0; i < j->depth; i++)
			fputs("   ", j->f);
	}
	j->first[j->depth] = 0;
	if (key)
		fprintf(j->f, "\"%s\": ", key);
	if (!isfinite(v))
		fputs("null", j->f);
	else if (absval(v) < 1e15 && v == (double)(long long)v)
		fprintf(j->f, "%.0f", v);
	else
		fprintf(j->f, "%.6g", v);
}

/* The first message that failed its check: what was expected, what came. */
static void json_bad(struct cli_json *j, const struct bench_res *x)
{
	static const char *const dir[] = {"", "a_to_b", "b_to_a", "copy"};

	if (x->bad_dir < 1 || x->bad_dir > 3) {
		cli_json_null(j, "bad_message");
		return;
	}
	cli_json_obj_begin(j, "bad_message");
	cli_json_str(j, "direction", dir[x->bad_dir]);
	cli_json_uint(j, "expected_seq", x->bad.want_seq);
	cli_json_uint(j, "arrived_seq", x->bad.got_seq);
	if (x->bad.off) {
		char h[24];

		cli_json_uint(j, "wrong_offset", x->bad.off);
		snprintf(h, sizeof(h), "%#018llx",
			 (unsigned long long)x->bad.want);
		cli_json_str(j, "expected_word", h);
		snprintf(h, sizeof(h), "%#018llx",
			 (unsigned long long)x->bad.got);
		cli_json_str(j, "arrived_word", h);
	} else {
		cli_json_null(j, "wrong_offset");
	}
	cli_json_obj_end(j);
}

static void json_res(struct cli_json *j, const char *key,
		     const struct bench_res *x, size_t size, int hist, int cpu)
{
	cli_json_obj_begin(j, key);
	cli_json_bool(j, "ok", x->ok);
	if (!x->ok)
		cli_json_str(j, "error", x->why);
	else
		cli_json_null(j, "error");
	cli_json_uint(j, "size_bytes", size);
	cli_json_uint(j, "messages", x->received);
	cli_json_uint(j, "sent", x->sent);
	cli_json_uint(j, "verified", x->verified);
	cli_json_uint(j, "errors", x->errors);
	json_bad(j, x);
	cli_json_uint(j, "count", x->count);
	jnum(j, "seconds", x->secs);
	jnum(j, "rate_per_s", x->ok ? x->rate : NAN);
	if (hist) {
		cli_json_uint(j, "samples", x->nsamples);
		cli_json_uint(j, "min_ns", x->min);
		cli_json_uint(j, "p50_ns", x->p50);
		cli_json_uint(j, "p90_ns", x->p90);
		cli_json_uint(j, "p99_ns", x->p99);
		cli_json_uint(j, "p999_ns", x->p999);
		cli_json_uint(j, "max_ns", x->max);
	}
	if (cpu)
		jnum(j, "receiver_cpu_pct", x->ok ? x->cpu_pct : NAN);
	if (x->nrounds) {
		cli_json_arr_begin(j, "round_rates_per_s");
		for (int k = 0; k < x->nrounds; k++)
			jnum(j, NULL, x->round_rate[k]);
		cli_json_arr_end(j);
		if (hist) {
			cli_json_arr_begin(j, "round_p50_ns");
			for (int k = 0; k < x->nrounds; k++)
				cli_json_uint(j, NULL, x->round_p50[k]);
			cli_json_arr_end(j);
		}
	}
	cli_json_arr_begin(j, "cpus_seen");
	cli_json_int(j, NULL, x->cpu_seen[0]);
	cli_json_int(j, NULL, x->cpu_seen[1]);
	cli_json_arr_end(j);
	cli_json_arr_begin(j, "cpus_seen_end");
	cli_json_int(j, NULL, x->cpu_seen_end[0]);
	cli_json_int(j, NULL, x->cpu_seen_end[1]);
	cli_json_arr_end(j);
}

static void json_context(struct bench_run *r, struct cli_json *j)
{
	const struct bench_row *w = NULL;

	for (size_t i = 0; i < r->nrows; i++)
		if (r->rows[i].selected && res_ok(&r->rows[i].pp)) {
			w = &r->rows[i];
			break;
		}
	cli_json_obj_begin(j, "context");
	cli_json_str(j, "shmkit_version", shmkit_version());
	cli_json_str(j, "git_revision", SHMKIT_GIT_REV);
	cli_json_str(j, "build_type", build_type());
	cli_json_str(j, "compiler", compiler());
	cli_json_str(j, "kernel", r->kernel);
	cli_json_str(j, "cpu_model", r->cpu_model);
	cli_json_int(j, "cpus_online", r->cpus_online);
	jnum(j, "load_average_1m", r->load_avg);
	cli_json_str(j, "started", r->started);
	cli_json_str(j, "mode", r->tiny ? "tiny" : r->quick ? "quick" : "full");
	jnum(j, "duration_s", r->dur_s);
	cli_json_int(j, "rounds", r->rounds);
	jnum(j, "idle_wait_s", r->idle_s);
	jnum(j, "elapsed_s", r->elapsed_s);
	cli_json_uint(j, "pingpong_size_bytes", r->pp_size);
	cli_json_arr_begin(j, "stream_sizes_bytes");
	for (int s = 0; s < 2 && r->sizes[s]; s++)
		cli_json_uint(j, NULL, r->sizes[s]);
	cli_json_arr_end(j);
	jnum(j, "wake_gap_min_ms", 1);
	jnum(j, "wake_gap_max_ms", 3);
	jnum(j, "timer_ns", r->timer_ns);
	cli_json_obj_begin(j, "placement");
	cli_json_arr_begin(j, "cpus_allowed");
	for (int i = 0; i < r->ncpus_allowed; i++)
		cli_json_int(j, NULL, r->cpus_allowed[i]);
	cli_json_arr_end(j);
	cli_json_int(j, "cpu_a", r->cpu[0]);
	cli_json_int(j, "cpu_b", r->cpu[1]);
	cli_json_bool(j, "separate_cpus", r->cpu[0] != r->cpu[1]);
	cli_json_str(j, "method",
		     "sched_setaffinity, checked with "
		     "sched_getcpu");
	if (w) {
		cli_json_bool(j, "pinning_verified", w->pp.pin_ok);
		cli_json_arr_begin(j, "cpus_seen");
		cli_json_int(j, NULL, w->pp.cpu_seen[0]);
		cli_json_int(j, NULL, w->pp.cpu_seen[1]);
		cli_json_arr_end(j);
	} else {
		cli_json_null(j, "pinning_verified");
	}
	cli_json_obj_end(j);
	cli_json_obj_end(j);
}

static void json_row(struct bench_run *r, struct cli_json *j,
		     const struct bench_row *w)
{
	static const char *const skey[2] = {"stream_small", "stream_large"};
	uint64_t m, v, e;
	const char *why;
	int ok = row_totals(w, &m, &v, &e, &why);

	cli_json_obj_begin(j, NULL);
	cli_json_str(j, "name", w->ops->name);
	cli_json_str(j, "description", w->ops->desc);
	cli_json_bool(j, "polls", !!(w->ops->flags & BENCH_TP_POLLS));
	cli_json_bool(j, "ok", ok);
	if (why)
		cli_json_str(j, "error", why);
	else
		cli_json_null(j, "error");
	cli_json_uint(j, "messages", m);
	cli_json_uint(j, "verified", v);
	cli_json_uint(j, "errors", e);
	if (w->pp.ran) {
		json_res(j, "pingpong", &w->pp, r->pp_size, 1, 0);
		jnum(j, "vs_floor", pp_vs(r, &w->pp, "floor", 1));
		jnum(j, "vs_pipe", pp_vs(r, &w->pp, "pipe", 0));
		cli_json_obj_end(j);
	}
	for (int s = 0; s < 2; s++) {
		const struct bench_res *x = &w->stream[s];

		if (!x->ran)
			continue;
		json_res(j, skey[s], x, r->sizes[s], 0, 0);
		jnum(j, "msgs_per_s", x->ok ? x->rate : NAN);
		jnum(j, "gb_per_s", x->ok ? x->bytes_per_s / 1e9 : NAN);
		jnum(j, "vs_pipe", stream_vs(r, x, "pipe", s));
		cli_json_str(j, "floor", stream_floor(r, s));
		jnum(j, "vs_floor", stream_vs(r, x, stream_floor(r, s), s));
		cli_json_obj_end(j);
	}
	if (w->wake.ran) {
		json_res(j, "wake", &w->wake, r->pp_size, 1, 1);
		cli_json_obj_end(j);
	}
	if (w->pp_unpinned.ran) {
		json_res(j, "pingpong_unpinned", &w->pp_unpinned, r->pp_size, 1,
			 0);
		cli_json_obj_end(j);
	}
	for (int k = 0; k < 2; k++) {
		const struct bench_res *alone = k ? &w->pp_unpinned : &w->pp;

		if (!w->loaded[k].ran)
			continue;
		json_res(j, k ? "loaded_unpinned" : "loaded_pinned",
			 &w->loaded[k], r->pp_size, 1, 0);
		jnum(j, "slowdown", slowdown(alone, &w->loaded[k]));
		cli_json_obj_end(j);
	}
	if (w->idle.ran) {
		json_res(j, "idle", &w->idle, r->pp_size, 0, 1);
		jnum(j, "wait_s", r->idle_s);
		cli_json_obj_end(j);
	}
	cli_json_obj_end(j);
}

void bench_print_json(struct bench_run *r, FILE *f)
{
	struct bench_target t[BENCH_NTARGETS];
	struct cli_json j;
	uint64_t tm = 0, tv = 0, te = 0;

	cli_json_init(&j, f);
	cli_json_obj_begin(&j, NULL);
	json_context(r, &j);
	cli_json_arr_begin(&j, "transports");
	for (size_t i = 0; i < r->nrows; i++) {
		uint64_t m, v, e;
		const char *why;

		if (!r->rows[i].selected)
			continue;
		row_totals(&r->rows[i], &m, &v, &e, &why);
		tm += m;
		tv += v;
		te += e;
		json_row(r, &j, &r->rows[i]);
	}
	cli_json_arr_end(&j);
	cli_json_obj_begin(&j, "verification");
	cli_json_uint(&j, "messages", tm);
	cli_json_uint(&j, "verified", tv);
	cli_json_uint(&j, "errors", te);
	cli_json_bool(&j, "all_verified", tm == tv && te == 0);
	cli_json_obj_end(&j);
	bench_targets(r, t);
	cli_json_arr_begin(&j, "targets");
	for (int i = 0; i < BENCH_NTARGETS; i++) {
		cli_json_obj_begin(&j, NULL);
		cli_json_str(&j, "name", t[i].name);
		cli_json_str(&j, "description", t[i].desc);
		cli_json_str(&j, "compare", t[i].cmp);
		jnum(&j, "limit", t[i].limit);
		jnum(&j, "measured", t[i].measured);
		cli_json_bool(&j, "evaluated", t[i].evaluated);
		if (t[i].evaluated)
			cli_json_bool(&j, "met", t[i].met);
		else
			cli_json_null(&j, "met");
		cli_json_str(&j, "note", t[i].note);
		cli_json_obj_end(&j);
	}
	cli_json_arr_end(&j);
	cli_json_bool(&j, "ok", bench_all_ok(r));
	cli_json_obj_end(&j);
	cli_json_end(&j);
}

/* ---- plot ---------------------------------------------------------------------- */

static void dat(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, " %.6g", v);
	else
		fputs(" -", f);
}

int bench_plot(struct bench_run *r, const char *png)
{
	char base[4096], datp[4200], gpp[4200];
	const char *dot = strrchr(png, '.'), *slash = strrchr(png, '/');
	size_t n = strlen(png);
	char *argv[3];
	FILE *f;
	pid_t pid;
	int st, rc;

	if (dot && (!slash || dot > slash) && strcmp(dot, ".png") == 0)
		n = (size_t)(dot - png);
	snprintf(base, sizeof(base), "%.*s", (int)n, png);
	snprintf(datp, sizeof(datp), "%s.dat", base);
	snprintf(gpp, sizeof(gpp), "%s.gp", base);

	f = fopen(datp, "we");
	if (!f) {
		cli_err("bench: cannot write %s: %s", datp, strerror(errno));
		return -errno;
	}
	fprintf(f, "# shmkit bench %s, git %s, %s\n", shmkit_version(),
		SHMKIT_GIT_REV, r->started);
	fprintf(f, "# transport pp_p50_ns pp_p90_ns pp_p99_ns pp_p999_ns "
		   "wake_p50_us wake_p90_us wake_p99_us wake_p999_us "
		   "stream0_Mmsg_s stream1_GB_s\n");
	for (size_t i = 0; i < r->nrows; i++) {
		const struct bench_row *w = &r->rows[i];
		const struct bench_res *p = &w->pp, *k = &w->wake;
		int s1 = r->sizes[1] ? 1 : 0;

		if (!w->selected)
			continue;
		fprintf(f, "\"%s\"", w->ops->name);
		dat(f, res_ok(p) ? (double)p->p50 : NAN);
		dat(f, res_ok(p) ? (double)p->p90 : NAN);
		dat(f, res_ok(p) ? (double)p->p99 : NAN);
		dat(f, res_ok(p) ? (double)p->p999 : NAN);
		dat(f, res_ok(k) ? (double)k->p50 / 1e3 : NAN);
		dat(f, res_ok(k) ? (double)k->p90 / 1e3 : NAN);
		dat(f, res_ok(k) ? (double)k->p99 / 1e3 : NAN);
		dat(f, res_ok(k) ? (double)k->p999 / 1e3 : NAN);
		dat(f, res_ok(&w->stream[0]) ? w->stream[0].rate / 1e6 : NAN);
		dat(f, res_ok(&w->stream[s1]) ? w->stream[s1].bytes_per_s / 1e9
					      : NAN);
		fputc('\n', f);
	}
	if (fclose(f) != 0) {
		cli_err("bench: cannot write %s", datp);
		return -EIO;
	}

	f = fopen(gpp, "we");
	if (!f) {
		cli_err("bench: cannot write %s: %s", gpp, strerror(errno));
		return -errno;
	}
	{
		char s0[32], s1[32];

		size_label(s0, sizeof(s0), r->sizes[0]);
		size_label(s1, sizeof(s1),
			   r->sizes[1] ? r->sizes[1] : r->sizes[0]);
		fprintf(f,
			"# shmkit bench plot: gnuplot %s\n"
			"if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) "
			"set terminal pngcairo size 1400,1000 noenhanced; "
			"else set terminal png size 1400,1000\n"
			"set output '%s'\n"
			"set datafile missing '-'\n"
			"set style data histograms\n"
			"set style histogram clustered gap 1\n"
			"set style fill solid 0.8 border -1\n"
			"set xtics rotate by -30 nomirror\n"
			"set grid ytics\n"
			"set logscale y\n"
			"set key top left\n"
			"set multiplot layout 2,2 title 'shmkit bench, "
			"%s, %s (git %s)'\n"
			"set title 'ping-pong round trip, ns (log scale)'\n"
			"plot '%s' using 2:xtic(1) title 'p50', '' using 3 "
			"title 'p90', '' using 4 title 'p99', '' using 5 "
			"title 'p99.9'\n"
			"set title 'wake-up after 1-3 ms of silence, us "
			"(log scale)'\n"
			"plot '%s' using 6:xtic(1) title 'p50', '' using 7 "
			"title 'p90', '' using 8 title 'p99', '' using 9 "
			"title 'p99.9'\n"
			"set title '%s messages streamed, million per "
			"second (log scale)'\n"
			"plot '%s' using 10:xtic(1) notitle\n"
			"set title '%s messages streamed, GB/s (log scale)'\n"
			"plot '%s' using 11:xtic(1) notitle\n"
			"unset multiplot\n",
			gpp, png, r->cpu_model, r->started, SHMKIT_GIT_REV,
			datp, datp, s0, datp, s1, datp);
	}
	if (fclose(f) != 0) {
		cli_err("bench: cannot write %s", gpp);
		return -EIO;
	}

	argv[0] = (char *)"gnuplot";
	argv[1] = gpp;
	argv[2] = NULL;
	fflush(NULL);
	rc = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ);
	if (rc == ENOENT) {
		fprintf(stderr,
			"shmkit bench: gnuplot is not installed: wrote %s "
			"and %s; 'gnuplot %s' draws %s\n",
			datp, gpp, gpp, png);
		return 0;
	}
	if (rc != 0) {
		cli_err("bench: cannot run gnuplot: %s", strerror(rc));
		return -rc;
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0) {
		cli_err("bench: gnuplot failed on %s (data in %s)", gpp, datp);
		return -EIO;
	}
	fprintf(stderr, "shmkit bench: drew %s (data %s, script %s)\n", png,
		datp, gpp);
	return 0;
}
