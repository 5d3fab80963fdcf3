/* SPDX-License-Identifier: MIT */
/*
 * Test harness implementation (see harness.h).
 */
#define _GNU_SOURCE
#include "harness.h"

#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 4096

static pid_t children[MAX_CHILDREN];
static int nchildren;
static pid_t test_pid;
static char self_exe[4096];
static uint64_t rng_state;
static uint64_t rng_seed;

void th_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (rng_seed)
		fprintf(stderr, "(TH_SEED=%llu)\n",
			(unsigned long long)rng_seed);
	exit(TH_FAIL);
}

uint64_t th_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void th_sort_u64(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
}

uint64_t th_seed(void)
{
	if (!rng_seed) {
		const char *e = getenv("TH_SEED");

		rng_seed = e ? strtoull(e, NULL, 10) : 0;
		if (!rng_seed)
			rng_seed = th_now_ns() ^ ((uint64_t)getpid() << 32);
		rng_state = rng_seed;
	}
	return rng_seed;
}

uint64_t th_rand(void)
{
	th_seed();
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

long th_slow_factor(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return 5;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
	return 5;
#else
	return 1;
#endif
#else
	return 1;
#endif
}

const char *th_name(char *buf, size_t len, const char *tag)
{
	static int n;

	snprintf(buf, len, "shmkit-t-%d-%s-%d", (int)getpid(), tag, n++);
	return buf;
}

static void forget(pid_t pid)
{
	for (int i = 0; i < nchildren; i++) {
		if (children[i] == pid) {
			children[i] = children[--nchildren];
			return;
		}
	}
}

/* No helper outlives the test, whatever way it ends. */
static void kill_children(void)
{
	if (getpid() != test_pid)
		return;
	for (int i = 0; i < nchildren; i++) {
		kill(children[i], SIGKILL);
		waitpid(children[i], NULL, 0);
	}
	nchildren = 0;
}

pid_t th_spawn(const char *role, const char *const *args,
	       const char *const *env)
{
	pid_t parent = getpid();
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(TH_FAIL);
	}
	if (pid == 0) {
		const char *argv[64];
		int n = 0;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(TH_FAIL); /* parent died before prctl */
		for (int i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		argv[n++] = self_exe;
		argv[n++] = "--role";
		argv[n++] = role;
		for (int i = 0; args && args[i] && n < 63; i++)
			argv[n++] = args[i];
		argv[n] = NULL;
		execv(self_exe, (char *const *)argv);
		_exit(127);
	}
	if (nchildren < MAX_CHILDREN)
		children[nchildren++] = pid;
	return pid;
}

pid_t th_spawn_crash(const char *role, const char *const *args,
		     const char *point, long n)
{
	static char env_buf[256];
	const char *env[] = {env_buf, NULL};

	if (!point)
		snprintf(env_buf, sizeof(env_buf), "SHMKIT_CRASH=");
	else
		snprintf(env_buf, sizeof(env_buf), "SHMKIT_CRASH=%s:%ld", point,
			 n);
	return th_spawn(role, args, env);
}

int th_wait(pid_t pid, long timeout_ms)
{
	uint64_t deadline = th_now_ns() + (uint64_t)timeout_ms * 1000000ull *
						  (uint64_t)th_slow_factor();
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid) {
			forget(pid);
			return status;
		}
		if (r < 0 && errno != EINTR) {
			forget(pid);
			return -errno;
		}
		if (th_now_ns() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			forget(pid);
			return -ETIMEDOUT;
		}
		usleep(1000);
	}
}

int th_kill(pid_t pid)
{
	int status = 0;

	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	forget(pid);
	return status;
}

int th_exited_ok(int status)
{
	return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int th_was_killed(int status)
{
	return status >= 0 && WIFSIGNALED(status) &&
	       WTERMSIG(status) == SIGKILL;
}

int th_run(int argc, char **argv, const struct th_role *roles,
	   int (*test)(void))
{
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);

	if (n <= 0) {
		snprintf(self_exe, sizeof(self_exe), "%s", argv[0]);
	} else {
		self_exe[n] = '\0';
	}
	if (argc >= 3 && strcmp(argv[1], "--role") == 0) {
		for (int i = 0; roles && roles[i].name; i++)
			if (strcmp(roles[i].name, argv[2]) == 0)
				return roles[i].fn(argc - 3, argv + 3);
		fprintf(stderr, "unknown role %s\n", argv[2]);
		return TH_FAIL;
	}
	/* The test leads its own process group; helpers join it. */
	setpgid(0, 0);
	test_pid = getpid();
	atexit(kill_children);
	fprintf(stderr, "seed %llu\n", (unsigned long long)th_seed());
	return test();
}
