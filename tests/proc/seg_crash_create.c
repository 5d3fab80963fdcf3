/* SPDX-License-Identifier: MIT */
/*
 * A creator SIGKILLed at every crash point of creation ("seg.create.*",
 * "seg.attach"): afterwards an opener gets -ENOENT (nothing was published)
 * or a complete, zeroed segment, never garbage or a hang, and the shm dir
 * holds nothing but that complete segment. A second opener polls the name
 * the whole time the creator runs and dies, with the same rule.
 */
#define _GNU_SOURCE
#include "crash.h"
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <shmkit.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIZE (3 * 4096)

static char dir[64];

static void dir_cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static int role_create(int argc, char **argv)
{
	struct shmkit_seg *s;
	int rc;

	if (argc < 1)
		return 2;
	rc = shmkit_seg_create(argv[0], SIZE, NULL, &s);
	if (rc < 0) {
		fprintf(stderr, "create: %s\n", shmkit_strerror(rc));
		return 2;
	}
	shmkit_seg_close(s);
	return 0;
}

/* A segment handed out by open must be complete: right size, all zero. */
static int seg_valid(struct shmkit_seg *s)
{
	const unsigned char *p = shmkit_seg_base(s);

	if (shmkit_seg_size(s) != SIZE)
		return 0;
	for (size_t i = 0; i < SIZE; i++)
		if (p[i])
			return 0;
	return 1;
}

/*
 * Poll-open the name until the pipe fd argv[1] reports EOF. Exit 0 if every
 * open gave -ENOENT or a valid segment, 1 at the first other outcome.
 * Writes one byte to fd argv[2] once the first open has been tried.
 */
static int role_poll(int argc, char **argv)
{
	struct shmkit_seg_opts o = {.sz = sizeof(o),
				    .open_timeout_ns = 200000000};
	long opens = 0, found = 0;
	int stop_fd, ready_fd;

	if (argc < 3)
		return 2;
	stop_fd = atoi(argv[1]);
	ready_fd = atoi(argv[2]);
	for (;;) {
		struct pollfd p = {.fd = stop_fd, .events = POLLIN};
		struct shmkit_seg *s = NULL;
		int rc = shmkit_seg_open(argv[0], &o, &s);

		opens++;
		if (rc == 0) {
			found++;
			if (!seg_valid(s)) {
				fprintf(stderr, "poller: incomplete segment\n");
				shmkit_seg_close(s);
				return 1;
			}
			shmkit_seg_close(s);
		} else if (rc != -ENOENT) {
			fprintf(stderr, "poller: open: %d %s\n", rc,
				shmkit_strerror(rc));
			return 1;
		}
		if (ready_fd >= 0) {
			if (write(ready_fd, "r", 1) != 1)
				return 2;
			close(ready_fd);
			ready_fd = -1;
		}
		if (poll(&p, 1, 0) > 0)
			break;
	}
	fprintf(stderr, "poller: %ld opens, %ld found\n", opens, found);
	return 0;
}

