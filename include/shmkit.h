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
 *
 * Handles and fork: a child forked after a handle was made keeps the
 * mapping (reads and writes work) but the library closes the handle's
 * descriptor in the child, so the child holds none of the parent's
 * attachment locks; calls that need the descriptor return -ECHILD there,
 * and closing the handle in the child only unmaps. A child that wants to
 * be a user of its own opens the segment again. Anonymous segments have
 * no descriptor and are shared across fork by design.
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
 * Receive a memfd segment from a connected AF_UNIX socket. The uid of the
 * socket's peer (SO_PEERCRED) and the kernel-checked credentials attached
 * to the message by shmkit_seg_send() must both match this process's uid
 * unless SHMKIT_SEG_ANY_OWNER is set; the memfd must carry F_SEAL_SHRINK
 * and F_SEAL_GROW and must not be write-sealed. If peer_pid is not NULL it
 * receives the pid of the process that sent the message.
 * Returns 0, -EPERM (credentials, or a message without them), -EBADF (no
 * descriptor / not a suitably sealed memfd), -EPROTO, -EBADMSG,
 * -ECONNRESET (peer closed), -ETIMEDOUT.
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
 * Is the segment still whole? A peer with write access to a named or
 * file-backed segment can truncate it. Touching a vanished page does not
 * kill this process: shmkit installs a SIGBUS handler (chaining to any
 * handler installed before it) that maps a zero page there, so the access
 * reads zeros, and marks the segment. Returns 0, or -EBADMSG if the file is
 * now shorter than the mapping or a fault was absorbed (close the segment;
 * what was read from it since is garbage). Cheap: one fstat.
 */
SHMKIT_API int shmkit_seg_check(const struct shmkit_seg *seg);

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
	SHMKIT_STATE_OK = 0,	     /* READY, consistent */
	SHMKIT_STATE_STALE = 1,	     /* scoped and every user died */
	SHMKIT_STATE_INCOMPLETE = 2, /* creator died before READY */
	SHMKIT_STATE_CREATING = 3,   /* creator alive, not READY yet */
	SHMKIT_STATE_CORRUPT = 4,    /* shmkit magic, inconsistent header */
	SHMKIT_STATE_VERSION = 5,    /* shmkit segment, other layout version */
	SHMKIT_STATE_FOREIGN = 6,    /* not a shmkit segment */
	SHMKIT_STATE_DENIED = 7,     /* exists; this user may not read it */
};

#define SHMKIT_SEG_MAX_USERS 64 /* attachment slots listed per segment */

