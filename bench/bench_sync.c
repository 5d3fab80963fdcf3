/* SPDX-License-Identifier: MIT */
/*
 * shmkit-bench-sync: the shmkit mutex, event and semaphore side by side
 * with a robust process-shared pthread mutex (and condition variable):
 * uncontended lock+unlock, strict hand-off between two processes, signal
 * with no waiter, wake-up latency, owner-death detection. Public API only.
 */
#define _GNU_SOURCE
#include <shmkit.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CL 64
#define MAX_RUNS 50
#define MAX_TRIALS 100

/* Everything shared, each hot word on its own cache line. */
struct area {
	_Alignas(CL) struct shmkit_mutex m;
	_Alignas(CL) pthread_mutex_t pm;
	_Alignas(CL) struct shmkit_event ev[2];
	_Alignas(CL) struct shmkit_sem sem[2];
	_Alignas(CL) pthread_cond_t pc[2];
	_Alignas(CL) _Atomic uint32_t turn;
	_Alignas(CL) uint64_t counter;
	_Alignas(CL) _Atomic uint32_t flag;
	_Atomic uint32_t go;
};

static char seg_name[64];
static struct shmkit_seg *seg;
static struct area *A;
static long iters_unc = 5000000, iters_hand = 200000, iters_wake = 20000;
static long iters_signal = 5000000;
static uint64_t liveness_ns; /* 0: the library default */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "shmkit-bench-sync: %s: %s\n", what,
		shmkit_strerror(rc < 0 ? rc : -rc));
	exit(1);
}

static void pinit(void)
{
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;

	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&A->pm, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_condattr_init(&ca);
	pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	for (int i = 0; i < 2; i++)
		pthread_cond_init(&A->pc[i], &ca);
	pthread_condattr_destroy(&ca);
}

static void init_objects(void)
{
	int rc;

	struct shmkit_sync_opts so = {.sz = sizeof(so),
				      .liveness_ns = liveness_ns};

	if ((rc = shmkit_mutex_init(seg, &A->m, &so)) < 0)
		die("mutex_init", rc);
	for (int i = 0; i < 2; i++) {
		if ((rc = shmkit_event_init(seg, &A->ev[i])) < 0)
			die("event_init", rc);
		if ((rc = shmkit_sem_init(seg, &A->sem[i], 0)) < 0)
			die("sem_init", rc);
	}
	pinit();
}

/* A child process with its own handle of the segment (a file-backed
 * handle is per process). Returns 0 in the child, with cseg and carea set. */
static pid_t fork_child(struct shmkit_seg **cseg, struct area **carea)
{
	pid_t parent = getpid(), pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork", -errno);
	if (pid > 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	if (shmkit_seg_open(seg_name, NULL, cseg) < 0)
		_exit(1);
	*carea = shmkit_seg_base(*cseg);
	return 0;
}

static void reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Pin to one CPU (-1: any), so two spinning processes do not migrate. */
static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	if (cpu < 0 || sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		for (int i = 0; i < CPU_SETSIZE; i++)
			CPU_SET(i, &set);
	} else {
		CPU_SET(cpu, &set);
	}
	sched_setaffinity(0, sizeof(set), &set);
}

static void wait_turn(_Atomic uint32_t *turn, uint32_t me)
{
	for (unsigned spins = 0;
	     atomic_load_explicit(turn, memory_order_acquire) != me; spins++) {
		cpu_relax();
		if ((spins & 1023) == 1023)
			sched_yield(); /* 2 vCPUs: let the other side run */
	}
}

/* ---------------------------------------------------------- uncontended */

static double unc_shmkit(void)
{
	uint64_t t0 = now_ns();

	for (long i = 0; i < iters_unc; i++) {
		shmkit_mutex_lock(seg, &A->m, SHMKIT_FOREVER);
		A->counter++;
		shmkit_mutex_unlock(seg, &A->m);
	}
	return (double)(now_ns() - t0) / (double)iters_unc;
}

static double unc_pthread(void)
{
	uint64_t t0 = now_ns();

	for (long i = 0; i < iters_unc; i++) {
		pthread_mutex_lock(&A->pm);
		A->counter++;
		pthread_mutex_unlock(&A->pm);
	}
	return (double)(now_ns() - t0) / (double)iters_unc;
}

/* ------------------------------------------------------------- hand-off */

