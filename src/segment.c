/* SPDX-License-Identifier: MIT */
/*
 * Segments: create, open, attach, close and unlink for every kind (named,
 * anonymous, memfd, file-backed). Owns the creation protocol (build the
 * whole segment in an unnamed file, publish READY, then link the name) and
 * the attachment protocol (OFD locks the kernel drops on death).
 */
#define _GNU_SOURCE
#include "segment.h"

#include "atomics.h"
#include "crash.h"
#include "platform.h"
#include "seg_guard.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MODE 0600u

const char *shmkit_version(void)
{
	return SHMKIT_VERSION_STRING;
}

uint32_t shmkit_layout_version(void)
{
	return SHMKIT_LAYOUT_VERSION;
}

const char *shmkit_strerror(int err)
{
	const char *s;

	if (err >= 0)
		return "success";
	switch (-err) {
	case EPROTO:
		return "not a shmkit segment of this layout version";
	case EBADMSG:
		return "corrupt shared state";
	case ENOTRECOVERABLE:
		return "state not recoverable (creator or owner died)";
	case EOWNERDEAD:
		return "previous owner died; state repaired";
	default:
		s = strerrordesc_np(-err);
		return s ? s : "unknown error";
	}
}

const char *shmkit_shm_dir(void)
{
	const char *d = getenv("SHMKIT_SHM_DIR");

	return d && *d == '/' ? d : "/dev/shm";
}

int shmkit__opts_get(const struct shmkit_seg_opts *in, struct shmkit__opts *o)
{
	o->mode = DEFAULT_MODE;
	o->flags = 0;
	o->open_timeout_ns = SHMKIT_SEG_OPEN_TIMEOUT_NS;
	if (!in)
		return 0;
	/* Fields up to open_timeout_ns exist in every version of the struct. */
	if (in->sz < offsetof(struct shmkit_seg_opts, open_timeout_ns) +
			     sizeof(in->open_timeout_ns))
		return -EINVAL;
	if (in->mode & ~0777u)
		return -EINVAL;
	if (in->flags &
	    ~(SHMKIT_SEG_SCOPED | SHMKIT_SEG_ANY_OWNER | SHMKIT_SEG_RDONLY))
		return -EINVAL;
	if (in->mode)
		o->mode = in->mode;
	o->flags = in->flags;
	if (in->open_timeout_ns)
		o->open_timeout_ns = in->open_timeout_ns;
	return 0;
}

int shmkit__name_check(const char *name, const char **base)
{
	size_t n;

	if (!name)
		return -EINVAL;
	if (name[0] == '/')
		name++;
	n = strnlen(name, SHMKIT_SEG_NAME_MAX + 1);
	if (n == 0 || n > SHMKIT_SEG_NAME_MAX || name[0] == '.')
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return -EINVAL;
	}
	if (base)
		*base = name;
	return 0;
}

int shmkit__name_path(const char *name, char **path)
{
	const char *base;
	int rc = shmkit__name_check(name, &base);

	if (rc < 0)
		return rc;
	if (asprintf(path, "%s/%s", shmkit_shm_dir(), base) < 0)
		return -ENOMEM;
	return 0;
}

int shmkit__hdr_check(const struct shmkit_hdr *img, uint64_t file_size,
		      struct shmkit__hdr_view *v)
{
	uint64_t magic, data_off, hdr_size, total;
	uint32_t kind;

