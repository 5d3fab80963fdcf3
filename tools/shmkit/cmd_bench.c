/* SPDX-License-Identifier: MIT */
/*
 * shmkit bench: the same workloads over shmkit channels and the usual
 * alternatives (pipe, sockets, message queues, eventfd, TCP) and two
 * floors, in one run on this machine; options, context and the plan.
 * Output is in bench_report.c, transports in bench_tp.c.
 */
#define _GNU_SOURCE
#include "bench.h"
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define QUICK_DUR_S 0.25
#define DEFAULT_DUR_S 0.75
#define IDLE_S 2.0
#define DEFAULT_ROUNDS 3

static void help(void)
{
	fputs("Usage: shmkit bench [OPTIONS]\n"
	      "\n"
	      "Measure, in one run on this machine, message passing between\n"
	      "two processes over shmkit channels and over the alternatives,\n"
	      "next to the two floors of the hardware:\n"
	      "  floor      cache-line ping-pong between the two CPUs\n"
	      "  memcpy     memcpy in one process\n"
	      "  chan       shmkit channel, default wait (spin, then sleep)\n"
	      "  chan-poll  shmkit channel, pure polling\n"
	      "  ring       plain shared-memory ring, busy polling\n"
	      "  eventfd    shared-memory ring, eventfd wake-up per message\n"
	      "  pipe, unix (stream socket), seqpacket, mq (POSIX message\n"
	      "  queue), tcp (loopback)\n"
	      "Workloads: ping-pong round trip (percentiles), streaming of\n"
	      "64-byte and 1 MiB messages, wake-up latency of a sleeping\n"
	      "receiver, ping-pong next to a compute-bound process, CPU use\n"
	      "of an idle receiver. Every message is verified. The results\n"
	      "are compared with shmkit's targets (see docs/BENCHMARKS.md).\n"
	      "\n"
	      "Options:\n"
	      "  -q, --quick           about 20 s instead of about 60 s\n"
	      "  -J, --json            JSON output (context, results, "
	      "targets)\n"
	      "      --plot FILE.png   draw latencies and throughputs with\n"
	      "                        gnuplot (data and script are written\n"
	      "                        beside FILE either way)\n"
	      "      --only LIST       transports to run, comma-separated\n"
	      "      --size BYTES      one message size for every workload\n"
	      "                        (default 64, and 1M for streaming)\n"
	      "      --duration SECS   time per measurement (quick 0.25,\n"
	      "                        default 0.75)\n"
	      "      --rounds N        make each ping-pong and stream\n"
	      "                        measurement in N rounds of SECS/N,\n"
	      "                        every transport's round k before\n"
	      "                        any round k+1; figures are medians\n"
	      "                        over the rounds, comparisons the\n"
	      "                        median of the rounds' ratios (1 to\n"
	      "                        9, default 3)\n"
	      "  -h, --help            show this help\n"
	      "\n"
	      "A progress line goes to standard error when it is a terminal.\n"
	      "Exit status: 0 every transport ran and every message was\n"
	      "verified, 1 a transport failed (shown in the table), 2 bad\n"
	      "usage. Targets not met do not change the exit status.\n",
	      stdout);
}

struct bench_row *bench_row(struct bench_run *r, const char *name)
{
	for (size_t i = 0; i < r->nrows; i++)
		if (r->rows[i].selected &&
		    strcmp(r->rows[i].ops->name, name) == 0)
			return &r->rows[i];
	return NULL;
}

static int parse_only(struct bench_run *r, const char *list)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int n = 0;

	if (!copy)
		return -ENOMEM;
	for (size_t i = 0; i < r->nrows; i++)
		r->rows[i].selected = 0;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		size_t i;

		for (i = 0; i < r->nrows; i++)
			if (strcmp(r->rows[i].ops->name, tok) == 0)
				break;
		if (i == r->nrows) {
			cli_usage_err("bench", "unknown transport '%s'", tok);
			free(copy);
			return -EINVAL;
		}
		r->rows[i].selected = 1;
		n++;
	}
	free(copy);
	if (!n) {
		cli_usage_err("bench", "--only needs at least one transport");
		return -EINVAL;
	}
	return 0;
}

