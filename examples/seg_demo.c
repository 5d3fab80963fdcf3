/* SPDX-License-Identifier: MIT */
/*
 * A tour of shmkit segments: a scoped named segment shared by two real
 * processes, a cache-line ping-pong through it (the hardware floor every
 * message-passing transport pays), liveness after a SIGKILL, and removal
 * by the last user. Uses only <shmkit.h>.
 */
#define _GNU_SOURCE
#include <shmkit.h>

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 200000

struct pingpong {
	_Alignas(64) _Atomic uint64_t ping; /* w: parent, r: child */
	_Alignas(64) _Atomic uint64_t pong; /* w: child, r: parent */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int die(const char *what, int err)
{
	fprintf(stderr, "shmkit-demo: %s: %s\n", what, shmkit_strerror(err));
	return 1;
}

static void show_users(const char *name, const char *when)
{
	struct shmkit_seg_info *in = calloc(1, sizeof(*in));
	int rc;

	if (!in)
		return;
	in->sz = sizeof(*in);
	rc = shmkit_seg_stat(name, in);
	if (rc < 0) {
		printf("  %-34s %s\n", when, shmkit_strerror(rc));
	} else {
		printf("  %-34s %u live user(s):", when, in->nusers);
		for (uint32_t i = 0; i < in->nusers; i++)
			printf(" pid %d", (int)in->users[i].pid);
		printf("\n");
	}
	free(in);
}

/* The child: attach by name, answer every ping, then wait to be killed. */
static int child(const char *name)
{
	struct shmkit_seg *seg;
	struct pingpong *pp;
	int rc = shmkit_seg_open(name, NULL, &seg);

	if (rc < 0)
		return die("child: open", rc);
	pp = shmkit_seg_base(seg);
	for (uint64_t i = 1; i <= ROUNDS; i++) {
		/* Pairs with the parent's release store of ping. */
		while (atomic_load_explicit(&pp->ping, memory_order_acquire) !=
		       i)
			;
		/* Pairs with the parent's acquire load of pong. */
		atomic_store_explicit(&pp->pong, i, memory_order_release);
	}
	pause();
	return 0;
}

int main(void)
{
	struct shmkit_seg_opts opts = {.sz = sizeof(opts),
				       .flags = SHMKIT_SEG_SCOPED};
	struct shmkit_seg *seg;
	struct pingpong *pp;
	char name[64];
	uint64_t t0, t1;
	pid_t pid;
	int rc;

	printf("shmkit %s (layout %u), segments in %s\n", shmkit_version(),
	       shmkit_layout_version(), shmkit_shm_dir());
	snprintf(name, sizeof(name), "shmkit-demo-%d", (int)getpid());
	rc = shmkit_seg_create(name, sizeof(*pp), &opts, &seg);
	if (rc < 0)
		return die("create", rc);
	printf("created scoped segment '%s' (%zu usable bytes)\n", name,
	       shmkit_seg_size(seg));
	pp = shmkit_seg_base(seg);

	pid = fork();
	if (pid < 0)
		return die("fork", -errno);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		shmkit_seg_close(seg); /* the child attaches by name */
		_exit(child(name));
	}

	t0 = now_ns();
	for (uint64_t i = 1; i <= ROUNDS; i++) {
		/* Pairs with the child's acquire load of ping. */
		atomic_store_explicit(&pp->ping, i, memory_order_release);
		/* Pairs with the child's release store of pong. */
		while (atomic_load_explicit(&pp->pong, memory_order_acquire) !=
		       i)
			;
	}
	t1 = now_ns();
	printf("cache-line ping-pong between two processes: %d round trips, "
	       "%.0f ns each (mean)\n",
	       ROUNDS, (double)(t1 - t0) / ROUNDS);

	show_users(name, "while the child is attached:");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	show_users(name, "after SIGKILL of the child:");
	shmkit_seg_close(seg);
	show_users(name, "after the last user closed:");
	return 0;
}