static int dir_entries(char names[][256], int max)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	ASSERT_TRUE(d != NULL);
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n < max)
			snprintf(names[n], 256, "%s", de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

/* After the creator died: -ENOENT and an empty dir, or one complete one. */
static int check_after(const char *name)
{
	struct shmkit_seg_opts o = {.sz = sizeof(o),
				    .open_timeout_ns = 200000000};
	struct shmkit_seg_info *in = calloc(1, sizeof(*in));
	struct shmkit_seg *s = NULL;
	char names[4][256];
	int rc, n;

	ASSERT_TRUE(in != NULL);
	n = dir_entries(names, 4);
	rc = shmkit_seg_open(name, &o, &s);
	if (rc == -ENOENT) {
		ASSERT_EQ(n, 0);
		free(in);
		return 0;
	}
	ASSERT_OK(rc);
	ASSERT_TRUE(seg_valid(s));
	ASSERT_EQ(n, 1);
	ASSERT_STR_EQ(names[0], name);
	in->sz = sizeof(*in);
	ASSERT_OK(shmkit_seg_stat(name, in));
	ASSERT_EQ(in->state, SHMKIT_STATE_OK);
	ASSERT_EQ(in->data_size, SIZE);
	/* Only our own attachment: the dead creator's is gone. */
	ASSERT_EQ(in->nusers, 1);
	ASSERT_EQ(in->users[0].pid, getpid());
	shmkit_seg_close(s);
	/* Persistent and complete: gc has nothing to do. */
	ASSERT_EQ(shmkit_seg_gc(name, 0), 0);
	ASSERT_OK(shmkit_seg_unlink(name));
	free(in);
	return 1;
}

static void run_point(const char *point, int with_poller)
{
	const char *args[4];
	char name[128], a1[16], a2[16];
	int stop[2], ready[2], st, published;
	pid_t poller = -1, creator;

	th_name(name, sizeof(name), "crash");
	if (with_poller) {
		char c;

		ASSERT_EQ(pipe2(stop, 0), 0);
		ASSERT_EQ(pipe2(ready, 0), 0);
		/* Only the poller keeps stop[0] and ready[1] across exec. */
		ASSERT_EQ(fcntl(stop[1], F_SETFD, FD_CLOEXEC), 0);
		ASSERT_EQ(fcntl(ready[0], F_SETFD, FD_CLOEXEC), 0);
		snprintf(a1, sizeof(a1), "%d", stop[0]);
		snprintf(a2, sizeof(a2), "%d", ready[1]);
		args[0] = name;
		args[1] = a1;
		args[2] = a2;
		args[3] = NULL;
		poller = th_spawn("poll", args, NULL);
		close(stop[0]);
		close(ready[1]);
		ASSERT_EQ(read(ready[0], &c, 1), 1);
		close(ready[0]);
	}
	args[0] = name;
	args[1] = NULL;
	creator = th_spawn_crash("create", args, point, 1);
	st = th_wait(creator, 10000);
	if (!th_was_killed(st))
		fprintf(stderr, "point %s not reached (status %d)\n", point,
			st);
	ASSERT_TRUE(th_was_killed(st));
	if (with_poller) {
		/* Let the poller see the aftermath, then stop it. */
		usleep(20000);
		close(stop[1]);
		st = th_wait(poller, 10000);
		ASSERT_TRUE(th_exited_ok(st));
	}
	published = check_after(name);
	fprintf(stderr, "%-20s poller=%d -> %s\n", point, with_poller,
		published ? "complete segment" : "nothing");
	/* The name is linked only after the segment is READY. */
	if (strcmp(point, "seg.create.linked") == 0)
		ASSERT_EQ(published, 1);
	if (strcmp(point, "seg.create.opened") == 0 ||
	    strcmp(point, "seg.create.header") == 0 ||
	    strcmp(point, "seg.create.ready") == 0)
		ASSERT_EQ(published, 0);
}

static int test(void)
{
	const struct shmkit__crash_point *cp;
	size_t n = shmkit__crash_points(&cp);
	int tried = 0;

	if (n == 0)
		SKIP("crash points compiled out");
	snprintf(dir, sizeof(dir), "/dev/shm/.shmkit-t-crash-XXXXXX");
	ASSERT_TRUE(mkdtemp(dir) != NULL);
	atexit(dir_cleanup);
	ASSERT_EQ(setenv("SHMKIT_SHM_DIR", dir, 1), 0);

	/* Without a crash the creator finishes and leaves a segment. */
	{
		const char *args[] = {"nocrash", NULL};

		ASSERT_TRUE(th_exited_ok(th_wait(
			th_spawn_crash("create", args, NULL, 0), 10000)));
		ASSERT_EQ(check_after("nocrash"), 1);
	}
	for (size_t i = 0; i < n; i++) {
		const char *p = cp[i].name;

		if (strncmp(p, "seg.create", 10) &&
		    strncmp(p, "seg.attach", 10))
			continue;
		run_point(p, 0);
		run_point(p, 1);
		tried++;
	}
	ASSERT_GE(tried, 5);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {
		{"create", role_create}, {"poll", role_poll}, {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
