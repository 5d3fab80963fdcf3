/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the heap and the named-object directory as seen
 * by a process whose peer is hostile: each input is a program of 8-byte
 * steps run on a fresh heap; steps allocate, free (real and arbitrary
 * offsets), create/find/remove objects, and overwrite any 32-bit word of
 * the heap's control block, of block headers and of the segment header's
 * heap fields. Every call must return a documented value in bounded
 * time, never crash or read out of bounds; whenever the checker accepts
 * the heap, its statistics must add up. Without -fsanitize=fuzzer main()
 * replays files or the seed corpus (tests/api/heap_fuzz_replay.c).
 */
#define _GNU_SOURCE
#include "atomics.h"
#include "heap.h"
#include "layout.h"
#include "segment.h"

#include <dirent.h>
#include <errno.h>
#include <shmkit.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SEG_BYTES (256u << 10)
#define NLIVE 64

#define CHECK(x)                                                               \
	do {                                                                   \
		if (!(x)) {                                                    \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #x);                                 \
			abort();                                               \
		}                                                              \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct shmkit_seg *seg;

static int ok_rc(int rc)
{
	return rc >= 0 || rc == -EINVAL || rc == -ENOSPC || rc == -EBADMSG ||
	       rc == -ENOTRECOVERABLE || rc == -ETIMEDOUT || rc == -ENOENT ||
	       rc == -EPROTO || rc == -EAGAIN || rc == -EEXIST ||
	       rc == -EDEADLK;
}

static int walk_cb(const struct shmkit_heap_block *b, void *arg)
{
	CHECK(b->state >= SHMKIT_HEAP_FREE && b->state <= SHMKIT_HEAP_CACHED);
	++*(int *)arg;
	return 0;
}

static void verify(struct shmkit_heap *h)
{
	struct shmkit_heap_stats st = {.sz = sizeof(st)};
	int rc = shmkit_heap_check(h), n = 0;

	CHECK(ok_rc(rc));
	if (rc == 0) {
		CHECK(shmkit_heap_stats(h, &st) == 0);
		CHECK(st.free_bytes <= st.heap_bytes);
		CHECK(st.largest_free <= st.free_bytes);
	}
	rc = shmkit_heap_walk(h, walk_cb, &n);
	CHECK(ok_rc(rc));
}

static void fresh(void)
{
	if (!seg)
		CHECK(shmkit_seg_create_anon(SEG_BYTES, NULL, &seg) == 0);
	memset(seg->data, 0, seg->data_size);
	memset((char *)seg->hdr->dir, 0, sizeof(seg->hdr->dir));
	store_relaxed(&seg->hdr->heap_init, 0);
	seg->hdr->heap_off = 0;
	seg->hdr->heap_size = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shmkit_heap_opts o = {.sz = sizeof(o),
				     .flags = SHMKIT_HEAP_CREATE,
				     .lock_timeout_ns = 1000000};
	struct shmkit_heap *h, *h2 = NULL;
	uint64_t live[NLIVE] = {0};
	int rc;

	fresh();
	if (size && (data[0] & 1))
		o.flags |= SHMKIT_HEAP_NOCACHE;
	CHECK(shmkit_heap_open(seg, &o, &h) == 0);
	for (size_t p = 1; p + 8 <= size; p += 8) {
		const uint8_t *s = data + p;
		uint32_t v, w = (uint32_t)s[1] | (uint32_t)s[2] << 8 |
				(uint32_t)s[3] << 16;
		struct shmkit_obj_info oi;
		char nm[8];

		memcpy(&v, s + 4, 4);
		snprintf(nm, sizeof(nm), "o%u", v % 8);
		switch (s[0] % 12) {
		case 0: /* allocate */
			rc = shmkit_heap_alloc(h, v % 6000, s[1] & 3,
					       &live[w % NLIVE]);
			CHECK(ok_rc(rc));
			if (rc < 0)
				live[w % NLIVE] = 0;
			break;
		case 1: /* free something we allocated */
			CHECK(ok_rc(shmkit_heap_free(h, live[w % NLIVE])));
			live[w % NLIVE] = 0;
			break;
		case 2: /* free an arbitrary offset */
			CHECK(ok_rc(shmkit_heap_free(h, v)));
			break;
		case 3: /* hostile write into the heap (control block,
			 * headers, links, payloads) */
			memcpy((char *)seg->data + (w & ~3u) % 65536, &v, 4);
			break;
		case 4: /* hostile write into the segment header's heap
			 * place and size, or the directory (not heap_init:
			 * a live "builder" there only makes openers wait) */
			memcpy((char *)seg->hdr + 0x58 +
				       (w %
					((sizeof(struct shmkit_hdr) - 0x58) /
					 4)) * 4,
			       &v, 4);
			break;
		case 5:
			verify(h);
			break;
		case 6:
			CHECK(ok_rc(shmkit_heap_reclaim(h)));
			break;
		case 7:
			CHECK(ok_rc(shmkit_heap_flush(h)));
			break;
		case 8:
			rc = shmkit_obj_create(h, nm, v % 3000, 1 + s[1] % 3,
					       NULL, NULL, &oi);
			CHECK(ok_rc(rc));
			break;
		case 9:
			CHECK(ok_rc(shmkit_obj_remove(h, nm)));
			CHECK(ok_rc(shmkit_obj_find(h, nm, &oi)));
			CHECK(ok_rc(shmkit_obj_list(h, NULL, NULL)));
			break;
		case 10: /* a second handle (re-validates the heap) */
			if (!h2) {
				o.flags = 0;
				rc = shmkit_heap_open(seg, &o, &h2);
				CHECK(ok_rc(rc));
			} else {
				uint64_t off;

				CHECK(ok_rc(shmkit_heap_alloc(h2, v % 500, 0,
							      &off)));
			}
			break;
		default: {
			struct shmkit_heap_stats st = {.sz = sizeof(st)};
			size_t us;

			CHECK(shmkit_heap_stats(h, &st) == 0);
			CHECK(ok_rc(shmkit_heap_usable_size(h, v, &us)));
			CHECK(ok_rc(shmkit_heap_set_owned(h, v, 1)));
			break;
		}
		}
	}
	verify(h);
	shmkit_heap_close(h2);
	shmkit_heap_close(h);
	return 0;
}

#ifndef SHMKIT_LIBFUZZER
#include "fuzz_replay.h"

int main(int argc, char **argv)
{
	return fuzz_replay_main(argc, argv, "heap", 1);
}
#endif
