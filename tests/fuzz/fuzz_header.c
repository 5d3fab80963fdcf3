/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the segment header validator: arbitrary bytes as a
 * header image (shmkit__hdr_check on an exact-size buffer, and padded to the
 * size the header declares) and as a segment file (stat, open, open_file,
 * gc, list). Nothing may crash, read out of bounds or wait; whatever is
 * accepted must be consistent. Without -fsanitize=fuzzer (SHMKIT_LIBFUZZER
 * undefined) main() replays files or the seed corpus instead.
 */
#define _GNU_SOURCE
#include "layout.h"
#include "segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <shmkit.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE (1u << 20) /* largest file the target makes */

#define CHECK(x)                                                               \
	do {                                                                   \
		if (!(x)) {                                                    \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #x);                                 \
			abort();                                               \
		}                                                              \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char path[128];

static void dir_cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

static void setup(void)
{
	if (dir[0])
		return;
	snprintf(dir, sizeof(dir), "/dev/shm/.shmkit-fuzz-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/seg", dir);
	CHECK(setenv("SHMKIT_SHM_DIR", dir, 1) == 0);
	atexit(dir_cleanup);
}

/* The file size a header declares, if it is one worth making. */
static uint64_t declared_size(const uint8_t *data, size_t size)
{
	uint64_t total;

	if (size < offsetof(struct shmkit_hdr, total_size) + sizeof(total))
		return size;
	memcpy(&total, data + offsetof(struct shmkit_hdr, total_size),
	       sizeof(total));
	if (total < size || total > MAX_FILE)
		return size;
	return total;
}

/* What the validator says must hold whenever it says yes. */
static void check_view(int rc, const struct shmkit__hdr_view *v,
		       uint64_t file_size)
{
	CHECK(rc == 0 || rc == -EPROTO || rc == -EBADMSG);
	if (rc != 0)
		return;
	CHECK(v->layout_version == SHMKIT_LAYOUT_VERSION);
	CHECK(file_size >= SHMKIT_HDR_SIZE);
	CHECK((v->flags & ~SHMKIT_HF_KNOWN) == 0);
	CHECK(((v->flags >> SHMKIT_HF_KIND_SHIFT) & 0xffu) >= SHMKIT_SEG_NAMED);
	CHECK(((v->flags >> SHMKIT_HF_KIND_SHIFT) & 0xffu) <= SHMKIT_SEG_FILE);
	CHECK(v->init_state == SHMKIT_INIT_READY ||
	      v->init_state == SHMKIT_INIT_BUILDING);
	if (v->init_state == SHMKIT_INIT_READY) {
		CHECK(v->total_size == file_size);
		CHECK(v->data_size > 0);
		CHECK(v->data_size % SHMKIT_PAGE == 0);
		CHECK(v->data_size <= file_size - SHMKIT_HDR_SIZE);
	}
}

/*
 * The validator on a buffer of exactly the bytes its contract promises:
 * sizeof(struct shmkit_hdr), or file_size if fewer. ASan catches any read
 * past it.
 */
static int check_image(const uint8_t *data, size_t size, uint64_t file_size)
{
	size_t n = file_size < sizeof(struct shmkit_hdr)
			   ? (size_t)file_size
			   : sizeof(struct shmkit_hdr);
	struct shmkit__hdr_view v;
	uint8_t *buf = malloc(n ? n : 1);
	int rc;

	CHECK(buf != NULL);
	memset(buf, 0, n);
	memcpy(buf, data, size < n ? size : n);
	rc = shmkit__hdr_check((const struct shmkit_hdr *)buf, file_size, &v);
	check_view(rc, &v, file_size);
	free(buf);
	return rc;
}

static int list_cb(const struct shmkit_seg_info *in, void *arg)
{
	(void)arg;
	CHECK(in->state <= SHMKIT_STATE_FOREIGN);
	return 0;
}

static void check_handle(struct shmkit_seg *s, uint64_t file_size)
{
	volatile uint8_t *p = shmkit_seg_base(s);
	size_t n = shmkit_seg_size(s);

	CHECK(p != NULL);
	CHECK(n > 0 && n <= file_size - SHMKIT_HDR_SIZE);
	/* The whole data area is mapped and backed: touch both ends. */
	p[0] = p[0];
	p[n - 1] = p[n - 1];
	shmkit_seg_close(s);
}

/* The bytes as a segment file: inspection and open must cope. */
static void check_file(const uint8_t *data, size_t size, uint64_t file_size)
{
	struct shmkit_seg_opts o = {.sz = sizeof(o),
				    .open_timeout_ns = 1000000};
	struct shmkit_seg_info *in = calloc(1, sizeof(*in));
	struct shmkit_seg *s = NULL;
	int fd, rc;

	CHECK(in != NULL);
	unlink(path);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(fchmod(fd, 0600) == 0);
	CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
	CHECK(ftruncate(fd, (off_t)file_size) == 0);
	close(fd);

	in->sz = sizeof(*in);
	CHECK(shmkit_seg_stat("seg", in) == 0);
	CHECK(in->state <= SHMKIT_STATE_FOREIGN);
	CHECK(in->file_size == file_size);
	CHECK(in->data_size <= file_size);
	CHECK(in->nusers == 0);

	rc = shmkit_seg_open("seg", &o, &s);
	CHECK(rc == 0 || rc == -EPROTO || rc == -EBADMSG ||
	      rc == -ENOTRECOVERABLE);
	if (rc == 0) {
		CHECK(in->state == SHMKIT_STATE_OK ||
		      in->state == SHMKIT_STATE_STALE);
		check_handle(s, file_size);
	}
	/* A scoped segment may have gone with that close. */
	if (access(path, F_OK) == 0) {
		rc = shmkit_seg_open_file(path, &o, &s);
		CHECK(rc == 0 || rc == -EPROTO || rc == -EBADMSG ||
		      rc == -ENOTRECOVERABLE);
		if (rc == 0)
			check_handle(s, file_size);
	}
	if (access(path, F_OK) == 0) {
		rc = shmkit_seg_gc("seg", 1);
		CHECK(rc == 0 || rc == 1);
		CHECK(shmkit_seg_list(list_cb, NULL) == 0);
	}
	unlink(path);
	free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t padded = declared_size(data, size);

	setup();
	check_image(data, size, size);
	check_image(data, size, padded);
	check_file(data, size, padded);
	return 0;
}

#ifndef SHMKIT_LIBFUZZER
/*
 * Replay: every file named on the command line (or in the seed corpus next
 * to this source). Seeds named ok-*, proto-* or badmsg-* must get exactly
 * that verdict from the validator as whole segment files, so the corpus
 * keeps meaning what its names say (see gen_header_corpus.py). Each seed is
 * also replayed with every header field byte set to 0, 0xff and flipped.
 */
static int replay_file(const char *file, const char *base)
{
	struct stat st;
	uint8_t *buf;
	size_t size;
	FILE *f = fopen(file, "rb");
	int rc, want = 1;

	CHECK(f != NULL);
	CHECK(fstat(fileno(f), &st) == 0);
	size = (size_t)st.st_size;
	buf = malloc(size ? size : 1);
	CHECK(buf != NULL);
	CHECK(fread(buf, 1, size, f) == size);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, size);
	rc = check_image(buf, size, size);
	if (!strncmp(base, "ok-", 3))
		want = 0;
	else if (!strncmp(base, "proto-", 6))
		want = -EPROTO;
	else if (!strncmp(base, "badmsg-", 7))
		want = -EBADMSG;
	if (want != 1 && rc != want) {
		fprintf(stderr, "%s: validator says %d, name says %d\n", file,
			rc, want);
		free(buf);
		return 1;
	}
	for (size_t i = 0; i < size && i < 0x58; i++) {
		uint8_t keep = buf[i];
		const uint8_t vals[] = {0, 0xff, (uint8_t)(keep ^ 1)};

		for (size_t k = 0; k < sizeof(vals); k++) {
			buf[i] = vals[k];
			LLVMFuzzerTestOneInput(buf, size);
		}
		buf[i] = keep;
	}
	free(buf);
	return 0;
}

