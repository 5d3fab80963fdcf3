/* SPDX-License-Identifier: MIT */
/*
 * shmkit create: make a named segment. Persistent by default; a scoped
 * segment lives only while it has users, so the tool stays attached to it
 * (as with --hold) until it is told to let go by a signal.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static void help(void)
{
	fputs("Usage: shmkit create [OPTIONS] NAME SIZE\n"
	      "\n"
	      "Create the named segment NAME with at least SIZE usable bytes.\n"
	      "SIZE takes the suffixes K, M, G and T (powers of 1024; KiB,\n"
	      "MiB... also accepted). Space is reserved now, so a full\n"
	      "shared-memory directory fails here, not later.\n"
	      "\n"
	      "Options:\n"
	      "  -m, --mode MODE  permission bits in octal (default 0600;\n"
	      "                   the umask is ignored)\n"
	      "  -s, --scoped     scoped lifetime: the segment is removed when\n"
	      "                   its last user detaches (default: persistent,\n"
	      "                   stays until 'shmkit rm'); implies --hold\n"
	      "      --hold       stay attached until SIGINT, SIGTERM or SIGHUP\n"
	      "  -q, --quiet      print nothing on success\n"
	      "  -h, --help       show this help\n"
	      "\n"
	      "Exit status: 0 created, 1 failed, 2 bad usage.\n",
	      stdout);
}

/*
 * Stay attached until a terminating signal arrives (they are blocked by
 * the caller before the segment exists, so none is lost).
 */
static void hold(const sigset_t *sigs, const char *name, int quiet)
{
	int sig = 0;

	if (!quiet) {
		printf("holding '%s'; send SIGINT (Ctrl-C), SIGTERM or SIGHUP "
		       "to detach\n",
		       name);
		fflush(stdout);
	}
	while (sigwait(sigs, &sig) != 0)
		;
}

CLI_COMMAND(create)
{
	static const struct option opts[] = {
		{"mode", required_argument, NULL, 'm'},
		{"scoped", no_argument, NULL, 's'},
		{"hold", no_argument, NULL, 'H'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct shmkit_seg_opts so;
	struct shmkit_seg *seg;
	struct shmkit_seg_info info;
	const char *name;
	uint64_t size;
	uint32_t mode = 0600;
	int c, rc, holding = 0, quiet = 0;
	char human[32];
	sigset_t sigs;

	memset(&so, 0, sizeof(so));
	so.sz = sizeof(so);
	while ((c = cli_getopt(argc, argv, ":m:sqh", opts)) != -1) {
		switch (c) {
		case 'm':
			if (cli_parse_mode(optarg, &mode) < 0)
				return cli_usage_err(argv[0],
						     "invalid mode '%s' (octal "
						     "permission bits, 1 to "
						     "0777, e.g. 0640)",
						     optarg);
			break;
		case 's':
			so.flags |= SHMKIT_SEG_SCOPED;
			holding = 1;
			break;
		case 'H':
			holding = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'h':
			help();
			return CLI_EXIT_OK;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 2)
		return cli_usage_err(argv[0],
				     "expected NAME and SIZE, got %d "
				     "argument%s",
				     argc - optind,
				     argc - optind == 1 ? "" : "s");
	name = argv[optind];
	if (cli_parse_size(argv[optind + 1], &size) < 0 || size == 0)
		return cli_usage_err(argv[0],
				     "invalid size '%s' (a positive number of "
				     "bytes, optionally with K, M, G or T)",
				     argv[optind + 1]);
	/* The documented maximum (shmkit_seg_create(3)). */
	if (size > (1ull << 46) || size > SIZE_MAX)
		return cli_usage_err(argv[0],
				     "size '%s' is too large (at most 64T)",
				     argv[optind + 1]);
	so.mode = mode;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	if (holding)
		sigprocmask(SIG_BLOCK, &sigs, NULL);

	rc = shmkit_seg_create(name, (size_t)size, &so, &seg);
	if (rc < 0) {
		cli_seg_err("create", name, rc);
		return CLI_EXIT_FAIL;
	}
	memset(&info, 0, sizeof(info));
	info.sz = sizeof(info);
	if (!quiet) {
		const char *path = "?";

		if (shmkit_seg_info(seg, &info) == 0)
			path = info.path;
		cli_human_size(shmkit_seg_size(seg), human, sizeof(human));
		printf("created '%s': %zu bytes usable (%s), mode %04o, %s, "
		       "%s\n",
		       name, shmkit_seg_size(seg), human, (unsigned)mode,
		       so.flags & SHMKIT_SEG_SCOPED ? "scoped" : "persistent",
		       path);
	}
	if (!holding) {
		shmkit_seg_close(seg);
		return CLI_EXIT_OK;
	}
	hold(&sigs, name, quiet);
	shmkit_seg_close(seg);
	if (!quiet && (so.flags & SHMKIT_SEG_SCOPED)) {
		rc = shmkit_seg_stat(name, &info);
		if (rc == -ENOENT)
			printf("detached from '%s'; it had no other users and "
			       "was removed\n",
			       name);
		else
			printf("detached from '%s'; other users keep it\n",
			       name);
	} else if (!quiet) {
		printf("detached from '%s'\n", name);
	}
	return CLI_EXIT_OK;
}
