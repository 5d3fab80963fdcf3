/* SPDX-License-Identifier: MIT */
/*
 * Anonymous segments survive fork: a child writes, the parent reads, and
 * the other way round; the child's close unmaps only its own copy.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <shmkit.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (5 * 4096)

static int test(void)
{
	struct shmkit_seg_opts sc = {.sz = sizeof(sc),
				     .flags = SHMKIT_SEG_SCOPED};
	struct shmkit_seg_info *in = calloc(1, sizeof(*in));
	struct shmkit_seg *s;
	unsigned char *p;
	int status;
	pid_t pid;

	ASSERT_TRUE(in != NULL);
	ASSERT_ERR(shmkit_seg_create_anon(SIZE, &sc, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_create_anon(0, NULL, &s), EINVAL);
	ASSERT_OK(shmkit_seg_create_anon(SIZE, NULL, &s));
	ASSERT_EQ(shmkit_seg_kind(s), SHMKIT_SEG_ANON);
	ASSERT_EQ(shmkit_seg_size(s), SIZE);
	ASSERT_ERR(shmkit_seg_fd(s), EBADF);
	ASSERT_EQ(shmkit_seg_flush(s), 0);
	p = shmkit_seg_base(s);
	for (size_t i = 0; i < SIZE; i++)
		ASSERT_EQ(p[i], 0);
	in->sz = sizeof(*in);
	ASSERT_OK(shmkit_seg_info(s, in));
	ASSERT_EQ(in->state, SHMKIT_STATE_OK);
	ASSERT_EQ(in->kind, SHMKIT_SEG_ANON);
	ASSERT_EQ(in->data_size, SIZE);
	p[0] = 0xaa; /* parent -> child */

	fflush(NULL);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		_Atomic uint32_t *flag = (_Atomic uint32_t *)(p + 64);

		if (p[0] != 0xaa)
			_exit(1);
		for (size_t i = 4096; i < SIZE; i++)
			p[i] = (unsigned char)(i * 13);
		/* Pairs with the parent's acquire load of the flag. */
		atomic_store_explicit(flag, 1, memory_order_release);
		shmkit_seg_close(s); /* unmaps the child's view only */
		_exit(0);
	}
	status = th_wait(pid, 5000);
	ASSERT_TRUE(th_exited_ok(status));
	/* Pairs with the child's release store (and waitpid orders it). */
	ASSERT_EQ(atomic_load_explicit((_Atomic uint32_t *)(p + 64),
				       memory_order_acquire),
		  1);
	for (size_t i = 4096; i < SIZE; i++)
		ASSERT_EQ(p[i], (unsigned char)(i * 13));
	/* The parent's mapping is intact after the child closed. */
	p[100] = 1;
	ASSERT_EQ(p[100], 1);
	ASSERT_OK(shmkit_seg_info(s, in));
	ASSERT_EQ(in->state, SHMKIT_STATE_OK);
	shmkit_seg_close(s);
	free(in);
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
