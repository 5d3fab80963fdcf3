/* SPDX-License-Identifier: MIT */
/*
 * Crash-point runtime: parses SHMKIT_CRASH once and kills the process on
 * the chosen pass through the chosen point. Test builds only.
 */
#define _GNU_SOURCE
#include "crash.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef SHMKIT_CRASHPOINTS
extern const struct shmkit__crash_point __start_shmkit_cp[];
extern const struct shmkit__crash_point __stop_shmkit_cp[];

static char target[128];
static long target_pass;
static atomic_long passes;
static atomic_int parsed; /* 0 not yet, 1 parsing, 2 done */

static void parse_env(void)
{
	int expect = 0;

	if (!atomic_compare_exchange_strong(&parsed, &expect, 1)) {
		while (atomic_load(&parsed) != 2)
			;
		return;
	}
	const char *env = getenv("SHMKIT_CRASH");

	if (env && *env) {
		const char *colon = strrchr(env, ':');
		size_t len = colon ? (size_t)(colon - env) : strlen(env);

		if (len < sizeof(target)) {
			memcpy(target, env, len);
			target[len] = '\0';
			target_pass = colon ? strtol(colon + 1, NULL, 10) : 1;
			if (target_pass < 1)
				target_pass = 1;
		}
	}
	atomic_store(&parsed, 2);
}

void shmkit__crash_hit(const struct shmkit__crash_point *cp)
{
	if (atomic_load_explicit(&parsed, memory_order_acquire) != 2)
		parse_env();
	if (!target[0] || strcmp(target, cp->name) != 0)
		return;
	if (atomic_fetch_add(&passes, 1) + 1 == target_pass)
		kill(getpid(), SIGKILL);
}

size_t shmkit__crash_points(const struct shmkit__crash_point **first)
{
	*first = __start_shmkit_cp;
	return (size_t)(__stop_shmkit_cp - __start_shmkit_cp);
}
#else
size_t shmkit__crash_points(const struct shmkit__crash_point **first)
{
	*first = NULL;
	return 0;
}
#endif
