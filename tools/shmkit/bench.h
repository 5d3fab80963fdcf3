/* SPDX-License-Identifier: MIT */
/*
 * shmkit bench: what its files share. Transports (bench_tp.c) move messages
 * between two forked processes; workloads and jobs (bench_work.c) drive them,
 * verify every message and time them; cmd_bench.c plans the run and
 * bench_report.c prints the table, the JSON and the plot.
 */
#ifndef SHMKIT_BENCH_H
#define SHMKIT_BENCH_H

#include <shmkit.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* ---- time, spinning ------------------------------------------------------ */

uint64_t bench_now_ns(void); /* CLOCK_MONOTONIC */
void bench_relax(void);	     /* a pause instruction in a spin loop */

/* ---- histogram: log-linear buckets, 32 per power of two (3% wide) -------- */

#define BENCH_HIST_SUB 32
#define BENCH_HIST_BUCKETS (BENCH_HIST_SUB + 36 * BENCH_HIST_SUB)

struct bench_hist {
	uint64_t n, min, max;
	uint64_t b[BENCH_HIST_BUCKETS];
};

void bench_hist_add(struct bench_hist *h, uint64_t v);
/* The value below which a fraction q of the samples lie (q = 1: max). */
uint64_t bench_hist_pct(const struct bench_hist *h, double q);

/* ---- messages: a header and a pattern that changes with the sequence ---- */

struct bench_hdr {
	uint64_t seq;	   /* 1, 2, ... per direction */
	uint64_t stamp_ns; /* wake-up test: CLOCK_MONOTONIC at send */
	uint32_t len;	   /* bytes of the whole message */
	uint32_t flags;	   /* BENCH_STOP */
};

/* Where a bad message travelled: A to B, B to A, memcpy's copy. */
#define BENCH_BAD_AB 1
#define BENCH_BAD_BA 2
#define BENCH_BAD_COPY 3

/* What bench_check found wrong with a message. */
struct bench_bad {
	uint64_t want_seq, got_seq; /* the number expected, the one read */
	uint64_t off;		    /* first wrong pattern byte (0: none) */
	uint64_t want, got;	    /* the word expected there, the one read */
};

#define BENCH_HDR_SIZE 24
#define BENCH_STOP 1u
#define BENCH_MIN_SIZE 32
#define BENCH_MAX_SIZE (64u << 20)

/* Which direction a message travels in (part of its pattern). */
#define BENCH_SALT_AB 0x5a17ab01u
#define BENCH_SALT_BA 0x5a17ba02u

/*
 * Write the header and the pattern of message seq: every word of a message
 * up to 256 bytes, else 16 sample words at places that move with seq.
 */
void bench_fill(void *buf, size_t len, uint64_t seq, uint32_t flags,
		uint64_t salt);
/*
 * Check a received message against what bench_fill wrote for seq. With
 * seq_only (the cache-line floor, which carries no bytes) only the header.
 * Returns 0 and the header's flags in *flags, or -EBADMSG with what was
 * expected and what was found in *bad and in words in why.
 */
int bench_check(const void *buf, size_t len, uint64_t seq, uint64_t salt,
		int seq_only, uint32_t *flags, struct bench_bad *bad, char *why,
		size_t whylen);

/* ---- transports ----------------------------------------------------------- */

/* Transport flags. */
#define BENCH_TP_FLOOR 1u  /* a cache line per direction: ping-pong only */
#define BENCH_TP_MEMCPY 2u /* one process copying: streams only */
#define BENCH_TP_POLLS 4u  /* waits by spinning, never sleeps */

/* One instance of a transport, for one job (two processes). */
struct bench_tp {
	const struct bench_tp_ops *ops;
	int side;	 /* 0: A (sends first), 1: B */
	size_t size;	 /* message size of the job */
	uint64_t job_id; /* makes names unique */
	int fd[8];	 /* descriptors made before fork (-1: none) */
	void *mem;	 /* shared memory made before fork */
	size_t mem_len;
	size_t chunk;	 /* largest piece one system call moves */
	void *bounce;	 /* mq: for a last piece smaller than a slot */
	uint64_t pos[4]; /* rings: own index and cached peer index */
	uint64_t last;	 /* floor: last value seen from the peer */
	struct shmkit_chan *out, *in;
	char name[2][96]; /* channel or queue names, a->b and b->a */
	char why[200];	  /* what failed, for the report */
};

struct bench_tp_ops {
	const char *name; /* for --only and the report */
	const char *desc;
	unsigned flags;
	/* In the main process, before fork: make what both sides share. */
	int (*setup)(struct bench_tp *t);
	/* In each worker after fork (t->side set): take its ends. */
	int (*attach)(struct bench_tp *t);
	/* Side A, once both sides are attached (may be NULL). */
	void (*ready)(struct bench_tp *t);
	/* Move exactly one message of len bytes (0 or -errno). */
	int (*send)(struct bench_tp *t, const void *msg, size_t len);
	int (*recv)(struct bench_tp *t, void *buf, size_t len);
	void (*detach)(struct bench_tp *t);
	/* Main process after both forks: drop its copies of the ends. */
	void (*parent_close)(struct bench_tp *t);
	/* Main process after the job: remove names, unmap. */
	void (*teardown)(struct bench_tp *t);
};

extern const struct bench_tp_ops *const bench_tps[];
extern const size_t bench_ntps;

/* ---- jobs: one measurement, two worker processes --------------------------- */

