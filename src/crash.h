/* SPDX-License-Identifier: MIT */
/*
 * Crash points: named places inside the library where a test build kills
 * its own process (SIGKILL) on the n-th pass, chosen by the environment
 * variable SHMKIT_CRASH="name:n" (n counts from 1; "name" alone means 1).
 * Each point registers itself in the "shmkit_cp" section so tests can list
 * every point and check each one is exercised. Compiled out unless the
 * build defines SHMKIT_CRASHPOINTS (option SHMKIT_CRASHPOINTS, ON in the
 * dev and sanitizer presets, OFF in release).
 */
#ifndef SHMKIT_CRASH_H
#define SHMKIT_CRASH_H

#include <stddef.h>

struct shmkit__crash_point {
	const char *name;
	const char *file;
	int line;
};

#ifdef SHMKIT_CRASHPOINTS
void shmkit__crash_hit(const struct shmkit__crash_point *cp);

#define SHMKIT_CRASH_POINT(pname)                                    \
	do {                                                         \
		static const struct shmkit__crash_point shmkit__cp_  \
			__attribute__((section("shmkit_cp"), used,   \
				       aligned(sizeof(void *)))) = { \
				pname, __FILE__, __LINE__};          \
		shmkit__crash_hit(&shmkit__cp_);                     \
	} while (0)
#else
#define SHMKIT_CRASH_POINT(pname) ((void)0)
#endif

/* Every crash point compiled into the library (0 when compiled out). */
size_t shmkit__crash_points(const struct shmkit__crash_point **first);

#endif /* SHMKIT_CRASH_H */
