/* SPDX-License-Identifier: MIT */
/*
 * Lifetimes. Scoped: the name goes with the last user's close, not before;
 * if every user is SIGKILLed instead it is STALE and gc removes it.
 * Persistent: with no users it is OK and gc never removes it. A segment in
 * use is never removed by gc, scoped or not.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <shmkit.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void dir_cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static int exists(const char *name)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

static enum shmkit_seg_state state_of(const char *name, uint32_t *nusers)
{
	struct shmkit_seg_info *in = calloc(1, sizeof(*in));
	enum shmkit_seg_state st;

	ASSERT_TRUE(in != NULL);
	in->sz = sizeof(*in);
	ASSERT_OK(shmkit_seg_stat(name, in));
	st = in->state;
	if (nusers)
		*nusers = in->nusers;
	free(in);
	return st;
}

/*
 * argv[0] "create" (scoped) or "open", argv[1] the name, argv[2] the flag
 * index to raise once attached; then wait to be killed.
 */
static int role_user(int argc, char **argv)
{
	struct shmkit_seg_opts o = {.sz = sizeof(o),
				    .flags = SHMKIT_SEG_SCOPED};
	struct shmkit_seg *s;
	_Atomic uint32_t *flags;
	int rc;

	if (argc < 3)
		return 2;
	if (strcmp(argv[0], "create") == 0)
		rc = shmkit_seg_create(argv[1], 4096, &o, &s);
	else
		rc = shmkit_seg_open(argv[1], NULL, &s);
	if (rc < 0)
		return 2;
	flags = shmkit_seg_base(s);
	/* Pairs with the acquire load in wait_flag(). */
	atomic_store_explicit(&flags[atoi(argv[2])], 1, memory_order_release);
	for (int k = 0; k < 600; k++)
		usleep(100000);
	shmkit_seg_close(s);
	return 3;
}

static void wait_flag(struct shmkit_seg *s, int i)
{
	_Atomic uint32_t *flags = shmkit_seg_base(s);
	uint64_t deadline = th_now_ns() + 10000000000ull;

	/* Pairs with the release store in role_user(). */
	while (!atomic_load_explicit(&flags[i], memory_order_acquire)) {
		ASSERT_LT(th_now_ns(), deadline);
		usleep(1000);
	}
}

static void scoped_close_order(void)
{
	struct shmkit_seg_opts sc = {.sz = sizeof(sc),
				     .flags = SHMKIT_SEG_SCOPED};
	struct shmkit_seg *a, *b;
	uint32_t n;

	ASSERT_OK(shmkit_seg_create("scoped", 4096, &sc, &a));
	ASSERT_OK(shmkit_seg_open("scoped", NULL, &b));
	ASSERT_EQ(state_of("scoped", &n), SHMKIT_STATE_OK);
	ASSERT_EQ(n, 2);
	ASSERT_EQ(shmkit_seg_gc("scoped", 0), 0);
	/* The creator is not special: closing it first keeps the name. */
	shmkit_seg_close(a);
	ASSERT_TRUE(exists("scoped"));
	ASSERT_EQ(state_of("scoped", &n), SHMKIT_STATE_OK);
	ASSERT_EQ(n, 1);
	ASSERT_EQ(shmkit_seg_gc("scoped", 0), 0);
	ASSERT_TRUE(exists("scoped"));
	memcpy(shmkit_seg_base(b), "still", 6);
	shmkit_seg_close(b);
	ASSERT_FALSE(exists("scoped"));
	ASSERT_ERR(shmkit_seg_open("scoped", NULL, &a), ENOENT);

	/* Same with the opener closing first. */
	ASSERT_OK(shmkit_seg_create("scoped", 4096, &sc, &a));
	ASSERT_OK(shmkit_seg_open("scoped", NULL, &b));
	shmkit_seg_close(b);
	ASSERT_TRUE(exists("scoped"));
	shmkit_seg_close(a);
	ASSERT_FALSE(exists("scoped"));
}

