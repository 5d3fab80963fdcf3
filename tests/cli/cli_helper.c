/* SPDX-License-Identifier: MIT */
/*
 * Helper process for the shell tests of the shmkit tool: attaches to or
 * creates segments and pauses until killed (so a test can SIGKILL it), or
 * plants damaged segments (incomplete, corrupt, other layout version).
 */
#define _GNU_SOURCE
#include <shmkit.h>

#include "layout.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static int usage(void)
{
	fputs("usage: cli_helper create-scoped NAME SIZE | attach NAME |\n"
	      "       incomplete NAME | corrupt NAME | version NAME\n"
	      "create-scoped and attach print 'ready PID' and pause until\n"
	      "killed (at most 120 s).\n",
	      stderr);
	return 2;
}

static int fail(const char *what, const char *name, int rc)
{
	fprintf(stderr, "cli_helper: %s '%s': %s\n", what, name,
		shmkit_strerror(rc));
	return 1;
}

/* Announce readiness and wait to be killed; never outlive the test. */
static int hold(void) __attribute__((noreturn));
static int hold(void)
{
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	alarm(120);
	for (;;)
		pause();
}

/* Overwrite bytes of a (closed) segment file in place. */
static int patch(const char *name, off_t off, const void *buf, size_t len)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", shmkit_shm_dir(), name);
	fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || pwrite(fd, buf, len, off) != (ssize_t)len) {
		perror(path);
		return 1;
	}
	close(fd);
	return 0;
}

static int plant(const char *how, const char *name)
{
	struct shmkit_seg *seg;
	int rc = shmkit_seg_create(name, 4096, NULL, &seg);

	if (rc < 0)
		return fail("create", name, rc);
	shmkit_seg_close(seg);
	if (strcmp(how, "incomplete") == 0) {
		/* As if the creator died before publishing READY. */
		uint32_t st = SHMKIT_INIT_BUILDING;

		return patch(name, offsetof(struct shmkit_hdr, init_state), &st,
			     sizeof(st));
	}
	if (strcmp(how, "corrupt") == 0) {
		uint32_t hs = 12345; /* not the header size */

		return patch(name, offsetof(struct shmkit_hdr, hdr_size), &hs,
			     sizeof(hs));
	}
	uint32_t v = SHMKIT_LAYOUT_VERSION + 100;

	return patch(name, offsetof(struct shmkit_hdr, layout_version), &v,
		     sizeof(v));
}

int main(int argc, char **argv)
{
	struct shmkit_seg_opts o;
	struct shmkit_seg *seg;
	int rc;

	/* Die with the test script that started us. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		return 1;
	if (argc < 3)
		return usage();
	memset(&o, 0, sizeof(o));
	o.sz = sizeof(o);
	if (strcmp(argv[1], "create-scoped") == 0 && argc == 4) {
		o.flags = SHMKIT_SEG_SCOPED;
		rc = shmkit_seg_create(argv[2], strtoul(argv[3], NULL, 0), &o,
				       &seg);
		if (rc < 0)
			return fail("create", argv[2], rc);
		return hold();
	}
	if (strcmp(argv[1], "attach") == 0 && argc == 3) {
		o.mode = 0777; /* accept any mode the test chose */
		rc = shmkit_seg_open(argv[2], &o, &seg);
		if (rc < 0)
			return fail("open", argv[2], rc);
		return hold();
	}
	if (argc == 3 && (strcmp(argv[1], "incomplete") == 0 ||
			  strcmp(argv[1], "corrupt") == 0 ||
			  strcmp(argv[1], "version") == 0))
		return plant(argv[1], argv[2]);
	return usage();
}