struct shmkit_seg_user {
	int32_t pid; /* as recorded at attach; alive when listed */
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
	uint32_t dir_used; /* named objects in the directory */
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

/*
 * Synchronization
 *
 * Process-shared mutex, event (condition) and counting semaphore living in
 * a segment at a place the caller chooses (e.g. shmkit_seg_base(seg) + off,
 * or inside the caller's own shared struct). Each object is 32 bytes,
 * 8-byte aligned, and must lie wholly inside the segment's data area; it
 * holds no pointer, so processes may map the segment at different
 * addresses. Every call takes the handle through which this process sees
 * the segment.
 *
 * Crash behaviour: when a mutex holder dies (at any instruction, including
 * inside lock or unlock), the next locker gets the lock with -EOWNERDEAD;
 * it repairs the guarded state and calls shmkit_mutex_consistent(). If it
 * unlocks without doing so, the mutex is not recoverable and every later
 * lock returns -ENOTRECOVERABLE at once. A waiter notices a dead holder
 * within the mutex's liveness interval. A holder that is alive but
 * stopped is never declared dead: waiters get -ETIMEDOUT. A killed waiter
 * of any object leaves no trace.
 *
 * Handles: the handle of a named, memfd or file-backed segment belongs to
 * the process that opened it; used in a forked child every call returns
 * -ECHILD (open the segment again in the child). An anonymous segment's
 * handle is meant to cross fork and works in children.
 *
 * Timeouts are relative, in nanoseconds; SHMKIT_FOREVER waits without a
 * deadline (a dead holder is still detected). Common errors: -EINVAL (NULL,
 * object not inside the segment or misaligned, object not initialised),
 * -EBADF (read-only handle), -ECHILD (see above), -EBADMSG (the shared word
 * holds a value no shmkit process writes: corrupt or hostile peer).
 */
struct shmkit_mutex {
	uint64_t opaque[4];
};
struct shmkit_event {
	uint64_t opaque[4];
};
struct shmkit_sem {
	uint64_t opaque[4];
};

#define SHMKIT_FOREVER UINT64_MAX
/* Default liveness interval of a mutex: 250 us. */
#define SHMKIT_SYNC_LIVENESS_NS 250000ull

/* Options for shmkit_mutex_init(); NULL means all defaults. */
struct shmkit_sync_opts {
	size_t sz; /* = sizeof(struct shmkit_sync_opts) */
	/* Longest time between two checks of a holder's liveness by a
	 * waiting process, which bounds how late a dead holder is noticed.
	 * 0: SHMKIT_SYNC_LIVENESS_NS; clamped to [10 us, 1 s]. */
	uint64_t liveness_ns;
};

/*
 * Initialise a mutex (unlocked, consistent). Call once, before any other
 * process uses it; initialising a mutex in use is undefined. Returns 0,
 * -EINVAL, -EBADF, -ECHILD.
 */
SHMKIT_API int shmkit_mutex_init(struct shmkit_seg *seg, struct shmkit_mutex *m,
				 const struct shmkit_sync_opts *opts);
/*
 * Lock, waiting at most timeout_ns (0: do not wait). Returns 0 (locked),
 * -EOWNERDEAD (locked; the previous holder died, repair and call
 * shmkit_mutex_consistent()), -ETIMEDOUT, -ENOTRECOVERABLE, -EDEADLK
 * (this thread holds it already), or a common error. Lock and unlock
 * through the same handle.
 */
SHMKIT_API int shmkit_mutex_lock(struct shmkit_seg *seg, struct shmkit_mutex *m,
				 uint64_t timeout_ns);
/*
 * Lock if free, in user space only: 0, -EAGAIN (held; trylock does not
 * check the holder's liveness: shmkit_mutex_lock(seg, m, 0) does, once),
 * -ENOTRECOVERABLE, -EDEADLK, -EBADMSG, or a common error.
 */
SHMKIT_API int shmkit_mutex_trylock(struct shmkit_seg *seg,
				    struct shmkit_mutex *m);
/*
 * Unlock (calling thread must hold it: else -EPERM). Unlocking after
 * -EOWNERDEAD without shmkit_mutex_consistent() makes the mutex not
 * recoverable (returns 0; later locks fail with -ENOTRECOVERABLE).
 */
SHMKIT_API int shmkit_mutex_unlock(struct shmkit_seg *seg,
				   struct shmkit_mutex *m);
/* Mark a mutex taken with -EOWNERDEAD repaired. 0, -EPERM, -EINVAL. */
SHMKIT_API int shmkit_mutex_consistent(struct shmkit_seg *seg,
				       struct shmkit_mutex *m);

/* Initialise an event (no waiter). Once, before use. 0 or common error. */
SHMKIT_API int shmkit_event_init(struct shmkit_seg *seg,
				 struct shmkit_event *ev);
/*
 * Condition wait: the caller holds m (consistent) and has found its
 * predicate false. Releases m, sleeps until a signal or broadcast (or a
 * spurious wake-up), takes m again. Returns 0 (re-check the predicate),
 * -ETIMEDOUT, -EOWNERDEAD (m's holder died meanwhile; m is held, repair);
 * in these three cases m is held on return. Otherwise m is NOT held:
 * -ENOLCK (m could not be taken again within another timeout_ns, at
 * least 100 ms),
 * -ENOTRECOVERABLE, -EPERM (caller does not hold m; nothing done),
 * -EINVAL (m is inconsistent; nothing done), or a common error.
 */
SHMKIT_API int shmkit_event_wait(struct shmkit_seg *seg,
				 struct shmkit_event *ev,
				 struct shmkit_mutex *m, uint64_t timeout_ns);
/*
 * Wake one waiter / all waiters. Never block; with nobody waiting they make
 * no system call. Signal the predicate's change after (or while) changing
 * it under the waiters' mutex. Return 0 or a common error.
 */
SHMKIT_API int shmkit_event_signal(struct shmkit_seg *seg,
				   struct shmkit_event *ev);
SHMKIT_API int shmkit_event_broadcast(struct shmkit_seg *seg,
				      struct shmkit_event *ev);
/*
 * Waiting without a mutex (an event count): prepare, re-check the
 * condition, then await (or cancel if it became true). The condition's
 * writer stores it, then signals. *ticket is opaque.
 * await returns 0 (woken; re-check) or -ETIMEDOUT, and always consumes
 * the ticket.
 */
SHMKIT_API int shmkit_event_prepare(struct shmkit_seg *seg,
				    struct shmkit_event *ev, uint64_t *ticket);
SHMKIT_API int shmkit_event_await(struct shmkit_seg *seg,
				  struct shmkit_event *ev, uint64_t ticket,
				  uint64_t timeout_ns);
SHMKIT_API int shmkit_event_cancel(struct shmkit_seg *seg,
				   struct shmkit_event *ev, uint64_t ticket);

/* Initialise a counting semaphore to value (<= INT32_MAX). */
SHMKIT_API int shmkit_sem_init(struct shmkit_seg *seg, struct shmkit_sem *s,
			       uint32_t value);
/* Add one and wake a waiter if any; no system call if nobody waits.
 * 0, -EOVERFLOW (count at INT32_MAX), or a common error. */
SHMKIT_API int shmkit_sem_post(struct shmkit_seg *seg, struct shmkit_sem *s);
/* Take one, waiting at most timeout_ns: 0, -ETIMEDOUT, common error. */
SHMKIT_API int shmkit_sem_wait(struct shmkit_seg *seg, struct shmkit_sem *s,
			       uint64_t timeout_ns);
/* Take one if available: 0 or -EAGAIN. */
SHMKIT_API int shmkit_sem_trywait(struct shmkit_seg *seg, struct shmkit_sem *s);
/* Current count (>= 0; a snapshot) or a negative errno. */
SHMKIT_API int shmkit_sem_value(struct shmkit_seg *seg, struct shmkit_sem *s);

/*
 * Channels
 *
 * A channel is a message queue in its own named segment: one consumer and
 * up to max_producers producers attached at once, each producer writing
 * its own single-producer ring (a "lane"), so a producer killed at any
 * instruction never blocks the others or the consumer and never exposes a
 * partial message. Messages are byte strings of 0..max_msg_bytes bytes,
 * FIFO per producer; the consumer serves lanes round-robin. A message is
 * committed (visible) all at once or not at all.
 *
 * Timeouts (timeout_ns): 0 never blocks (-EAGAIN), > 0 waits at most that
 * long (-ETIMEDOUT), SHMKIT_CHAN_FOREVER (< 0) waits until success or a
 * peer event. Waiting spins briefly while traffic flows, then sleeps on a
 * futex; every sleep is bounded and re-checks the peers' liveness.
 *
 * A handle is used by one thread at a time; distinct handles (even to the
 * same channel, in one process) are independent. A handle is not usable in
 * a child after fork (-ECHILD): the child opens its own.
 * Full reference: shmkit_chan(3).
 */
struct shmkit_chan;

enum shmkit_chan_role {
	SHMKIT_CHAN_PRODUCER = 1,
	SHMKIT_CHAN_CONSUMER = 2,
};

#define SHMKIT_CHAN_FOREVER (-1ll)
/* Largest max_producers, and defaults applied to zero option fields. */
#define SHMKIT_CHAN_MAX_PRODUCERS 64
#define SHMKIT_CHAN_DEFAULT_PRODUCERS 4
#define SHMKIT_CHAN_DEFAULT_CAPACITY (256u * 1024u)

/* Message flags (recv, peek, recv_batch). */
/* A consumer died after this message was handed to it and before it was
 * released: it may already have been processed once. */
#define SHMKIT_CHAN_REDELIVERED (1u << 0)

/* Options for create and open; NULL means all defaults. */
struct shmkit_chan_opts {
	size_t sz; /* = sizeof(struct shmkit_chan_opts) */
	/* create: ring bytes per producer, rounded up to a power of two
	 * (default SHMKIT_CHAN_DEFAULT_CAPACITY, or enough for three
	 * messages of max_msg_bytes; 4 KiB .. 1 GiB). */
	uint64_t capacity_bytes;
	/* create: largest message (default capacity / 4; at most
	 * capacity / 3 rounded down to a multiple of 8, less 8: the ring
	 * holds three framed messages). */
	uint64_t max_msg_bytes;
	/* create: producers attached at once (default 4, max 64). */
	uint32_t max_producers;
	/* create: permission bits of the segment (default 0600). */
	uint32_t mode;
	/* create, open: how long to wait for a channel still being created
	 * (default SHMKIT_SEG_OPEN_TIMEOUT_NS). */
	uint64_t open_timeout_ns;
	/* create: SHMKIT_CHAN_SCOPED or 0. */
	uint32_t flags;
	uint32_t reserved; /* zero */
};

/* The channel's segment is removed when its last user detaches
 * (SHMKIT_SEG_SCOPED); default: it stays until shmkit_chan_unlink(). */
#define SHMKIT_CHAN_SCOPED (1u << 0)

/*
 * Create the channel `name` (a new named segment) and attach to it in
 * `role`. Returns 0, -EINVAL (name, role or options), -EEXIST, -ENOSPC,
 * -EACCES, -ENOMEM. Two processes that may start in either order both
 * call create, and open on -EEXIST.
 */
SHMKIT_API int shmkit_chan_create(const char *name,
				  const struct shmkit_chan_opts *opts,
				  enum shmkit_chan_role role,
				  struct shmkit_chan **out);

/*
 * Attach to an existing channel as producer (takes a free lane) or as
 * consumer. A consumer may take over a channel whose consumer died: the
 * messages the dead one had been handed but not released are delivered
 * again with SHMKIT_CHAN_REDELIVERED. Returns 0, -ENOENT, -EBUSY (no free
 * lane / a live consumer is attached), -EPROTO (not a channel),
 * -EBADMSG (corrupt), -ETIMEDOUT (still being created),
 * -ENOTRECOVERABLE (its creator died before finishing), or a
 * shmkit_seg_open() error.
 */
SHMKIT_API int shmkit_chan_open(const char *name, enum shmkit_chan_role role,
				const struct shmkit_chan_opts *opts,
				struct shmkit_chan **out);

/*
 * Detach. A producer's committed messages stay for the consumer; a
 * consumer's last received message counts as processed. Wakes waiting
 * peers so they see the departure at once. Accepts NULL.
 */
SHMKIT_API void shmkit_chan_close(struct shmkit_chan *ch);

/* Remove the channel's name (users attached continue). */
SHMKIT_API int shmkit_chan_unlink(const char *name);

/*
 * Producer: copy one message of len bytes into the channel. Returns 0,
 * -EMSGSIZE (len > max_msg_bytes), -EAGAIN / -ETIMEDOUT (full),
 * -EPIPE (full, and the consumer closed), -ECONNRESET (full, and the
 * consumer died), -EBADMSG (the lane's shared state is corrupt), -EINVAL
 * (not a producer), -ECHILD (handle from before fork). A message is
 * accepted while there is room even if no consumer is attached (it waits
 * for the next one).
 */
SHMKIT_API int shmkit_chan_send(struct shmkit_chan *ch, const void *msg,
				size_t len, int64_t timeout_ns);

/*
 * Consumer: copy the next message into buf (cap bytes). Returns its
 * length (>= 0); *flags (may be NULL) receives SHMKIT_CHAN_* message flags.
 * Errors: -EMSGSIZE (cap too small; the message stays queued, peek shows
 * its length), -EAGAIN / -ETIMEDOUT (empty), -EPIPE (end of stream: every
 * producer that attached is gone and everything they committed has been
 * received; a producer attaching later starts a new stream), -ECONNRESET
 * (a producer died without closing; reported once per such producer,
 * after its committed messages; the next call goes on), -EBADMSG.
 * The returned message counts as processed at the next call on this
 * handle (or close): a crash before that redelivers it, flagged.
 */
SHMKIT_API int shmkit_chan_recv(struct shmkit_chan *ch, void *buf, size_t cap,
				uint32_t *flags, int64_t timeout_ns);

/*
 * Zero-copy send: reserve room for up to len bytes and get a pointer to
 * write them in place (8-byte aligned, valid until commit or the next
 * reserve/send on this handle); commit publishes the first `len` bytes
 * (len <= the reserved size). A reservation never committed leaves no
 * trace. Errors of reserve as for send; commit returns 0 or -EINVAL.
 */
SHMKIT_API int shmkit_chan_reserve(struct shmkit_chan *ch, size_t len,
				   void **ptr, int64_t timeout_ns);
SHMKIT_API int shmkit_chan_commit(struct shmkit_chan *ch, size_t len);

/*
 * Zero-copy receive: point *ptr at the next message in place (read-only,
 * 8-byte aligned, valid until release or the next call on this handle)
 * and return its length; release consumes it. Errors as for recv.
 */
SHMKIT_API int shmkit_chan_peek(struct shmkit_chan *ch, const void **ptr,
				uint32_t *flags, int64_t timeout_ns);
SHMKIT_API int shmkit_chan_release(struct shmkit_chan *ch);

/* One message of a batch. */
struct shmkit_chan_msg {
	void *buf;	/* send: the bytes; recv: where to copy them */
	size_t len;	/* send: length; recv (out): length received */
	size_t cap;	/* recv: capacity of buf */
	uint32_t flags; /* recv (out): SHMKIT_CHAN_* message flags */
	uint32_t lane;	/* recv (out): the producer lane it came from */
};

/*
 * Batches: one index publication (and at most one wake-up) for many
 * messages. send_batch commits the longest prefix that fits, waiting only
 * until at least one fits; recv_batch returns at least one message and
 * takes only what is already there. Both return the number of messages
 * moved (> 0) or an error as send/recv (a message too large for its recv
 * buffer ends the batch; if it is the first, -EMSGSIZE).
 */
SHMKIT_API int shmkit_chan_send_batch(struct shmkit_chan *ch,
				      const struct shmkit_chan_msg *msgs,
				      unsigned n, int64_t timeout_ns);
SHMKIT_API int shmkit_chan_recv_batch(struct shmkit_chan *ch,
				      struct shmkit_chan_msg *msgs, unsigned n,
				      int64_t timeout_ns);

/*
 * Producer: wait until the consumer has released everything this handle
 * sent. Returns 0, -ETIMEDOUT, -EPIPE / -ECONNRESET (consumer gone).
 */
SHMKIT_API int shmkit_chan_flush(struct shmkit_chan *ch, int64_t timeout_ns);

/*
 * Wait until at least one of n consumer handles (n <= 64) is ready, i.e.
 * its recv would not return -EAGAIN (a message, end of stream or an
 * error). Sets bit i of *ready (may be NULL) for each ready handle and
 * returns how many are ready; -EAGAIN / -ETIMEDOUT if none, -EINVAL,
 * -ECHILD (a handle opened before fork).
 */
SHMKIT_API int shmkit_chan_select(struct shmkit_chan *const *chans, unsigned n,
				  uint64_t *ready, int64_t timeout_ns);

/*
 * Consumer: a descriptor that polls readable when the channel may have a
 * message or has reached end of stream, for the caller's epoll/poll loop.
 * After it polls readable, call recv with timeout 0 until it returns
 * -EAGAIN, which re-arms it (edge-style). Owned by the handle (closed by
 * shmkit_chan_close); a helper thread of this process watches the channel.
 * Returns the descriptor or -errno.
 */
SHMKIT_API int shmkit_chan_fd(struct shmkit_chan *ch);

/*
 * Peers attached now: for a producer, 1 if a consumer is attached, else 0;
 * for a consumer, the number of producers attached. -EINVAL, -ECHILD, or
 * the kernel's error when it does not answer who holds a peer's lock
 * (fcntl F_OFD_GETLK, e.g. -ENOLCK): never a count that hides it.
 */
SHMKIT_API int shmkit_chan_peers(struct shmkit_chan *ch);

/*
 * Wait until the other side has someone attached (a producer: the
 * consumer; a consumer: at least one producer), sleeping on a futex, not
 * polling. Returns shmkit_chan_peers() once it is not 0 (a count, or its
 * error); -EAGAIN (timeout_ns 0) or -ETIMEDOUT if nobody came; -EINVAL,
 * -ECHILD.
 */
SHMKIT_API int shmkit_chan_wait_peer(struct shmkit_chan *ch,
				     int64_t timeout_ns);

/* Geometry and counters of an open channel (what `shmkit stat` shows).
 * 0, or -EINVAL (info->sz too small), -ECHILD, or shmkit_chan_peers()'s
 * error; *info is then left as it was. */
struct shmkit_chan_info {
	size_t sz; /* = sizeof(struct shmkit_chan_info), set by the caller */
	uint64_t capacity_bytes; /* per lane */
	uint64_t max_msg_bytes;
	uint32_t max_producers;
	uint32_t producers;    /* attached now */
	uint32_t consumer;     /* 1 if a consumer is attached */
	uint32_t lane;	       /* a producer handle's lane, else 0 */
	uint64_t queued_bytes; /* committed, not yet released (framed) */
};
SHMKIT_API int shmkit_chan_info(struct shmkit_chan *ch,
				struct shmkit_chan_info *info);

/*
 * Heap, named objects and map
 *
 * A heap manages a region of a segment's data area (by default all of
 * it): blocks are allocated and freed by offset from the data area base
 * (shmkit_seg_base(seg) + off is the address in this process), from any
 * number of processes at once. Small blocks go through a cache private to
 * each heap handle, so a handle is used by one thread at a time (open one
 * per thread); the rest is a TLSF allocator under a robust mutex.
 *
 * Crash behaviour: a process killed at any instruction inside the heap
 * leaves it usable. The next process to take the heap's lock repairs it
 * (a pending split or merge is redone, the free lists are rebuilt from the
 * block chain, the dead process's cached blocks are freed) and carries on;
 * the statistics count the repair. A block the dead process had allocated
 * stays allocated unless it was allocated with SHMKIT_HEAP_OWNED: those
 * are freed by shmkit_heap_reclaim() once their handle is closed or its
 * process is gone. If the heap's shared state is corrupt (not something a
 * crash can do), calls return -EBADMSG, or -ENOTRECOVERABLE once a repair
 * found it beyond repair; never a crash or an endless loop.
 *
 * Named objects are blocks of the heap found by name through the
 * segment's directory (64 entries): create-or-find is atomic across
 * processes. The map is a named object: a hash table of byte-string keys
 * and values with lock-free readers (see below).
 * Full reference: shmkit_heap(3), shmkit_obj(3), shmkit_map(3).
 */
struct shmkit_heap;

/* shmkit_heap_opts.flags */
/* Format a heap if the segment has none yet (two racing creators: one
 * formats, the other waits and attaches). Without it: -ENOENT. */
#define SHMKIT_HEAP_CREATE (1u << 0)
/* No per-handle cache: every call takes the heap's lock. */
#define SHMKIT_HEAP_NOCACHE (1u << 1)

/* Options for shmkit_heap_open(); NULL means all defaults. */
struct shmkit_heap_opts {
	size_t sz;	   /* = sizeof(struct shmkit_heap_opts) */
	uint32_t flags;	   /* SHMKIT_HEAP_* */
	uint32_t reserved; /* 0 */
	/* create: the region of the data area the heap manages (offset a
	 * multiple of 16; size 0: to the end; at most 32 GiB). */
	uint64_t offset;
	uint64_t size_bytes;
	/* Longest wait for the heap's lock (default 10 s): -ETIMEDOUT. */
	uint64_t lock_timeout_ns;
	/* Most bytes this handle keeps cached (default 1/64 of the heap,
	 * at most 4 MiB). */
	uint64_t cache_bytes;
};

/*
 * Open the heap of seg (through this process's handle seg, which must
 * outlive it). Returns 0, -ENOENT (no heap and no SHMKIT_HEAP_CREATE),
 * -EINVAL, -EBADF (CREATE on a read-only handle), -ETIMEDOUT (another
 * process is still formatting it), -EBADMSG (the heap's control block is
 * corrupt), -ENOMEM. A handle of a read-only segment handle can only give
 * statistics and list named objects.
 */
SHMKIT_API int shmkit_heap_open(struct shmkit_seg *seg,
				const struct shmkit_heap_opts *opts,
				struct shmkit_heap **out);
/* Return cached blocks and close. Accepts NULL. */
SHMKIT_API void shmkit_heap_close(struct shmkit_heap *h);
SHMKIT_API struct shmkit_seg *shmkit_heap_seg(const struct shmkit_heap *h);

/* Allocation flags. */
/* Tag the block with this handle as its owner: shmkit_heap_reclaim()
 * frees it once the handle is closed or its process died. */
#define SHMKIT_HEAP_OWNED (1u << 0)
/* Zero the block's bytes. */
#define SHMKIT_HEAP_ZERO (1u << 1)

/*
 * Allocate size bytes (16-byte aligned, or align: a power of two up to
 * 4096; the data area starts on a page boundary, so the address is
 * aligned in every mapping) and store the block's offset from the data
 * area base in *off.
 * Returns 0, -ENOSPC (no free block that large), -EINVAL, -EBADF,
 * -ECHILD (handle from before fork), -ETIMEDOUT (lock), -EBADMSG,
 * -ENOTRECOVERABLE.
 */
SHMKIT_API int shmkit_heap_alloc(struct shmkit_heap *h, size_t size,
				 uint32_t flags, uint64_t *off);
SHMKIT_API int shmkit_heap_alloc_aligned(struct shmkit_heap *h, size_t size,
					 size_t align, uint32_t flags,
					 uint64_t *off);
/*
 * Free the block at off (from any handle, any process). Returns 0, or
 * -EINVAL if off is not an allocated block (a double free is detected)
 * or a lock error as for alloc.
 */
SHMKIT_API int shmkit_heap_free(struct shmkit_heap *h, uint64_t off);
/* Address of off in this process (NULL if off is outside the heap). */
SHMKIT_API void *shmkit_heap_ptr(const struct shmkit_heap *h, uint64_t off);
/* Usable bytes of the allocated block at off (>= the size asked for). */
SHMKIT_API int shmkit_heap_usable_size(struct shmkit_heap *h, uint64_t off,
				       size_t *size);
/* Make this handle the block's owner (owned != 0) or clear its owner. */
SHMKIT_API int shmkit_heap_set_owned(struct shmkit_heap *h, uint64_t off,
				     int owned);
/* Return this handle's cached blocks to the heap. */
SHMKIT_API int shmkit_heap_flush(struct shmkit_heap *h);
/*
 * Free every SHMKIT_HEAP_OWNED block whose owner handle is closed or whose
 * process is gone, and the cached blocks of dead processes. Returns the
 * number of owned blocks freed, or a negative errno.
 */
SHMKIT_API int shmkit_heap_reclaim(struct shmkit_heap *h);
/*
 * Walk the whole heap and verify every invariant (block chain, sizes,
 * free lists, bitmaps, counters). 0 or -EBADMSG.
 */
SHMKIT_API int shmkit_heap_check(struct shmkit_heap *h);

struct shmkit_heap_stats {
	size_t sz; /* = sizeof(struct shmkit_heap_stats), set by the caller */
	uint64_t heap_bytes; /* managed bytes (block headers included) */
	uint64_t free_bytes; /* in free blocks */
	uint64_t free_blocks;
	uint64_t largest_free; /* largest allocation that can succeed now */
	uint64_t used_bytes;   /* in allocated blocks */
	uint64_t used_blocks;
	uint64_t cached_bytes; /* free, held in handles' caches */
	uint64_t cached_blocks;
	uint64_t repairs; /* repairs after a lock holder died */
	uint32_t owners;  /* open handles with an owner record */
	uint32_t owners_max;
};
/* Snapshot of the counters (exact on a writable handle: taken under the
 * lock; on a read-only one, largest_free is a lower bound). */
SHMKIT_API int shmkit_heap_stats(struct shmkit_heap *h,
				 struct shmkit_heap_stats *st);

enum shmkit_heap_state {
	SHMKIT_HEAP_FREE = 1,
	SHMKIT_HEAP_USED = 2,
	SHMKIT_HEAP_CACHED = 3, /* free, in a handle's cache */
};

struct shmkit_heap_block {
	uint64_t off;	     /* payload offset from the data area base */
	uint64_t size;	     /* usable bytes */
	uint32_t state;	     /* enum shmkit_heap_state */
	uint32_t flags;	     /* SHMKIT_HEAP_OWNED */
	int32_t owner_pid;   /* process of the allocating handle, 0: none */
	int32_t owner_alive; /* 1: that handle is open and alive */
};
/*
 * Call fn for every block in address order, under the heap's lock (fn
 * must not call heap functions on this heap). Stops when fn returns
 * non-zero and returns that value; 0 at the end, or a negative errno.
 */
SHMKIT_API int shmkit_heap_walk(struct shmkit_heap *h,
				int (*fn)(const struct shmkit_heap_block *b,
					  void *arg),
				void *arg);

/* Named objects: names are 1..47 bytes, NUL-terminated. */
#define SHMKIT_OBJ_NAME_MAX 47
/* Kinds below this are the application's; the rest are shmkit's. */
#define SHMKIT_OBJ_KIND_USER_MAX 0xffffu
#define SHMKIT_OBJ_KIND_MAP 0x10001u

struct shmkit_obj_info {
	uint64_t off;  /* payload offset from the data area base */
	uint64_t size; /* bytes asked for at creation */
	uint32_t kind;
	char name[SHMKIT_OBJ_NAME_MAX + 1];
};

/*
 * Create-or-find: if name exists (with this kind), fill *info and return
 * 0; else allocate size bytes (zeroed), run init(h, off, size, arg) if
 * not NULL, publish the name and return 1. Two processes racing get the
 * same object; no process ever sees it before init returned. init runs
 * under the directory's lock (it may allocate from the heap, not call
 * shmkit_obj_*); a negative return from it undoes the creation and is
 * returned. A creator killed before publishing leaves no trace. Errors:
 * -EINVAL (name, size), -EPROTO (exists with another kind), -ENOSPC
 * (directory full or no room), and those of alloc.
 */
SHMKIT_API int shmkit_obj_create(struct shmkit_heap *h, const char *name,
				 size_t size, uint32_t kind,
				 int (*init)(struct shmkit_heap *h,
					     uint64_t off, size_t size,
					     void *arg),
				 void *arg, struct shmkit_obj_info *info);
/* Find by name: 0 or -ENOENT. */
SHMKIT_API int shmkit_obj_find(struct shmkit_heap *h, const char *name,
			       struct shmkit_obj_info *info);
/*
 * Call fn for every published object (a snapshot taken under the lock;
 * on a read-only handle without it). Stops when fn returns non-zero and
 * returns that; else the number of objects, or a negative errno.
 */
SHMKIT_API int shmkit_obj_list(struct shmkit_heap *h,
			       int (*fn)(const struct shmkit_obj_info *info,
					 void *arg),
			       void *arg);
/* Remove the name and free the object. Processes still using it must
 * have stopped (shmkit does not track users). 0 or -ENOENT. */
SHMKIT_API int shmkit_obj_remove(struct shmkit_heap *h, const char *name);

/*
 * Map: a hash map of byte-string keys and values, a named object of kind
 * SHMKIT_OBJ_KIND_MAP in a heap. Its capacity (number of keys) and the
 * largest key and value are fixed at creation; a put beyond capacity
 * fails with -ENOSPC, a key or value too long with -EMSGSIZE. Writers
 * lock one of many stripes (robust mutexes); readers take no lock and
 * never block writers or each other. Every call is linearizable. Crash
 * behaviour: a writer killed at any instruction loses at most its own
 * unacknowledged operation; every put or delete that returned is kept,
 * and the next writer of that stripe repairs it. Chain walks are bounded:
 * a corrupt map gives -EBADMSG, never a hang. A map handle may be used by
 * many threads at once; the segment and heap handles it came from must
 * outlive it.
 */
struct shmkit_map;

/* shmkit_map_opts.flags: create the map if the name does not exist. */
#define SHMKIT_MAP_CREATE (1u << 0)

struct shmkit_map_opts {
	size_t sz;	/* = sizeof(struct shmkit_map_opts) */
	uint32_t flags; /* SHMKIT_MAP_CREATE */
	/* create: keys the map holds (default 1024, at most 2^28) */
	uint32_t capacity;
	uint32_t key_max; /* create: longest key (default 64, <= 4096) */
	uint32_t val_max; /* create: longest value (default 256, <= 1 MiB) */
	/* create: lock stripes, a power of two (default: capacity / 4 up
	 * to 256) */
	uint32_t stripes;
	uint32_t reserved; /* 0 */
	/* Longest wait for a stripe's lock (default 10 s): -ETIMEDOUT. */
	uint64_t lock_timeout_ns;
};

/*
 * Open the map called name in heap h, creating it with SHMKIT_MAP_CREATE
 * (atomically: racing creators get the same map; an existing map keeps
 * its geometry). Returns 1 if created, 0 if opened, or -ENOENT, -EPROTO
 * (the name is another kind of object), -EBADMSG (corrupt), -ENOSPC, ...
 * A map opened through a read-only segment handle can only be read.
 */
SHMKIT_API int shmkit_map_open(struct shmkit_heap *h, const char *name,
			       const struct shmkit_map_opts *opts,
			       struct shmkit_map **out);
SHMKIT_API void shmkit_map_close(struct shmkit_map *m); /* accepts NULL */

/*
 * Copy the value of key into val (cap bytes). Returns its length, or
 * -ENOENT, -EMSGSIZE (cap too small: nothing copied), -EMSGSIZE for a key
 * longer than key_max, -EINVAL, -EAGAIN (read-only handle only: the bucket
 * kept changing under the reader). With val NULL and cap 0 it only returns
 * the length.
 */
SHMKIT_API int shmkit_map_get(struct shmkit_map *m, const void *key,
			      size_t klen, void *val, size_t cap);

/* A zero-copy read's ticket (see shmkit_map_get_ref). */
struct shmkit_map_ref {
	uint32_t ent;
	uint32_t ver;
};
/*
 * Zero-copy get: *val points at the value inside the segment and the
 * length is returned. The pointer stays inside the mapping until the map
 * is closed, but the bytes are only the key's value until a writer
 * replaces or deletes the key (or adds to it): read them, then call
 * shmkit_map_ref_valid(); 1 means what was read is the value the key had
 * (a seqlock read), 0 means read again.
 */
SHMKIT_API int shmkit_map_get_ref(struct shmkit_map *m, const void *key,
				  size_t klen, const void **val,
				  struct shmkit_map_ref *ref);
SHMKIT_API int shmkit_map_ref_valid(struct shmkit_map *m,
				    const struct shmkit_map_ref *ref);

/* put flag: only if the key is absent (else -EEXIST). */
#define SHMKIT_MAP_NX (1u << 0)
/*
 * Insert or replace. Returns 1 (inserted), 0 (replaced), -EEXIST (NX and
 * present), -ENOSPC (full), -EMSGSIZE, -EBADF (read-only), lock errors.
 */
SHMKIT_API int shmkit_map_put(struct shmkit_map *m, const void *key,
			      size_t klen, const void *val, size_t vlen,
			      uint32_t flags);
/*
 * Compare-and-swap: replace the value only if it is exactly old. Returns
 * 0 (swapped), -EAGAIN (the value differs), -ENOENT, or as put.
 */
SHMKIT_API int shmkit_map_cas(struct shmkit_map *m, const void *key,
			      size_t klen, const void *old, size_t oldlen,
			      const void *val, size_t vlen);
/* Delete: 0 or -ENOENT. */
SHMKIT_API int shmkit_map_del(struct shmkit_map *m, const void *key,
			      size_t klen);
/*
 * Atomic add on a value that is a little-endian int64 (8 bytes); a
 * missing key is created with value delta. *result (may be NULL) gets the
 * new value. 0, -EINVAL (the value is not 8 bytes), or as put.
 */
SHMKIT_API int shmkit_map_add(struct shmkit_map *m, const void *key,
			      size_t klen, int64_t delta, int64_t *result);
/*
 * Call fn for every key, with private copies of key and value, without
 * blocking writers. A key present for the whole iteration is visited
 * exactly once; keys inserted or deleted meanwhile at most once. Stops
 * when fn returns non-zero and returns that; else 0 or a negative errno.
 */
SHMKIT_API int shmkit_map_foreach(struct shmkit_map *m,
				  int (*fn)(const void *key, size_t klen,
					    const void *val, size_t vlen,
					    void *arg),
				  void *arg);

struct shmkit_map_stats {
	size_t sz; /* = sizeof(struct shmkit_map_stats), set by the caller */
	uint64_t count; /* keys now (a snapshot) */
	uint64_t capacity;
	uint64_t bytes;	  /* size of the map object */
	uint64_t repairs; /* stripe repairs after a writer died */
	uint32_t key_max;
	uint32_t val_max;
	uint32_t buckets;
	uint32_t stripes;
};
SHMKIT_API int shmkit_map_stats(struct shmkit_map *m,
				struct shmkit_map_stats *st);
/*
 * Lock every stripe and verify every invariant (chains, hashes, free
 * lists, counts; no entry lost or shared). 0 or -EBADMSG.
 */
SHMKIT_API int shmkit_map_check(struct shmkit_map *m);
#ifdef __cplusplus
}
#endif

#endif /* SHMKIT_H */
