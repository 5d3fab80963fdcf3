/* SPDX-License-Identifier: MIT */
/*
 * Permission bits: 0600 whatever the umask, a wider mode only when asked
 * for, and open refuses a segment wider than the caller accepts (-EACCES)
 * unless opts.mode allows it.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <shmkit.h>
#include <sys/stat.h>
#include <unistd.h>

static uint32_t file_mode(const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", shmkit_shm_dir(), name);
	ASSERT_EQ(stat(path, &st), 0);
	return (uint32_t)(st.st_mode & 07777);
}

static uint32_t info_mode(const char *name)
{
	struct shmkit_seg_info *in = calloc(1, sizeof(*in));
	uint32_t m;

	ASSERT_TRUE(in != NULL);
	in->sz = sizeof(*in);
	ASSERT_OK(shmkit_seg_stat(name, in));
	m = in->mode;
	free(in);
	return m;
}

static int test(void)
{
	struct shmkit_seg_opts o = {.sz = sizeof(o)};
	struct shmkit_seg *a, *b;
	char n1[128], n2[128], n3[128];

	th_name(n1, sizeof(n1), "mode");
	th_name(n2, sizeof(n2), "mode");
	th_name(n3, sizeof(n3), "mode");

	/* umask 000 must not widen the default. */
	umask(0);
	ASSERT_OK(shmkit_seg_create(n1, 4096, NULL, &a));
	ASSERT_EQ(file_mode(n1), 0600);
	ASSERT_EQ(info_mode(n1), 0600);
	shmkit_seg_close(a);
	ASSERT_OK(shmkit_seg_unlink(n1));

	/* A wider mode when asked for, whatever the umask. */
	umask(077);
	o.mode = 0640;
	ASSERT_OK(shmkit_seg_create(n2, 4096, &o, &a));
	ASSERT_EQ(file_mode(n2), 0640);
	ASSERT_EQ(info_mode(n2), 0640);

	/* Default opts accept at most 0600. */
	ASSERT_ERR(shmkit_seg_open(n2, NULL, &b), EACCES);
	o.mode = 0600;
	ASSERT_ERR(shmkit_seg_open(n2, &o, &b), EACCES);
	o.mode = 0604;
	ASSERT_ERR(shmkit_seg_open(n2, &o, &b), EACCES);
	o.mode = 0640;
	ASSERT_OK(shmkit_seg_open(n2, &o, &b));
	shmkit_seg_close(b);
	o.mode = 0666;
	ASSERT_OK(shmkit_seg_open(n2, &o, &b));
	shmkit_seg_close(b);
	shmkit_seg_close(a);
	ASSERT_OK(shmkit_seg_unlink(n2));

	/* A narrower mode is accepted by default. */
	o.mode = 0400;
	umask(0);
	ASSERT_OK(shmkit_seg_create(n3, 4096, &o, &a));
	ASSERT_EQ(file_mode(n3), 0400);
	shmkit_seg_close(a);
	ASSERT_OK(shmkit_seg_unlink(n3));

	/* Bits outside 0777 are not a mode. */
	o.mode = 04600;
	ASSERT_ERR(shmkit_seg_create(n3, 4096, &o, &a), EINVAL);
	o.mode = 01600;
	ASSERT_ERR(shmkit_seg_create(n3, 4096, &o, &a), EINVAL);
	ASSERT_ERR(shmkit_seg_open(n3, &o, &a), EINVAL);
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
