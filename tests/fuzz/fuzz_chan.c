/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for a channel's shared state (header, lanes, records)
 * as seen by a producer and a consumer whose peer is hostile: each input
 * is a program of 8-byte steps run on a fresh channel; steps send,
 * reserve/commit, batch, receive, peek/release, reopen either side (the
 * consumer's takeover reads the lanes' indices, marks and progress), and
 * overwrite any 32-bit word of the channel (lane indices, marks, wake-up
 * words, record words, the header). Every call must return a documented
 * value without waiting, never crash or read out of bounds, and a message
 * handed out must fit its buffer and the channel's maximum; until the
 * first hostile write, messages must come back exactly, in order. Without
 * -fsanitize=fuzzer main() replays files or the seed corpus
 * (tests/chaos/fuzz_chan_replay.c).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <shmkit.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RING 4096u
#define MAXMSG 1000u
#define MAXSEQ 0x7fffffffu

#define CHECK(x)                                                               \
	do {                                                                   \
		if (!(x)) {                                                    \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #x);                                 \
			abort();                                               \
		}                                                              \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int ok_rc(int rc)
{
	return rc >= 0 || rc == -EAGAIN || rc == -ETIMEDOUT || rc == -EBADMSG ||
	       rc == -EPIPE || rc == -ECONNRESET || rc == -EMSGSIZE ||
	       rc == -EBUSY || rc == -EINVAL || rc == -EPROTO ||
	       rc == -ENOTRECOVERABLE;
}

/* What the model of an honest channel expects next. */
struct model {
	int hostile;	   /* a hostile write happened: content unchecked */
	uint32_t next_out; /* seq of the next message sent */
	uint32_t next_in;  /* seq of the next message expected */
};

static size_t fill(unsigned char *m, uint32_t seq, size_t len)
{
	if (len < 4)
		len = 4;
	memcpy(m, &seq, 4);
	for (size_t i = 4; i < len; i++)
		m[i] = (unsigned char)(seq * 7 + i);
	return len;
}

/* A message handed to the consumer: bounds always, content if honest. */
static void got(struct model *md, const unsigned char *m, int len, size_t cap,
		uint32_t fl)
{
	uint32_t seq;

	CHECK(len >= 0 && (size_t)len <= cap && len <= (int)MAXMSG);
	if (md->hostile)
		return;
	CHECK(len >= 4);
	memcpy(&seq, m, 4);
	if (fl & SHMKIT_CHAN_REDELIVERED) {
		/* A peek never released by a consumer that went away. */
		CHECK(seq < md->next_in || seq == md->next_in);
		if (seq < md->next_in)
			return;
	}
	CHECK(seq == md->next_in);
	for (int i = 4; i < len; i++)
		CHECK(m[i] == (unsigned char)(seq * 7 + (uint32_t)i));
	md->next_in++;
}

/* Everything the channel's segment holds, for hostile writes. */
static unsigned char *chan_bytes(const char *name, size_t *size)
{
	struct shmkit_seg *s;
	static struct shmkit_seg *keep;

	shmkit_seg_close(keep);
	keep = NULL;
	if (shmkit_seg_open(name, NULL, &s) < 0)
		return NULL;
	keep = s;
	*size = shmkit_seg_size(s);
	return shmkit_seg_base(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char m[MAXMSG + 8], bb[4][MAXMSG];
	static unsigned n;
	struct shmkit_chan_opts o = {.sz = sizeof(o),
				     .capacity_bytes = RING,
				     .max_msg_bytes = MAXMSG,
				     .max_producers = 2,
				     .open_timeout_ns = 1000000};
	struct shmkit_chan *p = NULL, *c = NULL, *p2 = NULL;
	struct model md = {0};
	unsigned char *raw;
	size_t raw_size = 0;
	char name[64];
	int rc;

	snprintf(name, sizeof(name), "shmkit-fuzz-chan-%d-%u", (int)getpid(),
		 n++);
	CHECK(shmkit_chan_create(name, &o, SHMKIT_CHAN_PRODUCER, &p) == 0);
	CHECK(shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, &o, &c) == 0);
	raw = chan_bytes(name, &raw_size);
	CHECK(raw != NULL);
	/* The name is not needed any more (reopens below need it: it is
	 * removed at the end). */
	for (size_t i = 0; i + 8 <= size; i += 8) {
		const uint8_t *s = data + i;
		uint32_t v, w = (uint32_t)s[1] | (uint32_t)s[2] << 8 |
				(uint32_t)s[3] << 16;
		uint32_t fl = 0;
		const void *ptr;
		void *wp;

		memcpy(&v, s + 4, 4);
		switch (s[0] % 12) {
		case 0: /* send */
			if (!p)
				break;
			rc = shmkit_chan_send(
				p, m, fill(m, md.next_out, v % MAXMSG), 0);
			CHECK(ok_rc(rc));
			if (rc == 0)
				md.next_out++;
			break;
		case 1: { /* reserve, write, commit (maybe less) */
			size_t len = 4 + v % (MAXMSG - 4), l2;

			if (!p)
				break;
			rc = shmkit_chan_reserve(p, len, &wp, 0);
			CHECK(ok_rc(rc));
			if (rc < 0)
				break;
			l2 = 4 + (w % (len - 3));
			if (l2 > len)
				l2 = len;
			fill(wp, md.next_out, l2);
			CHECK(shmkit_chan_commit(p, l2) == 0);
			md.next_out++;
			break;
		}
		case 2: { /* a batch of up to three */
			struct shmkit_chan_msg b[3];
			unsigned k = 1 + w % 3;

			if (!p)
				break;
			for (unsigned j = 0; j < k; j++) {
				b[j].buf = bb[j];
				b[j].len = fill(bb[j], md.next_out + j,
						(v >> (8 * j)) % 400);
			}
			rc = shmkit_chan_send_batch(p, b, k, 0);
			CHECK(ok_rc(rc));
			CHECK(rc <= (int)k);
			if (rc > 0)
				md.next_out += (uint32_t)rc;
			break;
		}
		case 3: { /* receive into a buffer of some size */
			size_t cap = v % (MAXMSG + 8);

			if (!c)
				break;
			rc = shmkit_chan_recv(c, m, cap, &fl, 0);
			CHECK(ok_rc(rc));
			if (rc >= 0)
				got(&md, m, rc, cap, fl);
			break;
		}
		case 4: /* peek, maybe release */
			if (!c)
				break;
			rc = shmkit_chan_peek(c, &ptr, &fl, 0);
			CHECK(ok_rc(rc));
			if (rc >= 0) {
				got(&md, ptr, rc, MAXMSG, fl);
				if (w & 1)
					CHECK(shmkit_chan_release(c) == 0);
				else if (!md.hostile)
					md.next_in--; /* stays queued */
			}
			break;
		case 5: { /* batch receive */
			struct shmkit_chan_msg b[4];

			if (!c)
				break;
			for (int j = 0; j < 4; j++) {
				b[j].buf = bb[j];
				b[j].cap = (v >> (8 * j)) % MAXMSG;
			}
			rc = shmkit_chan_recv_batch(c, b, 1 + w % 4, 0);
			CHECK(ok_rc(rc));
			for (int j = 0; j < rc; j++)
				got(&md, b[j].buf, (int)b[j].len, b[j].cap,
				    b[j].flags);
			break;
		}
		case 6: /* hostile: any word of the channel */
		case 7:
			if (raw_size < 4)
				break;
			memcpy(raw + ((size_t)w * 4 + (s[0] & 0x30)) %
					       (raw_size & ~(size_t)3),
			       &v, 4);
			md.hostile = 1;
			break;
		case 8: /* hostile: a word of the lanes (indices, marks) */
			if (raw_size < 256 + 128 * 4)
				break;
			memcpy(raw + 256 + (w % 128) * 4, &v, 4);
			md.hostile = 1;
			break;
		case 9: /* the consumer goes and comes back (takeover) */
			shmkit_chan_close(c);
			c = NULL;
			rc = shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, &o,
					      &c);
			CHECK(ok_rc(rc));
			if (rc < 0)
				c = NULL;
			break;
		case 10: /* the producer goes and comes back; a second one */
			if (w & 1) {
				shmkit_chan_close(p2);
				p2 = NULL;
				rc = shmkit_chan_open(
					name, SHMKIT_CHAN_PRODUCER, &o, &p2);
				CHECK(ok_rc(rc));
				if (rc == 0)
					md.hostile = 1; /* two streams */
				else
					p2 = NULL;
				break;
			}
			shmkit_chan_close(p);
			p = NULL;
			rc = shmkit_chan_open(name, SHMKIT_CHAN_PRODUCER, &o,
					      &p);
			CHECK(ok_rc(rc));
			if (rc < 0)
				p = NULL;
			break;
		default: { /* the rest of the API, without waiting */
			struct shmkit_chan_info in = {.sz = sizeof(in)};
			struct shmkit_chan *cs[1] = {c};
			uint64_t ready;

			if (p) {
				CHECK(ok_rc(shmkit_chan_flush(p, 0)));
				CHECK(ok_rc(shmkit_chan_info(p, &in)));
			}
			if (c) {
				CHECK(ok_rc(shmkit_chan_peers(c)));
				rc = shmkit_chan_select(cs, 1, &ready, 0);
				CHECK(ok_rc(rc));
			}
			break;
		}
		}
	}
	/* An honest channel gives back everything that was sent. */
	if (!md.hostile && c) {
		for (;;) {
			uint32_t fl = 0;

			rc = shmkit_chan_recv(c, m, sizeof(m), &fl, 0);
			if (rc < 0)
				break;
			got(&md, m, rc, sizeof(m), fl);
		}
		CHECK(rc == -EAGAIN || rc == -EPIPE);
		CHECK(md.next_in == md.next_out);
	}
	shmkit_chan_close(p);
	shmkit_chan_close(p2);
	shmkit_chan_close(c);
	chan_bytes(NULL, &raw_size); /* drops the raw mapping */
	shmkit_chan_unlink(name);
	return 0;
}

#ifndef SHMKIT_LIBFUZZER
#include "fuzz_replay.h"

int main(int argc, char **argv)
{
	return fuzz_replay_main(argc, argv, "chan", 0);
}
#endif