	memset(v, 0, sizeof(*v));
	if (file_size < sizeof(uint64_t) + sizeof(uint32_t))
		return -EPROTO;
	memcpy(&magic, &img->magic, sizeof(magic));
	if (magic != SHMKIT_MAGIC)
		return -EPROTO;
	/* The layout version is checked before any other field is read. */
	memcpy(&v->layout_version, &img->layout_version, sizeof(uint32_t));
	if (v->layout_version != SHMKIT_LAYOUT_VERSION)
		return -EPROTO;
	if (file_size < SHMKIT_HDR_SIZE)
		return -EBADMSG;
	hdr_size = img->hdr_size;
	data_off = img->data_off;
	total = img->total_size;
	v->flags = img->flags;
	v->creator_uid = img->creator_uid;
	v->creator_pid = img->creator_pid;
	v->created_ns = img->created_ns;
	v->total_size = total;
	v->data_size = img->data_size;
	/* Relaxed: callers that need READY's release pair re-load it. */
	v->init_state = load_relaxed(&((struct shmkit_hdr *)img)->init_state);
	kind = (v->flags >> SHMKIT_HF_KIND_SHIFT) & 0xffu;
	if (hdr_size != SHMKIT_HDR_SIZE || data_off != SHMKIT_HDR_SIZE ||
	    (v->flags & ~SHMKIT_HF_KNOWN) || kind < SHMKIT_SEG_NAMED ||
	    kind > SHMKIT_SEG_FILE ||
	    img->slot_off != offsetof(struct shmkit_hdr, slots) ||
	    img->slot_cap != SHMKIT_NSLOTS ||
	    img->dir_off != offsetof(struct shmkit_hdr, dir) ||
	    img->dir_cap != SHMKIT_DIR_CAP)
		return -EBADMSG;
	if (v->init_state != SHMKIT_INIT_READY &&
	    v->init_state != SHMKIT_INIT_BUILDING)
		return -EBADMSG;
	if (v->init_state == SHMKIT_INIT_READY &&
	    (total != file_size || v->data_size == 0 ||
	     v->data_size > file_size - data_off ||
	     v->data_size % SHMKIT_PAGE != 0))
		return -EBADMSG;
	return 0;
}

static int size_total(size_t size_bytes, uint64_t *total)
{
	uint64_t pages;

	if (size_bytes == 0 || size_bytes > (1ull << 46))
		return -EINVAL;
	pages = (size_bytes + SHMKIT_PAGE - 1) / SHMKIT_PAGE;
	*total = SHMKIT_HDR_SIZE + pages * SHMKIT_PAGE;
	if (*total > (uint64_t)SIZE_MAX)
		return -EINVAL;
	return 0;
}

/* Write a complete header and publish READY. hdr is a fresh zero mapping. */
static void hdr_build(struct shmkit_hdr *h, uint64_t total,
		      enum shmkit_seg_kind kind, uint32_t flags)
{
	h->magic = SHMKIT_MAGIC;
	h->layout_version = SHMKIT_LAYOUT_VERSION;
	h->hdr_size = SHMKIT_HDR_SIZE;
	h->total_size = total;
	h->flags = ((uint32_t)kind << SHMKIT_HF_KIND_SHIFT) |
		   (flags & SHMKIT_SEG_SCOPED ? SHMKIT_HF_SCOPED : 0);
	h->creator_uid = (uint32_t)geteuid();
	h->creator_pid = (int32_t)getpid();
	store_relaxed(&h->init_state, SHMKIT_INIT_BUILDING);
	h->created_ns = shmkit__realtime_ns();
	h->data_off = SHMKIT_HDR_SIZE;
	h->data_size = total - SHMKIT_HDR_SIZE;
	h->slot_off = offsetof(struct shmkit_hdr, slots);
	h->slot_cap = SHMKIT_NSLOTS;
	h->dir_off = offsetof(struct shmkit_hdr, dir);
	h->dir_cap = SHMKIT_DIR_CAP;
	SHMKIT_CRASH_POINT("seg.create.header");
	/*
	 * Pairs with the acquire load of init_state in wait_ready(): an opener
	 * that sees READY sees every field above.
	 */
	store_release(&h->init_state, SHMKIT_INIT_READY);
}

/*
 * Descriptors of live handles, so that a forked child can drop them. A
 * child shares its parent's open file descriptions and with them the
 * parent's attachment locks; if it kept them, the parent's death would not
 * show, and the parent's scoped close could not tell the two apart. So the
 * child closes every inherited handle descriptor at fork: its mappings stay
 * (reading and writing work), but the handle is the parent's, and calls
 * that need the descriptor return -ECHILD until the child opens the
 * segment itself. Fixed-size and lock-free because the child side runs
 * between fork and the child's first instruction, where locks may be held
 * by threads that no longer exist. Slot value: fd + 1, 0 when free.
 */
#define FORK_FDS 1024
static _Atomic int fork_fds[FORK_FDS];
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_child(void)
{
	for (int i = 0; i < FORK_FDS; i++) {
		int v = load_relaxed(&fork_fds[i]);

		if (v > 0) {
			close(v - 1);
			store_relaxed(&fork_fds[i], 0);
		}
	}
}

