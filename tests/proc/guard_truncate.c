/* SPDX-License-Identifier: MIT */
/*
 * A peer truncates a named segment under us: touching the vanished pages
 * must not kill this process (the SIGBUS guard), shmkit_seg_check() must
 * say -EBADMSG, and a SIGBUS outside any segment must still reach the
 * handler installed before shmkit's, or kill the process as usual.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <fcntl.h>
#include <setjmp.h>
#include <shmkit.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (1u << 20)

static int role_truncate(int argc, char **argv)
{
	int fd;

	if (argc < 1)
		return 2;
	fd = open(argv[0], O_RDWR);
	if (fd < 0 || ftruncate(fd, 0) < 0)
		return 1;
	return 0;
}

/* A SIGBUS on a file mapping that is not a segment. */
static volatile char *plain_mapping(void)
{
	char path[] = "/tmp/shmkit-guard-XXXXXX";
	int fd = mkstemp(path);
	char *p;

	ASSERT_GE(fd, 0);
	ASSERT_OK(ftruncate(fd, 4096));
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_TRUE(p != MAP_FAILED);
	ASSERT_OK(ftruncate(fd, 0));
	unlink(path);
	close(fd);
	return p;
}

static int role_plain_fault(int argc, char **argv)
{
	struct shmkit_seg *seg;
	volatile char *p;

	(void)argc;
	/* Installs the guard, then faults outside it: must die of SIGBUS. */
	if (shmkit_seg_create(argv[0], 4096, NULL, &seg) < 0)
		return 3;
	shmkit_seg_unlink(argv[0]);
	p = plain_mapping();
	return p[0] == 42 ? 4 : 5; /* never reached */
}

static sigjmp_buf jb;
static volatile sig_atomic_t user_handler_ran;

static void user_handler(int sig)
{
	(void)sig;
	user_handler_ran = 1;
	siglongjmp(jb, 1);
}

static int role_chain(int argc, char **argv)
{
	struct shmkit_seg *seg;
	volatile char *p;

	(void)argc;
	signal(SIGBUS, user_handler);
	if (shmkit_seg_create(argv[0], 4096, NULL, &seg) < 0)
		return 3;
	shmkit_seg_unlink(argv[0]);
	p = plain_mapping();
	if (sigsetjmp(jb, 1) == 0)
		(void)p[0];
	shmkit_seg_close(seg);
	return user_handler_ran ? 0 : 6;
}

static int test(void)
{
	struct shmkit_seg *seg;
	struct shmkit_seg_info *in = calloc(1, sizeof(*in));
	char name[128];
	const char *args[2] = {NULL, NULL};
	volatile unsigned char *base;
	unsigned long sum = 0;
	int status;

	th_name(name, sizeof(name), "trunc");
	ASSERT_OK(shmkit_seg_create(name, SIZE, NULL, &seg));
	base = shmkit_seg_base(seg);
	memset((void *)base, 7, SIZE);
	ASSERT_OK(shmkit_seg_check(seg));
	in->sz = sizeof(*in);
	ASSERT_OK(shmkit_seg_info(seg, in));

	args[0] = in->path;
	status = th_wait(th_spawn("truncate", args, NULL), 10000);
	ASSERT_TRUE(th_exited_ok(status));
	ASSERT_ERR(shmkit_seg_check(seg), EBADMSG);
	/* Every page is gone: read and write all of them. */
	for (size_t i = 0; i < SIZE; i += 512)
		sum += base[i];
	for (size_t i = 0; i < SIZE; i += 4096)
		base[i] = 1;
	ASSERT_EQ(sum, 0);
	ASSERT_ERR(shmkit_seg_check(seg), EBADMSG);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));

	/* Faults that are not ours keep their usual fate. */
	th_name(name, sizeof(name), "plain");
	args[0] = name;
	status = th_wait(th_spawn("plain_fault", args, NULL), 10000);
	ASSERT_GE(status, 0);
	if (WIFSIGNALED(status)) {
		ASSERT_EQ(WTERMSIG(status), SIGBUS);
	} else {
		/* Under a sanitizer the handler before ours is the
		 * sanitizer's, which reports the BUS and exits 1. */
		ASSERT_GT(th_slow_factor(), 1);
		ASSERT_EQ(WEXITSTATUS(status), 1);
	}
	th_name(name, sizeof(name), "chain");
	status = th_wait(th_spawn("chain", args, NULL), 10000);
	ASSERT_TRUE(th_exited_ok(status));
	free(in);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {
		{"truncate", role_truncate},
		{"plain_fault", role_plain_fault},
		{"chain", role_chain},
		{NULL, NULL},
	};

	return th_run(argc, argv, roles, test);
}
