/* SPDX-License-Identifier: MIT */
/*
 * Passing memfd segments over AF_UNIX sockets (SCM_RIGHTS). The receiver
 * checks the sender's credentials and the memfd's seals before it maps
 * anything, and re-opens the descriptor so its attachment locks are its own.
 */
#define _GNU_SOURCE
#include "segment.h"

#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * The one-message wire format: a tag, then as ancillary data the descriptor
 * (SCM_RIGHTS) and the sender's credentials (SCM_CREDENTIALS), which the
 * kernel checks at send time. SO_PEERCRED alone would name whoever made
 * the socket, not a process that changed user since or was handed it.
 */
static const char wire_tag[8] = {'s', 'h', 'm', 'k', 'i', 't', 'S', '1'};

int shmkit_seg_send(int sock, const struct shmkit_seg *seg)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int)) +
			 CMSG_SPACE(sizeof(struct ucred))];
	} u;
	struct iovec iov = {.iov_base = (void *)wire_tag,
			    .iov_len = sizeof(wire_tag)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf)};
	struct ucred cred = {
		.pid = getpid(), .uid = geteuid(), .gid = getegid()};
	struct cmsghdr *c;
	ssize_t n;

	if (!seg || sock < 0 || seg->kind != SHMKIT_SEG_MEMFD || seg->fd < 0)
		return -EINVAL;
	if (seg->pid != getpid())
		return -ECHILD; /* the descriptor was dropped at fork */
	memset(&u, 0, sizeof(u));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &seg->fd, sizeof(int));
	c = CMSG_NXTHDR(&msg, c);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_CREDENTIALS;
	c->cmsg_len = CMSG_LEN(sizeof(cred));
	memcpy(CMSG_DATA(c), &cred, sizeof(cred));
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EPIPE ? -ECONNRESET : -errno;
	return n == (ssize_t)sizeof(wire_tag) ? 0 : -EIO;
}

static void close_fds(struct msghdr *msg)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c;
	     c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			close(fd);
		}
	}
}

static int wait_readable(int sock, uint64_t timeout_ns)
{
	uint64_t now = shmkit__now_ns();
	/* Saturated: the longest timeout means "wait", not "don't". */
	uint64_t deadline = timeout_ns > UINT64_MAX - now ? UINT64_MAX
							  : now + timeout_ns;

	for (;;) {
		struct pollfd p = {.fd = sock, .events = POLLIN};
		uint64_t left_ms;
		int rc;

		now = shmkit__now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		left_ms = (deadline - now) / 1000000 + 1;
		rc = poll(&p, 1, left_ms > INT_MAX ? INT_MAX : (int)left_ms);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -errno;
	}
}

/* recvmsg with SO_PASSCRED on, so the sender's credentials come along. */
static ssize_t recv_with_creds(int sock, struct msghdr *msg)
{
	int on = 1, was = 0;
	socklen_t len = sizeof(was);
	ssize_t n;

	if (getsockopt(sock, SOL_SOCKET, SO_PASSCRED, &was, &len) < 0)
		return -errno;
	if (!was &&
	    setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0)
		return -errno;
	do
		n = recvmsg(sock, msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		n = -errno;
	if (!was)
		setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &was, sizeof(was));
	return n;
}

int shmkit_seg_recv(int sock, const struct shmkit_seg_opts *opts,
		    struct shmkit_seg **out, pid_t *peer_pid)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(struct ucred)) +
			 CMSG_SPACE(4 * sizeof(int))];
	} u;
	char tag[sizeof(wire_tag)];
	struct iovec iov = {.iov_base = tag, .iov_len = sizeof(tag)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf)};
	struct shmkit__opts o;
	struct ucred cred, sent = {.pid = 0};
	socklen_t clen = sizeof(cred);
	struct cmsghdr *c;
	int fd = -1, nrights = 0, own, seals, rc;
	char proc[64];
	ssize_t n;

	if (!out || sock < 0)
		return -EINVAL;
	*out = NULL;
	rc = shmkit__opts_get(opts, &o);
	if (rc < 0)
		return rc;
	if (o.flags & (SHMKIT_SEG_SCOPED | SHMKIT_SEG_RDONLY))
		return -EINVAL;
	rc = wait_readable(sock, o.open_timeout_ns);
	if (rc < 0)
		return rc;
	memset(&u, 0, sizeof(u));
	n = recv_with_creds(sock, &msg);
	if (n < 0)
		return n == -EAGAIN ? -ETIMEDOUT : (int)n;
	if (n == 0)
		return -ECONNRESET;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_CREDENTIALS &&
		    c->cmsg_len == CMSG_LEN(sizeof(sent)))
			memcpy(&sent, CMSG_DATA(c), sizeof(sent));
		if (c->cmsg_type == SCM_RIGHTS) {
			nrights++;
			if (c->cmsg_len == CMSG_LEN(sizeof(int)))
				memcpy(&fd, CMSG_DATA(c), sizeof(int));
		}
	}
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		rc = -errno;
		goto drop;
	}
	/*
	 * Both the socket's peer and the message's sender must be us. A
	 * message without credentials (pid 0: the sender attached none and
	 * SO_PASSCRED was off when it was sent) proves nothing.
	 */
	if (!(o.flags & SHMKIT_SEG_ANY_OWNER) &&
	    (cred.uid != geteuid() || sent.pid == 0 || sent.uid != geteuid())) {
		rc = -EPERM;
		goto drop;
	}
	if ((size_t)n != sizeof(tag) || memcmp(tag, wire_tag, sizeof(tag)) ||
	    (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC))) {
		rc = -EPROTO;
		goto drop;
	}
	if (nrights != 1 || fd < 0) {
		rc = -EBADF;
		goto drop;
	}
	/*
	 * Sealed against resizing, and not against writing: a write seal
	 * would make the shared writable mapping fail with EPERM, which
	 * must not read as a credentials failure.
	 */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 ||
	    (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) !=
		    (F_SEAL_SHRINK | F_SEAL_GROW) ||
	    (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))) {
		close(fd);
		return -EBADF;
	}
	/*
	 * The received descriptor shares the sender's open file description
	 * and therefore its locks. A fresh open of the same memfd gives this
	 * process attachment locks of its own.
	 */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	own = open(proc, O_RDWR | O_CLOEXEC);
	if (own >= 0) {
		close(fd);
		fd = own;
	}
	if (peer_pid)
		*peer_pid = sent.pid ? sent.pid : cred.pid;
	return shmkit__seg_from_fd(fd, SHMKIT_SEG_MEMFD, opts, out);
drop:
	close_fds(&msg);
	return rc;
}
