/* SPDX-License-Identifier: MIT */
/*
 * memfd segments over AF_UNIX sockets: the receiver (another process) sees
 * the data and cannot resize it (seals); a descriptor that is not a sealed
 * memfd is refused (-EBADF), a garbage message too (-EPROTO), a closed peer
 * gives -ECONNRESET, silence -ETIMEDOUT, and a sender running as another
 * user -EPERM unless SHMKIT_SEG_ANY_OWNER. No descriptor leaks on errors.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <shmkit.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (2 * 4096)
#define NOBODY 65534

static const char tag[8] = {'s', 'h', 'm', 'k', 'i', 't', 'S', '1'};

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	ASSERT_TRUE(d != NULL);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the DIR's own */
}

/*
 * A message as shmkit_seg_send would build it, with any bytes and fds, and
 * with (creds) or without the sender's credentials.
 */
static void send_raw_c(int sock, const void *buf, size_t len, const int *fds,
		       int nfds, int creds)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(4 * sizeof(int)) +
		       CMSG_SPACE(sizeof(struct ucred))];
	} u;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct ucred cr = {.pid = getpid(), .uid = getuid(), .gid = getgid()};
	struct cmsghdr *c = NULL;

	memset(&u, 0, sizeof(u));
	msg.msg_control = u.b;
	msg.msg_controllen = sizeof(u.b);
	if (nfds > 0) {
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	if (creds) {
		c = c ? CMSG_NXTHDR(&msg, c) : CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_CREDENTIALS;
		c->cmsg_len = CMSG_LEN(sizeof(cr));
		memcpy(CMSG_DATA(c), &cr, sizeof(cr));
	}
	if (!c)
		msg.msg_control = NULL;
	msg.msg_controllen =
		c ? (size_t)((char *)c + CMSG_SPACE(c->cmsg_len - CMSG_LEN(0)) -
			     u.b)
		  : 0;
	ASSERT_EQ(sendmsg(sock, &msg, MSG_NOSIGNAL), (ssize_t)len);
}

static void send_raw(int sock, const void *buf, size_t len, const int *fds,
		     int nfds)
{
	send_raw_c(sock, buf, len, fds, nfds, 1);
}

static const struct shmkit_seg_opts short_wait = {
	.sz = sizeof(struct shmkit_seg_opts),
	.open_timeout_ns = 50000000};

static void expect_recv_err(int sock, int err)
{
	struct shmkit_seg *r = (struct shmkit_seg *)1;

	ASSERT_ERR(shmkit_seg_recv(sock, &short_wait, &r, NULL), err);
	ASSERT_TRUE(r == NULL);
}

/* Receiver in a child: check data and seals, answer through the data. */
static void pass_to_child(void)
{
	struct shmkit_seg *s;
	int sv[2], status;
	char *p;
	pid_t pid;

	ASSERT_OK(shmkit_seg_create_memfd("shmkit-test", SIZE, NULL, &s));
	ASSERT_EQ(shmkit_seg_kind(s), SHMKIT_SEG_MEMFD);
	p = shmkit_seg_base(s);
	strcpy(p, "from parent");
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fflush(NULL);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct shmkit_seg *r;
		pid_t peer = 0;
		char *q;
		int fd;

		close(sv[0]);
		if (shmkit_seg_recv(sv[1], NULL, &r, &peer) < 0)
			_exit(1);
		q = shmkit_seg_base(r);
		fd = shmkit_seg_fd(r);
		if (peer != getppid() || shmkit_seg_size(r) != SIZE ||
		    strcmp(q, "from parent") != 0)
			_exit(2);
		/* Sealed: neither shrink nor grow, even by the holder. */
		if (ftruncate(fd, 4096) == 0 || errno != EPERM)
			_exit(3);
		if (ftruncate(fd, 1 << 20) == 0 || errno != EPERM)
			_exit(4);
		if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0)
			_exit(5); /* F_SEAL_SEAL: seals are final */
		strcpy(q + 2048, "from child");
		shmkit_seg_close(r);
		_exit(0);
	}
	close(sv[1]);
	ASSERT_OK(shmkit_seg_send(sv[0], s));
	status = th_wait(pid, 5000);
	if (!th_exited_ok(status))
		fprintf(stderr, "receiver child status %d\n", status);
	ASSERT_TRUE(th_exited_ok(status));
	ASSERT_STR_EQ(p + 2048, "from child");
	/* The child is gone: sending to it now is -ECONNRESET. */
	ASSERT_ERR(shmkit_seg_send(sv[0], s), ECONNRESET);
	close(sv[0]);
	shmkit_seg_close(s);
}

