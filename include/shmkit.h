/* SPDX-License-Identifier: MIT */
/*
 * shmkit: inter-process communication through shared memory on Linux.
 * This is the one public header. Every fallible function returns >= 0 on
 * success and a negative errno on failure; errno is never a second channel.
 * The full reference is in the man pages (man/).
 */
#ifndef SHMKIT_H
#define SHMKIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <shmkit/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SHMKIT_BUILDING) && defined(__GNUC__)
#define SHMKIT_API __attribute__((visibility("default")))
#else
#define SHMKIT_API
#endif

/* Library version at run time (the header's is SHMKIT_VERSION_STRING). */
SHMKIT_API const char *shmkit_version(void);
/* Layout version of the shared-memory format this library reads/writes. */
SHMKIT_API uint32_t shmkit_layout_version(void);
/* Human-readable text for a negative return value of any shmkit call. */
SHMKIT_API const char *shmkit_strerror(int err);

/*
 * Segments
 *
 * A segment is a region of shared memory with a shmkit header. Kinds:
 * named (POSIX shared memory, a file in /dev/shm), anonymous (shared with
 * children across fork), memfd (passed over a Unix socket) and file-backed
 * (a regular file; survives restart). All four are mapped the same way and
 * hand out the same handle.
 */
struct shmkit_seg;

enum shmkit_seg_kind {
	SHMKIT_SEG_NAMED = 1,
	SHMKIT_SEG_ANON = 2,
	SHMKIT_SEG_MEMFD = 3,
	SHMKIT_SEG_FILE = 4,
};

/* Option flags (struct shmkit_seg_opts.flags). */
/* Lifetime: removed when the last user detaches (default: persistent). */
#define SHMKIT_SEG_SCOPED (1u << 0)
/* open: accept a segment owned by another user (default: refused). */
#define SHMKIT_SEG_ANY_OWNER (1u << 1)
/* open: map read-only (the caller never writes; liveness still works). */
#define SHMKIT_SEG_RDONLY (1u << 2)

/* Default time an opener waits for a segment to become READY. */
#define SHMKIT_SEG_OPEN_TIMEOUT_NS 1000000000ull
/* Longest name of a named segment, without the terminating NUL. */
#define SHMKIT_SEG_NAME_MAX 200

/*
 * Options for create and open. Set .sz = sizeof(struct shmkit_seg_opts) so
 * that fields can be added later without breaking the ABI; a NULL pointer
 * means all defaults.
 */
struct shmkit_seg_opts {
	size_t sz;
	/* create: permission bits (default 0600, umask ignored).
	 * open: the widest mode accepted (default 0600); a segment whose mode
	 * grants more than this is refused with -EACCES. */
	uint32_t mode;
	uint32_t flags; /* SHMKIT_SEG_* */
	/* open: how long to wait for a segment still being created
	 * (default SHMKIT_SEG_OPEN_TIMEOUT_NS). */
	uint64_t open_timeout_ns;
};

/*
 * Create a named segment with at least size_bytes of usable space. The
 * segment becomes visible under its name only once it is fully initialised:
 * a creator killed at any point leaves either nothing or a READY segment.
 * Space is reserved now, so a full /dev/shm fails here with -ENOSPC.
 * Returns 0, -EINVAL (bad name/size/opts), -EEXIST, -ENOSPC, -EACCES, -ENOMEM.
 */
SHMKIT_API int shmkit_seg_create(const char *name, size_t size_bytes,
				 const struct shmkit_seg_opts *opts,
				 struct shmkit_seg **out);

/*
 * Open an existing named segment and attach to it (the attachment is what
 * shmkit_seg_list() counts, released by the kernel if this process dies).
 * Returns 0, -EINVAL, -ENOENT, -EACCES (owner or mode not as required),
 * -EPROTO (not a shmkit segment of this layout version), -EBADMSG (header
 * inconsistent), -ETIMEDOUT (creator alive but not done within the timeout),
 * -ENOTRECOVERABLE (creator died before finishing; remove it).
 */
SHMKIT_API int shmkit_seg_open(const char *name,
			       const struct shmkit_seg_opts *opts,
			       struct shmkit_seg **out);

/* Remove a named segment's name. Users already attached continue. */
SHMKIT_API int shmkit_seg_unlink(const char *name);

/*
 * Detach and unmap. A scoped segment is removed if this was its last user.
 * Accepts NULL. Any pointer into the segment is invalid afterwards.
 */
SHMKIT_API void shmkit_seg_close(struct shmkit_seg *seg);

/* Anonymous segment: shared with children forked after this call. */
SHMKIT_API int shmkit_seg_create_anon(size_t size_bytes,
				      const struct shmkit_seg_opts *opts,
				      struct shmkit_seg **out);

/*
 * memfd segment, sealed against shrinking and growing so that no holder of
 * the descriptor can truncate it under a peer. debug_name shows in
 * /proc/PID/fd only. Pass it with shmkit_seg_send() over an AF_UNIX socket.
 */
SHMKIT_API int shmkit_seg_create_memfd(const char *debug_name,
				       size_t size_bytes,
				       const struct shmkit_seg_opts *opts,
				       struct shmkit_seg **out);

/* Send a memfd segment's descriptor over a connected AF_UNIX socket. */
SHMKIT_API int shmkit_seg_send(int sock, const struct shmkit_seg *seg);