static int parse_secs(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0.01 || v > 600)
		return -EINVAL;
	*out = v;
	return 0;
}

/* 1 to BENCH_MAX_ROUNDS, in decimal digits only. */
static int parse_rounds(const char *s, int *out)
{
	_Static_assert(BENCH_MAX_ROUNDS <= 9, "one digit");
	if (s[0] < '1' || s[0] > '0' + BENCH_MAX_ROUNDS || s[1])
		return -EINVAL;
	*out = s[0] - '0';
	return 0;
}

/* ---- context --------------------------------------------------------------- */

static void context(struct bench_run *r)
{
	struct utsname u;
	cpu_set_t set;
	char line[512];
	FILE *f;
	time_t now = time(NULL);
	struct tm tm;

	snprintf(r->cpu_model, sizeof(r->cpu_model), "unknown");
	f = fopen("/proc/cpuinfo", "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char *c = strchr(line, ':');

			if (!c || (strncmp(line, "model name", 10) != 0 &&
				   strncmp(line, "Model", 5) != 0))
				continue;
			c++;
			while (*c == ' ' || *c == '\t')
				c++;
			c[strcspn(c, "\n")] = '\0';
			snprintf(r->cpu_model, sizeof(r->cpu_model), "%s", c);
			break;
		}
		fclose(f);
	}
	if (uname(&u) == 0)
		snprintf(r->kernel, sizeof(r->kernel), "%s %s %s %s", u.sysname,
			 u.release, u.version, u.machine);
	else
		snprintf(r->kernel, sizeof(r->kernel), "unknown");
	r->cpus_online = (int)sysconf(_SC_NPROCESSORS_ONLN);
	r->ncpus_allowed = 0;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int c = 0; c < CPU_SETSIZE && r->ncpus_allowed < 64; c++)
			if (CPU_ISSET(c, &set))
				r->cpus_allowed[r->ncpus_allowed++] = c;
	if (r->ncpus_allowed == 0) {
		r->cpus_allowed[0] = 0;
		r->ncpus_allowed = 1;
	}
	r->cpu[0] = r->cpus_allowed[0];
	r->cpu[1] = r->cpus_allowed[r->ncpus_allowed > 1 ? 1 : 0];
	if (getloadavg(&r->load_avg, 1) != 1)
		r->load_avg = -1;
	r->timer_ns = bench_timer_ns();
	if (localtime_r(&now, &tm))
		strftime(r->started, sizeof(r->started), "%Y-%m-%dT%H:%M:%S%z",
			 &tm);
}

/* ---- the plan ---------------------------------------------------------------- */

struct progress {
	int on, step, total;
};

static void progress(struct progress *p, const char *what, const char *tp)
{
	p->step++;
	if (p->on)
		fprintf(stderr, "\r\033[K[%2d/%d] %s: %s", p->step, p->total,
			what, tp);
}

static void progress_done(struct progress *p)
{
	if (p->on)
		fputs("\r\033[K", stderr);
}

static int is_floor(const struct bench_row *w)
{
	return (w->ops->flags & BENCH_TP_FLOOR) != 0;
}

static int is_memcpy(const struct bench_row *w)
{
	return (w->ops->flags & BENCH_TP_MEMCPY) != 0;
}

/* label: the workload's name in the report (as in the JSON). */
static void run_job(struct bench_run *r, struct bench_row *w,
		    enum bench_work work, const char *label, size_t size,
		    int pinned, double dur, struct bench_res *out)
{
	struct bench_job j = {0};

	j.ops = w->ops;
	j.work = work;
	j.label = label;
	j.size = size;
	j.dur_s = dur;
	j.pinned = pinned;
	j.cpu[0] = r->cpu[0];
	j.cpu[1] = r->cpu[1];
	j.corrupt = r->corrupt;
	bench_job_start(&j);
	bench_job_wait(&j);
	*out = j.res;
}

/* The message sizes that memcpy runs at: the largest stream. */
static int memcpy_stream(const struct bench_run *r)
{
	return r->sizes[1] ? 1 : 0;
}

