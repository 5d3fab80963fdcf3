/* SPDX-License-Identifier: MIT */
/*
 * Hostile names. A squatter pre-creates the name of a channel or segment
 * (a file, a symlink, a FIFO, a segment of another kind, a too-wide one, a
 * named object of another kind): create fails with -EEXIST and open
 * refuses, without blocking. Another user cannot open ours (as root: a
 * helper drops privileges). A name unlinked while in use: its users go on
 * undisturbed, a new opener gets -ENOENT or the new object of that name,
 * never the old one, and the old object's last close or gc never removes
 * the new one.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <fcntl.h>
#include <grp.h>
#include <shmkit.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void path_of(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", shmkit_shm_dir(), name);
}

/* argv: name kind. Open must refuse quickly (the test's deadline). */
static int role_open(int argc, char **argv)
{
	struct shmkit_chan *c;
	struct shmkit_seg *s;
	int rc;

	if (argc < 2)
		return 2;
	if (strcmp(argv[1], "chan") == 0) {
		rc = shmkit_chan_open(argv[0], SHMKIT_CHAN_CONSUMER, NULL, &c);
		if (rc == 0)
			shmkit_chan_close(c);
	} else {
		rc = shmkit_seg_open(argv[0], NULL, &s);
		if (rc == 0)
			shmkit_seg_close(s);
	}
	/* The exit status is the error number. */
	return rc < 0 ? -rc : 0;
}

static int open_in_helper(const char *name, const char *kind)
{
	const char *args[] = {name, kind, NULL};
	int st = th_wait(th_spawn("open", args, NULL), 5000);

	if (st == -ETIMEDOUT)
		th_fail(__FILE__, __LINE__, "open of %s blocks", name);
	ASSERT_TRUE(WIFEXITED(st));
	return -WEXITSTATUS(st);
}

static void squatters(void)
{
	char name[128], target[128], path[4096], tpath[4096];
	struct shmkit_chan *c;
	struct shmkit_seg *s;
	struct stat st;
	int fd, rc;

	/* A plain file with something in it. */
	th_name(name, sizeof(name), "hn-file");
	path_of(path, sizeof(path), name);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(write(fd, "squatter", 8), 8);
	close(fd);
	ASSERT_ERR(shmkit_chan_create(name, NULL, SHMKIT_CHAN_PRODUCER, &c),
		   EEXIST);
	ASSERT_ERR(shmkit_seg_create(name, 4096, NULL, &s), EEXIST);
	ASSERT_ERR(shmkit_chan_open(name, SHMKIT_CHAN_PRODUCER, NULL, &c),
		   EPROTO);
	ASSERT_ERR(shmkit_seg_open(name, NULL, &s), EPROTO);
	ASSERT_OK(stat(path, &st));
	ASSERT_EQ(st.st_size, 8); /* untouched */
	unlink(path);

	/* A symlink to a channel of ours: never followed. */
	th_name(target, sizeof(target), "hn-target");
	ASSERT_OK(shmkit_chan_create(target, NULL, SHMKIT_CHAN_CONSUMER, &c));
	th_name(name, sizeof(name), "hn-link");
	path_of(path, sizeof(path), name);
	path_of(tpath, sizeof(tpath), target);
	ASSERT_OK(symlink(tpath, path));
	{
		struct shmkit_chan *x;

		ASSERT_ERR(shmkit_chan_create(name, NULL, SHMKIT_CHAN_PRODUCER,
					      &x),
			   EEXIST);
		ASSERT_ERR(open_in_helper(name, "chan"), ELOOP);
		ASSERT_ERR(open_in_helper(name, "seg"), ELOOP);
	}
	ASSERT_EQ(shmkit_chan_peers(c), 0); /* nobody joined through it */
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_unlink(target));
	unlink(path);

	/* A FIFO: open must not block on it. */
	th_name(name, sizeof(name), "hn-fifo");
	path_of(path, sizeof(path), name);
	ASSERT_OK(mkfifo(path, 0600));
	ASSERT_ERR(shmkit_chan_create(name, NULL, SHMKIT_CHAN_PRODUCER, &c),
		   EEXIST);
	ASSERT_ERR(open_in_helper(name, "chan"), EACCES);
	ASSERT_ERR(open_in_helper(name, "seg"), EACCES);
	unlink(path);

	/* A shmkit segment that is not a channel. */
	th_name(name, sizeof(name), "hn-seg");
	ASSERT_OK(shmkit_seg_create(name, 65536, NULL, &s));
	memset(shmkit_seg_base(s), 0xee, 4096);
	ASSERT_ERR(shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, NULL, &c),
		   EPROTO);
	shmkit_seg_close(s);
	ASSERT_OK(shmkit_seg_unlink(name));

	/* A segment wider than asked for (0666): refused by default. */
	{
		struct shmkit_seg_opts wide = {.sz = sizeof(wide),
					       .mode = 0666};

		th_name(name, sizeof(name), "hn-wide");
		ASSERT_OK(shmkit_seg_create(name, 4096, &wide, &s));
		shmkit_seg_close(s);
		ASSERT_ERR(shmkit_seg_open(name, NULL, &s), EACCES);
		ASSERT_ERR(shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, NULL,
					    &c),
			   EACCES);
		ASSERT_OK(shmkit_seg_unlink(name));
	}

	/* A named object of another kind where the map should be. */
	{
		struct shmkit_heap_opts ho = {.sz = sizeof(ho),
					      .flags = SHMKIT_HEAP_CREATE};
		struct shmkit_map_opts mo = {.sz = sizeof(mo),
					     .flags = SHMKIT_MAP_CREATE};
		struct shmkit_obj_info oi;
		struct shmkit_heap *h;
		struct shmkit_map *m;

		th_name(name, sizeof(name), "hn-obj");
		ASSERT_OK(shmkit_seg_create(name, 1 << 20, NULL, &s));
		ASSERT_OK(shmkit_heap_open(s, &ho, &h));
		ASSERT_EQ(shmkit_obj_create(h, "m", 4096, 42, NULL, NULL, &oi),
			  1);
		ASSERT_ERR(shmkit_map_open(h, "m", &mo, &m), EPROTO);
		ASSERT_ERR(shmkit_map_open(h, "m", NULL, &m), EPROTO);
		shmkit_heap_close(h);
		shmkit_seg_close(s);
		ASSERT_OK(shmkit_seg_unlink(name));
	}
	(void)rc;
}

