/* SPDX-License-Identifier: MIT */
/*
 * Channels: the shared format of a channel (header, producer lanes, record
 * framing) and the process-private handle. A channel occupies the data area
 * of its own named segment; every byte another process can see is declared
 * here and pinned with _Static_assert (see docs/ARCHITECTURE.md).
 */
#ifndef SHMKIT_CHAN_H
#define SHMKIT_CHAN_H

#include "atomics.h"
#include "layout.h"
#include "platform.h"
#include "shmkit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* "SHMKCHAN" read as a little-endian u64. */
#define SHMKIT_CHAN_MAGIC 0x4e4148434b4d4853ull
/* Format of the structures below; independent of the segment layout. */
#define SHMKIT_CHAN_FORMAT 7u
#define SHMKIT_CHAN_READY 0x59444552u /* hdr.state, release-stored last */

/*
 * lane.flags: this producer commits without a fence and relies on the
 * waiters' membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) (see chan.c).
 */
#define SHMKIT_LANE_ASYM 0x1u

/* Lane and consumer state hints (lane.state, hdr.cons_state). */
#define SHMKIT_CHAN_PEER_NONE 0u     /* never attached */
#define SHMKIT_CHAN_PEER_ATTACHED 1u /* attached (alive iff lock held) */
#define SHMKIT_CHAN_PEER_CLOSED 2u   /* detached cleanly */

#define SHMKIT_CHAN_MAX_LANES 64u
#define SHMKIT_CHAN_MIN_RING 4096ull
#define SHMKIT_CHAN_MAX_RING (1ull << 30)

/*
 * Record framing inside a lane's ring. Every record starts on an 8-byte
 * boundary with an 8-byte header {u32 len; u32 info}; info is TAG | kind.
 * A message's payload follows the header and is padded to 8 bytes. A
 * message never wraps: when it does not fit before the end of the ring the
 * producer first writes a PAD record covering the rest of the ring (its len
 * is the bytes after its own header) and puts the message at offset 0.
 *
 * The record word is the commit (format 5): the producer stores the first
 * record word of a send last, with release, after clearing the word where
 * its next record will start, so a word of zero at the consumer's head
 * means "nothing yet" and the consumer polls the line the message arrives
 * in, not the tail (see prod_commit() in chan.c).
 */
#define SHMKIT_REC_HDR 8u
#define SHMKIT_REC_TAG 0xc4a50000u
#define SHMKIT_REC_MSG 1u
#define SHMKIT_REC_PAD 2u

/*
 * Channel header, at the start of the segment's data area. Line 0 is
 * written once by the creator before state = READY and read-only after.
 */
struct shmkit_chan_hdr {
	uint64_t magic;		/* 0x00 SHMKIT_CHAN_MAGIC */
	uint32_t format;	/* 0x08 SHMKIT_CHAN_FORMAT */
	_Atomic uint32_t state; /* 0x0c w: creator (release, last) */
	uint32_t nlanes;	/* 0x10 producer lanes, 1..64 */
	uint32_t flags;		/* 0x14 zero (reserved) */
	uint64_t ring_size;	/* 0x18 bytes per lane, power of two */
	uint64_t max_msg;	/* 0x20 largest message, bytes */
	uint64_t lane_off;	/* 0x28 lanes[0], bytes from this header */
	uint64_t ring_off;   /* 0x30 ring of lane 0, bytes from this header */
	uint64_t total_size; /* 0x38 bytes used from this header */
	/* Line 1: consumer wake-up. */
	_Atomic uint32_t rx_seq;      /* 0x40 futex word. w: producers and
				       * closers (fetch_add, release) when
				       * rx_sleepers != 0; r: consumer-side
				       * waiters (acquire) before sleeping */
	_Atomic uint32_t rx_sleepers; /* 0x44 consumer-side threads asleep or
				       * about to sleep. w: consumer (+/-);
				       * r: producers after each commit */
	uint8_t pad1[56];
	/* Line 2: the consumer's identity (cold). Its liveness token is the
	 * OFD lock byte SHMKIT_LOCK_OBJ(segment offset of cons_state). */
	_Atomic uint32_t cons_state;  /* 0x80 SHMKIT_CHAN_PEER_*. w: consumer
				       * (release); r: producers, hint only */
	_Atomic uint32_t cons_claims; /* 0x84 consumers ever attached.
				       * w: consumer at attach; r: producers */
	_Atomic int32_t cons_pid;     /* 0x88 informational (ls, stat) */
	_Atomic int32_t cons_cpu;     /* 0x8c 1 + the CPU the consumer last
				       * waited on, 0 unknown; a hint.
				       * w: consumer when it changes; r:
				       * producers before spinning */
	uint8_t pad2[48];
	uint8_t reserved[64]; /* 0xc0 zero */
};

