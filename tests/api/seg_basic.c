/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
/* Named segments: create, open, the data area, close, unlink, errors. */
#include "harness.h"

#include <shmkit.h>
#include <sys/stat.h>

static int test(void)
{
	struct shmkit_seg *a, *b;
	char name[128];
	struct shmkit_seg_info *info = calloc(1, sizeof(*info));

	th_name(name, sizeof(name), "basic");
	ASSERT_OK(shmkit_seg_create(name, 10000, NULL, &a));
	ASSERT_EQ(shmkit_seg_size(a), 12288);
	ASSERT_EQ(shmkit_seg_kind(a), SHMKIT_SEG_NAMED);
	ASSERT_ERR(shmkit_seg_create(name, 4096, NULL, &b), EEXIST);
	ASSERT_OK(shmkit_seg_open(name, NULL, &b));
	ASSERT_NE((long long)(uintptr_t)shmkit_seg_base(a),
		  (long long)(uintptr_t)shmkit_seg_base(b));
	memcpy(shmkit_seg_base(a), "hello", 6);
	ASSERT_STR_EQ((char *)shmkit_seg_base(b), "hello");
	info->sz = sizeof(*info);
	ASSERT_OK(shmkit_seg_stat(name, info));
	ASSERT_EQ(info->state, SHMKIT_STATE_OK);
	ASSERT_EQ(info->nusers, 2);
	ASSERT_EQ(info->mode, 0600);
	shmkit_seg_close(b);
	ASSERT_OK(shmkit_seg_stat(name, info));
	ASSERT_EQ(info->nusers, 1);
	ASSERT_OK(shmkit_seg_unlink(name));
	ASSERT_ERR(shmkit_seg_open(name, NULL, &b), ENOENT);
	ASSERT_STR_EQ((char *)shmkit_seg_base(a), "hello");
	shmkit_seg_close(a);
	ASSERT_ERR(shmkit_seg_create("bad/name", 4096, NULL, &a), EINVAL);
	ASSERT_ERR(shmkit_seg_create(".hidden", 4096, NULL, &a), EINVAL);
	ASSERT_ERR(shmkit_seg_create(name, 0, NULL, &a), EINVAL);
	free(info);
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