static int count_steps(struct bench_run *r)
{
	int n = 0, ns = r->sizes[1] ? 2 : 1;

	for (size_t i = 0; i < r->nrows; i++) {
		struct bench_row *w = &r->rows[i];

		if (!w->selected)
			continue;
		if (is_memcpy(w)) {
			n += r->rounds;
			continue;
		}
		/* ping-pong: pinned in rounds, unpinned, loaded twice */
		n += r->rounds + 3;
		if (!is_floor(w))
			n += ns * r->rounds + 2; /* streams, wake, idle */
	}
	return n;
}

/*
 * The result of a measurement made in n rounds: the counts add up, the
 * first failure stands for the whole, and each figure is the median of
 * the rounds' (max and min: over all of them). Each round's rate and
 * median stay in round_rate and round_p50, for ratios taken round by
 * round (bench_report.c).
 */
static void merge_rounds(struct bench_res *out, const struct bench_res *rd,
			 int n)
{
	double v[4][BENCH_MAX_ROUNDS], rate[BENCH_MAX_ROUNDS],
		bps[BENCH_MAX_ROUNDS];

	*out = rd[0];
	for (int k = 1; k < n; k++) {
		const struct bench_res *x = &rd[k];

		if (x->nsamples && (!out->nsamples || x->min < out->min))
			out->min = x->min;
		if (x->max > out->max)
			out->max = x->max;
		out->sent += x->sent;
		out->received += x->received;
		out->verified += x->verified;
		out->errors += x->errors;
		out->count += x->count;
		out->secs += x->secs;
		out->nsamples += x->nsamples;
		/* A round that did not run where asked shows where it ran. */
		if (out->pin_ok && !x->pin_ok) {
			out->pin_ok = 0;
			memcpy(out->cpu_seen, x->cpu_seen,
			       sizeof(out->cpu_seen));
			memcpy(out->cpu_seen_end, x->cpu_seen_end,
			       sizeof(out->cpu_seen_end));
		}
		if (out->ok && !x->ok) {
			out->ok = 0;
			memcpy(out->why, x->why, sizeof(out->why));
			out->bad_dir = x->bad_dir;
			out->bad = x->bad;
		}
	}
	out->nrounds = n;
	for (int k = 0; k < n; k++) {
		out->round_rate[k] = rd[k].rate;
		out->round_p50[k] = rd[k].p50;
		out->round_count[k] = rd[k].count;
		rate[k] = rd[k].rate;
		bps[k] = rd[k].bytes_per_s;
		v[0][k] = (double)rd[k].p50;
		v[1][k] = (double)rd[k].p90;
		v[2][k] = (double)rd[k].p99;
		v[3][k] = (double)rd[k].p999;
	}
	out->rate = bench_median(rate, n);
	out->bytes_per_s = bench_median(bps, n);
	out->p50 = (uint64_t)(bench_median(v[0], n) + 0.5);
	out->p90 = (uint64_t)(bench_median(v[1], n) + 0.5);
	out->p99 = (uint64_t)(bench_median(v[2], n) + 0.5);
	out->p999 = (uint64_t)(bench_median(v[3], n) + 0.5);
}

/*
 * Ping-pong (what < 0) or stream what of every selected transport, in
 * r->rounds rounds of dur_s / rounds each, interleaved: round k of every
 * transport runs before round k + 1 of any. The machine's slow and fast
 * spells (they last seconds on a busy host or a VM) then fall on every
 * transport alike, and a ratio taken round by round cancels them. A
 * transport that fails a round is not run again.
 */
