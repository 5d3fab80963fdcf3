/* SPDX-License-Identifier: MIT */
/*
 * Garbage, truncated, wrong-version and inconsistent files where a segment
 * should be: open refuses each one with the documented error (-EPROTO: not
 * a shmkit segment of this layout version; -EBADMSG: shmkit magic and
 * version but inconsistent header), stat/list classify it, gc leaves it.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "layout.h"

#include <fcntl.h>
#include <shmkit.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOTAL (SHMKIT_HDR_SIZE + 4 * SHMKIT_PAGE)

static char dir[64];

static void dir_cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* A header image exactly as the library writes it. */
static void hdr_image(struct shmkit_hdr *h, uint64_t total, uint32_t state)
{
	memset(h, 0, sizeof(*h));
	h->magic = SHMKIT_MAGIC;
	h->layout_version = SHMKIT_LAYOUT_VERSION;
	h->hdr_size = SHMKIT_HDR_SIZE;
	h->total_size = total;
	h->flags = (uint32_t)SHMKIT_SEG_NAMED << SHMKIT_HF_KIND_SHIFT;
	h->creator_uid = (uint32_t)geteuid();
	h->creator_pid = (int32_t)getpid();
	atomic_store_explicit(&h->init_state, state, memory_order_relaxed);
	h->created_ns = 1;
	h->data_off = SHMKIT_HDR_SIZE;
	h->data_size = total - SHMKIT_HDR_SIZE;
	h->slot_off = offsetof(struct shmkit_hdr, slots);
	h->slot_cap = SHMKIT_NSLOTS;
	h->dir_off = offsetof(struct shmkit_hdr, dir);
	h->dir_cap = SHMKIT_DIR_CAP;
}

/* Write len bytes of img as the file `name`, then size it to file_size. */
static void plant(const char *name, const void *img, size_t len,
		  uint64_t file_size)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(write(fd, img, len), (ssize_t)len);
	ASSERT_EQ(ftruncate(fd, (off_t)file_size), 0);
	ASSERT_EQ(fchmod(fd, 0600), 0);
	close(fd);
}

struct seen {
	const char *name;
	int found;
	enum shmkit_seg_state state;
};

static int list_cb(const struct shmkit_seg_info *in, void *arg)
{
	struct seen *s = arg;

	if (strcmp(in->name, s->name) == 0) {
		s->found++;
		s->state = in->state;
	}
	return 0;
}

/*
 * The file planted as `name` must be refused by open with -err and
 * described by stat, stat_file and list as `state`; gc must leave it.
 */
static void expect_bad(const char *what, const char *name, int err,
		       enum shmkit_seg_state state)
{
	struct shmkit_seg_info *in = calloc(1, sizeof(*in));
	struct shmkit_seg_opts o = {.sz = sizeof(o),
				    .open_timeout_ns = 100000000};
	struct shmkit_seg *s = NULL;
	struct seen seen = {.name = name};
	char path[256];
	int rc;

	ASSERT_TRUE(in != NULL);
	fprintf(stderr, "case: %s\n", what);
	rc = shmkit_seg_open(name, &o, &s);
	if (rc != -err)
		fprintf(stderr, "  open gave %d (%s)\n", rc,
			shmkit_strerror(rc));
	ASSERT_ERR(rc, err);
	ASSERT_TRUE(s == NULL);
	o.flags = SHMKIT_SEG_RDONLY;
	ASSERT_ERR(shmkit_seg_open(name, &o, &s), err);
	in->sz = sizeof(*in);
	ASSERT_OK(shmkit_seg_stat(name, in));
	if (in->state != state)
		fprintf(stderr, "  stat state %d, expected %d\n", in->state,
			state);
	ASSERT_EQ(in->state, state);
	ASSERT_EQ(in->nusers, 0);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	memset(in, 0, sizeof(*in));
	in->sz = sizeof(*in);
	ASSERT_OK(shmkit_seg_stat_file(path, in));
	ASSERT_EQ(in->state, state);
	ASSERT_OK(shmkit_seg_list(list_cb, &seen));
	ASSERT_EQ(seen.found, 1);
	ASSERT_EQ(seen.state, state);
	ASSERT_EQ(shmkit_seg_gc(name, 0), 0);
	ASSERT_EQ(access(path, F_OK), 0);
	ASSERT_OK(shmkit_seg_unlink(name));
	free(in);
}

