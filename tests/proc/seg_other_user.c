/* SPDX-License-Identifier: MIT */
/*
 * A segment owned by another user cannot be opened by an unprivileged user:
 * the test (root) creates segments, a helper drops to uid/gid 65534 and
 * tries. The owner check is the library's own (not only the kernel's file
 * permissions): a 0644 segment readable by everyone is still refused
 * unless SHMKIT_SEG_ANY_OWNER is given. Skipped unless run as root.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <grp.h>
#include <shmkit.h>
#include <unistd.h>

#define NOBODY 65534

/* argv: name, expected errno (0: success), then flags: any, ro, wide. */
static int role_try(int argc, char **argv)
{
	struct shmkit_seg_opts o = {.sz = sizeof(o)};
	struct shmkit_seg *s = NULL;
	int want, rc;

	if (argc < 2)
		return 2;
	if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 ||
	    setuid(NOBODY) < 0) {
		perror("drop privileges");
		return 2;
	}
	if (geteuid() != NOBODY || setuid(0) == 0)
		return 2; /* not really dropped */
	want = atoi(argv[1]);
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "any"))
			o.flags |= SHMKIT_SEG_ANY_OWNER;
		else if (!strcmp(argv[i], "ro"))
			o.flags |= SHMKIT_SEG_RDONLY;
		else if (!strcmp(argv[i], "wide"))
			o.mode = 0644;
	}
	rc = shmkit_seg_open(argv[0], &o, &s);
	if (rc != -want) {
		fprintf(stderr, "open %s as %d: %d (%s), want -%d\n", argv[0],
			NOBODY, rc, shmkit_strerror(rc), want);
		shmkit_seg_close(s);
		return 1;
	}
	if (rc == 0) {
		/* Read-only and the creator's bytes are there. */
		if (strcmp((char *)shmkit_seg_base(s), "root's") != 0)
			rc = 1;
		shmkit_seg_close(s);
	}
	return rc == 0 || rc == -want ? 0 : 1;
}

static void try_as_nobody(const char *name, int err, const char *f1,
			  const char *f2, const char *f3)
{
	char e[16];
	const char *args[] = {name, e, f1, f2, f3, NULL};

	snprintf(e, sizeof(e), "%d", err);
	ASSERT_TRUE(th_exited_ok(th_wait(th_spawn("try", args, NULL), 5000)));
}

static int test(void)
{
	struct shmkit_seg_opts wide = {.sz = sizeof(wide), .mode = 0644};
	struct shmkit_seg *a, *b;
	char n1[128], n2[128];

	if (geteuid() != 0)
		SKIP("needs root to switch to another user");
	th_name(n1, sizeof(n1), "owner");
	th_name(n2, sizeof(n2), "owner");

	/* Default 0600: refused whatever the options. */
	ASSERT_OK(shmkit_seg_create(n1, 4096, NULL, &a));
	strcpy(shmkit_seg_base(a), "root's");
	try_as_nobody(n1, EACCES, NULL, NULL, NULL);
	try_as_nobody(n1, EACCES, "ro", NULL, NULL);
	try_as_nobody(n1, EACCES, "any", "ro", NULL);

	/* 0644: the kernel would let nobody read it; shmkit refuses a
	 * foreign owner unless told otherwise. */
	ASSERT_OK(shmkit_seg_create(n2, 4096, &wide, &b));
	strcpy(shmkit_seg_base(b), "root's");
	try_as_nobody(n2, EACCES, "wide", "ro", NULL);
	try_as_nobody(n2, EACCES, "any", "ro", NULL);	/* mode too wide */
	try_as_nobody(n2, EACCES, "any", "wide", NULL); /* no write access */
	try_as_nobody(n2, 0, "any", "wide", "ro");

	shmkit_seg_close(a);
	shmkit_seg_close(b);
	ASSERT_OK(shmkit_seg_unlink(n1));
	ASSERT_OK(shmkit_seg_unlink(n2));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {{"try", role_try}, {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