static void hand_loop(struct shmkit_seg *s, struct area *a, uint32_t me,
		      int use_pthread)
{
	for (long i = 0; i < iters_hand; i++) {
		wait_turn(&a->turn, me);
		if (use_pthread)
			pthread_mutex_lock(&a->pm);
		else
			shmkit_mutex_lock(s, &a->m, SHMKIT_FOREVER);
		a->counter++;
		atomic_store_explicit(&a->turn, 1 - me, memory_order_release);
		if (use_pthread)
			pthread_mutex_unlock(&a->pm);
		else
			shmkit_mutex_unlock(s, &a->m);
	}
}

/* ns per hand-off (each round hands the lock over twice). */
static double handoff(int use_pthread)
{
	struct shmkit_seg *cs;
	struct area *ca;
	uint64_t t0;
	pid_t pid;

	atomic_store(&A->turn, 0);
	atomic_store(&A->go, 0);
	pid = fork_child(&cs, &ca);
	if (pid == 0) {
		pin(1);
		atomic_store(&ca->go, 1);
		hand_loop(cs, ca, 1, use_pthread);
		_exit(0);
	}
	pin(0);
	while (!atomic_load(&A->go))
		cpu_relax();
	t0 = now_ns();
	hand_loop(seg, A, 0, use_pthread);
	wait_turn(&A->turn, 0);
	reap(pid);
	pin(-1);
	return (double)(now_ns() - t0) / (double)(2 * iters_hand);
}

/* ------------------------------------------------- signal with no waiter */

static double signal_shmkit(void)
{
	uint64_t t0 = now_ns();

	for (long i = 0; i < iters_signal; i++)
		shmkit_event_signal(seg, &A->ev[0]);
	return (double)(now_ns() - t0) / (double)iters_signal;
}

static double signal_pthread(void)
{
	uint64_t t0 = now_ns();

	for (long i = 0; i < iters_signal; i++)
		pthread_cond_signal(&A->pc[0]);
	return (double)(now_ns() - t0) / (double)iters_signal;
}

static double post_shmkit(void)
{
	uint64_t t0 = now_ns();

	for (long i = 0; i < iters_signal; i++) {
		shmkit_sem_post(seg, &A->sem[0]);
		shmkit_sem_trywait(seg, &A->sem[0]);
	}
	return (double)(now_ns() - t0) / (double)iters_signal;
}

/* --------------------------------------------------- wake-up ping-pong */

/*
 * Two processes take turns; each waits for its turn asleep (event wait
 * under the mutex, or a semaphore, or a pthread condition variable) and
 * wakes the other. ns per wake-up = round trip / 2.
 */
static void pp_event(struct shmkit_seg *s, struct area *a, uint32_t me)
{
	shmkit_mutex_lock(s, &a->m, SHMKIT_FOREVER);
	for (long i = 0; i < iters_wake; i++) {
		while (atomic_load_explicit(&a->turn, memory_order_relaxed) !=
		       me)
			shmkit_event_wait(s, &a->ev[me], &a->m, SHMKIT_FOREVER);
		atomic_store_explicit(&a->turn, 1 - me, memory_order_relaxed);
		shmkit_event_signal(s, &a->ev[1 - me]);
	}
	shmkit_mutex_unlock(s, &a->m);
}

static void pp_sem(struct shmkit_seg *s, struct area *a, uint32_t me)
{
	for (long i = 0; i < iters_wake; i++) {
		if (me == 0) {
			shmkit_sem_post(s, &a->sem[1]);
			shmkit_sem_wait(s, &a->sem[0], SHMKIT_FOREVER);
		} else {
			shmkit_sem_wait(s, &a->sem[1], SHMKIT_FOREVER);
			shmkit_sem_post(s, &a->sem[0]);
		}
	}
}

static void pp_cond(struct area *a, uint32_t me)
{
	pthread_mutex_lock(&a->pm);
	for (long i = 0; i < iters_wake; i++) {
		while (atomic_load_explicit(&a->turn, memory_order_relaxed) !=
		       me)
			pthread_cond_wait(&a->pc[me], &a->pm);
		atomic_store_explicit(&a->turn, 1 - me, memory_order_relaxed);
		pthread_cond_signal(&a->pc[1 - me]);
	}
	pthread_mutex_unlock(&a->pm);
}

static void pp_run(int kind, struct shmkit_seg *s, struct area *a, uint32_t me)
{
	if (kind == 0)
		pp_event(s, a, me);
	else if (kind == 1)
		pp_sem(s, a, me);
	else
		pp_cond(a, me);
}