static void fork_install(void)
{
	pthread_atfork(NULL, NULL, fork_child);
}

/* Relaxed throughout: only this process's threads and its fork child
 * (a copy made at one instant) read the table. */
static void fork_track(int fd)
{
	pthread_once(&fork_once, fork_install);
	for (int i = 0; i < FORK_FDS; i++) {
		int expect = 0;

		if (atomic_compare_exchange_strong_explicit(
			    &fork_fds[i], &expect, fd + 1, memory_order_relaxed,
			    memory_order_relaxed))
			return;
	}
	/* Table full: this handle's descriptor survives fork (documented). */
}

static void fork_untrack(int fd)
{
	for (int i = 0; i < FORK_FDS; i++) {
		int expect = fd + 1;

		if (atomic_compare_exchange_strong_explicit(
			    &fork_fds[i], &expect, 0, memory_order_relaxed,
			    memory_order_relaxed))
			return;
	}
}

static struct shmkit_seg *seg_alloc(enum shmkit_seg_kind kind)
{
	struct shmkit_seg *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->fd = -1;
	s->guard = -1;
	s->slot = -1;
	s->kind = kind;
	s->pid = getpid();
	return s;
}

static void seg_unmap(struct shmkit_seg *s)
{
	shmkit__guard_del(s->guard);
	if (s->hdr)
		munmap(s->hdr, s->map_size);
	/* In a fork child the number may already name another file. */
	if (s->fd >= 0 && s->pid == getpid()) {
		fork_untrack(s->fd);
		close(s->fd);
	}
	free(s->path);
	free(s);
}

/*
 * Attach: read-lock USERS (proof of use for scoped lifetime and gc) and
 * take the first free slot (what ls counts). Slot fields are a description
 * written after the lock is ours.
 */
static int seg_attach(struct shmkit_seg *s)
{
	int rc = shmkit__ofd_trylock(s->fd, SHMKIT_LOCK_USERS, F_RDLCK);

	if (rc < 0)
		return rc; /* -EAGAIN: being removed right now */
	s->users_lock = 1;
	/* A read-only descriptor cannot write-lock: such handles count as
	 * users but take no slot. */
	for (unsigned i = 0; !s->rdonly && i < SHMKIT_NSLOTS; i++) {
		if (shmkit__ofd_trylock(s->fd, SHMKIT_LOCK_SLOT0 + i, F_WRLCK) <
		    0)
			continue;
		struct shmkit_slot *sl = &s->hdr->slots[i];

		s->slot = (int)i;
		store_relaxed(&sl->pid, (int32_t)getpid());
		store_relaxed(&sl->uid, (uint32_t)geteuid());
		store_relaxed(&sl->attach_ns, shmkit__realtime_ns());
		break;
	}
	SHMKIT_CRASH_POINT("seg.attach");
	return 0;
}