static void refusals(void)
{
	struct shmkit_seg *s, *r;
	int sv[2], p[2], fds0, mfd;
	char tmp[] = "/tmp/shmkit-t-memfd-XXXXXX";

	ASSERT_OK(shmkit_seg_create_memfd(NULL, SIZE, NULL, &s));
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fds0 = count_fds();

	/* In one process too, with its own mapping and attachment. */
	ASSERT_OK(shmkit_seg_send(sv[0], s));
	{
		pid_t peer = 0;

		ASSERT_OK(shmkit_seg_recv(sv[1], NULL, &r, &peer));
		ASSERT_EQ(peer, getpid());
	}
	ASSERT_TRUE(shmkit_seg_base(r) != shmkit_seg_base(s));
	strcpy(shmkit_seg_base(s), "same");
	ASSERT_STR_EQ((char *)shmkit_seg_base(r), "same");
	/* The receiver's attachment is its own: two users now. */
	{
		struct shmkit_seg_info *in = calloc(1, sizeof(*in));

		ASSERT_TRUE(in != NULL);
		in->sz = sizeof(*in);
		ASSERT_OK(shmkit_seg_info(r, in));
		ASSERT_EQ(in->kind, SHMKIT_SEG_MEMFD);
		ASSERT_EQ(in->state, SHMKIT_STATE_OK);
		ASSERT_EQ(in->nusers, 2);
		shmkit_seg_close(r);
		ASSERT_OK(shmkit_seg_info(s, in));
		ASSERT_EQ(in->nusers, 1);
		free(in);
	}
	ASSERT_EQ(count_fds(), fds0);

	/* Nothing there: -ETIMEDOUT. */
	expect_recv_err(sv[1], ETIMEDOUT);

	/* A pipe is not a memfd. */
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	send_raw(sv[0], tag, sizeof(tag), &p[0], 1);
	expect_recv_err(sv[1], EBADF);
	close(p[0]);
	close(p[1]);
	ASSERT_EQ(count_fds(), fds0);

	/* Nor is a regular file. */
	{
		int fd = mkstemp(tmp);

		ASSERT_GE(fd, 0);
		unlink(tmp);
		ASSERT_EQ(ftruncate(fd, SIZE + 8192), 0);
		send_raw(sv[0], tag, sizeof(tag), &fd, 1);
		expect_recv_err(sv[1], EBADF);
		close(fd);
		ASSERT_EQ(count_fds(), fds0);
	}

	/* A memfd holding a valid segment image but without seals. */
	mfd = memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ASSERT_GE(mfd, 0);
	ASSERT_EQ(ftruncate(mfd, SIZE + 8192), 0);
	ASSERT_EQ(pwrite(mfd, (char *)shmkit_seg_base(s) - 8192, 8192, 0),
		  8192);
	send_raw(sv[0], tag, sizeof(tag), &mfd, 1);
	expect_recv_err(sv[1], EBADF);
	/* Only one of the two seals: still refused. */
	ASSERT_EQ(fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	send_raw(sv[0], tag, sizeof(tag), &mfd, 1);
	expect_recv_err(sv[1], EBADF);
	/* Both seals: that same image is accepted. */
	ASSERT_EQ(fcntl(mfd, F_ADD_SEALS, F_SEAL_GROW), 0);
	send_raw(sv[0], tag, sizeof(tag), &mfd, 1);
	ASSERT_OK(shmkit_seg_recv(sv[1], &short_wait, &r, NULL));
	shmkit_seg_close(r);
	close(mfd);
	ASSERT_EQ(count_fds(), fds0);

	/*
	 * Sealed against writing as well: no use as a shared segment, and
	 * not a credentials problem either: -EBADF, like any descriptor
	 * that cannot serve.
	 */
	{
		static const int extra[] = {F_SEAL_WRITE, F_SEAL_FUTURE_WRITE};

		for (size_t k = 0; k < 2; k++) {
			mfd = memfd_create("ro",
					   MFD_CLOEXEC | MFD_ALLOW_SEALING);
			ASSERT_GE(mfd, 0);
			ASSERT_EQ(ftruncate(mfd, SIZE + 8192), 0);
			ASSERT_EQ(pwrite(mfd, (char *)shmkit_seg_base(s) - 8192,
					 8192, 0),
				  8192);
			ASSERT_EQ(fcntl(mfd, F_ADD_SEALS,
					F_SEAL_SHRINK | F_SEAL_GROW | extra[k]),
				  0);
			send_raw(sv[0], tag, sizeof(tag), &mfd, 1);
			expect_recv_err(sv[1], EBADF);
			close(mfd);
			ASSERT_EQ(count_fds(), fds0);
		}
	}

	/* A sealed memfd that is no segment: header check refuses it. */
	mfd = memfd_create("garbage", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ASSERT_GE(mfd, 0);
	ASSERT_EQ(ftruncate(mfd, SIZE + 8192), 0);
	ASSERT_EQ(pwrite(mfd, "not a segment", 13, 0), 13);
	ASSERT_EQ(fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
	send_raw(sv[0], tag, sizeof(tag), &mfd, 1);
	expect_recv_err(sv[1], EPROTO);
	close(mfd);
	ASSERT_EQ(count_fds(), fds0);

	/* The right message without credentials proves nothing. */
	{
		struct shmkit_seg_opts any = short_wait;
		int fd = shmkit_seg_fd(s);

		send_raw_c(sv[0], tag, sizeof(tag), &fd, 1, 0);
		expect_recv_err(sv[1], EPERM);
		ASSERT_EQ(count_fds(), fds0);
		any.flags = SHMKIT_SEG_ANY_OWNER;
		send_raw_c(sv[0], tag, sizeof(tag), &fd, 1, 0);
		ASSERT_OK(shmkit_seg_recv(sv[1], &any, &r, NULL));
		shmkit_seg_close(r);
		ASSERT_EQ(count_fds(), fds0);
	}

	/* Garbage bytes, with and without a descriptor. */
	send_raw(sv[0], "garbage!", 8, NULL, 0);
	expect_recv_err(sv[1], EPROTO);
	{
		int fd = shmkit_seg_fd(s);

		send_raw(sv[0], "garbage!", 8, &fd, 1);
		expect_recv_err(sv[1], EPROTO);
		ASSERT_EQ(count_fds(), fds0);
		send_raw(sv[0], "shm", 3, &fd, 1);
		expect_recv_err(sv[1], EPROTO);
		ASSERT_EQ(count_fds(), fds0);
	}
	/* The right tag but no descriptor, or two. */
	send_raw(sv[0], tag, sizeof(tag), NULL, 0);
	expect_recv_err(sv[1], EBADF);
	{
		int two[2] = {shmkit_seg_fd(s), shmkit_seg_fd(s)};

		send_raw(sv[0], tag, sizeof(tag), two, 2);
		expect_recv_err(sv[1], EBADF);
		ASSERT_EQ(count_fds(), fds0);
	}
	/* Nothing was left unread by any of the refusals. */
	expect_recv_err(sv[1], ETIMEDOUT);

	/* Peer closed: -ECONNRESET, not a hang or a timeout. */
	close(sv[0]);
	expect_recv_err(sv[1], ECONNRESET);
	close(sv[1]);

	/* Only memfd segments can be sent. */
	{
		struct shmkit_seg *a;

		ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				     sv),
			  0);
		ASSERT_OK(shmkit_seg_create_anon(4096, NULL, &a));
		ASSERT_ERR(shmkit_seg_send(sv[0], a), EINVAL);
		shmkit_seg_close(a);
		close(sv[0]);
		close(sv[1]);
	}
	shmkit_seg_close(s);
}

/*
 * A sender that became another user after the socket pair was made. The
 * receiver must check who is sending, not only who made the socket.
 */
static void other_sender(int any)
{
	struct shmkit_seg_opts o = short_wait;
	struct shmkit_seg *r = NULL;
	int sv[2], rc, status;
	pid_t pid;

	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fflush(NULL);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct shmkit_seg *s;
		char c;

		close(sv[1]);
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 ||
		    setuid(NOBODY) < 0)
			_exit(1);
		if (shmkit_seg_create_memfd("nobody", SIZE, NULL, &s) < 0)
			_exit(2);
		strcpy(shmkit_seg_base(s), "nobody's");
		if (shmkit_seg_send(sv[0], s) < 0)
			_exit(3);
		/* Stay until the receiver is done. */
		if (read(sv[0], &c, 1) < 0)
			_exit(4);
		shmkit_seg_close(s);
		_exit(0);
	}
	close(sv[0]);
	o.open_timeout_ns = 5000000000ull;
	if (any)
		o.flags = SHMKIT_SEG_ANY_OWNER;
	rc = shmkit_seg_recv(sv[1], &o, &r, NULL);
	close(sv[1]);
	status = th_wait(pid, 5000);
	ASSERT_TRUE(th_exited_ok(status));
	if (any) {
		ASSERT_OK(rc);
		ASSERT_STR_EQ((char *)shmkit_seg_base(r), "nobody's");
		shmkit_seg_close(r);
	} else {
		ASSERT_ERR(rc, EPERM);
		ASSERT_TRUE(r == NULL);
	}
}

/* The longest timeout there is waits; it does not overflow into none. */
static void long_timeout(void)
{
	struct shmkit_seg_opts o = {.sz = sizeof(o),
				    .open_timeout_ns = UINT64_MAX};
	struct shmkit_seg *s = NULL, *r = NULL;
	int sv[2], rc;
	pid_t pid;

	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fflush(NULL);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		/* A handle does not cross fork: the child makes its own. */
		close(sv[1]);
		usleep(200000);
		if (shmkit_seg_create_memfd("late", SIZE, NULL, &s) < 0)
			_exit(2);
		_exit(shmkit_seg_send(sv[0], s) == 0 ? 0 : 1);
	}
	close(sv[0]);
	rc = shmkit_seg_recv(sv[1], &o, &r, NULL);
	ASSERT_TRUE(th_exited_ok(th_wait(pid, 5000)));
	ASSERT_OK(rc);
	shmkit_seg_close(r);
	close(sv[1]);
}

static int test(void)
{
	pass_to_child();
	long_timeout();
	refusals();
	if (geteuid() == 0) {
		other_sender(0);
		other_sender(1);
	} else {
		fprintf(stderr, "not root: other-user sender case skipped\n");
	}
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