/* ---- another user --------------------------------------------------------- */

static int role_other_user(int argc, char **argv)
{
	struct shmkit_seg_opts any = {.sz = sizeof(any),
				      .flags = SHMKIT_SEG_ANY_OWNER};
	struct shmkit_chan *c;
	struct shmkit_seg *s;
	gid_t g = 65534;

	if (argc < 2)
		return 2;
	if (setgroups(1, &g) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
		return 2;
	if (shmkit_chan_open(argv[0], SHMKIT_CHAN_PRODUCER, NULL, &c) !=
	    -EACCES)
		return 3;
	if (shmkit_chan_open(argv[0], SHMKIT_CHAN_CONSUMER, NULL, &c) !=
	    -EACCES)
		return 4;
	if (shmkit_seg_open(argv[1], NULL, &s) != -EACCES)
		return 5;
	/* Asking to accept another owner does not get past the kernel. */
	if (shmkit_seg_open(argv[1], &any, &s) != -EACCES)
		return 6;
	/* Nor can it take the names over. */
	if (shmkit_chan_create(argv[0], NULL, SHMKIT_CHAN_PRODUCER, &c) !=
	    -EEXIST)
		return 7;
	if (shmkit_chan_unlink(argv[0]) == 0)
		return 8;
	return 0;
}

static void other_user(void)
{
	char chan[128], seg[128];
	const char *args[] = {chan, seg, NULL};
	struct shmkit_chan *c;
	struct shmkit_seg *s;
	int st;

	if (geteuid() != 0) {
		fprintf(stderr, "other user: not root, skipped\n");
		return;
	}
	th_name(chan, sizeof(chan), "hn-uc");
	th_name(seg, sizeof(seg), "hn-us");
	ASSERT_OK(shmkit_chan_create(chan, NULL, SHMKIT_CHAN_CONSUMER, &c));
	ASSERT_OK(shmkit_seg_create(seg, 4096, NULL, &s));
	st = th_wait(th_spawn("other", args, NULL), 10000);
	if (!th_exited_ok(st))
		th_fail(__FILE__, __LINE__, "other user: step %d got in",
			WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	ASSERT_EQ(shmkit_chan_peers(c), 0);
	shmkit_chan_close(c);
	shmkit_seg_close(s);
	ASSERT_OK(shmkit_chan_unlink(chan));
	ASSERT_OK(shmkit_seg_unlink(seg));
}

/* ---- unlinked while in use ---------------------------------------------- */

/* argv: chan tag count. Sends count messages "tag:i", then waits for the
 * consumer to have them all. */
static int role_sender(int argc, char **argv)
{
	struct shmkit_chan *c;
	char m[64];
	int n;

	if (argc < 3 ||
	    shmkit_chan_open(argv[0], SHMKIT_CHAN_PRODUCER, NULL, &c) < 0)
		return 2;
	n = atoi(argv[2]);
	for (int i = 0; i < n; i++) {
		int len = snprintf(m, sizeof(m), "%s:%d", argv[1], i);

		if (shmkit_chan_send(c, m, (size_t)len, 5000000000ll) < 0)
			return 3;
		if (i == n / 2)
			usleep(20000); /* the name goes away about now */
	}
	if (shmkit_chan_flush(c, 5000000000ll) < 0)
		return 4;
	shmkit_chan_close(c);
	return 0;
}

/* Receive until end of stream; every message must carry tag. */
static int drain(struct shmkit_chan *c, const char *tag)
{
	char m[64];
	int n = 0;

	for (;;) {
		int rc = shmkit_chan_recv(c, m, sizeof(m) - 1, NULL,
					  5000000000ll);

		if (rc == -EPIPE)
			return n;
		if (rc < 0)
			th_fail(__FILE__, __LINE__,
				"%s channel: receive %d after %d messages: %d",
				tag, n + 1, n, rc);
		m[rc] = '\0';
		if (strncmp(m, tag, strlen(tag)) != 0 || m[strlen(tag)] != ':')
			th_fail(__FILE__, __LINE__,
				"message \"%s\" in the %s channel", m, tag);
		ASSERT_EQ(atoi(m + strlen(tag) + 1), n);
		n++;
	}
}

static void unlinked_chan(void)
{
	char name[128];
	const char *a_old[] = {name, "old", "400", NULL};
	const char *a_new[] = {name, "new", "300", NULL};
	struct shmkit_chan *c_old, *c_new, *x;
	pid_t p_old, p_new;

	th_name(name, sizeof(name), "hn-unl");
	ASSERT_OK(shmkit_chan_create(name, NULL, SHMKIT_CHAN_CONSUMER, &c_old));
	p_old = th_spawn("sender", a_old, NULL);
	/* Unlink once the sender is attached (and sending). */
	for (int i = 0; i < 10000 && shmkit_chan_peers(c_old) < 1; i++)
		usleep(1000);
	ASSERT_EQ(shmkit_chan_peers(c_old), 1);
	/* The name goes; the producer and we go on. A newcomer finds
	 * nothing... */
	ASSERT_OK(shmkit_chan_unlink(name));
	ASSERT_ERR(shmkit_chan_open(name, SHMKIT_CHAN_PRODUCER, NULL, &x),
		   ENOENT);
	/* ...until a new channel takes the name: then it gets that one. */
	ASSERT_OK(shmkit_chan_create(name, NULL, SHMKIT_CHAN_CONSUMER, &c_new));
	p_new = th_spawn("sender", a_new, NULL);
	ASSERT_EQ(drain(c_old, "old"), 400);
	ASSERT_EQ(drain(c_new, "new"), 300);
	ASSERT_TRUE(th_exited_ok(th_wait(p_old, 10000)));
	ASSERT_TRUE(th_exited_ok(th_wait(p_new, 10000)));
	shmkit_chan_close(c_old);
	shmkit_chan_close(c_new);
	ASSERT_OK(shmkit_chan_unlink(name));
}

/* argv: seg. Dies attached (a user of the old, scoped segment). */
static int role_attach_die(int argc, char **argv)
{
	struct shmkit_seg *s;

	if (argc < 1 || shmkit_seg_open(argv[0], NULL, &s) < 0)
		return 2;
	raise(SIGKILL);
	return 3;
}

static void unlinked_seg(void)
{
	struct shmkit_seg_opts scoped = {.sz = sizeof(scoped),
					 .flags = SHMKIT_SEG_SCOPED};
	struct shmkit_heap_opts ho = {.sz = sizeof(ho),
				      .flags = SHMKIT_HEAP_CREATE};
	struct shmkit_map_opts mo = {.sz = sizeof(mo),
				     .flags = SHMKIT_MAP_CREATE};
	char name[128], v[16];
	const char *args[] = {name, NULL};
	struct shmkit_seg *old, *old2, *nw, *x;
	struct shmkit_heap *ho_old, *ho_new;
	struct shmkit_map *m_old, *m_new;
	struct shmkit_seg_info info = {.sz = sizeof(info)};

	/* A scoped segment with a map, two users; the name is unlinked. */
	th_name(name, sizeof(name), "hn-seg");
	ASSERT_OK(shmkit_seg_create(name, 1 << 20, &scoped, &old));
	ASSERT_OK(shmkit_seg_open(name, NULL, &old2));
	ASSERT_OK(shmkit_heap_open(old, &ho, &ho_old));
	ASSERT_EQ(shmkit_map_open(ho_old, "m", &mo, &m_old), 1);
	ASSERT_GE(shmkit_map_put(m_old, "k", 1, "old", 3, 0), 0);
	ASSERT_OK(shmkit_seg_unlink(name));
	ASSERT_ERR(shmkit_seg_open(name, NULL, &x), ENOENT);
	/* The old users go on. */
	ASSERT_GE(shmkit_map_put(m_old, "k2", 2, "old2", 4, 0), 0);
	ASSERT_EQ(shmkit_map_get(m_old, "k", 1, v, sizeof(v)), 3);

	/* A new segment takes the name; a newcomer gets it, not the old. */
	ASSERT_OK(shmkit_seg_create(name, 1 << 20, &scoped, &nw));
	ASSERT_OK(shmkit_heap_open(nw, &ho, &ho_new));
	ASSERT_EQ(shmkit_map_open(ho_new, "m", &mo, &m_new), 1);
	ASSERT_OK(shmkit_seg_open(name, NULL, &x));
	{
		struct shmkit_heap *hx;
		struct shmkit_map *mx;

		ASSERT_OK(shmkit_heap_open(x, NULL, &hx));
		ASSERT_OK(shmkit_map_open(hx, "m", NULL, &mx));
		ASSERT_ERR(shmkit_map_get(mx, "k", 1, v, sizeof(v)), ENOENT);
		ASSERT_GE(shmkit_map_put(mx, "n", 1, "new", 3, 0), 0);
		shmkit_map_close(mx);
		shmkit_heap_close(hx);
	}
	ASSERT_ERR(shmkit_map_get(m_old, "n", 1, v, sizeof(v)), ENOENT);
	ASSERT_EQ(shmkit_map_get(m_new, "n", 1, v, sizeof(v)), 3);
	shmkit_seg_close(x);

	/* A user of the old one dies; the old one's last close and gc must
	 * leave the new one (which has the name) alone. */
	ASSERT_TRUE(th_was_killed(
		th_wait(th_spawn("attach_die", args, NULL), 10000)));
	shmkit_map_close(m_old);
	shmkit_heap_close(ho_old);
	shmkit_seg_close(old2);
	shmkit_seg_close(old);
	ASSERT_EQ(shmkit_seg_gc(name, 0), 0);
	ASSERT_OK(shmkit_seg_stat(name, &info));
	ASSERT_EQ(info.state, SHMKIT_STATE_OK);
	ASSERT_EQ(shmkit_map_get(m_new, "n", 1, v, sizeof(v)), 3);
	/* The new one's own last close removes it (scoped). */
	shmkit_map_close(m_new);
	shmkit_heap_close(ho_new);
	shmkit_seg_close(nw);
	ASSERT_ERR(shmkit_seg_open(name, NULL, &x), ENOENT);
}

static int test(void)
{
	squatters();
	other_user();
	unlinked_chan();
	unlinked_seg();
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"open", role_open},
					       {"other", role_other_user},
					       {"sender", role_sender},
					       {"attach_die", role_attach_die},
					       {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