/*
 * One producer lane: a single-producer single-consumer ring. Counters are
 * monotonic byte counts (never wrap in practice: 2^64 bytes); the ring
 * position is counter & (ring_size - 1). The producer owns line 0 and line
 * 2, the consumer line 1. A lane's liveness token is the OFD lock byte
 * SHMKIT_LOCK_OBJ(segment offset of the lane).
 */
struct shmkit_chan_lane {
	/* Line 0: producer, hot: written once per commit. */
	_Atomic uint64_t tail; /* 0x00 bytes committed, stored after the
				    * record words that commit them (so it
				    * may lag them by one commit). w:
				    * producer (release); r: the slow
				    * paths (acquire) */
	uint8_t pad0[56];
	/* Line 1: consumer, read by the producer when it runs out of room
	 * (so written only every so often, see cons_publish()). */
	_Atomic uint64_t head;	 /* 0x40 bytes the producer may reuse.
				  * w: consumer (release); r: producer
				  * (acquire) */
	_Atomic uint32_t tx_seq; /* 0x48 futex word. w: consumer (fetch_add,
				  * release) to wake the producer; r:
				  * producer (acquire) before sleeping */
	uint8_t pad1[52];
	/* Line 2: producer, cold (written only when it waits or attaches),
	 * so that the consumer's look at tx_sleep on every release does not
	 * pull the line the producer writes tail into. */
	_Atomic uint32_t state;	   /* 0x80 SHMKIT_CHAN_PEER_*. w: producer
				    * (release); r: consumer, hint only */
	_Atomic uint32_t claims;   /* 0x84 producers ever attached here.
				    * w: producer at claim; r: consumer */
	_Atomic int32_t pid;	   /* 0x88 informational */
	_Atomic uint32_t tx_sleep; /* 0x8c 1 while the producer waits for
				    * space. w: producer; r: consumer */
	_Atomic uint32_t flags;	   /* 0x90 SHMKIT_LANE_*. w: producer at
				    * claim (before state, release); r:
				    * consumer-side waiters */
	_Atomic int32_t cpu;	   /* 0x94 1 + the CPU of the producer's
				    * last send, 0 unknown; a hint. w:
				    * producer when it changes; r: consumer
				    * before and while spinning */
	/* 0x98 claims of a producer that died here and whose lane a later
	 * producer took before the consumer saw the death (format 7); 0
	 * none. w: the later producer at claim (release, after lost_end);
	 * r: consumer (acquire) */
	_Atomic uint32_t lost;
	uint32_t pad2a;
	/* 0xa0 where that producer's committed messages end (the later
	 * producer's first tail). w/r: as lost */
	_Atomic uint64_t lost_end;
	uint8_t pad2[24];
	/* Line 3: the consumer's progress, written per message but read
	 * only by a consumer taking over after a crash.
	 *
	 * 0xc0 end of the messages processed (a consumer's next call
	 * confirms the last one). w: consumer; r: the next consumer */
	_Atomic uint64_t done;
	/* 0xc8 end of the messages handed out: a crash redelivers [done,
	 * mark), flagged. w: consumer; r: the next consumer */
	_Atomic uint64_t mark;
	/* 0xd0 claims of the last producer whose death a consumer reported
	 * (once per death, across consumers; format 6). w: consumer; r:
	 * the next consumer */
	_Atomic uint32_t dead_ack;
	/* 0xd4 the lane's `lost` value as of the last report on this lane
	 * (format 7): a lost death equal to it, or to dead_ack, was
	 * reported. w: consumer; r: the next consumer */
	_Atomic uint32_t lost_ack;
	uint8_t pad3[40];
};

_Static_assert(sizeof(struct shmkit_chan_hdr) == 256, "chan hdr size");
_Static_assert(offsetof(struct shmkit_chan_hdr, state) == 0x0c, "chan hdr");
_Static_assert(offsetof(struct shmkit_chan_hdr, rx_seq) == 0x40, "chan hdr");
_Static_assert(offsetof(struct shmkit_chan_hdr, cons_state) == 0x80,
	       "chan hdr");