static double pingpong(int kind)
{
	struct shmkit_seg *cs;
	struct area *ca;
	uint64_t t0;
	pid_t pid;

	atomic_store(&A->turn, 0);
	atomic_store(&A->go, 0);
	pid = fork_child(&cs, &ca);
	if (pid == 0) {
		atomic_store(&ca->go, 1);
		pp_run(kind, cs, ca, 1);
		_exit(0);
	}
	while (!atomic_load(&A->go))
		cpu_relax();
	t0 = now_ns();
	pp_run(kind, seg, A, 0);
	reap(pid);
	return (double)(now_ns() - t0) / (double)(2 * iters_wake);
}

/* ------------------------------------------------ owner-death detection */

/*
 * The liveness lock of an attachment slot, as docs/ARCHITECTURE.md
 * ("Liveness: OFD locks", "Byte-level format") documents it: the owner of
 * slot i holds an OFD write lock on byte 2^62 + 64 + i of the segment's
 * file, and slots[i].pid (i32) sits at file offset 0x80 + 16 * i. The
 * benchmark reads them from a description of its own, as `shmkit stat`
 * does, to timestamp the kernel's release of a dead holder's lock.
 */
#define SLOT_LOCK0 ((1ll << 62) + 64)
#define SLOT_TABLE_OFF 0x80
#define SLOT_SIZE 16
#define NSLOTS 64

static int obs_fd = -1; /* the segment's file, a description of our own */

