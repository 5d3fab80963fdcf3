/* SPDX-License-Identifier: MIT */
/*
 * The in-tree test harness: assertions that print file:line and both
 * values, helper processes (re-exec of the test binary with a role, in the
 * test's process group, with a parent-death signal, reaped against a
 * deadline, SIGKILL on demand), crash-point selection and unique names.
 * A test program exits 0 (pass), 1 (fail) or 77 (skip).
 */
#ifndef SHMKIT_HARNESS_H
#define SHMKIT_HARNESS_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define TH_PASS 0
#define TH_FAIL 1
#define TH_SKIP 77

void th_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));

#define TH_CMP_(a, op, b, fa, fb)                                             \
	do {                                                                  \
		long long th_a_ = (long long)(a), th_b_ = (long long)(b);     \
		if (!(th_a_ op th_b_))                                        \
			th_fail(__FILE__, __LINE__, "%s %s %s: %lld vs %lld", \
				fa, #op, fb, th_a_, th_b_);                   \
	} while (0)

#define ASSERT_EQ(a, b) TH_CMP_(a, ==, b, #a, #b)
#define ASSERT_NE(a, b) TH_CMP_(a, !=, b, #a, #b)
#define ASSERT_LT(a, b) TH_CMP_(a, <, b, #a, #b)
#define ASSERT_LE(a, b) TH_CMP_(a, <=, b, #a, #b)
#define ASSERT_GT(a, b) TH_CMP_(a, >, b, #a, #b)
#define ASSERT_GE(a, b) TH_CMP_(a, >=, b, #a, #b)
#define ASSERT_TRUE(x) TH_CMP_(!!(x), ==, 1, #x, "true")
#define ASSERT_FALSE(x) TH_CMP_(!!(x), ==, 0, #x, "false")
/* A shmkit call must succeed (>= 0); prints the error text if not. */
#define ASSERT_OK(x)                                                      \
	do {                                                              \
		long long th_r_ = (long long)(x);                         \
		if (th_r_ < 0)                                            \
			th_fail(__FILE__, __LINE__, "%s = %lld (%s)", #x, \
				th_r_, strerror((int)-th_r_));            \
	} while (0)
#define ASSERT_ERR(x, e)                                                      \
	do {                                                                  \
		long long th_r_ = (long long)(x);                             \
		if (th_r_ != -(long long)(e))                                 \
			th_fail(__FILE__, __LINE__,                           \
				"%s = %lld (%s), expected -%s (%d)", #x,      \
				th_r_,                                        \
				th_r_ < 0 ? strerror((int)-th_r_) : "ok", #e, \
				(int)(e));                                    \
	} while (0)
#define ASSERT_STR_EQ(a, b)                                                  \
	do {                                                                 \
		const char *th_a_ = (a), *th_b_ = (b);                       \
		if (strcmp(th_a_, th_b_) != 0)                               \
			th_fail(__FILE__, __LINE__,                          \
				"%s == %s: \"%s\" vs \"%s\"", #a, #b, th_a_, \
				th_b_);                                      \
	} while (0)
#define SKIP(...)                                      \
	do {                                           \
		fprintf(stderr, "SKIP: " __VA_ARGS__); \
		fputc('\n', stderr);                   \
		exit(TH_SKIP);                         \
	} while (0)

/* A role a helper process can play: returns its exit status. */
struct th_role {
	const char *name;
	int (*fn)(int argc, char **argv);
};

/*
 * Entry point: runs the role named by "--role NAME args..." or else the
 * test. roles is terminated by {NULL, NULL} (may be NULL).
 */
int th_run(int argc, char **argv, const struct th_role *roles,
	   int (*test)(void));

/*
 * Start a helper: this binary re-executed as `--role role args...`, with
 * env entries ("K=V") added (NULL-terminated, may be NULL). The child is in
 * the test's process group and gets SIGKILL when the test dies.
 */
pid_t th_spawn(const char *role, const char *const *args,
	       const char *const *env);
/* Same, with SHMKIT_CRASH=point:n set (point NULL: none). */
pid_t th_spawn_crash(const char *role, const char *const *args,
		     const char *point, long n);
/*
 * Reap pid within timeout_ms; returns its wait status, or -ETIMEDOUT
 * after killing it (the test then fails: nothing may hang).
 */
int th_wait(pid_t pid, long timeout_ms);
/* SIGKILL and reap. Returns the wait status. */
int th_kill(pid_t pid);
/* Wait status helpers. */
int th_exited_ok(int status);
int th_was_killed(int status); /* died of SIGKILL */

/* A segment name unique to this test run: "shmkit-t-<pid>-<tag>-<n>". */
const char *th_name(char *buf, size_t len, const char *tag);
/* Monotonic milliseconds / nanoseconds. */
uint64_t th_now_ns(void);
/* Sort n values ascending (for medians of timed rounds). */
void th_sort_u64(uint64_t *v, size_t n);
/* Deterministic PRNG (xorshift64*), seed from $TH_SEED or the clock. */
uint64_t th_rand(void);
uint64_t th_seed(void);

/* Milliseconds to multiply timeouts by under sanitizers / valgrind. */
long th_slow_factor(void);

#endif /* SHMKIT_HARNESS_H */
