/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory format: every byte another process can see is declared
 * here, pinned with _Static_assert. Any change to a struct in this file
 * changes SHMKIT_LAYOUT_VERSION. docs/ARCHITECTURE.md mirrors it byte by
 * byte.
 */
#ifndef SHMKIT_LAYOUT_H
#define SHMKIT_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SHMKIT_LAYOUT_VERSION 1u

/* The bytes "SHMKITSG" read as a little-endian u64. */
#define SHMKIT_MAGIC 0x475354494b4d4853ull

/* init_state values. Anything else is corrupt. */
#define SHMKIT_INIT_BUILDING 0x444c4955u /* creator at work */
#define SHMKIT_INIT_READY 0x59444552u	 /* published, release-stored last */

/* hdr.flags */
#define SHMKIT_HF_SCOPED 0x1u
#define SHMKIT_HF_KIND_SHIFT 8 /* enum shmkit_seg_kind in bits 8..15 */
#define SHMKIT_HF_KNOWN (SHMKIT_HF_SCOPED | (0xffu << SHMKIT_HF_KIND_SHIFT))

#define SHMKIT_PAGE 4096u
#define SHMKIT_HDR_SIZE 8192u /* header pages; the data area follows */
#define SHMKIT_NSLOTS 64u     /* attachment slots (= SHMKIT_SEG_MAX_USERS) */
#define SHMKIT_DIR_CAP 64u    /* named-object directory entries */
#define SHMKIT_DIR_NAME 48u   /* bytes of a name, NUL-terminated */

/*
 * Attachment slot. Ownership of slot i is an OFD write lock on byte
 * SHMKIT_LOCK_SLOT0 + i of the segment's file, so the kernel releases it
 * when the owner dies; the fields below are only a description written by
 * the lock holder after it takes the lock and read by inspectors (stat/ls)
 * only while the lock is held by someone. Relaxed atomics: they are
 * informational, torn or stale values mislead a listing and nothing else.
 */
struct shmkit_slot {
	_Atomic int32_t pid;	    /* w: owner at attach; r: inspectors */
	_Atomic uint32_t uid;	    /* w: owner at attach; r: inspectors */
	_Atomic uint64_t attach_ns; /* w: owner (CLOCK_REALTIME ns) */
};

/*
 * Named-object directory entry (the protocol is obj.c's; the segment layer
 * only reserves, zeroes and counts them). Every field is written under the
 * heap's directory mutex (struct shmkit__heap.dir_lock, in the data area)
 * and read under it, except state, which inspectors read without it. state
 * is 0 when free, BUILDING while the creator initialises the object (the
 * repairer of a dead creator frees it), LIVE once complete (release
 * store).
 */
#define SHMKIT_DIRENT_BUILDING 0x444c4942u /* "BILD" */
#define SHMKIT_DIRENT_LIVE 0x4556494cu	   /* "LIVE" */

struct shmkit_dirent {
	_Atomic uint32_t state;	    /* w: under the dir mutex; 0 free */
	uint32_t kind;		    /* object kind (shmkit_obj_create) */
	uint64_t offset;	    /* payload offset from the data area */
	uint64_t size;		    /* bytes asked for at creation */
	char name[SHMKIT_DIR_NAME]; /* NUL-terminated */
};

/*
 * Segment header at offset 0. Written once by the creator before
 * init_state = READY (release); read-only after that except the slots,
 * the directory and the heap fields (heap_init, heap_off, heap_size),
 * which heap.c writes once when it formats the heap. Readers load every
 * field once into a local and validate it against the file size from
 * fstat (see seg_validate()).
 */