_Static_assert(sizeof(struct shmkit_chan_lane) == 256, "lane size");
_Static_assert(offsetof(struct shmkit_chan_lane, head) == 0x40, "lane");
_Static_assert(offsetof(struct shmkit_chan_lane, tx_seq) == 0x48, "lane");
_Static_assert(offsetof(struct shmkit_chan_lane, state) == 0x80, "lane");
_Static_assert(offsetof(struct shmkit_chan_lane, tx_sleep) == 0x8c, "lane");
_Static_assert(offsetof(struct shmkit_chan_lane, dead_ack) == 0xd0, "lane");
_Static_assert(offsetof(struct shmkit_chan_lane, lost_ack) == 0xd4, "lane");
_Static_assert(offsetof(struct shmkit_chan_lane, flags) == 0x90, "lane");
_Static_assert(offsetof(struct shmkit_chan_lane, cpu) == 0x94, "lane");
_Static_assert(offsetof(struct shmkit_chan_hdr, cons_cpu) == 0x8c, "chan hdr");
_Static_assert(offsetof(struct shmkit_chan_lane, lost) == 0x98, "lane");
_Static_assert(offsetof(struct shmkit_chan_lane, lost_end) == 0xa0, "lane");
_Static_assert(offsetof(struct shmkit_chan_lane, done) == 0xc0, "lane");
_Static_assert(offsetof(struct shmkit_chan_lane, mark) == 0xc8, "lane");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "lane counters lock-free");

/* Consumer-private view of one lane. */
struct shmkit__cons_lane {
	uint64_t head;	    /* next record to read (private, trusted) */
	uint64_t done;	    /* confirmed: as stored in lane.done */
	uint64_t pub;	    /* as last published in lane.head */
	uint64_t unchecked; /* bytes published since the last fenced check
			     * of tx_sleep */
	uint64_t redeliver; /* messages starting before this were handed
			     * out by a consumer that died: flag them */
	/* Constant after attach: the lane, its ring, 1 << its index. */
	struct shmkit_chan_lane *lane;
	const unsigned char *ring;
	uint64_t bit;
};

struct shmkit_chan {
	struct shmkit_seg *seg;
	struct shmkit_chan_hdr *hdr;
	struct shmkit_chan_lane *lanes;
	unsigned char *rings; /* ring of lane 0; lane i at + i * ring_size */
	uint64_t ring_size;   /* validated copies of the geometry */
	uint64_t mask;
	uint64_t max_msg;
	uint32_t nlanes;
	enum shmkit_chan_role role;
	int fd;		       /* the segment's descriptor (OFD locks) */
	int64_t lock_base;     /* segment offsets of lanes[0] and of */
	int64_t lock_cons;     /* hdr->cons_state: liveness lock bytes */
	unsigned fork_gen;     /* fork generation at open */
	unsigned commits;      /* producer: commits (paces the CPU hint) */
	uint64_t spin_ns;      /* adaptive spin budget */
	long nivcsw;	       /* involuntary switches at the last look */
	uint64_t live_next_ns; /* earliest next liveness check */
	int asym;	       /* producer: commits without a fence */
	int32_t cpu;	       /* 1 + CPU last stored in lane.cpu/cons_cpu */
	char *name;
	/* Producer. */
	int lane;
	struct shmkit_chan_lane *pl;
	unsigned char *pring;
	uint64_t tail;	  /* private tail (trusted) */
	uint64_t head;	  /* last validated head seen */
	uint64_t res_pos; /* reservation: record counter position */
	uint64_t res_adv; /* bytes (pad included) it may commit */
	uint64_t res_cap; /* payload capacity */
	int res_active;
	/* Consumer. */
	struct shmkit__cons_lane *cl;
	unsigned cur;	   /* round-robin position */
	unsigned burst;	   /* messages taken from cur in a row */
	uint64_t deferred; /* lanes whose last message awaits confirmation */
	uint64_t pub_step; /* confirmed bytes that publish head: ring / 16 */
	int peeked;	   /* lane + 1 of an outstanding peek */
	uint64_t peek_end;
	/* Readiness descriptor (consumer). */
	int efd;
	int thr_started;
	pthread_t thr;
	pthread_mutex_t fd_lock;   /* orders the helper's signal and re-arm */
	_Atomic uint32_t fd_armed; /* private futex word: helper may signal */
	_Atomic uint32_t fd_stop;
	_Atomic uint32_t fd_eos; /* helper saw end of stream or a death */
	/* Per lane: the claim count whose producer's death was reported
	 * (-ECONNRESET). w: consumer thread; r: also the helper thread. */
	_Atomic uint32_t dead_ack[SHMKIT_CHAN_MAX_LANES];
	/* Per lane: lane.lost as of the last report (see lane.lost_ack). */
	_Atomic uint32_t lost_ack[SHMKIT_CHAN_MAX_LANES];
	int reset_pending; /* a death acknowledged, not yet reported */
};

/* Internal, shared by chan.c and chan_wait.c. */
static inline void shmkit__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* 0, or -EINVAL (NULL / wrong role), -ECHILD (handle from before fork). */
int shmkit__chan_check(const struct shmkit_chan *ch,
		       enum shmkit_chan_role role);
