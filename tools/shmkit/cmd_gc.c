/* SPDX-License-Identifier: MIT */
/*
 * shmkit gc: remove the segments nobody can use any more: scoped segments
 * whose users all died, and segments whose creator died before they were
 * ready. The library re-checks each under a lock before removing, so a
 * persistent segment or one in use is never removed.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void help(void)
{
	fputs("Usage: shmkit gc [OPTIONS]\n"
	      "\n"
	      "Remove stale segments: scoped segments whose users all died\n"
	      "(state 'stale') and segments whose creator died before they\n"
	      "were ready (state 'incomplete'). Persistent segments, segments\n"
	      "in use and files that are not shmkit segments are never\n"
	      "removed (use 'shmkit rm' for those).\n"
	      "\n"
	      "Options:\n"
	      "  -n, --dry-run   only say what would be removed\n"
	      "  -v, --verbose   also say why each other segment is kept\n"
	      "  -h, --help      show this help\n"
	      "\n"
	      "Exit status: 0 done (even if nothing was stale), 1 a removal\n"
	      "failed, 2 bad usage.\n",
	      stdout);
}

static const char *kept_why(const struct shmkit_seg_info *in)
{
	switch (in->state) {
	case SHMKIT_STATE_OK:
		if (in->flags & SHMKIT_SEG_SCOPED)
			return "scoped, in use";
		return in->nusers + in->users_untracked ? "persistent, in use"
							: "persistent";
	case SHMKIT_STATE_CREATING:
		return "its creator is still initialising it";
	case SHMKIT_STATE_CORRUPT:
	case SHMKIT_STATE_VERSION:
	case SHMKIT_STATE_FOREIGN:
	case SHMKIT_STATE_DENIED:
		return cli_state_why(in->state);
	default:
		return "no longer stale";
	}
}

CLI_COMMAND(gc)
{
	static const struct option opts[] = {
		{"dry-run", no_argument, NULL, 'n'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct cli_seglist list;
	int c, rc, dry = 0, verbose = 0, failed = 0;
	unsigned long nremoved = 0;
	uint64_t freed = 0;
	char human[32];

	while ((c = cli_getopt(argc, argv, ":nvh", opts)) != -1) {
		switch (c) {
		case 'n':
			dry = 1;
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
	if (optind < argc)
		return cli_usage_err(argv[0], "unexpected argument '%s'",
				     argv[optind]);
	rc = cli_seglist_load(&list);
	if (rc < 0) {
		cli_err("cannot list %s: %s (see 'shmkit doctor')",
			shmkit_shm_dir(), shmkit_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	for (size_t i = 0; i < list.n; i++) {
		const struct shmkit_seg_info *in = &list.v[i];

		if (in->state != SHMKIT_STATE_STALE &&
		    in->state != SHMKIT_STATE_INCOMPLETE) {
			if (verbose)
				printf("kept '%s': %s\n", in->name,
				       kept_why(in));
			continue;
		}
		rc = shmkit_seg_gc(in->name, dry);
		if (rc == -ENOENT)
			continue; /* removed by someone else meanwhile */
		if (rc < 0) {
			cli_seg_err("remove stale", in->name, rc);
			failed = 1;
			continue;
		}
		if (rc == 0) {
			/* A user attached, or the creator finished. */
			if (verbose)
				printf("kept '%s': no longer stale\n",
				       in->name);
			continue;
		}
		cli_human_size(in->file_size, human, sizeof(human));
		printf("%s '%s' (%s): %s\n", dry ? "would remove" : "removed",
		       in->name, human, cli_state_why(in->state));
		nremoved++;
		freed += in->file_size;
	}
	cli_human_size(freed, human, sizeof(human));
	if (nremoved)
		printf("%s %lu segment%s, %s\n",
		       dry ? "would remove" : "removed", nremoved,
		       nremoved == 1 ? "" : "s", human);
	else
		printf("nothing to remove (%zu file%s checked in %s)\n", list.n,
		       list.n == 1 ? "" : "s", shmkit_shm_dir());
	cli_seglist_free(&list);
	return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