struct shmkit_hdr {
	uint64_t magic;		     /* 0x00 SHMKIT_MAGIC */
	uint32_t layout_version;     /* 0x08 SHMKIT_LAYOUT_VERSION */
	uint32_t hdr_size;	     /* 0x0c bytes; = data_off */
	uint64_t total_size;	     /* 0x10 file size at creation, bytes */
	uint32_t flags;		     /* 0x18 SHMKIT_HF_* */
	uint32_t creator_uid;	     /* 0x1c */
	int32_t creator_pid;	     /* 0x20 */
	_Atomic uint32_t init_state; /* 0x24 w: creator, release, last */
	uint64_t created_ns;	     /* 0x28 CLOCK_REALTIME ns */
	uint64_t data_off;	     /* 0x30 bytes from segment start */
	uint64_t data_size;	     /* 0x38 usable bytes */
	uint32_t slot_off;	     /* 0x40 offset of slots[] */
	uint32_t slot_cap;	     /* 0x44 SHMKIT_NSLOTS */
	uint32_t dir_off;	     /* 0x48 offset of dir[] */
	uint32_t dir_cap;	     /* 0x4c SHMKIT_DIR_CAP */
	/* 0x50 w: heap.c: 0 no heap; 1 READY (release, after heap_off and
	 * heap_size); else bit 63 | start << 32 | pid of the process
	 * formatting it (a dead one is taken over). r: heap openers. */
	_Atomic uint64_t heap_init;
	uint64_t heap_off;    /* 0x58 data-area offset of the heap */
	uint64_t heap_size;   /* 0x60 heap bytes */
	uint8_t reserved[24]; /* 0x68 zero */
	struct shmkit_slot slots[SHMKIT_NSLOTS];  /* 0x80 */
	struct shmkit_dirent dir[SHMKIT_DIR_CAP]; /* 0x480 */
};

_Static_assert(sizeof(struct shmkit_slot) == 16, "slot size");
_Static_assert(sizeof(struct shmkit_dirent) == 72, "dirent size");
_Static_assert(offsetof(struct shmkit_hdr, init_state) == 0x24, "hdr");
_Static_assert(offsetof(struct shmkit_hdr, data_off) == 0x30, "hdr");
_Static_assert(offsetof(struct shmkit_hdr, heap_init) == 0x50, "hdr");
_Static_assert(offsetof(struct shmkit_hdr, heap_off) == 0x58, "hdr");
_Static_assert(offsetof(struct shmkit_hdr, heap_size) == 0x60, "hdr");
_Static_assert(offsetof(struct shmkit_hdr, slots) == 0x80, "hdr");
_Static_assert(offsetof(struct shmkit_hdr, dir) == 0x480, "hdr");
_Static_assert(sizeof(struct shmkit_hdr) == 0x1680, "hdr size");
_Static_assert(sizeof(struct shmkit_hdr) <= SHMKIT_HDR_SIZE, "hdr fits");
_Static_assert(SHMKIT_HDR_SIZE % SHMKIT_PAGE == 0, "data area page-aligned");
_Static_assert(alignof(struct shmkit_hdr) == 8, "hdr alignment");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "shared atomics must be lock-free");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "shared atomics lock-free");

/*
 * OFD lock bytes (fcntl F_OFD_SETLK), far past any data: locks are
 * advisory and do not touch the bytes. The kernel drops them when the last
 * descriptor of the open file description closes, including on death.
 *   CREATOR  write-locked by the creator until READY (file-backed fallback)
 *   USERS    read-locked by every attached handle; a write lock on it
 *            proves nobody is attached (scoped removal, gc)
 *   SLOT0+i  write-locked by the owner of attachment slot i
 */
#define SHMKIT_LOCK_BASE (1ll << 62)
#define SHMKIT_LOCK_CREATOR (SHMKIT_LOCK_BASE + 0)
#define SHMKIT_LOCK_USERS (SHMKIT_LOCK_BASE + 1)
#define SHMKIT_LOCK_SLOT0 (SHMKIT_LOCK_BASE + 64)
/*
 * Objects inside the segment (mutex owners, channel producers/consumers)
 * that need a kernel-released liveness token use the byte
 * SHMKIT_LOCK_OBJ(off), where off is the byte offset from the segment start
 * of a word the object owns: distinct objects never share a byte.
 */
#define SHMKIT_LOCK_OBJ(off) (SHMKIT_LOCK_BASE + (1ll << 40) + (int64_t)(off))

#endif /* SHMKIT_LAYOUT_H */
