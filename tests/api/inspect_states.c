/* SPDX-License-Identifier: MIT */
/*
 * Listing states that need a second user or a planted file: another user's
 * unreadable segment is DENIED (not FOREIGN), and leftovers of the
 * no-O_TMPFILE creation fallback are CREATING while young or locked,
 * INCOMPLETE when old and unlocked, and only then collected by gc.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <fcntl.h>
#include <shmkit.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct want {
	const char *name;
	int state; /* -1 until found */
};

static int find_cb(const struct shmkit_seg_info *in, void *arg)
{
	struct want *w = arg;

	if (strcmp(in->name, w->name) == 0)
		w->state = (int)in->state;
	return 0;
}

static int state_in_list(const char *name)
{
	struct want w = {name, -1};

	ASSERT_OK(shmkit_seg_list(find_cb, &w));
	return w.state;
}

static void plant_tmp(const char *dir, const char *name, int age_s)
{
	char path[512];
	struct timespec ts[2];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
	ASSERT_GE(fd, 0);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= age_s;
	ts[1] = ts[0];
	ASSERT_OK(futimens(fd, ts));
	close(fd);
}

static int test(void)
{
	char dir[] = "/tmp/shmkit-inspect-XXXXXX";
	char name[128], path[600];
	struct shmkit_seg *seg;
	pid_t pid;
	int status;

	ASSERT_TRUE(mkdtemp(dir) != NULL);
	ASSERT_OK(chmod(dir, 01777));
	setenv("SHMKIT_SHM_DIR", dir, 1);

	/* Fallback temporaries. */
	plant_tmp(dir, ".shmkit-tmp.1.young", 0);
	plant_tmp(dir, ".shmkit-tmp.2.old", 3600);
	ASSERT_EQ(state_in_list(".shmkit-tmp.1.young"), SHMKIT_STATE_CREATING);
	ASSERT_EQ(state_in_list(".shmkit-tmp.2.old"), SHMKIT_STATE_INCOMPLETE);
	ASSERT_EQ(shmkit_seg_gc(".shmkit-tmp.1.young", 0), 0);
	ASSERT_EQ(shmkit_seg_gc(".shmkit-tmp.2.old", 1), 1); /* dry run */
	snprintf(path, sizeof(path), "%s/.shmkit-tmp.2.old", dir);
	ASSERT_OK(access(path, F_OK));
	ASSERT_EQ(shmkit_seg_gc(".shmkit-tmp.2.old", 0), 1);
	ASSERT_ERR(access(path, F_OK) == 0 ? 0 : -errno, ENOENT);
	ASSERT_EQ(state_in_list(".shmkit-tmp.1.young"), SHMKIT_STATE_CREATING);
	ASSERT_ERR(shmkit_seg_gc(".shmkit-tmp/../x", 0), EINVAL);

	/* Another user's segment. */
	if (geteuid() != 0)
		SKIP("DENIED needs root to act as a second user");
	th_name(name, sizeof(name), "denied");
	ASSERT_OK(shmkit_seg_create(name, 4096, NULL, &seg));
	ASSERT_EQ(state_in_list(name), SHMKIT_STATE_OK);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		_exit(state_in_list(name) == SHMKIT_STATE_DENIED ? 0 : 1);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));
	snprintf(path, sizeof(path), "%s/.shmkit-tmp.1.young", dir);
	unlink(path);
	ASSERT_OK(rmdir(dir));
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
