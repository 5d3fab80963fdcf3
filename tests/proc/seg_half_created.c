/* SPDX-License-Identifier: MIT */
/*
 * A half-created segment under a name (header BUILDING, planted by hand).
 * With nobody holding the CREATOR lock: open gives -ENOTRECOVERABLE (and
 * returns; no hang), stat says INCOMPLETE, gc removes it. With a live
 * helper holding the CREATOR lock: open gives -ETIMEDOUT after a short
 * timeout, stat says CREATING, gc leaves it; once the helper is killed it
 * is INCOMPLETE and gc removes it.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "layout.h"
#include "platform.h"

#include <fcntl.h>
#include <shmkit.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOTAL (SHMKIT_HDR_SIZE + 2 * SHMKIT_PAGE)

static char dir[64];

static void dir_cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* The header as a creator leaves it before publishing READY. */
static void plant_building(const char *name)
{
	struct shmkit_hdr *h = calloc(1, sizeof(*h));
	char path[256];
	int fd;

	ASSERT_TRUE(h != NULL);
	h->magic = SHMKIT_MAGIC;
	h->layout_version = SHMKIT_LAYOUT_VERSION;
	h->hdr_size = SHMKIT_HDR_SIZE;
	h->total_size = TOTAL;
	h->flags = (uint32_t)SHMKIT_SEG_NAMED << SHMKIT_HF_KIND_SHIFT;
	h->creator_uid = (uint32_t)geteuid();
	h->creator_pid = (int32_t)getpid();
	atomic_store(&h->init_state, SHMKIT_INIT_BUILDING);
	h->data_off = SHMKIT_HDR_SIZE;
	h->data_size = TOTAL - SHMKIT_HDR_SIZE;
	h->slot_off = offsetof(struct shmkit_hdr, slots);
	h->slot_cap = SHMKIT_NSLOTS;
	h->dir_off = offsetof(struct shmkit_hdr, dir);
	h->dir_cap = SHMKIT_DIR_CAP;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(fchmod(fd, 0600), 0);
	ASSERT_EQ(write(fd, h, sizeof(*h)), (ssize_t)sizeof(*h));
	ASSERT_EQ(ftruncate(fd, TOTAL), 0);
	close(fd);
	free(h);
}

static enum shmkit_seg_state state_of(const char *name)
{
	struct shmkit_seg_info *in = calloc(1, sizeof(*in));
	enum shmkit_seg_state st;

	ASSERT_TRUE(in != NULL);
	in->sz = sizeof(*in);
	ASSERT_OK(shmkit_seg_stat(name, in));
	st = in->state;
	ASSERT_EQ(in->creator_pid, getpid());
	ASSERT_EQ(in->data_size, 0);
	free(in);
	return st;
}

/*
 * Hold the CREATOR lock of the file argv[0] until killed, or for argv[1]
 * milliseconds if given (then exit, as a creator that gives up).
 */
static int role_hold(int argc, char **argv)
{
	long ms = argc > 1 ? atol(argv[1]) : 60000;
	int fd;

	if (argc < 1)
		return 2;
	fd = open(argv[0], O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 2;
	if (shmkit__ofd_trylock(fd, SHMKIT_LOCK_CREATOR, F_WRLCK) < 0)
		return 3;
	usleep((useconds_t)ms * 1000);
	return argc > 1 ? 0 : 4;
}

static void wait_state(const char *name, enum shmkit_seg_state want)
{
	uint64_t deadline = th_now_ns() + 10000000000ull;

	while (state_of(name) != want) {
		ASSERT_LT(th_now_ns(), deadline);
		usleep(1000);
	}
}

static int test(void)
{
	struct shmkit_seg_opts o = {.sz = sizeof(o)};
	struct shmkit_seg *s = NULL;
	char path[256];
	pid_t holder;

	snprintf(dir, sizeof(dir), "/dev/shm/.shmkit-t-half-XXXXXX");
	ASSERT_TRUE(mkdtemp(dir) != NULL);
	atexit(dir_cleanup);
	ASSERT_EQ(setenv("SHMKIT_SHM_DIR", dir, 1), 0);
	snprintf(path, sizeof(path), "%s/half", dir);

	/* Creator gone: not recoverable, reported, collected. */
	plant_building("half");
	/* The default timeout (1 s) applies; open must come back. */
	ASSERT_ERR(shmkit_seg_open("half", NULL, &s), ENOTRECOVERABLE);
	ASSERT_TRUE(s == NULL);
	o.open_timeout_ns = 50000000;
	ASSERT_ERR(shmkit_seg_open("half", &o, &s), ENOTRECOVERABLE);
	o.flags = SHMKIT_SEG_RDONLY; /* a read-only opener sees it too */
	ASSERT_ERR(shmkit_seg_open("half", &o, &s), ENOTRECOVERABLE);
	o.flags = 0;
	ASSERT_EQ(state_of("half"), SHMKIT_STATE_INCOMPLETE);
	ASSERT_EQ(shmkit_seg_gc("half", 1), 1); /* dry run */
	ASSERT_EQ(access(path, F_OK), 0);
	ASSERT_EQ(shmkit_seg_gc("half", 0), 1);
	ASSERT_EQ(access(path, F_OK), -1);
	ASSERT_ERR(shmkit_seg_open("half", NULL, &s), ENOENT);

	/* Creator alive: still being created, left alone. */
	plant_building("half");
	{
		const char *args[] = {path, NULL};

		holder = th_spawn("hold", args, NULL);
	}
	wait_state("half", SHMKIT_STATE_CREATING);
	ASSERT_ERR(shmkit_seg_open("half", &o, &s), ETIMEDOUT);
	o.flags = SHMKIT_SEG_RDONLY;
	ASSERT_ERR(shmkit_seg_open("half", &o, &s), ETIMEDOUT);
	o.flags = 0;
	ASSERT_TRUE(s == NULL);
	ASSERT_EQ(shmkit_seg_gc("half", 1), 0);
	ASSERT_EQ(shmkit_seg_gc("half", 0), 0);
	ASSERT_EQ(access(path, F_OK), 0);
	ASSERT_EQ(state_of("half"), SHMKIT_STATE_CREATING);

	/* The creator dies: now it is incomplete. */
	ASSERT_TRUE(th_was_killed(th_kill(holder)));
	ASSERT_EQ(state_of("half"), SHMKIT_STATE_INCOMPLETE);
	ASSERT_ERR(shmkit_seg_open("half", &o, &s), ENOTRECOVERABLE);
	ASSERT_EQ(shmkit_seg_gc("half", 0), 1);
	ASSERT_EQ(access(path, F_OK), -1);

	/*
	 * The longest timeout there is means "wait", not "overflow the
	 * deadline and give up at once": open waits for the creator, which
	 * gives up after a moment, and then reports it.
	 */
	plant_building("half");
	{
		const char *args[] = {path, "300", NULL};

		holder = th_spawn("hold", args, NULL);
	}
	wait_state("half", SHMKIT_STATE_CREATING);
	o.open_timeout_ns = UINT64_MAX;
	ASSERT_ERR(shmkit_seg_open("half", &o, &s), ENOTRECOVERABLE);
	ASSERT_TRUE(th_exited_ok(th_wait(holder, 10000)));
	ASSERT_EQ(shmkit_seg_gc("half", 0), 1);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"hold", role_hold},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
