/* SPDX-License-Identifier: MIT */
/*
 * Install test: a program built against the installed <shmkit.h> and
 * libshmkit (pkg-config or find_package). Uses only the public API: a named
 * segment seen through two handles, and an anonymous one.
 */
#define _GNU_SOURCE
#include <shmkit.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what, int rc)
{
	fprintf(stderr, "consumer: %s: %s\n", what, shmkit_strerror(rc));
	return 1;
}

int main(void)
{
	struct shmkit_seg_opts opts;
	struct shmkit_seg *a, *b;
	struct timespec ts;
	char name[64];
	int rc;

	printf("shmkit %s (header %s), layout %u\n", shmkit_version(),
	       SHMKIT_VERSION_STRING, (unsigned)shmkit_layout_version());
	if (strcmp(shmkit_version(), SHMKIT_VERSION_STRING) != 0) {
		fprintf(stderr,
			"consumer: library and header versions differ\n");
		return 1;
	}

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(name, sizeof(name), "shmkit-install-c-%ld-%ld", (long)getpid(),
		 (long)ts.tv_nsec);
	memset(&opts, 0, sizeof(opts));
	opts.sz = sizeof(opts);
	opts.mode = 0600;
	rc = shmkit_seg_create(name, 4096, &opts, &a);
	if (rc < 0)
		return fail("create", rc);
	rc = shmkit_seg_open(name, NULL, &b);
	if (rc < 0) {
		shmkit_seg_unlink(name);
		shmkit_seg_close(a);
		return fail("open", rc);
	}
	strcpy((char *)shmkit_seg_base(a), "hello from C");
	rc = strcmp((const char *)shmkit_seg_base(b), "hello from C") == 0 &&
	     shmkit_seg_size(b) >= 4096 &&
	     shmkit_seg_kind(b) == SHMKIT_SEG_NAMED;
	shmkit_seg_close(b);
	shmkit_seg_close(a);
	if (!rc) {
		shmkit_seg_unlink(name);
		fprintf(stderr,
			"consumer: second handle does not see the data\n");
		return 1;
	}
	rc = shmkit_seg_unlink(name);
	if (rc < 0)
		return fail("unlink", rc);
	rc = shmkit_seg_open(name, NULL, &b);
	if (rc != -ENOENT) {
		fprintf(stderr, "consumer: open after unlink gave %d\n", rc);
		return 1;
	}

	rc = shmkit_seg_create_anon(100, NULL, &a);
	if (rc < 0)
		return fail("create_anon", rc);
	memset(shmkit_seg_base(a), 0x5a, shmkit_seg_size(a));
	shmkit_seg_close(a);

	printf("consumer (C): named segment %s created, shared, removed\n",
	       name);
	return 0;
}
