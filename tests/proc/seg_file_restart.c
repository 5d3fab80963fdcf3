/* SPDX-License-Identifier: MIT */
/*
 * File-backed segments survive their processes: one process creates a
 * segment at a path, writes, flushes and exits (or is SIGKILLed after the
 * flush); a new process opens the path and finds the data. create over an
 * existing path is -EEXIST.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <shmkit.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIZE (16 * 4096)

static char dir[64];

static void dir_cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static unsigned char pattern(size_t i, unsigned seed)
{
	return (unsigned char)(i * 31 + seed + (i >> 12));
}

/* argv: path, seed, "exit" or "hang" (wait to be killed after flush). */
static int role_write(int argc, char **argv)
{
	struct shmkit_seg *s;
	unsigned char *p;
	unsigned seed;

	if (argc < 3 || shmkit_seg_create_file(argv[0], SIZE, NULL, &s) < 0)
		return 2;
	seed = (unsigned)atoi(argv[1]);
	p = shmkit_seg_base(s);
	for (size_t i = 0; i < SIZE; i++)
		p[i] = pattern(i, seed);
	if (shmkit_seg_flush(s) < 0)
		return 3;
	if (strcmp(argv[2], "hang") == 0) {
		/* Tell the test we flushed, then wait to be killed. */
		p[0] = 0xff;
		for (int k = 0; k < 600; k++)
			usleep(100000);
	}
	shmkit_seg_close(s);
	return 0;
}

/* argv: path, seed, first byte expected ("-1": the pattern's). */
static int role_read(int argc, char **argv)
{
	struct shmkit_seg *s;
	const unsigned char *p;
	unsigned seed;
	int first, rc = 0;

	if (argc < 3 || shmkit_seg_open_file(argv[0], NULL, &s) < 0)
		return 2;
	seed = (unsigned)atoi(argv[1]);
	first = atoi(argv[2]);
	p = shmkit_seg_base(s);
	if (shmkit_seg_size(s) != SIZE || shmkit_seg_kind(s) != SHMKIT_SEG_FILE)
		rc = 3;
	for (size_t i = 0; i < SIZE && !rc; i++) {
		int want = i == 0 && first >= 0 ? first : pattern(i, seed);

		if (p[i] != want)
			rc = 4;
	}
	shmkit_seg_close(s);
	return rc;
}

static void run_ok(const char *role, const char *const *args)
{
	int st = th_wait(th_spawn(role, args, NULL), 10000);

	if (!th_exited_ok(st))
		fprintf(stderr, "%s %s: status %d\n", role, args[0], st);
	ASSERT_TRUE(th_exited_ok(st));
}

static int test(void)
{
	struct shmkit_seg_info *in = calloc(1, sizeof(*in));
	struct shmkit_seg *s;
	char a[128], b[128], c[128];
	struct stat st;

	ASSERT_TRUE(in != NULL);
	snprintf(dir, sizeof(dir), "/tmp/shmkit-t-file-XXXXXX");
	ASSERT_TRUE(mkdtemp(dir) != NULL);
	atexit(dir_cleanup);
	snprintf(a, sizeof(a), "%s/a.seg", dir);
	snprintf(b, sizeof(b), "%s/b.seg", dir);
	snprintf(c, sizeof(c), "%s/c.seg", dir);

	/* Write, flush, exit; a new process reads it back. */
	run_ok("write", (const char *const[]){a, "7", "exit", NULL});
	ASSERT_EQ(stat(a, &st), 0);
	ASSERT_EQ(st.st_mode & 0777, 0600);
	ASSERT_EQ(st.st_size, SIZE + 8192);
	run_ok("read", (const char *const[]){a, "7", "-1", NULL});
	in->sz = sizeof(*in);
	ASSERT_OK(shmkit_seg_stat_file(a, in));
	ASSERT_EQ(in->state, SHMKIT_STATE_OK);
	ASSERT_EQ(in->kind, SHMKIT_SEG_FILE);
	ASSERT_EQ(in->data_size, SIZE);
	ASSERT_EQ(in->nusers, 0);

	/* create never replaces an existing file. */
	ASSERT_ERR(shmkit_seg_create_file(a, SIZE, NULL, &s), EEXIST);
	run_ok("read", (const char *const[]){a, "7", "-1", NULL});

	/* Killed after the flush: the data is there for the next process. */
	{
		const char *args[] = {b, "9", "hang", NULL};
		pid_t w = th_spawn("write", args, NULL);
		uint64_t deadline = th_now_ns() + 10000000000ull;
		struct shmkit_seg *r = NULL;

		for (;;) {
			ASSERT_LT(th_now_ns(), deadline);
			if (!r && shmkit_seg_open_file(b, NULL, &r) < 0)
				r = NULL;
			if (r && *(volatile unsigned char *)shmkit_seg_base(
					 r) == 0xff)
				break;
			usleep(1000);
		}
		shmkit_seg_close(r);
		ASSERT_TRUE(th_was_killed(th_kill(w)));
		run_ok("read", (const char *const[]){b, "9", "255", NULL});
	}

	/* Changes by a reader persist as well. */
	ASSERT_OK(shmkit_seg_open_file(a, NULL, &s));
	((unsigned char *)shmkit_seg_base(s))[0] = 0x42;
	ASSERT_OK(shmkit_seg_flush(s));
	shmkit_seg_close(s);
	run_ok("read", (const char *const[]){a, "7", "66", NULL});

	/* Not there: -ENOENT; not a file segment: refused. */
	ASSERT_ERR(shmkit_seg_open_file(c, NULL, &s), ENOENT);
	ASSERT_ERR(shmkit_seg_open_file(dir, NULL, &s), EACCES);

	/* A scoped file-backed segment goes with its last user. */
	{
		struct shmkit_seg_opts sc = {.sz = sizeof(sc),
					     .flags = SHMKIT_SEG_SCOPED};
		struct shmkit_seg *t;

		ASSERT_OK(shmkit_seg_create_file(c, 4096, &sc, &s));
		ASSERT_OK(shmkit_seg_open_file(c, NULL, &t));
		shmkit_seg_close(s);
		ASSERT_EQ(access(c, F_OK), 0);
		shmkit_seg_close(t);
		ASSERT_EQ(access(c, F_OK), -1);
	}
	free(in);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {
		{"write", role_write}, {"read", role_read}, {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