/*
 * Receive a memfd segment from a connected AF_UNIX socket. The sender's
 * credentials (SO_PEERCRED) must match this process's uid unless
 * SHMKIT_SEG_ANY_OWNER is set; the memfd must carry F_SEAL_SHRINK and
 * F_SEAL_GROW. If peer_pid is not NULL it receives the sender's pid.
 * Returns 0, -EPERM (credentials), -EBADF (no descriptor / not a sealed
 * memfd), -EPROTO, -EBADMSG, -ECONNRESET (peer closed), -ETIMEDOUT.
 */
SHMKIT_API int shmkit_seg_recv(int sock, const struct shmkit_seg_opts *opts,
			       struct shmkit_seg **out, pid_t *peer_pid);

/*
 * File-backed segment at a path; survives restart. create refuses an
 * existing path (-EEXIST) and never follows a symlink.
 */
SHMKIT_API int shmkit_seg_create_file(const char *path, size_t size_bytes,
				      const struct shmkit_seg_opts *opts,
				      struct shmkit_seg **out);
SHMKIT_API int shmkit_seg_open_file(const char *path,
				    const struct shmkit_seg_opts *opts,
				    struct shmkit_seg **out);

/*
 * Write a file-backed segment to stable storage (msync + fsync). On other
 * kinds it is a successful no-op. Returns 0 or -EIO.
 */
SHMKIT_API int shmkit_seg_flush(struct shmkit_seg *seg);

/*
 * The usable area: base address and size in bytes. Valid until close.
 * The area starts on a page boundary and is zero on creation. Two handles
 * of one segment may have different bases: store offsets, not pointers.
 */
SHMKIT_API void *shmkit_seg_base(const struct shmkit_seg *seg);
SHMKIT_API size_t shmkit_seg_size(const struct shmkit_seg *seg);
SHMKIT_API int shmkit_seg_fd(const struct shmkit_seg *seg);
SHMKIT_API enum shmkit_seg_kind shmkit_seg_kind(const struct shmkit_seg *seg);

/*
 * Inspection without attaching (what `shmkit ls` and `stat` use).
 */
enum shmkit_seg_state {
	SHMKIT_STATE_OK = 0,	  /* READY, consistent */
	SHMKIT_STATE_STALE = 1,	  /* scoped and every user died */
	SHMKIT_STATE_INCOMPLETE = 2, /* creator died before READY */
	SHMKIT_STATE_CREATING = 3,   /* creator alive, not READY yet */
	SHMKIT_STATE_CORRUPT = 4,    /* shmkit magic, inconsistent header */
	SHMKIT_STATE_VERSION = 5,    /* shmkit segment, other layout version */
	SHMKIT_STATE_FOREIGN = 6,    /* not a shmkit segment */
};

#define SHMKIT_SEG_MAX_USERS 64 /* attachment slots listed per segment */

struct shmkit_seg_user {
	int32_t pid;	  /* as recorded at attach; alive when listed */
	uint32_t uid;
	uint64_t attach_realtime_ns;
};

struct shmkit_seg_info {
	size_t sz; /* = sizeof(struct shmkit_seg_info), set by the caller */
	char name[SHMKIT_SEG_NAME_MAX + 1];
	char path[4096];
	enum shmkit_seg_kind kind;
	enum shmkit_seg_state state;
	uint64_t file_size; /* from fstat */
	uint64_t data_size; /* usable bytes (0 unless state is OK/STALE) */
	uint32_t mode;	    /* permission bits */
	uint32_t owner_uid;
	uint32_t creator_uid; /* from the header */
	int32_t creator_pid;
	uint32_t layout_version;
	uint32_t flags; /* SHMKIT_SEG_SCOPED if scoped */
	uint64_t created_realtime_ns;
	uint32_t dir_used;     /* named objects in the directory */
	uint32_t dir_capacity;
	uint32_t nusers; /* live attached handles (slots with a live owner) */
	uint32_t users_untracked; /* live handles beyond the slot table */
	struct shmkit_seg_user users[SHMKIT_SEG_MAX_USERS];
};

/* Inspect the named segment without attaching. -ENOENT, -EACCES, -EINVAL. */
SHMKIT_API int shmkit_seg_stat(const char *name, struct shmkit_seg_info *info);
SHMKIT_API int shmkit_seg_stat_file(const char *path,
				    struct shmkit_seg_info *info);
/* Inspect an open segment (its own attachment included). */
SHMKIT_API int shmkit_seg_info(const struct shmkit_seg *seg,
			       struct shmkit_seg_info *info);

/*
 * Call fn for every file in the shared-memory directory (shmkit segments
 * and foreign ones, which are reported with state FOREIGN). Stops early and
 * returns fn's value if it returns non-zero. Returns 0 or a negative errno.
 */
SHMKIT_API int shmkit_seg_list(int (*fn)(const struct shmkit_seg_info *info,
					 void *arg),
			       void *arg);

/*
 * Remove the named segment if it is stale (scoped with no live user, or
 * left incomplete by a dead creator). Never removes a persistent segment or
 * one in use. Returns 1 if removed, 0 if not stale, or a negative errno.
 * With dry_run, reports 1 without removing.
 */
SHMKIT_API int shmkit_seg_gc(const char *name, int dry_run);

/* The directory holding named segments (/dev/shm, or $SHMKIT_SHM_DIR). */
SHMKIT_API const char *shmkit_shm_dir(void);

#ifdef __cplusplus
}
#endif

#endif /* SHMKIT_H */