static int replay_path(const char *p, int *count)
{
	struct stat st;
	int bad = 0;

	if (stat(p, &st) < 0) {
		perror(p);
		return 1;
	}
	if (S_ISDIR(st.st_mode)) {
		struct dirent **list;
		int n = scandir(p, &list, NULL, alphasort);

		if (n < 0) {
			perror(p);
			return 1;
		}
		for (int i = 0; i < n; i++) {
			char sub[4096];

			if (list[i]->d_name[0] != '.') {
				snprintf(sub, sizeof(sub), "%s/%s", p,
					 list[i]->d_name);
				bad |= replay_path(sub, count);
			}
			free(list[i]);
		}
		free(list);
		return bad;
	}
	(*count)++;
	{
		const char *slash = strrchr(p, '/');

		return replay_file(p, slash ? slash + 1 : p);
	}
}

int main(int argc, char **argv)
{
	char corpus[4096];
	int count = 0, bad = 0;

	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			bad |= replay_path(argv[i], &count);
	} else {
		const char *slash = strrchr(__FILE__, '/');

		snprintf(corpus, sizeof(corpus), "%.*s/corpus/header",
			 slash ? (int)(slash - __FILE__) : 1,
			 slash ? __FILE__ : ".");
		bad |= replay_path(corpus, &count);
	}
	fprintf(stderr, "replayed %d inputs%s\n", count,
		bad ? ", some failed" : "");
	if (count == 0)
		return 1;
	return bad ? 1 : 0;
}
#endif
