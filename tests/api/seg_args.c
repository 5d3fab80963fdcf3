/* SPDX-License-Identifier: MIT */
/*
 * Argument checking of the segment API: names, sizes, option structs of
 * older (smaller) sizes, flags that do not apply, info structs of older
 * sizes (nothing written past their end), NULL handles.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <shmkit.h>
#include <stddef.h>
#include <unistd.h>

static int test(void)
{
	struct shmkit_seg_opts o = {.sz = sizeof(o)};
	struct shmkit_seg *s = NULL, *t = NULL;
	char name[128], longname[SHMKIT_SEG_NAME_MAX + 2], slashed[130];

	th_name(name, sizeof(name), "args");

	/* Names. */
	ASSERT_ERR(shmkit_seg_create(NULL, 4096, NULL, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_create("", 4096, NULL, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_create("/", 4096, NULL, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_create(".", 4096, NULL, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_create("..", 4096, NULL, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_create("a/b", 4096, NULL, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_create("//a", 4096, NULL, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_create("a b", 4096, NULL, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_create("a\nb", 4096, NULL, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_open("../etc/passwd", NULL, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_unlink("../x"), EINVAL);
	ASSERT_ERR(shmkit_seg_gc("../x", 0), EINVAL);
	memset(longname, 'n', sizeof(longname));
	longname[SHMKIT_SEG_NAME_MAX + 1] = '\0';
	ASSERT_ERR(shmkit_seg_create(longname, 4096, NULL, &s), EINVAL);
	/* The longest name is fine. */
	snprintf(longname, sizeof(longname), "%s", name);
	memset(longname + strlen(name), 'n',
	       SHMKIT_SEG_NAME_MAX - strlen(name));
	longname[SHMKIT_SEG_NAME_MAX] = '\0';
	ASSERT_OK(shmkit_seg_create(longname, 4096, NULL, &s));
	shmkit_seg_close(s);
	ASSERT_OK(shmkit_seg_unlink(longname));
	/* A leading slash (POSIX shm style) names the same segment. */
	snprintf(slashed, sizeof(slashed), "/%s", name);
	ASSERT_OK(shmkit_seg_create(slashed, 4096, NULL, &s));
	ASSERT_OK(shmkit_seg_open(name, NULL, &t));
	shmkit_seg_close(t);
	shmkit_seg_close(s);
	ASSERT_OK(shmkit_seg_unlink(name));

	/* Sizes: rounded up to pages, zero and absurd refused. */
	ASSERT_ERR(shmkit_seg_create(name, 0, NULL, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_create(name, (size_t)1 << 62, NULL, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_create(name, SIZE_MAX, NULL, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_create_anon(SIZE_MAX, NULL, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_create_memfd("x", 0, NULL, &s), EINVAL);
	ASSERT_OK(shmkit_seg_create(name, 1, NULL, &s));
	ASSERT_EQ(shmkit_seg_size(s), 4096);
	shmkit_seg_close(s);
	ASSERT_OK(shmkit_seg_unlink(name));

	/* No out pointer. */
	ASSERT_ERR(shmkit_seg_create(name, 4096, NULL, NULL), EINVAL);
	ASSERT_ERR(shmkit_seg_open(name, NULL, NULL), EINVAL);
	ASSERT_ERR(shmkit_seg_create_anon(4096, NULL, NULL), EINVAL);
	ASSERT_ERR(shmkit_seg_create_memfd("x", 4096, NULL, NULL), EINVAL);

	/* Options. */
	o.sz = offsetof(struct shmkit_seg_opts, open_timeout_ns);
	ASSERT_ERR(shmkit_seg_create(name, 4096, &o, &s), EINVAL);
	o.sz = 0;
	ASSERT_ERR(shmkit_seg_open(name, &o, &s), EINVAL);
	o.sz = sizeof(o);
	o.flags = 1u << 31;
	ASSERT_ERR(shmkit_seg_create(name, 4096, &o, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_open(name, &o, &s), EINVAL);
	o.flags = SHMKIT_SEG_RDONLY;
	ASSERT_ERR(shmkit_seg_create(name, 4096, &o, &s), EINVAL);
	o.flags = SHMKIT_SEG_ANY_OWNER;
	ASSERT_ERR(shmkit_seg_create(name, 4096, &o, &s), EINVAL);
	o.flags = SHMKIT_SEG_SCOPED; /* lifetime is chosen at creation */
	ASSERT_ERR(shmkit_seg_open(name, &o, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_create_anon(4096, &o, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_create_memfd("x", 4096, &o, &s), EINVAL);
	o.flags = 0;
	o.mode = 01000;
	ASSERT_ERR(shmkit_seg_create(name, 4096, &o, &s), EINVAL);
	/* Nothing was created by any refused call. */
	ASSERT_ERR(shmkit_seg_open(name, NULL, &s), ENOENT);
	ASSERT_TRUE(s == NULL);
	/* A larger struct from a newer caller is fine. */
	{
		struct {
			struct shmkit_seg_opts o;
			uint64_t future[4];
		} big = {{.sz = sizeof(big)}, {0}};

		ASSERT_OK(shmkit_seg_create(name, 4096, &big.o, &s));
		ASSERT_OK(shmkit_seg_open(name, &big.o, &t));
		shmkit_seg_close(t);
	}

	/*
	 * Info structs: too small refused, older (smaller) sizes filled up
	 * to their size and not a byte further.
	 */
	{
		size_t old = offsetof(struct shmkit_seg_info, users);
		struct shmkit_seg_info *in = malloc(sizeof(*in));
		unsigned char *raw = (unsigned char *)in;

		ASSERT_TRUE(in != NULL);
		memset(in, 0xa5, sizeof(*in));
		in->sz = old;
		ASSERT_OK(shmkit_seg_stat(name, in));
		ASSERT_EQ(in->sz, old);
		ASSERT_EQ(in->state, SHMKIT_STATE_OK);
		ASSERT_EQ(in->nusers, 1);
		for (size_t i = old; i < sizeof(*in); i++)
			ASSERT_EQ(raw[i], 0xa5);
		memset(in, 0xa5, sizeof(*in));
		in->sz = old;
		ASSERT_OK(shmkit_seg_info(s, in));
		ASSERT_EQ(in->nusers, 1);
		for (size_t i = old; i < sizeof(*in); i++)
			ASSERT_EQ(raw[i], 0xa5);
		memset(in, 0xa5, sizeof(*in));
		in->sz = sizeof(size_t) + 8;
		ASSERT_ERR(shmkit_seg_stat(name, in), EINVAL);
		ASSERT_ERR(shmkit_seg_info(s, in), EINVAL);
		for (size_t i = sizeof(size_t); i < sizeof(*in); i++)
			ASSERT_EQ(raw[i], 0xa5);
		in->sz = sizeof(*in);
		ASSERT_ERR(shmkit_seg_stat(name, NULL), EINVAL);
		ASSERT_ERR(shmkit_seg_stat_file(NULL, in), EINVAL);
		ASSERT_ERR(shmkit_seg_stat_file("", in), EINVAL);
		free(in);
	}
	shmkit_seg_close(s);
	ASSERT_OK(shmkit_seg_unlink(name));
	ASSERT_ERR(shmkit_seg_unlink(name), ENOENT);
	ASSERT_ERR(shmkit_seg_gc(name, 0), ENOENT);

	/* NULL handles. */
	shmkit_seg_close(NULL);
	ASSERT_TRUE(shmkit_seg_base(NULL) == NULL);
	ASSERT_EQ(shmkit_seg_size(NULL), 0);
	ASSERT_ERR(shmkit_seg_fd(NULL), EINVAL);
	ASSERT_ERR(shmkit_seg_flush(NULL), EINVAL);
	ASSERT_ERR(shmkit_seg_send(0, NULL), EINVAL);
	ASSERT_ERR(shmkit_seg_recv(-1, NULL, &s, NULL), EINVAL);
	ASSERT_ERR(shmkit_seg_list(NULL, NULL), EINVAL);
	ASSERT_ERR(shmkit_seg_create_file(NULL, 4096, NULL, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_create_file("", 4096, NULL, &s), EINVAL);
	ASSERT_ERR(shmkit_seg_open_file(NULL, NULL, &s), EINVAL);

	/* Errors have text. */
	ASSERT_TRUE(strlen(shmkit_strerror(-EPROTO)) > 0);
	ASSERT_TRUE(strlen(shmkit_strerror(-EBADMSG)) > 0);
	ASSERT_TRUE(strlen(shmkit_strerror(-ENOTRECOVERABLE)) > 0);
	ASSERT_TRUE(strlen(shmkit_strerror(-123456)) > 0);
	ASSERT_EQ(shmkit_layout_version(), 1);
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