static int test(void)
{
	struct shmkit_hdr *h = calloc(1, sizeof(*h));
	struct shmkit_seg_info *in = calloc(1, sizeof(*in));
	unsigned char *junk = malloc(TOTAL);
	struct shmkit_seg *s;
	const char *n = "seg";

	ASSERT_TRUE(h && in && junk);
	snprintf(dir, sizeof(dir), "/dev/shm/.shmkit-t-corrupt-XXXXXX");
	ASSERT_TRUE(mkdtemp(dir) != NULL);
	atexit(dir_cleanup);
	ASSERT_EQ(setenv("SHMKIT_SHM_DIR", dir, 1), 0);

	/* The hand-made image is right: unmodified, it opens. */
	hdr_image(h, TOTAL, SHMKIT_INIT_READY);
	plant(n, h, sizeof(*h), TOTAL);
	ASSERT_OK(shmkit_seg_open(n, NULL, &s));
	ASSERT_EQ(shmkit_seg_size(s), TOTAL - SHMKIT_HDR_SIZE);
	shmkit_seg_close(s);
	in->sz = sizeof(*in);
	ASSERT_OK(shmkit_seg_stat(n, in));
	ASSERT_EQ(in->state, SHMKIT_STATE_OK);
	ASSERT_OK(shmkit_seg_unlink(n));

	/* -EPROTO: nothing that says "shmkit, this layout". */
	for (size_t i = 0; i < TOTAL; i++)
		junk[i] = (unsigned char)th_rand();
	plant(n, junk, TOTAL, TOTAL);
	expect_bad("random bytes", n, EPROTO, SHMKIT_STATE_FOREIGN);
	plant(n, junk, 0, 0);
	expect_bad("empty file", n, EPROTO, SHMKIT_STATE_FOREIGN);
	plant(n, h, 5, 5);
	expect_bad("5 bytes (part of the magic)", n, EPROTO,
		   SHMKIT_STATE_FOREIGN);
	plant(n, h, 11, 11);
	expect_bad("magic, version cut", n, EPROTO, SHMKIT_STATE_FOREIGN);
	hdr_image(h, TOTAL, SHMKIT_INIT_READY);
	h->magic ^= 1;
	plant(n, h, sizeof(*h), TOTAL);
	expect_bad("wrong magic", n, EPROTO, SHMKIT_STATE_FOREIGN);
	memset(junk, 0, TOTAL);
	plant(n, junk, TOTAL, TOTAL);
	expect_bad("all zero", n, EPROTO, SHMKIT_STATE_FOREIGN);

	hdr_image(h, TOTAL, SHMKIT_INIT_READY);
	h->layout_version = SHMKIT_LAYOUT_VERSION + 1;
	plant(n, h, sizeof(*h), TOTAL);
	expect_bad("next layout version", n, EPROTO, SHMKIT_STATE_VERSION);
	in->sz = sizeof(*in);
	plant(n, h, sizeof(*h), TOTAL);
	ASSERT_OK(shmkit_seg_stat(n, in));
	ASSERT_EQ(in->layout_version, SHMKIT_LAYOUT_VERSION + 1);
	ASSERT_OK(shmkit_seg_unlink(n));
	/* A version mismatch is reported even if the rest is nonsense. */
	h->hdr_size = 7;
	h->total_size = ~0ull;
	plant(n, h, 12, 12);
	expect_bad("other version, truncated", n, EPROTO, SHMKIT_STATE_VERSION);

	/* -EBADMSG: shmkit magic and version, inconsistent rest. */
	hdr_image(h, TOTAL, SHMKIT_INIT_READY);
	plant(n, h, 12, 12);
	expect_bad("magic and version only", n, EBADMSG, SHMKIT_STATE_CORRUPT);
	plant(n, h, sizeof(*h) / 2, sizeof(*h) / 2);
	expect_bad("half a header", n, EBADMSG, SHMKIT_STATE_CORRUPT);
	plant(n, h, sizeof(*h), SHMKIT_HDR_SIZE);
	expect_bad("header, data area cut", n, EBADMSG, SHMKIT_STATE_CORRUPT);
	plant(n, h, sizeof(*h), TOTAL - 100);
	expect_bad("data area cut mid-page", n, EBADMSG, SHMKIT_STATE_CORRUPT);
	plant(n, h, sizeof(*h), TOTAL + SHMKIT_PAGE);
	expect_bad("file longer than total_size", n, EBADMSG,
		   SHMKIT_STATE_CORRUPT);

	hdr_image(h, TOTAL, SHMKIT_INIT_READY);
	h->data_size = TOTAL;
	plant(n, h, sizeof(*h), TOTAL);
	expect_bad("data_size beyond the file", n, EBADMSG,
		   SHMKIT_STATE_CORRUPT);
	h->data_size = 1ull << 63;
	plant(n, h, sizeof(*h), TOTAL);
	expect_bad("data_size huge", n, EBADMSG, SHMKIT_STATE_CORRUPT);
	h->data_size = 100;
	plant(n, h, sizeof(*h), TOTAL);
	expect_bad("data_size not whole pages", n, EBADMSG,
		   SHMKIT_STATE_CORRUPT);
	h->data_size = 0;
	plant(n, h, sizeof(*h), TOTAL);
	expect_bad("data_size zero", n, EBADMSG, SHMKIT_STATE_CORRUPT);

	hdr_image(h, TOTAL, SHMKIT_INIT_READY);
	h->total_size = 1ull << 40;
	plant(n, h, sizeof(*h), TOTAL);
	expect_bad("total_size beyond the file", n, EBADMSG,
		   SHMKIT_STATE_CORRUPT);

	hdr_image(h, TOTAL, SHMKIT_INIT_READY);
	h->flags |= 0x80000000u;
	plant(n, h, sizeof(*h), TOTAL);
	expect_bad("unknown flag bit", n, EBADMSG, SHMKIT_STATE_CORRUPT);
	h->flags = 0;
	plant(n, h, sizeof(*h), TOTAL);
	expect_bad("kind 0", n, EBADMSG, SHMKIT_STATE_CORRUPT);
	h->flags = 9u << SHMKIT_HF_KIND_SHIFT;
	plant(n, h, sizeof(*h), TOTAL);
	expect_bad("kind 9", n, EBADMSG, SHMKIT_STATE_CORRUPT);

	hdr_image(h, TOTAL, SHMKIT_INIT_READY);
	atomic_store(&h->init_state, 0x12345678u);
	plant(n, h, sizeof(*h), TOTAL);
	expect_bad("init_state unknown", n, EBADMSG, SHMKIT_STATE_CORRUPT);
	atomic_store(&h->init_state, 0u);
	plant(n, h, sizeof(*h), TOTAL);
	expect_bad("init_state zero", n, EBADMSG, SHMKIT_STATE_CORRUPT);

	hdr_image(h, TOTAL, SHMKIT_INIT_READY);
	h->hdr_size = SHMKIT_PAGE;
	plant(n, h, sizeof(*h), TOTAL);
	expect_bad("hdr_size", n, EBADMSG, SHMKIT_STATE_CORRUPT);
	hdr_image(h, TOTAL, SHMKIT_INIT_READY);
	h->data_off = 0;
	plant(n, h, sizeof(*h), TOTAL);
	expect_bad("data_off 0", n, EBADMSG, SHMKIT_STATE_CORRUPT);
	hdr_image(h, TOTAL, SHMKIT_INIT_READY);
	h->slot_cap = 1000;
	plant(n, h, sizeof(*h), TOTAL);
	expect_bad("slot_cap", n, EBADMSG, SHMKIT_STATE_CORRUPT);
	hdr_image(h, TOTAL, SHMKIT_INIT_READY);
	h->slot_off = 0;
	plant(n, h, sizeof(*h), TOTAL);
	expect_bad("slot_off", n, EBADMSG, SHMKIT_STATE_CORRUPT);
	hdr_image(h, TOTAL, SHMKIT_INIT_READY);
	h->dir_cap = 0xffffffffu;
	plant(n, h, sizeof(*h), TOTAL);
	expect_bad("dir_cap", n, EBADMSG, SHMKIT_STATE_CORRUPT);
	hdr_image(h, TOTAL, SHMKIT_INIT_READY);
	h->dir_off = 1;
	plant(n, h, sizeof(*h), TOTAL);
	expect_bad("dir_off", n, EBADMSG, SHMKIT_STATE_CORRUPT);

	/* A consistent header born as another kind (a memfd's image copied
	 * under a name) is a valid segment: the kind records its origin. */
	hdr_image(h, TOTAL, SHMKIT_INIT_READY);
	h->flags = (uint32_t)SHMKIT_SEG_MEMFD << SHMKIT_HF_KIND_SHIFT;
	plant(n, h, sizeof(*h), TOTAL);
	ASSERT_OK(shmkit_seg_open(n, NULL, &s));
	ASSERT_EQ(shmkit_seg_kind(s), SHMKIT_SEG_NAMED);
	shmkit_seg_close(s);
	ASSERT_OK(shmkit_seg_unlink(n));

	free(junk);
	free(in);
	free(h);
	return 0;
}

int main(int argc, char **argv)
{
	return th_run(argc, argv, NULL, test);
}
