/* SPDX-License-Identifier: MIT */
/*
 * Platform layer: clocks, OFD (open file description) byte locks used for
 * liveness, and small I/O helpers. Nothing here knows the segment format.
 */
#ifndef SHMKIT_PLATFORM_H
#define SHMKIT_PLATFORM_H

#include <stdint.h>
#include <sys/types.h>

uint64_t shmkit__now_ns(void);	    /* CLOCK_MONOTONIC */
uint64_t shmkit__realtime_ns(void); /* CLOCK_REALTIME */
void shmkit__sleep_ns(uint64_t ns);

/*
 * OFD locks on one byte at off. They belong to the open file description,
 * so two opens in one process are two owners, and the kernel releases them
 * when the description's last descriptor closes (death included).
 * try: 0 on success, -EAGAIN if held by another description, -errno else.
 */
int shmkit__ofd_trylock(int fd, int64_t off, short type /* F_RDLCK|F_WRLCK */);
int shmkit__ofd_unlock(int fd, int64_t off);
/*
 * Is the byte locked (in a way conflicting with `type`) by a description
 * other than fd's? 1 yes, 0 no, -errno on error. F_WRLCK asks "any lock".
 */
int shmkit__ofd_held(int fd, int64_t off, short type);

#endif /* SHMKIT_PLATFORM_H */
