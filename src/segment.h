/* SPDX-License-Identifier: MIT */
/*
 * The segment handle, shared by segment.c (create/open/close of every kind),
 * seg_inspect.c (stat, list, gc) and seg_memfd.c (passing over sockets).
 */
#ifndef SHMKIT_SEGMENT_H
#define SHMKIT_SEGMENT_H

#include "layout.h"
#include "shmkit.h"

#include <sys/types.h>

struct shmkit_seg {
	struct shmkit_hdr *hdr; /* mapping start */
	size_t map_size;	/* bytes mapped = file size from fstat */
	void *data;		/* hdr + data_off */
	size_t data_size;	/* validated copy of hdr->data_size */
	int fd;			/* -1 for anonymous segments */
	enum shmkit_seg_kind kind;
	uint32_t flags; /* validated copy of hdr->flags */
	int guard;	/* SIGBUS guard registry index, -1 if unguarded */
	int slot;	/* attachment slot, -1 if none */
	int users_lock; /* 1 if this handle holds the USERS read lock */
	int rdonly;
	pid_t pid; /* process that made the handle (fork check) */
	dev_t dev; /* identity of the file, to compare with the name */
	ino_t ino;
	char *path; /* named and file-backed: full path (malloc) */
};

/* Header fields loaded once and validated (see shmkit__hdr_check). */
struct shmkit__hdr_view {
	uint32_t layout_version;
	uint32_t flags;
	uint32_t creator_uid;
	int32_t creator_pid;
	uint32_t init_state;
	uint64_t created_ns;
	uint64_t total_size;
	uint64_t data_size;
};

/*
 * Check a header image (at least sizeof(struct shmkit_hdr) bytes, or
 * file_size bytes if fewer) against the file size from fstat. Fills *v.
 * Returns 0, -EPROTO (not shmkit or other layout version; v->layout_version
 * says which), -EBADMSG (shmkit magic, inconsistent fields).
 */
int shmkit__hdr_check(const struct shmkit_hdr *img, uint64_t file_size,
		      struct shmkit__hdr_view *v);

/* Name validation and the path of a named segment (malloc'd). */
int shmkit__name_check(const char *name, const char **base);
int shmkit__name_path(const char *name, char **path);

/* Attach bookkeeping on an open descriptor (see segment.c). */
/* Adopt a received descriptor (takes ownership of fd, even on error). */
int shmkit__seg_from_fd(int fd, enum shmkit_seg_kind kind,
			const struct shmkit_seg_opts *opts,
			struct shmkit_seg **out);

/* Copy of the caller's options with defaults applied. */
struct shmkit__opts {
	uint32_t mode;
	uint32_t flags;
	uint64_t open_timeout_ns;
};
int shmkit__opts_get(const struct shmkit_seg_opts *in, struct shmkit__opts *o);

#endif /* SHMKIT_SEGMENT_H */