static int slot_held(int slot)
{
	struct flock fl = {.l_type = F_WRLCK,
			   .l_whence = SEEK_SET,
			   .l_start = SLOT_LOCK0 + slot,
			   .l_len = 1};

	if (fcntl(obs_fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	return fl.l_type != F_UNLCK;
}

/* The attachment slot whose recorded pid is pid and whose lock is held. */
static int slot_of(pid_t pid)
{
	unsigned char tab[NSLOTS * SLOT_SIZE];
	int32_t p;

	if (pread(obs_fd, tab, sizeof(tab), SLOT_TABLE_OFF) != sizeof(tab))
		return -1;
	for (int i = 0; i < NSLOTS; i++) {
		memcpy(&p, tab + i * SLOT_SIZE, sizeof(p));
		if (p == pid && slot_held(i) == 1)
			return i;
	}
	return -1;
}

/*
 * Time thread tid has spent runnable but kept off the CPU, ns (second
 * field of /proc/self/task/TID/schedstat; 0 where the kernel keeps none).
 */
static uint64_t run_delay(pid_t tid)
{
	char path[64];
	unsigned long long run = 0, delay = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", (int)tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &run, &delay) != 2)
		delay = 0;
	fclose(f);
	return delay;
}

struct killer {
	pid_t victim;
	pid_t waiter; /* TID of the waiting thread */
	int slot;     /* victim's attachment slot to watch, -1: don't */
	long jitter_ns;
	uint64_t t_kill;
	/* The release of the slot lock happened in [t_held, t_free]: the
	 * start of the last poll that saw it held, the end of the first
	 * that saw it free (0: not observed). */
	uint64_t t_held, t_free;
	uint64_t delay_free; /* the waiter's run delay at t_free */
};

static void *killer_main(void *arg)
{
	struct killer *k = arg;
	/* The waiter is asleep by then; a random phase against its
	 * liveness checks, as a real death would have. */
	struct timespec d = {0, 2000000 + k->jitter_ns};
	uint64_t t0, t1;

	if (k->slot >= 0)
		pin(0);
	nanosleep(&d, NULL);
	k->t_kill = now_ns();
	k->t_held = k->t_kill; /* the victim holds it until killed */
	kill(k->victim, SIGKILL);
	/*
	 * Poll the lock until the kernel drops it (one F_OFD_GETLK, about
	 * 1-2 us, per poll). Only the window kill -> release is spent
	 * spinning; the waiter notices the release after it, and by then this
	 * thread is done. It runs on CPU 0 and the victim on CPU 1: woken
	 * by the kill on the killer's CPU, the victim would otherwise share
	 * it and the release would mostly happen while the observer is off
	 * the CPU (measured: a median window of 170 us instead of 1.5 us).
	 * The pinned victim still competes for the CPUs with the spinning,
	 * so kill -> EOWNERDEAD of the shmkit trials is perturbed
	 * (--no-observer measures without it). Bounded: a victim that does
	 * not die in 2 s leaves the release unobserved.
	 */
	for (t0 = k->t_kill; k->slot >= 0 && t0 - k->t_kill < 2000000000ull;
	     t0 = t1) {
		int h = slot_held(k->slot);

		t1 = now_ns();
		if (h < 0)
			break;
		if (!h) {
			k->t_free = t1;
			k->delay_free = run_delay(k->waiter);
			break;
		}
		k->t_held = t0;
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Nearest-rank percentile of v[0..n) (sorted in place). */
static double pctl(double *v, int n, double p)
{
	int i = (int)((double)n * p / 100.0 + 0.999999) - 1;

	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/*
 * Every death trial of every run, microseconds, for the pooled
 * distributions: kill -> EOWNERDEAD (shmkit, pthread), kill -> release of
 * the holder's slot lock, release -> EOWNERDEAD (upper bound: from the
 * last poll that saw the lock held; lower bound: from the first that saw
 * it free), the upper bound less the time the waiter was runnable but
 * off the CPU after the release (its run delay: what other load, not the
 * polling, cost), the observer's resolution (the width of the window the
 * release lies in) and the waiter's wake-up overrun (below).
 */
enum {
	D_KILL_S,
	D_KILL_P,
	D_EXIT,
	D_REL,
	D_REL_LO,
	D_REL_RD,
	D_RES,
	D_OVER,
	ND
};
#define OVER_CAP 1000000
static double *dv[ND];
static int dn[ND], death_trials = 20, observe = 1;

static void dpush(int k, double us)
{
	dv[k][dn[k]++] = us;
}

/*
 * The scheduling slack, measured alongside: while the shmkit trials run,
 * a thread of the waiter's process sleeps on a futex as the waiter does
 * between two checks (one interval less the thread's timer slack, which
 * the kernel may add) and records by how much each wake-up came later than
 * one interval after the sleep began (negative: earlier). A waiter
 * notices a release at most interval + this overrun + one check later.
 */
static _Atomic uint32_t pace_stop;

static void *pacer_main(void *arg)
{
	uint64_t ns = *(const uint64_t *)arg, t0, t1;
	int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	uint64_t margin = slack < 0 ? 50000 : (uint64_t)slack;
	_Atomic uint32_t word = 0;
	struct timespec ts;

	if (margin > ns / 2)
		margin = ns / 2;
	ts.tv_sec = (time_t)((ns - margin) / 1000000000ull);
	ts.tv_nsec = (long)((ns - margin) % 1000000000ull);
	while (!atomic_load_explicit(&pace_stop, memory_order_relaxed) &&
	       dn[D_OVER] < OVER_CAP) {
		t0 = now_ns();
		syscall(SYS_futex, &word, FUTEX_WAIT, 0, &ts, NULL, 0);
		t1 = now_ns();
		dpush(D_OVER, ((double)(t1 - t0) - (double)ns) / 1000.0);
	}
	return NULL;
}

/* Median (and *max) microseconds from SIGKILL of the holder until the
 * blocked waiter has the lock with EOWNERDEAD, over death_trials. */
static double death(int use_pthread, double *max)
{
	double v[MAX_TRIALS];
	uint64_t pace_ns = liveness_ns ? liveness_ns : SHMKIT_SYNC_LIVENESS_NS;
	pthread_t pacer;
	int pacing = !use_pthread && observe;

	*max = 0;
	atomic_store_explicit(&pace_stop, 0, memory_order_relaxed);
	if (pacing && pthread_create(&pacer, NULL, pacer_main, &pace_ns))
		die("pthread_create", -EAGAIN);
	for (int t = 0; t < death_trials; t++) {
		struct shmkit_seg *cs;
		struct area *ca;
		struct killer k = {0};
		pthread_t th;
		uint64_t t1, delay = 0;
		pid_t pid;
		int rc;

		atomic_store(&A->flag, 0);
		pid = fork_child(&cs, &ca);
		if (pid == 0) {
			if (!use_pthread && observe)
				pin(1); /* off the observer's CPU */
			if (use_pthread)
				pthread_mutex_lock(&ca->pm);
			else
				shmkit_mutex_lock(cs, &ca->m, SHMKIT_FOREVER);
			atomic_store(&ca->flag, 1);
			for (;;)
				pause();
		}
		while (!atomic_load(&A->flag))
			sched_yield();
		k.victim = pid;
		k.waiter = (pid_t)syscall(SYS_gettid);
		k.slot = use_pthread || !observe ? -1 : slot_of(pid);
		if (!use_pthread && observe && k.slot < 0)
			die("victim's attachment slot not found", -ENOENT);
		k.jitter_ns = random() % 1000000;
		pthread_create(&th, NULL, killer_main, &k);
		if (use_pthread) {
			rc = pthread_mutex_lock(&A->pm);
			t1 = now_ns();
			if (rc != EOWNERDEAD)
				die("pthread death", rc);
			pthread_mutex_consistent(&A->pm);
			pthread_mutex_unlock(&A->pm);
		} else {
			rc = shmkit_mutex_lock(seg, &A->m, SHMKIT_FOREVER);
			t1 = now_ns();
			if (k.slot >= 0)
				delay = run_delay(k.waiter);
			if (rc != -EOWNERDEAD)
				die("shmkit death", rc);
			shmkit_mutex_consistent(seg, &A->m);
			shmkit_mutex_unlock(seg, &A->m);
		}
		pthread_join(th, NULL);
		reap(pid);
		v[t] = (double)(t1 - k.t_kill) / 1000.0;
		if (v[t] > *max)
			*max = v[t];
		dpush(use_pthread ? D_KILL_P : D_KILL_S, v[t]);
		if (k.slot >= 0) {
			if (!k.t_free)
				die("release of the slot lock not observed",
				    -ETIMEDOUT);
			dpush(D_EXIT, (double)(k.t_held - k.t_kill) / 1000.0);
			dpush(D_REL, (double)(t1 - k.t_held) / 1000.0);
			dpush(D_REL_LO,
			      t1 > k.t_free ? (double)(t1 - k.t_free) / 1000.0
					    : 0);
			delay = delay > k.delay_free ? delay - k.delay_free : 0;
			dpush(D_REL_RD,
			      t1 - k.t_held > delay
				      ? (double)(t1 - k.t_held - delay) / 1000.0
				      : 0);
			dpush(D_RES, (double)(k.t_free - k.t_held) / 1000.0);
		}
	}
	if (pacing) {
		atomic_store_explicit(&pace_stop, 1, memory_order_relaxed);
		pthread_join(pacer, NULL);
	}
	return median(v, death_trials);
}

/* ------------------------------------------------------------------ main */

enum {
	UNC_S,
	UNC_P,
	HAND_S,
	HAND_P,
	SIG_S,
	SIG_P,
	POST_S,
	WAKE_EV,
	WAKE_SEM,
	WAKE_COND,
	DEATH_S,
	DEATH_P,
	DEATH_S_MAX,
	DEATH_P_MAX,
	NRES
};

static const char *const res_name[NRES] = {
	"uncontended_shmkit_ns",
	"uncontended_pthread_ns",
	"handoff_shmkit_ns",
	"handoff_pthread_ns",
	"signal_nowaiter_shmkit_ns",
	"signal_nowaiter_pthread_cond_ns",
	"sem_post_trywait_shmkit_ns",
	"wakeup_event_ns",
	"wakeup_sem_ns",
	"wakeup_pthread_cond_ns",
	"death_shmkit_us",
	"death_pthread_us",
	"death_shmkit_max_us",
	"death_pthread_max_us",
};

static void run_once(double *r)
{
	/* Interleaved (s p p s) so that drift of a noisy machine hits both
	 * alike; the first pass of each is a warm-up. */
	unc_shmkit();
	unc_pthread();
	r[UNC_S] = unc_shmkit();
	r[UNC_P] = unc_pthread();
	r[UNC_P] = (r[UNC_P] + unc_pthread()) / 2;
	r[UNC_S] = (r[UNC_S] + unc_shmkit()) / 2;
	r[HAND_S] = handoff(0);
	r[HAND_P] = handoff(1);
	r[SIG_S] = signal_shmkit();
	r[SIG_P] = signal_pthread();
	r[POST_S] = post_shmkit();
	r[WAKE_EV] = pingpong(0);
	r[WAKE_SEM] = pingpong(1);
	r[WAKE_COND] = pingpong(2);
	r[DEATH_S] = death(0, &r[DEATH_S_MAX]);
	r[DEATH_P] = death(1, &r[DEATH_P_MAX]);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: shmkit-bench-sync [--json] [--runs N] [--quick] "
		"[--liveness NS]\n"
		"                         [--death-only] [--trials N] "
		"[--no-observer]\n"
		"       shmkit-bench-sync --signal-only N\n"
		"  --runs N       repeat N times (default 5, at most %d), "
		"report medians\n"
		"  --quick        fewer iterations (smoke test)\n"
		"  --liveness NS  the shmkit mutex's liveness interval\n"
		"  --death-only   only the owner-death trials\n"
		"  --trials N     owner-death trials per run (default 20, "
		"at most %d)\n"
		"  --no-observer  do not poll the dead holder's liveness lock\n"
		"                 (no release -> EOWNERDEAD figures)\n"
		"  --signal-only  only N event signals with no waiter (run\n"
		"                 under strace -c -f: no futex call appears)\n",
		MAX_RUNS, MAX_TRIALS);
	exit(2);
}

/* Pooled distributions, as JSON fields and table rows. */
struct dist {
	const char *name; /* JSON prefix */
	int k;
};

static const struct dist dists[] = {
	{"death_shmkit_kill", D_KILL_S},
	{"death_pthread_kill", D_KILL_P},
	{"death_shmkit_exit", D_EXIT},
	{"death_shmkit_release", D_REL},
	{"death_shmkit_release_lower", D_REL_LO},
	{"death_shmkit_release_less_run_delay", D_REL_RD},
	{"death_observer_resolution", D_RES},
	{"death_wakeup_overrun", D_OVER},
};

#define NDIST (sizeof(dists) / sizeof(dists[0]))

static void dist_stats(int k, double *p50, double *p99, double *max)
{
	*p50 = *p99 = *max = 0;
	if (dn[k] == 0)
		return;
	*p50 = median(dv[k], dn[k]);
	*p99 = pctl(dv[k], dn[k], 99);
	*max = dv[k][dn[k] - 1]; /* sorted */
}

static void dist_row(const char *label, int k)
{
	double p50, p99, max;

	dist_stats(k, &p50, &p99, &max);
	printf("%-34s %9.1f us %9.1f us %9.1f us\n", label, p50, p99, max);
}

int main(int argc, char **argv)
{
	static double res[MAX_RUNS][NRES];
	double med[NRES], col[MAX_RUNS], live_us, p50, p99, max;
	int json = 0, runs = 5, death_only = 0, rc;
	long signal_only = 0;
	char path[4200];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
			runs = atoi(argv[++i]);
			if (runs < 1 || runs > MAX_RUNS)
				usage();
		} else if (strcmp(argv[i], "--liveness") == 0 && i + 1 < argc) {
			liveness_ns = strtoull(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--quick") == 0) {
			iters_unc /= 50;
			iters_hand /= 50;
			iters_wake /= 50;
			iters_signal /= 50;
		} else if (strcmp(argv[i], "--death-only") == 0) {
			death_only = 1;
		} else if (strcmp(argv[i], "--trials") == 0 && i + 1 < argc) {
			death_trials = atoi(argv[++i]);
			if (death_trials < 1 || death_trials > MAX_TRIALS)
				usage();
		} else if (strcmp(argv[i], "--no-observer") == 0) {
			observe = 0;
		} else if (strcmp(argv[i], "--signal-only") == 0 &&
			   i + 1 < argc) {
			signal_only = atol(argv[++i]);
			if (signal_only < 1)
				usage();
		} else {
			usage();
		}
	}
	snprintf(seg_name, sizeof(seg_name), "shmkit-bench-sync-%d",
		 (int)getpid());
	rc = shmkit_seg_create(seg_name, sizeof(struct area), NULL, &seg);
	if (rc < 0)
		die("seg_create", rc);
	A = shmkit_seg_base(seg);
	init_objects();
	if (signal_only > 0) {
		for (long i = 0; i < signal_only; i++)
			shmkit_event_signal(seg, &A->ev[0]);
		shmkit_seg_close(seg);
		shmkit_seg_unlink(seg_name);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/%s", shmkit_shm_dir(), seg_name);
	obs_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (obs_fd < 0)
		die("open the segment's file", -errno);
	for (int k = 0; k < ND; k++) {
		dv[k] = calloc(k == D_OVER ? OVER_CAP
					   : (size_t)(runs * death_trials),
			       sizeof(double));
		if (!dv[k])
			die("calloc", -ENOMEM);
	}
	for (int r = 0; r < runs; r++) {
		if (death_only) {
			res[r][DEATH_S] = death(0, &res[r][DEATH_S_MAX]);
			res[r][DEATH_P] = death(1, &res[r][DEATH_P_MAX]);
		} else {
			run_once(res[r]);
		}
	}
	for (int k = 0; k < NRES; k++) {
		for (int r = 0; r < runs; r++)
			col[r] = res[r][k];
		med[k] = median(col, runs);
		if (k == DEATH_S_MAX || k == DEATH_P_MAX)
			med[k] = col[runs - 1]; /* sorted: the worst of all */
	}
	close(obs_fd);
	shmkit_seg_close(seg);
	shmkit_seg_unlink(seg_name);
	live_us =
		(double)(liveness_ns ? liveness_ns : SHMKIT_SYNC_LIVENESS_NS) /
		1000.0;

	if (json) {
		printf("{\"runs\": %d, \"liveness_ns\": %.0f, "
		       "\"death_trials\": %d",
		       runs, live_us * 1000, runs * death_trials);
		for (int k = death_only ? DEATH_S : 0; k < NRES; k++)
			printf(", \"%s\": %.2f", res_name[k], med[k]);
		for (size_t d = 0; d < NDIST; d++) {
			if (dn[dists[d].k] == 0)
				continue;
			dist_stats(dists[d].k, &p50, &p99, &max);
			printf(", \"%s_p50_us\": %.2f, \"%s_p99_us\": %.2f, "
			       "\"%s_max_us\": %.2f",
			       dists[d].name, p50, dists[d].name, p99,
			       dists[d].name, max);
		}
		printf("}\n");
		return 0;
	}
	printf("shmkit-bench-sync: medians of %d runs\n", runs);
	printf("%-34s %12s %12s %8s  %s\n", "", "shmkit", "pthread", "ratio",
	       "target");
	if (!death_only) {
		printf("%-34s %9.1f ns %9.1f ns %8.2f  <= 1.2\n",
		       "uncontended lock+unlock", med[UNC_S], med[UNC_P],
		       med[UNC_S] / med[UNC_P]);
		printf("%-34s %9.1f ns %9.1f ns %8.2f  <= 1.5\n",
		       "hand-off between 2 processes", med[HAND_S], med[HAND_P],
		       med[HAND_S] / med[HAND_P]);
		printf("%-34s %9.1f ns %9.1f ns %8s  no syscall\n",
		       "signal, no waiter (vs cond)", med[SIG_S], med[SIG_P],
		       "");
		printf("%-34s %9.1f ns %12s\n", "sem post+trywait, no waiter",
		       med[POST_S], "");
		printf("%-34s %9.1f us %9.1f us %8.2f\n",
		       "wake-up, event (vs cond)", med[WAKE_EV] / 1000,
		       med[WAKE_COND] / 1000, med[WAKE_EV] / med[WAKE_COND]);
		printf("%-34s %9.1f us %12s\n", "wake-up, semaphore",
		       med[WAKE_SEM] / 1000, "");
	}
	printf("%-34s %9.1f us %9.1f us %8.2f  <= 10\n",
	       "owner death noticed, median", med[DEATH_S], med[DEATH_P],
	       med[DEATH_S] / med[DEATH_P]);
	printf("%-34s %9.1f us %9.1f us %8s  <= %.0f us bound\n",
	       "owner death noticed, worst", med[DEATH_S_MAX], med[DEATH_P_MAX],
	       "", live_us);
	printf("\nowner death, all %d trials pooled, liveness interval "
	       "%.0f us:\n",
	       runs * death_trials, live_us);
	printf("%-34s %12s %12s %12s\n", "", "median", "p99", "max");
	dist_row("kill -> EOWNERDEAD, pthread", D_KILL_P);
	dist_row("kill -> EOWNERDEAD, shmkit", D_KILL_S);
	if (dn[D_REL] > 0) {
		dist_row("kill -> slot lock released (>=)", D_EXIT);
		dist_row("release -> EOWNERDEAD (<=)", D_REL);
		dist_row("release -> EOWNERDEAD (>=)", D_REL_LO);
		dist_row("  (<=) less waiter's run delay", D_REL_RD);
		dist_row("  (observer resolution)", D_RES);
		dist_row("waiter wake-up, overrun of interval", D_OVER);
	}
	return 0;
}