static void run_rounds(struct bench_run *r, struct progress *p, int what)
{
	static const char *const skey[2] = {"stream_small", "stream_large"};
	static struct bench_res rd[BENCH_MAX_TPS][BENCH_MAX_ROUNDS];
	double dur = r->dur_s / r->rounds;
	int n[BENCH_MAX_TPS] = {0};
	char label[64];

	if (what < 0)
		snprintf(label, sizeof(label), "ping-pong");
	else
		snprintf(label, sizeof(label), "streaming %zu-byte messages",
			 r->sizes[what]);
	for (int k = 0; k < r->rounds; k++)
		for (size_t i = 0; i < r->nrows && i < BENCH_MAX_TPS; i++) {
			struct bench_row *w = &r->rows[i];
			char prog[96];

			if (!w->selected ||
			    (what < 0 ? is_memcpy(w)
				      : is_floor(w) ||
						(is_memcpy(w) &&
						 what != memcpy_stream(r))))
				continue;
			if (n[i] != k || (k > 0 && !rd[i][k - 1].ok)) {
				p->step++; /* failed before: not run again */
				continue;
			}
			if (r->rounds > 1)
				snprintf(prog, sizeof(prog),
					 "%s, round %d of %d", label, k + 1,
					 r->rounds);
			else
				snprintf(prog, sizeof(prog), "%s", label);
			progress(p, prog, w->ops->name);
			if (what < 0)
				run_job(r, w, BW_PINGPONG, "pingpong",
					r->pp_size, 1, dur, &rd[i][k]);
			else
				run_job(r, w,
					is_memcpy(w) ? BW_MEMCPY : BW_STREAM,
					skey[what], r->sizes[what], 1, dur,
					&rd[i][k]);
			n[i] = k + 1;
		}
	for (size_t i = 0; i < r->nrows && i < BENCH_MAX_TPS; i++) {
		struct bench_row *w = &r->rows[i];

		if (n[i])
			merge_rounds(what < 0 ? &w->pp : &w->stream[what],
				     rd[i], n[i]);
	}
}

static void idle_group(struct bench_run *r, struct progress *p, int polls)
{
	struct bench_job jobs[BENCH_MAX_TPS];
	struct bench_row *rows[BENCH_MAX_TPS];
	double dur = polls && r->idle_s > 0.5 ? 0.5 : r->idle_s;
	int n = 0;

	/* All at once: waiting receivers do not disturb each other. */
	for (size_t i = 0; i < r->nrows; i++) {
		struct bench_row *w = &r->rows[i];
		struct bench_job *j = &jobs[n];

		if (!w->selected || is_floor(w) || is_memcpy(w) ||
		    !!(w->ops->flags & BENCH_TP_POLLS) != polls)
			continue;
		progress(p, "idle receiver", w->ops->name);
		memset(j, 0, sizeof(*j));
		j->ops = w->ops;
		j->work = BW_IDLE;
		j->label = "idle";
		j->size = r->pp_size;
		j->dur_s = dur;
		bench_job_start(j);
		rows[n++] = w;
	}
	for (int k = 0; k < n; k++) {
		bench_job_wait(&jobs[k]);
		rows[k]->idle = jobs[k].res;
	}
}

static void run_plan(struct bench_run *r)
{
	struct progress p = {isatty(STDERR_FILENO), 0, count_steps(r)};
	size_t i;

	run_rounds(r, &p, -1);
	for (int s = 0; s < 2 && r->sizes[s]; s++)
		run_rounds(r, &p, s);
	for (i = 0; i < r->nrows; i++) {
		struct bench_row *w = &r->rows[i];

		if (!w->selected || is_floor(w) || is_memcpy(w))
			continue;
		progress(&p, "wake-up", w->ops->name);
		run_job(r, w, BW_WAKE, "wake", r->pp_size, 1, r->dur_s,
			&w->wake);
	}
	for (i = 0; i < r->nrows; i++) {
		struct bench_row *w = &r->rows[i];
		pid_t hog;

		if (!w->selected || is_memcpy(w))
			continue;
		progress(&p, "ping-pong, unpinned", w->ops->name);
		run_job(r, w, BW_PINGPONG, "pingpong_unpinned", r->pp_size, 0,
			r->dur_s, &w->pp_unpinned);
		hog = bench_hog_start();
		progress(&p, "ping-pong with a busy process", w->ops->name);
		run_job(r, w, BW_PINGPONG, "loaded_pinned", r->pp_size, 1,
			r->dur_s, &w->loaded[0]);
		progress(&p, "ping-pong with a busy process, unpinned",
			 w->ops->name);
		run_job(r, w, BW_PINGPONG, "loaded_unpinned", r->pp_size, 0,
			r->dur_s, &w->loaded[1]);
		bench_hog_stop(hog);
	}
	idle_group(r, &p, 0);
	idle_group(r, &p, 1);
	progress_done(&p);
}