static int seg_map(struct shmkit_seg *s, size_t size)
{
	int prot = PROT_READ | (s->rdonly ? 0 : PROT_WRITE);
	void *p;

	if (s->fd >= 0)
		p = mmap(NULL, size, prot, MAP_SHARED, s->fd, 0);
	else
		p = mmap(NULL, size, prot, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	s->hdr = p;
	s->map_size = size;
	if (s->fd >= 0)
		fork_track(s->fd);
	/*
	 * Anonymous memory cannot shrink and memfds are sealed; a named or
	 * file-backed segment can be truncated by any peer with write access.
	 */
	if (s->kind == SHMKIT_SEG_NAMED || s->kind == SHMKIT_SEG_FILE)
		s->guard = shmkit__guard_add(p, size);
	return 0;
}

static void seg_set_data(struct shmkit_seg *s)
{
	s->flags = s->hdr->flags;
	s->data = (char *)s->hdr + SHMKIT_HDR_SIZE;
	s->data_size = (size_t)s->hdr->data_size;
}

static int reserve(int fd, uint64_t total)
{
	int rc = posix_fallocate(fd, 0, (off_t)total);

	if (rc == EOPNOTSUPP || rc == EINVAL)
		rc = ftruncate(fd, (off_t)total) ? errno : 0;
	return -rc;
}

/* Directory part of a path ("." if none), malloc'd. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/*
 * An unnamed file in dir: O_TMPFILE where the file system has it, so that
 * a creator killed before linking leaves nothing at all. Otherwise a hidden
 * name created O_EXCL|O_NOFOLLOW (*tmp is set; gc removes leftovers whose
 * CREATOR lock is free).
 */
static int open_unnamed(const char *dir, mode_t mode, char **tmp)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	*tmp = NULL;
	if (fd < 0 &&
	    (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		for (int tries = 0; tries < 16 && fd < 0; tries++) {
			free(*tmp);
			if (asprintf(tmp, "%s/.shmkit-tmp.%d.%lx", dir,
				     (int)getpid(),
				     (unsigned long)shmkit__now_ns()) < 0) {
				*tmp = NULL;
				return -ENOMEM;
			}
			fd = open(*tmp,
				  O_CREAT | O_EXCL | O_NOFOLLOW | O_RDWR |
					  O_CLOEXEC,
				  0600);
			if (fd < 0 && errno != EEXIST)
				break;
		}
	}
	if (fd < 0) {
		int e = errno;

		free(*tmp);
		*tmp = NULL;
		return -e;
	}
	/* Mode set explicitly so the umask has no say. */
	if (fchmod(fd, mode) < 0) {
		int e = errno;

		if (*tmp)
			unlink(*tmp);
		close(fd);
		free(*tmp);
		*tmp = NULL;
		return -e;
	}
	return fd;
}

/* Give the unnamed file its name; fails with -EEXIST if anything is there
 * (a file, a symlink, a FIFO: linkat never follows the destination). */
static int link_name(int fd, const char *tmp, const char *path)
{
	char proc[64];

	if (tmp) {
		if (link(tmp, path) < 0)
			return -errno;
		unlink(tmp);
		return 0;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != ENOENT)
		return -errno;
	/* No /proc: needs CAP_DAC_READ_SEARCH. */
	if (linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) < 0)
		return -errno;
	return 0;
}

static int create_at_path(const char *path, size_t size_bytes,
			  enum shmkit_seg_kind kind,
			  const struct shmkit_seg_opts *opts,
			  struct shmkit_seg **out)
{
	struct shmkit__opts o;
	struct shmkit_seg *s;
	struct stat st;
	uint64_t total;
	char *dir, *tmp = NULL;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	rc = shmkit__opts_get(opts, &o);
	if (rc < 0)
		return rc;
	if (o.flags & (SHMKIT_SEG_RDONLY | SHMKIT_SEG_ANY_OWNER))
		return -EINVAL;
	rc = size_total(size_bytes, &total);
	if (rc < 0)
		return rc;
	s = seg_alloc(kind);
	if (!s)
		return -ENOMEM;
	s->path = strdup(path);
	dir = dir_of(path);
	if (!s->path || !dir) {
		free(dir);
		seg_unmap(s);
		return -ENOMEM;
	}
	rc = open_unnamed(dir, (mode_t)o.mode, &tmp);
	free(dir);
	if (rc < 0)
		goto fail;
	s->fd = rc;
	rc = shmkit__ofd_trylock(s->fd, SHMKIT_LOCK_CREATOR, F_WRLCK);
	if (rc < 0)
		goto fail;
	SHMKIT_CRASH_POINT("seg.create.opened");
	rc = reserve(s->fd, total);
	if (rc < 0)
		goto fail;
	rc = seg_map(s, (size_t)total);
	if (rc < 0)
		goto fail;
	hdr_build(s->hdr, total, kind, o.flags);
	seg_set_data(s);
	rc = seg_attach(s);
	if (rc < 0)
		goto fail;
	SHMKIT_CRASH_POINT("seg.create.ready");
	rc = link_name(s->fd, tmp, path);
	if (rc < 0)
		goto fail;
	SHMKIT_CRASH_POINT("seg.create.linked");
	shmkit__ofd_unlock(s->fd, SHMKIT_LOCK_CREATOR);
	if (fstat(s->fd, &st) < 0) {
		rc = -errno;
		unlink(path);
		goto fail;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	free(tmp);
	*out = s;
	return 0;
fail:
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	seg_unmap(s);
	return rc;
}

int shmkit_seg_create(const char *name, size_t size_bytes,
		      const struct shmkit_seg_opts *opts,
		      struct shmkit_seg **out)
{
	char *path;
	int rc = shmkit__name_path(name, &path);

