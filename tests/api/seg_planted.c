/* SPDX-License-Identifier: MIT */
/*
 * Things planted under a segment's name: a symlink (to a valid segment and
 * dangling), a FIFO, a directory and a file owned by another user. open
 * refuses each (-ELOOP for the symlink, -EACCES otherwise) without blocking,
 * create gives -EEXIST and never follows the symlink.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <fcntl.h>
#include <shmkit.h>
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

static void path_of(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

/* In a helper, so that a blocking open fails the test instead of hanging. */
static int role_open(int argc, char **argv)
{
	struct shmkit_seg *s = NULL;
	int rc, want;

	if (argc < 2)
		return 2;
	want = atoi(argv[1]);
	rc = shmkit_seg_open(argv[0], NULL, &s);
	if (rc != -want) {
		fprintf(stderr, "open %s: %d, want -%d\n", argv[0], rc, want);
		shmkit_seg_close(s);
		return 1;
	}
	return 0;
}

static void open_refused(const char *name, int err)
{
	char e[16];
	const char *args[] = {name, e, NULL};
	int st;

	snprintf(e, sizeof(e), "%d", err);
	st = th_wait(th_spawn("open", args, NULL), 5000);
	ASSERT_TRUE(th_exited_ok(st));
	ASSERT_ERR(shmkit_seg_open(name, NULL, &(struct shmkit_seg *){NULL}),
		   err);
}

/* create over `name` gives -EEXIST and leaves what is there alone. */
static void create_refused(const char *name, const struct stat *before)
{
	struct shmkit_seg *s = (struct shmkit_seg *)1;
	char path[256];
	struct stat st;

	ASSERT_ERR(shmkit_seg_create(name, 4096, NULL, &s), EEXIST);
	ASSERT_TRUE(s == NULL);
	path_of(path, sizeof(path), name);
	ASSERT_ERR(shmkit_seg_create_file(path, 4096, NULL, &s), EEXIST);
	ASSERT_EQ(lstat(path, &st), 0);
	ASSERT_EQ(st.st_ino, before->st_ino);
	ASSERT_EQ(st.st_mode, before->st_mode);
	ASSERT_EQ(st.st_size, before->st_size);
	ASSERT_EQ(st.st_uid, before->st_uid);
	/* gc does not touch it either. */
	ASSERT_LE(shmkit_seg_gc(name, 0), 0);
	ASSERT_EQ(lstat(path, &st), 0);
	ASSERT_EQ(st.st_ino, before->st_ino);
}

static int test(void)
{
	struct shmkit_seg_opts any = {.sz = sizeof(any),
				      .flags = SHMKIT_SEG_ANY_OWNER};
	char tpath[256], path[256], tdir[64];
	struct shmkit_seg *t, *s;
	struct stat st, tst, tst2;

	snprintf(dir, sizeof(dir), "/dev/shm/.shmkit-t-planted-XXXXXX");
	ASSERT_TRUE(mkdtemp(dir) != NULL);
	atexit(dir_cleanup);
	ASSERT_EQ(setenv("SHMKIT_SHM_DIR", dir, 1), 0);

	/* A valid segment, target of the symlinks. */
	ASSERT_OK(shmkit_seg_create("target", 4096, NULL, &t));
	memcpy(shmkit_seg_base(t), "target data", 12);
	path_of(tpath, sizeof(tpath), "target");
	ASSERT_EQ(stat(tpath, &tst), 0);

	/* Symlink to the valid segment. */
	path_of(path, sizeof(path), "link");
	ASSERT_EQ(symlink(tpath, path), 0);
	open_refused("link", ELOOP);
	ASSERT_EQ(lstat(path, &st), 0);
	create_refused("link", &st);
	ASSERT_EQ(stat(tpath, &tst2), 0);
	ASSERT_EQ(tst2.st_ino, tst.st_ino);
	ASSERT_EQ(tst2.st_size, tst.st_size);
	ASSERT_EQ(tst2.st_mode, tst.st_mode);
	ASSERT_EQ(tst2.st_mtim.tv_sec, tst.st_mtim.tv_sec);
	ASSERT_EQ(tst2.st_mtim.tv_nsec, tst.st_mtim.tv_nsec);
	ASSERT_STR_EQ((char *)shmkit_seg_base(t), "target data");

	/* Dangling symlink: create must not create its target. */
	snprintf(tdir, sizeof(tdir), "/tmp/shmkit-t-planted-XXXXXX");
	ASSERT_TRUE(mkdtemp(tdir) != NULL);
	snprintf(tpath, sizeof(tpath), "%s/victim", tdir);
	path_of(path, sizeof(path), "dangling");
	ASSERT_EQ(symlink(tpath, path), 0);
	open_refused("dangling", ELOOP);
	ASSERT_EQ(lstat(path, &st), 0);
	create_refused("dangling", &st);
	ASSERT_EQ(access(tpath, F_OK), -1);
	ASSERT_EQ(errno, ENOENT);
	ASSERT_EQ(rmdir(tdir), 0);

	/* FIFO: open must neither block nor accept it. */
	path_of(path, sizeof(path), "fifo");
	ASSERT_EQ(mkfifo(path, 0600), 0);
	open_refused("fifo", EACCES);
	ASSERT_EQ(lstat(path, &st), 0);
	create_refused("fifo", &st);

	/* Directory. */
	path_of(path, sizeof(path), "dir");
	ASSERT_EQ(mkdir(path, 0700), 0);
	open_refused("dir", EACCES);
	ASSERT_EQ(lstat(path, &st), 0);
	create_refused("dir", &st);

	/* A valid segment owned by someone else (needs root to chown). */
	if (geteuid() == 0) {
		ASSERT_OK(shmkit_seg_create("foreign", 4096, NULL, &s));
		shmkit_seg_close(s);
		path_of(path, sizeof(path), "foreign");
		ASSERT_EQ(chown(path, 65534, 65534), 0);
		open_refused("foreign", EACCES);
		ASSERT_EQ(lstat(path, &st), 0);
		create_refused("foreign", &st);
		/* It is the owner check that refused: allowed, it opens. */
		ASSERT_OK(shmkit_seg_open("foreign", &any, &s));
		shmkit_seg_close(s);
	} else {
		fprintf(stderr, "not root: foreign-owned case skipped\n");
	}

	shmkit_seg_close(t);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"open", role_open},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