CLI_COMMAND(bench)
{
	static const struct option opts[] = {
		{"quick", no_argument, NULL, 'q'},
		{"json", no_argument, NULL, 'J'},
		{"plot", required_argument, NULL, 'P'},
		{"only", required_argument, NULL, 'O'},
		{"size", required_argument, NULL, 'S'},
		{"duration", required_argument, NULL, 'D'},
		{"rounds", required_argument, NULL, 'R'},
		{"tiny", no_argument, NULL, 'T'}, /* tests: a few seconds */
		/* tests: damage every Nth message (the checks must fail) */
		{"corrupt", required_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static struct bench_run run;
	struct bench_run *r = &run;
	double dur = 0;
	uint64_t size = 0;
	int rounds = 0;
	const char *only = NULL;
	uint64_t t0;
	sigset_t set;
	int c, rc;

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < bench_ntps && i < BENCH_MAX_TPS; i++) {
		r->rows[i].ops = bench_tps[i];
		r->rows[i].selected = 1;
		r->nrows++;
	}
	while ((c = cli_getopt(argc, argv, ":qJh", opts)) != -1) {
		switch (c) {
		case 'q':
			r->quick = 1;
			break;
		case 'J':
			r->json = 1;
			break;
		case 'P':
			r->plot = optarg;
			break;
		case 'O':
			only = optarg;
			break;
		case 'S':
			if (cli_parse_size(optarg, &size) < 0 ||
			    size < BENCH_MIN_SIZE || size > BENCH_MAX_SIZE)
				return cli_usage_err(argv[0],
						     "invalid size '%s' (%u "
						     "bytes to 64M)",
						     optarg, BENCH_MIN_SIZE);
			break;
		case 'D':
			if (parse_secs(optarg, &dur) < 0)
				return cli_usage_err(argv[0],
						     "invalid duration '%s' "
						     "(0.01 to 600 seconds)",
						     optarg);
			break;
		case 'R':
			if (parse_rounds(optarg, &rounds) < 0)
				return cli_usage_err(argv[0],
						     "invalid rounds '%s' "
						     "(1 to %d)",
						     optarg, BENCH_MAX_ROUNDS);
			break;
		case 'T':
			r->tiny = 1;
			break;
		case 'C':
			if (cli_parse_size(optarg, &r->corrupt) < 0 ||
			    r->corrupt == 0)
				return cli_usage_err(
					argv[0], "invalid count '%s'", optarg);
			break;
		case 'h':
			help();
			return CLI_EXIT_OK;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_err(argv[0], "unexpected argument '%s'",
				     argv[optind]);
	if (only && parse_only(r, only) < 0)
		return CLI_EXIT_USAGE;
	r->dur_s = r->tiny ? 0.05 : r->quick ? QUICK_DUR_S : DEFAULT_DUR_S;
	if (dur > 0)
		r->dur_s = dur;
	r->rounds = rounds ? rounds : r->tiny ? 2 : DEFAULT_ROUNDS;
	/* The idle wait: 2 s, shorter only for short measurements. */
	r->idle_s = IDLE_S;
	if (r->tiny || (dur > 0 && dur * 4 < IDLE_S))
		r->idle_s = r->tiny ? 0.2 : (dur * 4 > 0.2 ? dur * 4 : 0.2);
	r->pp_size = size ? (size_t)size : 64;
	r->sizes[0] = size ? (size_t)size : 64;
	r->sizes[1] = size ? 0 : 1u << 20;

	/* Workers report by exit status; a writer whose reader died gets
	 * EPIPE, not a signal; SIGCHLD is taken with sigtimedwait. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);

	context(r);
	t0 = bench_now_ns();
	run_plan(r);
	r->elapsed_s = (double)(bench_now_ns() - t0) / 1e9;
	sigprocmask(SIG_UNBLOCK, &set, NULL);

	if (r->json)
		bench_print_json(r, stdout);
	else
		bench_print_table(r, stdout);
	rc = bench_all_ok(r) ? CLI_EXIT_OK : CLI_EXIT_FAIL;
	if (r->plot && bench_plot(r, r->plot) < 0)
		rc = CLI_EXIT_FAIL;
	return rc;
}