	if (rc < 0)
		return rc;
	rc = create_at_path(path, size_bytes, SHMKIT_SEG_NAMED, opts, out);
	free(path);
	return rc;
}

int shmkit_seg_create_file(const char *path, size_t size_bytes,
			   const struct shmkit_seg_opts *opts,
			   struct shmkit_seg **out)
{
	if (!path || !*path || strlen(path) >= PATH_MAX)
		return -EINVAL;
	return create_at_path(path, size_bytes, SHMKIT_SEG_FILE, opts, out);
}

/* now + timeout_ns, saturated: the longest timeout means "wait". */
static uint64_t deadline_after(uint64_t timeout_ns)
{
	uint64_t now = shmkit__now_ns();

	return timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
}

/*
 * Wait until the header says READY. A segment still BUILDING is normal only
 * for a moment (every creation path publishes READY before the name); the
 * creator holds the CREATOR lock until then, so a free CREATOR lock on a
 * BUILDING segment means the creator died mid-way.
 */
static int wait_ready(struct shmkit_seg *s, uint64_t timeout_ns)
{
	uint64_t deadline = deadline_after(timeout_ns);
	uint64_t nap = 1000;

	for (;;) {
		/* Pairs with the release store of READY in hdr_build(). */
		uint32_t st = load_acquire(&s->hdr->init_state);

		if (st == SHMKIT_INIT_READY)
			return 0;
		if (st != SHMKIT_INIT_BUILDING)
			return -EBADMSG;
		int held =
			shmkit__ofd_held(s->fd, SHMKIT_LOCK_CREATOR, F_WRLCK);

		if (held < 0)
			return held;
		if (!held) {
			/* READY may have landed just before the unlock. */
			st = load_acquire(&s->hdr->init_state);
			if (st == SHMKIT_INIT_READY)
				return 0;
			return -ENOTRECOVERABLE;
		}
		if (shmkit__now_ns() >= deadline)
			return -ETIMEDOUT;
		shmkit__sleep_ns(nap);
		if (nap < 10000000)
			nap *= 2;
	}
}

/*
 * Check a descriptor that claims to be a segment and map it: regular file,
 * owner, mode, then magic and layout version through pread (nothing mapped
 * yet, so a foreign or truncated file cannot fault us), then map the size
 * fstat reports and validate the header against it.
 */
static int seg_adopt(struct shmkit_seg *s, const struct shmkit__opts *o)
{
	struct shmkit_hdr img;
	struct shmkit__hdr_view v;
	struct stat st;
	ssize_t n;
	int rc;

	if (fstat(s->fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EACCES;
	if (!(o->flags & SHMKIT_SEG_ANY_OWNER) && st.st_uid != geteuid())
		return -EACCES;
	if ((st.st_mode & 0777u) & ~o->mode)
		return -EACCES;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	memset(&img, 0, sizeof(img));
	n = pread(s->fd, &img, sizeof(img), 0);
	if (n < 0)
		return -errno;
	rc = shmkit__hdr_check(&img, (uint64_t)st.st_size, &v);
	if (rc < 0)
		return rc;
	if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX)
		return -EBADMSG;
	rc = seg_map(s, (size_t)st.st_size);
	if (rc < 0)
		return rc;
	rc = wait_ready(s, o->open_timeout_ns);
	if (rc < 0)
		return rc;
	/* Re-validate from the mapping now that READY is visible. */
	rc = shmkit__hdr_check(s->hdr, s->map_size, &v);
	if (rc < 0)
		return rc;
	/* The kind in the header is where the segment was born; a memfd's
	 * image copied under a name is still a valid segment. */
	s->flags = v.flags;
	s->data = (char *)s->hdr + SHMKIT_HDR_SIZE;
	s->data_size = (size_t)v.data_size;
	return 0;
}

/* Does the name still lead to the file this handle holds? */
static int name_is_ours(const struct shmkit_seg *s)
{
	struct stat st;

	if (lstat(s->path, &st) < 0)
		return 0;
	return st.st_dev == s->dev && st.st_ino == s->ino;
}

static int open_at_path(const char *path, enum shmkit_seg_kind kind,
			const struct shmkit_seg_opts *opts,
			struct shmkit_seg **out)
{
	struct shmkit__opts o;
	uint64_t deadline;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	rc = shmkit__opts_get(opts, &o);
	if (rc < 0)
		return rc;
	if (o.flags & SHMKIT_SEG_SCOPED)
		return -EINVAL; /* lifetime is chosen at creation */
	deadline = deadline_after(o.open_timeout_ns);
	for (;;) {
		struct shmkit_seg *s = seg_alloc(kind);

		if (!s)
			return -ENOMEM;
		s->rdonly = !!(o.flags & SHMKIT_SEG_RDONLY);
		s->path = strdup(path);
		if (!s->path) {
			seg_unmap(s);
			return -ENOMEM;
		}
		s->fd = open(path, (s->rdonly ? O_RDONLY : O_RDWR) |
					   O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
					   O_NOCTTY);
		if (s->fd < 0) {
			/* A directory is refused like any other non-file. */
			rc = errno == EISDIR ? -EACCES : -errno;
			seg_unmap(s);
			return rc;
		}
		rc = seg_adopt(s, &o);
		if (rc == 0)
			rc = seg_attach(s);
		/*
		 * The name must still be ours once USERS is read-locked: a
		 * scoped segment's last user (or gc) unlinks only while
		 * holding USERS for writing, so either we see the unlink
		 * here or it sees our lock and leaves the name alone.
		 */
		if (rc == 0 && !name_is_ours(s))
			rc = -EAGAIN;
		if (rc == 0) {
			*out = s;
			return 0;
		}
		seg_unmap(s);
		if (rc != -EAGAIN)
			return rc;
		if (shmkit__now_ns() >= deadline)
			return -ETIMEDOUT;
		shmkit__sleep_ns(100000);
	}
}

int shmkit_seg_open(const char *name, const struct shmkit_seg_opts *opts,
		    struct shmkit_seg **out)
{
	char *path;
	int rc = shmkit__name_path(name, &path);

	if (rc < 0)
		return rc;
	rc = open_at_path(path, SHMKIT_SEG_NAMED, opts, out);
	free(path);
	return rc;
}

int shmkit_seg_open_file(const char *path, const struct shmkit_seg_opts *opts,
			 struct shmkit_seg **out)
{
	if (!path || !*path || strlen(path) >= PATH_MAX)
		return -EINVAL;
	return open_at_path(path, SHMKIT_SEG_FILE, opts, out);
}

int shmkit_seg_unlink(const char *name)
{
	char *path;
	int rc = shmkit__name_path(name, &path);

	if (rc < 0)
		return rc;
	rc = unlink(path) < 0 ? -errno : 0;
	free(path);
	return rc;
}

int shmkit__seg_from_fd(int fd, enum shmkit_seg_kind kind,
			const struct shmkit_seg_opts *opts,
			struct shmkit_seg **out)
{
	struct shmkit__opts o;
	struct shmkit_seg *s;
	int rc = shmkit__opts_get(opts, &o);

	if (rc < 0) {
		close(fd);
		return rc;
	}
	o.flags |= SHMKIT_SEG_ANY_OWNER; /* credentials checked by caller */
	o.mode = 0777;			 /* a memfd's mode is not its access */
	s = seg_alloc(kind);
	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	s->fd = fd;
	rc = seg_adopt(s, &o);
	if (rc == 0)
		rc = seg_attach(s);
	if (rc < 0) {
		seg_unmap(s);
		return rc;
	}
	*out = s;
	return 0;
}

int shmkit_seg_create_anon(size_t size_bytes,
			   const struct shmkit_seg_opts *opts,
			   struct shmkit_seg **out)
{
	struct shmkit__opts o;
	struct shmkit_seg *s;
	uint64_t total;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	rc = shmkit__opts_get(opts, &o);
	if (rc < 0)
		return rc;
	if (o.flags)
		return -EINVAL;
	rc = size_total(size_bytes, &total);
	if (rc < 0)
		return rc;
	s = seg_alloc(SHMKIT_SEG_ANON);
	if (!s)
		return -ENOMEM;
	rc = seg_map(s, (size_t)total);
	if (rc < 0) {
		seg_unmap(s);
		return rc;
	}
	/* Fault every page in now: out of memory is an error here, not a
	 * SIGBUS in a child later. */
	if (madvise(s->hdr, (size_t)total, MADV_POPULATE_WRITE) < 0 &&
	    errno != EINVAL) {
		rc = errno == EFAULT || errno == ENOMEM ? -ENOSPC : -errno;
		seg_unmap(s);
		return rc;
	}
	hdr_build(s->hdr, total, SHMKIT_SEG_ANON, 0);
	seg_set_data(s);
	*out = s;
	return 0;
}

int shmkit_seg_create_memfd(const char *debug_name, size_t size_bytes,
			    const struct shmkit_seg_opts *opts,
			    struct shmkit_seg **out)
{
	struct shmkit__opts o;
	struct shmkit_seg *s;
	uint64_t total;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	rc = shmkit__opts_get(opts, &o);
	if (rc < 0)
		return rc;
	if (o.flags)
		return -EINVAL;
	rc = size_total(size_bytes, &total);
	if (rc < 0)
		return rc;
	s = seg_alloc(SHMKIT_SEG_MEMFD);
	if (!s)
		return -ENOMEM;
	s->fd = memfd_create(debug_name && *debug_name ? debug_name : "shmkit",
			     MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (s->fd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = reserve(s->fd, total);
	if (rc < 0)
		goto fail;
	/* Nobody holding the descriptor may resize it under a peer. */
	if (fcntl(s->fd, F_ADD_SEALS,
		  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = seg_map(s, (size_t)total);
	if (rc < 0)
		goto fail;
	hdr_build(s->hdr, total, SHMKIT_SEG_MEMFD, 0);
	seg_set_data(s);
	rc = seg_attach(s);
	if (rc < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	seg_unmap(s);
	return rc;
}

void shmkit_seg_close(struct shmkit_seg *s)
{
	if (!s)
		return;
	/*
	 * A forked child shares the parent's open file description and so
	 * its locks: it must neither convert nor drop them. It only unmaps.
	 */
	if (s->pid == getpid() && s->fd >= 0 && s->users_lock &&
	    (s->flags & SHMKIT_HF_SCOPED) && s->path) {
		/*
		 * The write lock is granted only if no other handle holds
		 * USERS: we are the last user. Drop our read lock first:
		 * converting it in place would let two handles closing at
		 * once each see the other's read lock, and neither would
		 * remove the segment.
		 */
		shmkit__ofd_unlock(s->fd, SHMKIT_LOCK_USERS);
		if (shmkit__ofd_trylock(s->fd, SHMKIT_LOCK_USERS, F_WRLCK) ==
		    0) {
			SHMKIT_CRASH_POINT("seg.close.last");
			if (name_is_ours(s))
				unlink(s->path);
		}
	}
	if (s->pid == getpid() && s->slot >= 0 && !s->rdonly)
		store_relaxed(&s->hdr->slots[s->slot].pid, 0);
	seg_unmap(s);
}

int shmkit_seg_flush(struct shmkit_seg *s)
{
	if (!s)
		return -EINVAL;
	if (s->kind != SHMKIT_SEG_FILE || s->rdonly)
		return 0;
	if (s->pid != getpid())
		return -ECHILD;
	if (msync(s->hdr, s->map_size, MS_SYNC) < 0)
		return -EIO;
	if (fsync(s->fd) < 0)
		return -EIO;
	return 0;
}

int shmkit_seg_check(const struct shmkit_seg *s)
{
	struct stat st;

	if (!s)
		return -EINVAL;
	if (shmkit__guard_hit(s->guard))
		return -EBADMSG;
	if (s->fd >= 0 && s->pid != getpid())
		return -ECHILD;
	if (s->fd >= 0 && fstat(s->fd, &st) == 0 &&
	    (uint64_t)st.st_size < (uint64_t)s->map_size)
		return -EBADMSG;
	return 0;
}

void *shmkit_seg_base(const struct shmkit_seg *s)
{
	return s ? s->data : NULL;
}

size_t shmkit_seg_size(const struct shmkit_seg *s)
{
	return s ? s->data_size : 0;
}

int shmkit_seg_fd(const struct shmkit_seg *s)
{
	if (!s)
		return -EINVAL;
	if (s->fd >= 0 && s->pid != getpid())
		return -ECHILD;
	return s->fd >= 0 ? s->fd : -EBADF;
}

enum shmkit_seg_kind shmkit_seg_kind(const struct shmkit_seg *s)
{
	return s ? s->kind : (enum shmkit_seg_kind)0;
}
