/* SPDX-License-Identifier: MIT */
/*
 * The crash-point registry: every point compiled into the library is
 * listed once with a unique name, and SHMKIT_CRASH=name:n kills on exactly
 * the n-th pass (a helper passing n-1 times survives, n times dies).
 */
#define _GNU_SOURCE
#include "crash.h"
#include "harness.h"

#include <shmkit.h>
#include <unistd.h>

/* The segment layer's points, which the crash tests rely on. */
static const char *const known[] = {
	"seg.create.opened", "seg.create.header", "seg.create.ready",
	"seg.create.linked", "seg.attach",	  "seg.close.last",
};

/*
 * Pass "seg.attach" argv[1] times (one per open) and, if argv[2] is "test",
 * the test's own point as many times. Exit 0 if still alive.
 */
static int role_pass(int argc, char **argv)
{
	struct shmkit_seg *s;
	long n;

	if (argc < 3)
		return 2;
	n = atol(argv[1]);
	for (long i = 0; i < n; i++) {
		if (strcmp(argv[2], "test") == 0) {
			SHMKIT_CRASH_POINT("test.unit.point");
			continue;
		}
		if (shmkit_seg_open(argv[0], NULL, &s) < 0)
			return 3;
		shmkit_seg_close(s);
	}
	return 0;
}

static int run(const char *name, long passes, const char *which,
	       const char *env)
{
	char n[32];
	const char *args[] = {name, n, which, NULL};
	const char *envv[] = {env, NULL};

	snprintf(n, sizeof(n), "%ld", passes);
	return th_wait(th_spawn("pass", args, env ? envv : NULL), 10000);
}

static int crash_at(const char *name, long passes, const char *which,
		    const char *point, long nth)
{
	char n[32];
	const char *args[] = {name, n, which, NULL};

	snprintf(n, sizeof(n), "%ld", passes);
	return th_wait(th_spawn_crash("pass", args, point, nth), 10000);
}

static int test(void)
{
	const struct shmkit__crash_point *cp;
	struct shmkit_seg *s;
	char name[128];
	size_t n;

	/* Referencing the library pulls its crash points into this binary. */
	th_name(name, sizeof(name), "cp");
	ASSERT_OK(shmkit_seg_create(name, 4096, NULL, &s));
	n = shmkit__crash_points(&cp);
	if (n == 0)
		SKIP("crash points compiled out");

	/* Listed, well-formed and unique. */
	for (size_t i = 0; i < n; i++) {
		ASSERT_TRUE(cp[i].name != NULL && cp[i].file != NULL);
		ASSERT_GT(strlen(cp[i].name), 0);
		ASSERT_LT(strlen(cp[i].name), 100);
		ASSERT_TRUE(strchr(cp[i].name, ':') == NULL);
		ASSERT_GT(cp[i].line, 0);
		for (size_t j = 0; j < i; j++) {
			if (strcmp(cp[i].name, cp[j].name) == 0)
				fprintf(stderr, "duplicate %s: %s:%d, %s:%d\n",
					cp[i].name, cp[i].file, cp[i].line,
					cp[j].file, cp[j].line);
			ASSERT_TRUE(strcmp(cp[i].name, cp[j].name) != 0);
		}
	}
	for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
		int found = 0;

		for (size_t i = 0; i < n; i++)
			found += strcmp(cp[i].name, known[k]) == 0;
		if (found != 1)
			fprintf(stderr, "%s listed %d times\n", known[k],
				found);
		ASSERT_EQ(found, 1);
	}
	{
		int found = 0;

		for (size_t i = 0; i < n; i++)
			found += strcmp(cp[i].name, "test.unit.point") == 0;
		ASSERT_EQ(found, 1);
	}

	/* Exactly the n-th pass, for several n, on a library point... */
	for (long k = 1; k <= 4; k++) {
		ASSERT_TRUE(th_exited_ok(
			crash_at(name, k - 1, "lib", "seg.attach", k)));
		ASSERT_TRUE(th_was_killed(
			crash_at(name, k, "lib", "seg.attach", k)));
		ASSERT_TRUE(th_was_killed(
			crash_at(name, k + 3, "lib", "seg.attach", k)));
	}
	/* ...and on the test's own. */
	ASSERT_TRUE(th_exited_ok(
		crash_at(name, 99, "test", "test.unit.point", 100)));
	ASSERT_TRUE(th_was_killed(
		crash_at(name, 100, "test", "test.unit.point", 100)));
	/* Other points' passes do not count. */
	ASSERT_TRUE(
		th_exited_ok(crash_at(name, 5, "lib", "test.unit.point", 1)));
	ASSERT_TRUE(th_exited_ok(crash_at(name, 5, "test", "seg.attach", 1)));
	/* A name without ":n" means the first pass; unknown names never. */
	ASSERT_TRUE(
		th_was_killed(run(name, 1, "lib", "SHMKIT_CRASH=seg.attach")));
	ASSERT_TRUE(
		th_exited_ok(run(name, 0, "lib", "SHMKIT_CRASH=seg.attach")));
	ASSERT_TRUE(
		th_exited_ok(run(name, 3, "lib", "SHMKIT_CRASH=seg.attac:1")));
	ASSERT_TRUE(th_exited_ok(
		run(name, 3, "lib", "SHMKIT_CRASH=seg.attach.x:1")));
	ASSERT_TRUE(th_exited_ok(run(name, 3, "lib", "SHMKIT_CRASH=")));
	ASSERT_TRUE(th_exited_ok(run(name, 3, "lib", NULL)));

	shmkit_seg_close(s);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"pass", role_pass},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