static void scoped_all_killed(void)
{
	struct shmkit_seg *s;
	const char *args[4];
	pid_t c, o;
	uint32_t n;

	args[0] = "create";
	args[1] = "victims";
	args[2] = "0";
	args[3] = NULL;
	c = th_spawn("user", args, NULL);
	{
		uint64_t deadline = th_now_ns() + 10000000000ull;

		while (!exists("victims")) {
			ASSERT_LT(th_now_ns(), deadline);
			usleep(1000);
		}
	}
	args[0] = "open";
	args[2] = "1";
	o = th_spawn("user", args, NULL);
	/* Watch through a handle of our own, then let go of it. */
	ASSERT_OK(shmkit_seg_open("victims", NULL, &s));
	wait_flag(s, 0);
	wait_flag(s, 1);
	shmkit_seg_close(s);
	ASSERT_TRUE(exists("victims"));
	ASSERT_EQ(state_of("victims", &n), SHMKIT_STATE_OK);
	ASSERT_EQ(n, 2);
	ASSERT_EQ(shmkit_seg_gc("victims", 0), 0);

	ASSERT_TRUE(th_was_killed(th_kill(c)));
	ASSERT_EQ(state_of("victims", &n), SHMKIT_STATE_OK);
	ASSERT_EQ(n, 1);
	ASSERT_EQ(shmkit_seg_gc("victims", 0), 0);
	ASSERT_TRUE(th_was_killed(th_kill(o)));
	ASSERT_EQ(state_of("victims", &n), SHMKIT_STATE_STALE);
	ASSERT_EQ(n, 0);
	ASSERT_TRUE(exists("victims"));
	ASSERT_EQ(shmkit_seg_gc("victims", 1), 1);
	ASSERT_TRUE(exists("victims"));
	ASSERT_EQ(shmkit_seg_gc("victims", 0), 1);
	ASSERT_FALSE(exists("victims"));
	ASSERT_ERR(shmkit_seg_gc("victims", 0), ENOENT);
}

/*
 * Open argv[0], raise flag 0, wait until this handle is the only user,
 * close. Run with SHMKIT_CRASH=seg.close.last it dies inside that close,
 * after proving it is the last user and before removing the name.
 */
static int role_close_last(int argc, char **argv)
{
	struct shmkit_seg_info *in = calloc(1, sizeof(*in));
	struct shmkit_seg *s;
	_Atomic uint32_t *flags;

	if (!in || argc < 1 || shmkit_seg_open(argv[0], NULL, &s) < 0)
		return 2;
	flags = shmkit_seg_base(s);
	/* Pairs with the acquire load in wait_flag(). */
	atomic_store_explicit(&flags[0], 1, memory_order_release);
	for (int k = 0; k < 10000; k++) {
		in->sz = sizeof(*in);
		if (shmkit_seg_info(s, in) < 0)
			return 3;
		if (in->nusers == 1)
			break;
		usleep(1000);
	}
	free(in);
	shmkit_seg_close(s);
	return 0;
}

static void last_user_killed_in_close(void)
{
	struct shmkit_seg_opts sc = {.sz = sizeof(sc),
				     .flags = SHMKIT_SEG_SCOPED};
	const char *args[] = {"dying", NULL};
	struct shmkit_seg *s;
	uint32_t n;
	pid_t pid;

	ASSERT_OK(shmkit_seg_create("dying", 4096, &sc, &s));
	pid = th_spawn_crash("close_last", args, "seg.close.last", 1);
	wait_flag(s, 0);
	shmkit_seg_close(s); /* not the last: the helper holds it */
	ASSERT_TRUE(th_was_killed(th_wait(pid, 10000)));
	/* Proven last, died before the unlink: stale, and gc takes it. */
	ASSERT_TRUE(exists("dying"));
	ASSERT_EQ(state_of("dying", &n), SHMKIT_STATE_STALE);
	ASSERT_EQ(n, 0);
	ASSERT_EQ(shmkit_seg_gc("dying", 0), 1);
	ASSERT_FALSE(exists("dying"));

	/* Without the crash the same sequence removes the name. */
	ASSERT_OK(shmkit_seg_create("dying", 4096, &sc, &s));
	pid = th_spawn_crash("close_last", args, NULL, 0);
	wait_flag(s, 0);
	shmkit_seg_close(s);
	ASSERT_TRUE(th_exited_ok(th_wait(pid, 10000)));
	ASSERT_FALSE(exists("dying"));
}

