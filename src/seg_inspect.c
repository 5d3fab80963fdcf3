/* SPDX-License-Identifier: MIT */
/*
 * Looking at segments without attaching: stat, list and gc. Everything is
 * read with pread (never mapped) and liveness is asked of the kernel's OFD
 * locks, so inspecting a corrupt, truncated or foreign file is harmless.
 */
#define _GNU_SOURCE
#include "segment.h"

#include "platform.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Static_assert(SHMKIT_SEG_MAX_USERS == SHMKIT_NSLOTS, "one user per slot");

static void info_from_stat(struct shmkit_seg_info *in, const struct stat *st)
{
	in->file_size = (uint64_t)st->st_size;
	in->mode = (uint32_t)(st->st_mode & 07777u);
	in->owner_uid = (uint32_t)st->st_uid;
}

/*
 * Fill *in from an open descriptor of the file. fd is a description of
 * our own: locks held through any other description count as users.
 */
static int inspect_fd(int fd, struct shmkit_seg_info *in)
{
	struct shmkit_hdr img;
	struct shmkit__hdr_view v;
	struct stat st;
	ssize_t n;
	int rc, held;

	if (fstat(fd, &st) < 0)
		return -errno;
	info_from_stat(in, &st);
	if (!S_ISREG(st.st_mode)) {
		in->state = SHMKIT_STATE_FOREIGN;
		return 0;
	}
	memset(&img, 0, sizeof(img));
	n = pread(fd, &img, sizeof(img), 0);
	if (n < 0)
		return -errno;
	rc = shmkit__hdr_check(&img, (uint64_t)st.st_size, &v);
	in->layout_version = v.layout_version;
	if (rc == -EPROTO) {
		in->state = v.layout_version ? SHMKIT_STATE_VERSION
					     : SHMKIT_STATE_FOREIGN;
		return 0;
	}
	if (rc < 0) {
		in->state = SHMKIT_STATE_CORRUPT;
		return 0;
	}
	in->kind =
		(enum shmkit_seg_kind)(v.flags >> SHMKIT_HF_KIND_SHIFT & 0xffu);
	in->flags = v.flags & SHMKIT_HF_SCOPED ? SHMKIT_SEG_SCOPED : 0;
	in->creator_uid = v.creator_uid;
	in->creator_pid = v.creator_pid;
	in->created_realtime_ns = v.created_ns;
	if (v.init_state == SHMKIT_INIT_BUILDING) {
		held = shmkit__ofd_held(fd, SHMKIT_LOCK_CREATOR, F_WRLCK);
		if (held < 0)
			return held;
		in->state = held ? SHMKIT_STATE_CREATING
				 : SHMKIT_STATE_INCOMPLETE;
		return 0;
	}
	in->data_size = v.data_size;
	in->dir_capacity = SHMKIT_DIR_CAP;
	for (unsigned i = 0; i < SHMKIT_DIR_CAP; i++)
		if (img.dir[i].state != 0)
			in->dir_used++;
	for (unsigned i = 0; i < SHMKIT_NSLOTS; i++) {
		held = shmkit__ofd_held(fd, SHMKIT_LOCK_SLOT0 + i, F_WRLCK);
		if (held < 0)
			return held;
		if (!held)
			continue;
		struct shmkit_seg_user *u = &in->users[in->nusers++];

		/* The image was read before this check: re-read the slot
		 * so a fresh attachment shows its own pid. */
		struct shmkit_slot sl;

		if (pread(fd, &sl, sizeof(sl),
			  (off_t)(offsetof(struct shmkit_hdr, slots) +
				  i * sizeof(sl))) != (ssize_t)sizeof(sl))
			memset(&sl, 0, sizeof(sl));
		u->pid = sl.pid;
		u->uid = sl.uid;
		u->attach_realtime_ns = sl.attach_ns;
	}
	held = shmkit__ofd_held(fd, SHMKIT_LOCK_USERS, F_WRLCK);
	if (held < 0)
		return held;
	/* Read-only handles and handles past the slot table hold USERS but
	 * no slot: at least one exists if USERS is held and no slot is. */
	in->users_untracked = held && in->nusers == 0 ? 1 : 0;
	if ((in->flags & SHMKIT_SEG_SCOPED) && !held)
		in->state = SHMKIT_STATE_STALE;
	else
		in->state = SHMKIT_STATE_OK;
	return 0;
}

static int info_begin(struct shmkit_seg_info *info, struct shmkit_seg_info *in)
{
	if (!info || info->sz < offsetof(struct shmkit_seg_info, users))
		return -EINVAL;
	memset(in, 0, sizeof(*in));
	in->sz = sizeof(*in);
	return 0;
}

