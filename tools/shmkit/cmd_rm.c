/* SPDX-License-Identifier: MIT */
/*
 * shmkit rm: remove the names of segments (ipcrm conventions). Processes
 * already attached keep their mapping. Files that are not shmkit segments
 * are left alone unless --force, since other programs use the same
 * directory.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void help(void)
{
	fputs("Usage: shmkit rm [OPTIONS] NAME...\n"
	      "\n"
	      "Remove each named segment. Processes attached to it keep\n"
	      "using it until they close it; new opens fail.\n"
	      "\n"
	      "Options:\n"
	      "  -f, --force     also remove files that are not shmkit\n"
	      "                  segments (state 'foreign' in 'shmkit ls')\n"
	      "  -v, --verbose   say what was removed\n"
	      "  -h, --help      show this help\n"
	      "\n"
	      "Exit status: 0 all removed, 1 any failed, 2 bad usage.\n",
	      stdout);
}

static int file_exists(const char *name)
{
	char path[4096];
	struct stat st;

	if (strchr(name, '/'))
		return 0;
	cli_seg_path(name, path, sizeof(path));
	return lstat(path, &st) == 0;
}

/* 0 if the file under name may be removed, else the error was printed. */
static int check_not_foreign(const char *name)
{
	struct shmkit_seg_info *in = calloc(1, sizeof(*in));
	int rc;

	if (!in)
		return 0;
	in->sz = sizeof(*in);
	rc = shmkit_seg_stat(name, in);
	/* Errors (no such name, unreadable) are reported by the unlink. */
	if (rc == 0 && in->state == SHMKIT_STATE_FOREIGN) {
		cli_err("not removing '%s': not a shmkit segment (another "
			"program's file? use --force to remove it anyway)",
			name);
		free(in);
		return -1;
	}
	free(in);
	return 0;
}

CLI_COMMAND(rm)
{
	static const struct option opts[] = {
		{"force", no_argument, NULL, 'f'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c, rc, force = 0, verbose = 0, failed = 0;

	while ((c = cli_getopt(argc, argv, ":fvh", opts)) != -1) {
		switch (c) {
		case 'f':
			force = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			help();
			return CLI_EXIT_OK;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return cli_usage_err(argv[0], "expected at least one NAME");
	for (int i = optind; i < argc; i++) {
		const char *name = argv[i];

		if (!force && check_not_foreign(name) < 0) {
			failed = 1;
			continue;
		}
		rc = shmkit_seg_unlink(name);
		if (rc == -EINVAL && !cli_name_valid(name) &&
		    file_exists(name)) {
			/* Listed by ls, but not a name shmkit makes. */
			cli_err("cannot remove '%s': not a shmkit segment name "
				"(remove the file itself: rm -- '%s/%s')",
				name, shmkit_shm_dir(), name);
			failed = 1;
			continue;
		}
		if (rc < 0) {
			cli_seg_err("remove", name, rc);
			failed = 1;
			continue;
		}
		if (verbose)
			printf("removed '%s'\n", name);
	}
	return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
