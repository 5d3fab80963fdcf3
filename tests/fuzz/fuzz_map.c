/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the map as seen by a process whose peer is hostile:
 * each input is a program of 8-byte steps on a fresh small map; steps
 * put, get (copying and zero-copy), delete, CAS, add, iterate, check, and
 * overwrite any 32-bit word of the map object (header, stripes, bucket
 * heads and sequence words, entries and their links). Every call must
 * return a documented value in bounded time and never crash or read out
 * of bounds; whatever the checker accepts must be a map that works.
 * Without -fsanitize=fuzzer main() replays files or the seed corpus
 * (tests/api/map_fuzz_replay.c).
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
	       rc == -EMSGSIZE || rc == -EDEADLK;
}

static int each(const void *key, size_t klen, const void *val, size_t vlen,
		void *arg)
{
	(void)key;
	(void)val;
	CHECK(klen <= 16 && vlen <= 32);
	++*(int *)arg;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shmkit_heap_opts ho = {.sz = sizeof(ho),
				      .flags = SHMKIT_HEAP_CREATE,
				      .lock_timeout_ns = 1000000};
	struct shmkit_map_opts mo = {.sz = sizeof(mo),
				     .flags = SHMKIT_MAP_CREATE,
				     .capacity = 48,
				     .key_max = 16,
				     .val_max = 32,
				     .stripes = 4,
				     .lock_timeout_ns = 1000000};
	struct shmkit_map_stats st = {.sz = sizeof(st)};
	struct shmkit_obj_info oi;
	struct shmkit_heap *h;
	struct shmkit_map *m;
	char *obj;

	if (!seg)
		CHECK(shmkit_seg_create_anon(SEG_BYTES, NULL, &seg) == 0);
	memset(seg->data, 0, seg->data_size);
	memset((char *)seg->hdr->dir, 0, sizeof(seg->hdr->dir));
	store_relaxed(&seg->hdr->heap_init, 0);
	CHECK(shmkit_heap_open(seg, &ho, &h) == 0);
	CHECK(shmkit_map_open(h, "m", &mo, &m) == 1);
	CHECK(shmkit_obj_find(h, "m", &oi) == 0);
	obj = shmkit_heap_ptr(h, oi.off);
	for (size_t p = 0; p + 8 <= size; p += 8) {
		const uint8_t *s = data + p;
		uint32_t v, w = (uint32_t)s[1] | (uint32_t)s[2] << 8;
		char key[20], val[40];
		size_t klen = s[3] % 18, vlen = (size_t)(s[3] >> 3) % 34;
		int rc, n = 0;

		memcpy(&v, s + 4, 4);
		memset(key, 'a' + (int)(v % 7), sizeof(key));
		memset(val, 'v', sizeof(val));
		switch (s[0] % 10) {
		case 0:
			CHECK(ok_rc(shmkit_map_put(m, key, klen, val, vlen,
						   s[1] & 1)));
			break;
		case 1:
			rc = shmkit_map_get(m, key, klen, val, sizeof(val));
			CHECK(ok_rc(rc) && rc <= 32);
			break;
		case 2:
			CHECK(ok_rc(shmkit_map_del(m, key, klen)));
			break;
		case 3:
			CHECK(ok_rc(shmkit_map_cas(m, key, klen, val, vlen, val,
						   vlen / 2)));
			break;
		case 4:
			CHECK(ok_rc(shmkit_map_add(m, key, klen, (int32_t)v,
						   NULL)));
			break;
		case 5: { /* hostile write into the map object */
			uint64_t at = (w & ~3u) % (oi.size & ~3ull);

			memcpy(obj + at, &v, 4);
			break;
		}
		case 6:
			CHECK(ok_rc(shmkit_map_foreach(m, each, &n)));
			CHECK(n <= 48 + 4);
			break;
		case 7: {
			struct shmkit_map_ref ref;
			const void *ptr;

			rc = shmkit_map_get_ref(m, key, klen, &ptr, &ref);
			CHECK(ok_rc(rc) && rc <= 32);
			if (rc >= 0) {
				CHECK((const char *)ptr >= obj &&
				      (const char *)ptr + rc <= obj + oi.size);
				CHECK(ok_rc(shmkit_map_ref_valid(m, &ref)));
			}
			break;
		}
		case 8:
			rc = shmkit_map_check(m);
			CHECK(ok_rc(rc));
			if (rc == 0) {
				CHECK(shmkit_map_stats(m, &st) == 0);
				CHECK(st.count <= 48);
			}
			break;
		default: { /* a second handle re-validates the header */
			struct shmkit_map *m2;

			rc = shmkit_map_open(h, "m", NULL, &m2);
			CHECK(ok_rc(rc));
			if (rc >= 0)
				shmkit_map_close(m2);
			break;
		}
		}
	}
	CHECK(ok_rc(shmkit_map_check(m)));
	shmkit_map_close(m);
	shmkit_heap_close(h);
	return 0;
}

#ifndef SHMKIT_LIBFUZZER
#include "fuzz_replay.h"

int main(int argc, char **argv)
{
	return fuzz_replay_main(argc, argv, "map", 0);
}
#endif