/* Absolute deadline for a timeout (UINT64_MAX: none). */
uint64_t shmkit__chan_deadline(int64_t timeout_ns);
/* Time to sleep now: min(deadline - now, one slice); 0 when past. */
uint64_t shmkit__chan_slice(uint64_t deadline);
int64_t shmkit__chan_lane_lock(const struct shmkit_chan *ch, unsigned i);
/* Wake every consumer-side sleeper of the channel. */
void shmkit__chan_wake_rx(struct shmkit_chan_hdr *h);
/* Producer: 0, -EPIPE (consumer closed), -ECONNRESET (consumer died). */
int shmkit__chan_cons_gone(struct shmkit_chan *ch);
/* A producer death to report: its lane, its claim count, and the lane's
 * `lost` word as read then (acknowledged with it). */
struct shmkit__death {
	unsigned lane;
	uint32_t claims;
	uint32_t lost;
};
/* End of stream with heads[i * stride bytes] as the consumer's heads;
 * probe: ask the kernel about lanes not marked CLOSED (else: alive).
 * 1 end, 0 not, -ECONNRESET (a death to report, in *d), or -EBADMSG. */
int shmkit__chan_eos(struct shmkit_chan *ch, const uint64_t *heads,
		     size_t stride, int probe, struct shmkit__death *d);
/* Same with the consumer handle's own heads, from its own thread; probes
 * at most every few milliseconds (or when the readiness helper saw
 * something). A death found is acknowledged and stays pending (returned
 * again) until recv reports it. */
int shmkit__chan_cons_eos(struct shmkit_chan *ch);
/* Consumer: any lane non-empty at the private heads. Lane i non-empty at
 * head: its record word there is set, or its tail is past head. */
int shmkit__chan_any(struct shmkit_chan *ch);
int shmkit__chan_lane_has(const struct shmkit_chan *ch, unsigned i,
			  uint64_t head);
/* Consumer: publish what the last call handed out, then any(). */
int shmkit__chan_ready(struct shmkit_chan *ch);
/*
 * Waiter side of the wake-up handshake, after announcing itself in
 * rx_sleepers of n channels and before re-checking their tails: a seq_cst
 * fence, plus one process-wide barrier when a producer of any of them
 * commits without a fence. Returns slice_ns, or less if that barrier was
 * needed and failed.
 */
uint64_t shmkit__chan_rx_barrier(struct shmkit_chan *const *chans, unsigned n,
				 uint64_t slice_ns);
/*
 * A waiter woken twice in a row, each time within this long of going to
 * sleep, with nothing to show for it (peers that do not stay, or a process
 * that keeps bumping the words it watches and waking it), naps this long
 * before it looks again: its CPU, and the barrier a consumer pays before
 * each sleep, stay bounded whatever the others do. A wake-up that comes
 * later, or a sleep that runs out (even a short one), starts the count
 * again. A producer counts a wake-up as fruitless only if the consumer's
 * head did not move (a consumer that frees too little still wakes it), so
 * a writer that also moves head back and forth is not bounded there; it
 * can corrupt the stream anyway. Bounds every wait: wait_peer(), the
 * receive calls, select (for the whole set, so one noisy channel delays
 * the others' messages by up to a nap), the readiness helper, a producer
 * waiting for room and flush.
 */
#define SHMKIT__NAP_NS 1000000ull
/* If the count says so, nap (never past the remaining slice) and return
 * 1: the caller then looks again instead of sleeping. */
static inline int shmkit__chan_nap(unsigned *fruitless, uint64_t slice)
{
	if (*fruitless < 2)
		return 0;
	shmkit__sleep_ns(slice < SHMKIT__NAP_NS ? slice : SHMKIT__NAP_NS);
	*fruitless = 1;
	return 1;
}
/* After a sleep that began at t0: the next fruitless count. */
static inline unsigned shmkit__fruitless(unsigned n, int woken, uint64_t t0,
					 uint64_t now)
{
	return woken && now - t0 < SHMKIT__NAP_NS ? n + 1 : 0;
}
/* One announced sleep on rx_seq; 1 if something was there instead. */
int shmkit__chan_sleep_rx(struct shmkit_chan *ch, uint64_t slice_ns,
			  int *woken);
/* Readiness descriptor (chan_wait.c): re-arm after -EAGAIN; stop. */
void shmkit__chan_fd_rearm(struct shmkit_chan *ch);
/* Consumer: restore every shared head to what it last published. */
void shmkit__chan_republish(struct shmkit_chan *ch);
void shmkit__chan_fd_stop(struct shmkit_chan *ch);

#endif /* SHMKIT_CHAN_H */
