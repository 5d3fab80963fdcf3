/* SPDX-License-Identifier: MIT */
/*
 * A full tmpfs fails at create time with -ENOSPC (space is reserved when
 * the segment is made, so no SIGBUS later) and leaves no file behind. Runs
 * in a private mount namespace with a 1 MiB tmpfs; skipped where mounting
 * is not permitted.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <dirent.h>
#include <sched.h>
#include <shmkit.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static int mounted;

static void cleanup(void)
{
	if (mounted)
		umount2(dir, MNT_DETACH);
	rmdir(dir);
}

static int entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	ASSERT_TRUE(d != NULL);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static int test(void)
{
	struct shmkit_seg *s = (struct shmkit_seg *)1;
	struct shmkit_seg_opts o = {.sz = sizeof(o),
				    .flags = SHMKIT_SEG_SCOPED};

	if (geteuid() != 0)
		SKIP("needs root to mount a tmpfs");
	if (unshare(CLONE_NEWNS) < 0)
		SKIP("unshare(CLONE_NEWNS): %s", strerror(errno));
	/* Keep the mount out of the parent namespace. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		SKIP("make / private: %s", strerror(errno));
	snprintf(dir, sizeof(dir), "/tmp/shmkit-t-enospc-XXXXXX");
	ASSERT_TRUE(mkdtemp(dir) != NULL);
	atexit(cleanup);
	if (mount("none", dir, "tmpfs", 0, "size=1m,mode=0700") < 0)
		SKIP("mount tmpfs: %s", strerror(errno));
	mounted = 1;
	ASSERT_EQ(setenv("SHMKIT_SHM_DIR", dir, 1), 0);
	ASSERT_STR_EQ(shmkit_shm_dir(), dir);

	ASSERT_ERR(shmkit_seg_create("big", 4 << 20, NULL, &s), ENOSPC);
	ASSERT_TRUE(s == NULL);
	ASSERT_EQ(entries(dir), 0);
	ASSERT_ERR(shmkit_seg_create("big", 4 << 20, &o, &s), ENOSPC);
	ASSERT_EQ(entries(dir), 0);
	/* The same for a file-backed segment in that file system. */
	{
		char path[128];

		snprintf(path, sizeof(path), "%s/file", dir);
		ASSERT_ERR(shmkit_seg_create_file(path, 4 << 20, NULL, &s),
			   ENOSPC);
		ASSERT_EQ(entries(dir), 0);
	}
	/* Space came back: a segment that fits is created afterwards. */
	ASSERT_OK(shmkit_seg_create("small", 256 << 10, NULL, &s));
	ASSERT_EQ(entries(dir), 1);
	/* Two of 400 KiB do not fit in 1 MiB with the first one there. */
	{
		struct shmkit_seg *t, *u;

		ASSERT_OK(shmkit_seg_create("second", 400 << 10, NULL, &t));
		ASSERT_ERR(shmkit_seg_create("third", 400 << 10, NULL, &u),
			   ENOSPC);
		ASSERT_EQ(entries(dir), 2);
		shmkit_seg_close(t);
	}
	shmkit_seg_close(s);

	ASSERT_EQ(umount2(dir, 0), 0);
	mounted = 0;
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
