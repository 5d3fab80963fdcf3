/* SPDX-License-Identifier: MIT */
/*
 * The SIGBUS guard: a peer that truncates a named or file-backed segment
 * must not kill this process when it next touches the vanished pages.
 */
#ifndef SHMKIT_SEG_GUARD_H
#define SHMKIT_SEG_GUARD_H

#include <stddef.h>

/* Guard [start, start+len). Returns a registry index, or -1 if the
 * registry is full or the handler could not be installed (unguarded). */
int shmkit__guard_add(void *start, size_t len);
/* Stop guarding (before munmap). Accepts -1. */
void shmkit__guard_del(int idx);
/* 1 if a fault in this range has been absorbed, else 0. */
int shmkit__guard_hit(int idx);

#endif /* SHMKIT_SEG_GUARD_H */