enum bench_work {
	BW_PINGPONG, /* A sends, B answers; A times each round trip */
	BW_STREAM,   /* A sends as fast as it can for the duration; B counts */
	BW_WAKE,     /* A pauses 1-3 ms before each message; B times arrival */
	BW_IDLE,     /* B waits with no traffic; its CPU time is taken */
	BW_MEMCPY,   /* one process copies size-byte blocks (the floor) */
};

/* The most rounds a measurement is split into (--rounds). */
#define BENCH_MAX_ROUNDS 9

/* What one job measured (filled in the main process). */
struct bench_res {
	int ran; /* 0: not run */
	int ok;
	char why[240];
	uint64_t sent, received, verified, errors;
	uint64_t count;	    /* rounds or messages timed */
	double secs;	    /* over which count was timed */
	double rate;	    /* count / secs */
	double bytes_per_s; /* streams */
	uint64_t nsamples;  /* histogram */
	uint64_t p50, p90, p99, p999, max, min;
	double cpu_pct;	     /* B's CPU time over the test (wake, idle) */
	int cpu_seen[2];     /* each side's CPU at its start */
	int cpu_seen_end[2]; /* and at its end */
	int pin_ok;	     /* pinned jobs: both sides on the CPUs asked for */
	/* The first message that failed its check (bad_dir 0: none). */
	int bad_dir; /* BENCH_BAD_AB, _BA, _COPY */
	struct bench_bad bad;
	/* Measured in rounds (ping-pong and streams): each round's rate and
	 * median, in the order run; the figures above are then the median
	 * of the rounds' (max, min: over all; counts: sums). */
	int nrounds;
	double round_rate[BENCH_MAX_ROUNDS];
	uint64_t round_p50[BENCH_MAX_ROUNDS];
	uint64_t round_count[BENCH_MAX_ROUNDS];
};

struct bench_shm; /* shared by the two workers of a job */

struct bench_job {
	const struct bench_tp_ops *ops;
	enum bench_work work;
	const char *label; /* the workload's name in the report */
	size_t size;
	double dur_s;
	int pinned;
	int cpu[2];
	/* tests: damage every corrupt-th message sent (0: none), to show
	 * that the checks catch a broken transport */
	uint64_t corrupt;
	/* running */
	struct bench_tp tp;
	struct bench_shm *sh;
	pid_t pid[2];
	uint64_t deadline_ns;
	/* result */
	struct bench_res res;
};

/* Start the job's workers (or fail, with res filled). 0 or -errno. */
int bench_job_start(struct bench_job *j);
/*
 * Wait for the workers (killed at the deadline) and fill j->res; a
 * failure's text starts with the transport and the label.
 */
void bench_job_wait(struct bench_job *j);

/* A compute-bound process, on no CPU in particular, until stopped. */
pid_t bench_hog_start(void);
void bench_hog_stop(pid_t pid);

/* Cost of one clock_gettime(CLOCK_MONOTONIC) in ns (median). */
double bench_timer_ns(void);

/* ---- a whole run: what cmd_bench.c measures and bench_report.c prints ---- */

/* The most transports a run holds. */
#define BENCH_MAX_TPS 16

/* Results of one transport, one per workload (ran == 0: not run). */
struct bench_row {
	const struct bench_tp_ops *ops;
	int selected;
	struct bench_res pp;	      /* ping-pong, pinned */
	struct bench_res pp_unpinned; /* ping-pong, unpinned */
	struct bench_res loaded[2];   /* with the hog: pinned, unpinned */
	struct bench_res stream[2];   /* sizes[0], sizes[1] */
	struct bench_res wake;
	struct bench_res idle;
};

struct bench_run {
	/* options */
	int quick, tiny, json;
	uint64_t corrupt; /* hidden --corrupt N, for the tests */
	const char *plot;
	double dur_s;  /* per measurement (all its rounds) */
	int rounds;    /* ping-pong and streams: interleaved rounds */
	double idle_s; /* idle receiver wait */
	size_t pp_size;
	size_t sizes[2]; /* stream sizes; sizes[1] 0 if one */
	/* context */
	char cpu_model[128];
	char kernel[400];
	int cpus_online;
	int cpus_allowed[64];
	int ncpus_allowed;
	int cpu[2]; /* the CPUs pinned jobs use */
	double load_avg;
	double timer_ns;
	char started[40];
	double elapsed_s;
	/* results */
	struct bench_row rows[BENCH_MAX_TPS];
	size_t nrows;
};

/* The median of the n values in v (n >= 1; v is sorted in place). */
double bench_median(double *v, int n);

/* Row of a transport by name, or NULL if it was not selected. */
struct bench_row *bench_row(struct bench_run *r, const char *name);

/* A performance target of shmkit channels, evaluated in one run. */
struct bench_target {
	const char *name;
	const char *desc;
	const char *cmp; /* "<=", ">=", "<" */
	double limit;
	double measured;
	int evaluated;
	int met;
	char note[160];
};

#define BENCH_NTARGETS 7
/* Fill t[0..BENCH_NTARGETS-1] from the run's results. */
void bench_targets(struct bench_run *r, struct bench_target *t);

/* Every message of every job verified, and every job ran. */
int bench_all_ok(const struct bench_run *r);
void bench_print_table(struct bench_run *r, FILE *f);
void bench_print_json(struct bench_run *r, FILE *f);
/* Writes FILE's data and gnuplot script, runs gnuplot if there is one.
 * 0, or -errno (message printed). */
int bench_plot(struct bench_run *r, const char *png);

#endif /* SHMKIT_BENCH_H */