static void persistent(void)
{
	struct shmkit_seg *s, *t;
	uint32_t n;

	ASSERT_OK(shmkit_seg_create("keep", 4096, NULL, &s));
	memcpy(shmkit_seg_base(s), "kept", 5);
	ASSERT_EQ(shmkit_seg_gc("keep", 0), 0);
	shmkit_seg_close(s);
	ASSERT_EQ(state_of("keep", &n), SHMKIT_STATE_OK);
	ASSERT_EQ(n, 0);
	ASSERT_EQ(shmkit_seg_gc("keep", 1), 0);
	ASSERT_EQ(shmkit_seg_gc("keep", 0), 0);
	ASSERT_TRUE(exists("keep"));
	ASSERT_OK(shmkit_seg_open("keep", NULL, &t));
	ASSERT_STR_EQ((char *)shmkit_seg_base(t), "kept");
	shmkit_seg_close(t);
	ASSERT_OK(shmkit_seg_unlink("keep"));
	ASSERT_FALSE(exists("keep"));
}

/* In use through a read-only handle only (no slot): still in use. */
static void in_use_rdonly(void)
{
	struct shmkit_seg_opts sc = {.sz = sizeof(sc),
				     .flags = SHMKIT_SEG_SCOPED};
	struct shmkit_seg_opts ro = {.sz = sizeof(ro),
				     .flags = SHMKIT_SEG_RDONLY};
	struct shmkit_seg *a, *r;
	struct shmkit_seg_info *in = calloc(1, sizeof(*in));

	ASSERT_TRUE(in != NULL);
	ASSERT_OK(shmkit_seg_create("ro", 4096, &sc, &a));
	ASSERT_OK(shmkit_seg_open("ro", &ro, &r));
	shmkit_seg_close(a);
	ASSERT_TRUE(exists("ro"));
	in->sz = sizeof(*in);
	ASSERT_OK(shmkit_seg_stat("ro", in));
	ASSERT_EQ(in->state, SHMKIT_STATE_OK);
	ASSERT_EQ(in->nusers, 0);
	ASSERT_EQ(in->users_untracked, 1);
	ASSERT_EQ(shmkit_seg_gc("ro", 0), 0);
	ASSERT_TRUE(exists("ro"));
	shmkit_seg_close(r);
	/*
	 * A read-only handle cannot take USERS for writing, so it cannot
	 * prove it is the last and does not unlink: gone or STALE, and then
	 * gc takes it.
	 */
	if (exists("ro")) {
		ASSERT_OK(shmkit_seg_stat("ro", in));
		ASSERT_EQ(in->state, SHMKIT_STATE_STALE);
		ASSERT_EQ(shmkit_seg_gc("ro", 0), 1);
	}
	ASSERT_FALSE(exists("ro"));
	free(in);
}

static int test(void)
{
	snprintf(dir, sizeof(dir), "/dev/shm/.shmkit-t-life-XXXXXX");
	ASSERT_TRUE(mkdtemp(dir) != NULL);
	atexit(dir_cleanup);
	ASSERT_EQ(setenv("SHMKIT_SHM_DIR", dir, 1), 0);

	scoped_close_order();
	scoped_all_killed();
	last_user_killed_in_close();
	persistent();
	in_use_rdonly();
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {
		{"user", role_user},
		{"close_last", role_close_last},
		{NULL, NULL},
	};

	return th_run(argc, argv, roles, test);
}
