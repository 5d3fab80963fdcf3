/* SPDX-License-Identifier: MIT */
/*
 * Clocks and OFD byte locks (see platform.h).
 */
#define _GNU_SOURCE
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t shmkit__now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t shmkit__realtime_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

void shmkit__sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
			      .tv_nsec = (long)(ns % 1000000000ull)};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void byte_lock(struct flock *fl, short type, int64_t off)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = (off_t)off;
	fl->l_len = 1;
	fl->l_pid = 0; /* required 0 for OFD locks */
}

int shmkit__ofd_trylock(int fd, int64_t off, short type)
{
	struct flock fl;

	byte_lock(&fl, type, off);
	while (fcntl(fd, F_OFD_SETLK, &fl) == -1) {
		if (errno == EINTR)
			continue;
		if (errno == EACCES || errno == EAGAIN)
			return -EAGAIN;
		return -errno;
	}
	return 0;
}

int shmkit__ofd_unlock(int fd, int64_t off)
{
	struct flock fl;

	byte_lock(&fl, F_UNLCK, off);
	if (fcntl(fd, F_OFD_SETLK, &fl) == -1)
		return -errno;
	return 0;
}

int shmkit__ofd_held(int fd, int64_t off, short type)
{
	struct flock fl;

	byte_lock(&fl, type, off);
	if (fcntl(fd, F_OFD_GETLK, &fl) == -1)
		return -errno;
	return fl.l_type != F_UNLCK;
}