static void info_end(struct shmkit_seg_info *info,
		     const struct shmkit_seg_info *in)
{
	size_t n = info->sz < sizeof(*in) ? info->sz : sizeof(*in);

	memcpy((char *)info + sizeof(info->sz),
	       (const char *)in + sizeof(in->sz), n - sizeof(in->sz));
}

static int stat_path(const char *path, const char *name,
		     enum shmkit_seg_kind kind, struct shmkit_seg_info *info)
{
	struct shmkit_seg_info in;
	int fd, rc = info_begin(info, &in);

	if (rc < 0)
		return rc;
	if (name)
		snprintf(in.name, sizeof(in.name), "%s", name);
	snprintf(in.path, sizeof(in.path), "%s", path);
	in.kind = kind;
	fd = open(path,
		  O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	rc = inspect_fd(fd, &in);
	close(fd);
	if (rc < 0)
		return rc;
	info_end(info, &in);
	return 0;
}

int shmkit_seg_stat(const char *name, struct shmkit_seg_info *info)
{
	const char *base;
	char *path;
	int rc = shmkit__name_check(name, &base);

	if (rc < 0)
		return rc;
	rc = shmkit__name_path(name, &path);
	if (rc < 0)
		return rc;
	rc = stat_path(path, base, SHMKIT_SEG_NAMED, info);
	free(path);
	return rc;
}

int shmkit_seg_stat_file(const char *path, struct shmkit_seg_info *info)
{
	if (!path || !*path)
		return -EINVAL;
	return stat_path(path, NULL, SHMKIT_SEG_FILE, info);
}

int shmkit_seg_info(const struct shmkit_seg *seg, struct shmkit_seg_info *info)
{
	struct shmkit_seg_info in;
	char proc[64];
	int fd, rc = info_begin(info, &in);

	if (rc < 0)
		return rc;
	if (!seg)
		return -EINVAL;
	in.kind = seg->kind;
	if (seg->path) {
		snprintf(in.path, sizeof(in.path), "%s", seg->path);
		if (seg->kind == SHMKIT_SEG_NAMED) {
			const char *slash = strrchr(seg->path, '/');

			snprintf(in.name, sizeof(in.name), "%s",
				 slash ? slash + 1 : seg->path);
		}
	}
	if (seg->fd < 0) {
		/* Anonymous: no file, no attachment locks; the header only. */
		struct shmkit__hdr_view v;

		rc = shmkit__hdr_check(seg->hdr, seg->map_size, &v);
		in.state = rc < 0 ? SHMKIT_STATE_CORRUPT : SHMKIT_STATE_OK;
		in.file_size = seg->map_size;
		in.data_size = seg->data_size;
		in.layout_version = v.layout_version;
		in.creator_uid = v.creator_uid;
		in.creator_pid = v.creator_pid;
		in.created_realtime_ns = v.created_ns;
		info_end(info, &in);
		return 0;
	}
	if (seg->pid != getpid())
		return -ECHILD; /* the descriptor was dropped at fork */
	/* A description of our own, so that this handle's locks show. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", seg->fd);
	fd = open(proc, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = inspect_fd(fd, &in);
	close(fd);
	if (rc < 0)
		return rc;
	info_end(info, &in);
	return 0;
}

/*
 * Leftovers of the creation fallback for file systems without O_TMPFILE
 * (segment.c: open_unnamed): ".shmkit-tmp.PID.N", write-locked on CREATOR
 * while its creator lives. Never on tmpfs, which has O_TMPFILE.
 */
#define TMP_PREFIX ".shmkit-tmp."
#define TMP_MIN_AGE_S 10 /* younger ones may not be locked yet */

static int is_tmp_name(const char *name)
{
	return strncmp(name, TMP_PREFIX, sizeof(TMP_PREFIX) - 1) == 0;
}

/*
 * A temporary is INCOMPLETE (its creator died) only if nobody holds
 * CREATOR and it is older than TMP_MIN_AGE_S: the creator takes the lock
 * just after creating the file, and must not be declared dead in between.
 */
static int stat_tmp(const char *path, const char *name,
		    struct shmkit_seg_info *in)
{
	struct stat st;
	int fd, held;

	memset(in, 0, sizeof(*in));
	in->sz = sizeof(*in);
	snprintf(in->name, sizeof(in->name), "%.*s", (int)sizeof(in->name) - 1,
		 name);
	snprintf(in->path, sizeof(in->path), "%s", path);
	in->kind = SHMKIT_SEG_NAMED;
	fd = open(path,
		  O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	info_from_stat(in, &st);
	held = shmkit__ofd_held(fd, SHMKIT_LOCK_CREATOR, F_WRLCK);
	close(fd);
	if (held < 0)
		return held;
	in->state = held || st.st_mtime + TMP_MIN_AGE_S > time(NULL)
			    ? SHMKIT_STATE_CREATING
			    : SHMKIT_STATE_INCOMPLETE;
	return 0;
}

int shmkit_seg_list(int (*fn)(const struct shmkit_seg_info *info, void *arg),
		    void *arg)
{
	const char *dir = shmkit_shm_dir();
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (!fn)
		return -EINVAL;
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		struct shmkit_seg_info *in;
		char *path;
		int err;

		if (de->d_name[0] == '.' && !is_tmp_name(de->d_name))
			continue; /* ".", ".." and other hidden files */
		in = calloc(1, sizeof(*in));
		if (!in || asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
			free(in);
			rc = -ENOMEM;
			break;
		}
		in->sz = sizeof(*in);
		if (is_tmp_name(de->d_name))
			err = stat_tmp(path, de->d_name, in);
		else if (shmkit__name_check(de->d_name, NULL) < 0)
			err = -EINVAL;
		else
			err = stat_path(path, de->d_name, SHMKIT_SEG_NAMED, in);
		if (err < 0) {
			/* A name shmkit never makes, or a file we may not
			 * read: describe it from lstat. */
			struct stat st;

			memset(in, 0, sizeof(*in));
			in->sz = sizeof(*in);
			snprintf(in->name, sizeof(in->name), "%.*s",
				 (int)sizeof(in->name) - 1, de->d_name);
			snprintf(in->path, sizeof(in->path), "%s", path);
			in->state = err == -EACCES || err == -EPERM
					    ? SHMKIT_STATE_DENIED
					    : SHMKIT_STATE_FOREIGN;
			if (lstat(path, &st) == 0)
				info_from_stat(in, &st);
		}
		free(path);
		rc = fn(in, arg);
		free(in);
		if (rc)
			break;
	}
	closedir(d);
	return rc;
}

int shmkit_seg_gc(const char *name, int dry_run)
{
	struct shmkit_seg_info in;
	struct stat st, now;
	char *path;
	int fd, rc, removed = 0, tmp = 0;

	if (name && is_tmp_name(name) && !strchr(name, '/'))
		rc = asprintf(&path, "%s/%s", shmkit_shm_dir(), name) < 0
			     ? -ENOMEM
			     : 0;
	else
		rc = shmkit__name_path(name, &path);
	if (rc < 0)
		return rc;
	fd = open(path,
		  O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		free(path);
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = 0;
		goto out;
	}
	memset(&in, 0, sizeof(in));
	if (is_tmp_name(name)) {
		rc = stat_tmp(path, name, &in);
		tmp = 1;
	} else {
		rc = inspect_fd(fd, &in);
	}
	if (rc < 0)
		goto out;
	/*
	 * Take the lock that proves the state before removing: USERS for
	 * writing (nobody attached, and openers back off and re-check the
	 * name), or CREATOR (the creator is gone). Then the name must still
	 * lead to this file.
	 */
	if (in.state == SHMKIT_STATE_STALE)
		rc = shmkit__ofd_trylock(fd, SHMKIT_LOCK_USERS, F_WRLCK);
	else if (in.state == SHMKIT_STATE_INCOMPLETE)
		rc = shmkit__ofd_trylock(fd, SHMKIT_LOCK_CREATOR, F_WRLCK);
	else
		rc = -EAGAIN;
	if (rc == -EAGAIN) {
		rc = 0;
		goto out;
	}
	if (rc < 0)
		goto out;
	if (in.state == SHMKIT_STATE_INCOMPLETE && !tmp) {
		/* The creator may have published READY just before dying or
		 * before our lock: only a segment still BUILDING goes. */
		uint32_t st_now = 0;

		if (pread(fd, &st_now, sizeof(st_now),
			  offsetof(struct shmkit_hdr, init_state)) !=
			    (ssize_t)sizeof(st_now) ||
		    st_now != SHMKIT_INIT_BUILDING) {
			rc = 0;
			goto out;
		}
	}
	if (lstat(path, &now) < 0 || now.st_dev != st.st_dev ||
	    now.st_ino != st.st_ino) {
		rc = 0;
		goto out;
	}
	if (!dry_run && unlink(path) < 0) {
		rc = -errno;
		goto out;
	}
	removed = 1;
	rc = 0;
out:
	close(fd);
	free(path);
	return rc < 0 ? rc : removed;
}
