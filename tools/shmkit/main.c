/* SPDX-License-Identifier: MIT */
/*
 * The shmkit tool: global options (--help, --version) and the table of
 * subcommands. Each subcommand lives in its own cmd_NAME.c; adding one is
 * a line in COMMANDS below plus that file.
 */
#define _GNU_SOURCE
#include "cli.h"
#include <fcntl.h>
#include <errno.h>

#include <stdio.h>
#include <string.h>

/* name, summary: the entry point is cli_cmd_<name> (see CLI_COMMAND). */
#define COMMANDS(X)                                                 \
	X(create, "create a named segment")                         \
	X(ls, "list the segments in the shared-memory directory")   \
	X(stat, "show everything known about one segment")          \
	X(rm, "remove named segments")                              \
	X(gc, "remove stale segments (scoped with all users dead, " \
	      "half-created)")                                      \
	X(kv, "put, get, delete and list keys in a shared map")     \
	X(doctor, "check the system for shared-memory problems")    \
	X(send, "copy standard input into a channel")               \
	X(recv, "copy a channel to standard output")                \
	X(bench, "measure shmkit against pipes, sockets, queues, TCP")

#define DECLARE(name, summary) int cli_cmd_##name(int argc, char **argv);
COMMANDS(DECLARE)
#undef DECLARE

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

#define ENTRY(name, summary) {#name, cli_cmd_##name, summary},
static const struct command commands[] = {COMMANDS(ENTRY)};
#undef ENTRY

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fputs("Usage: shmkit COMMAND [OPTIONS] [ARGS]\n"
	      "       shmkit --help | --version\n"
	      "\n"
	      "Shared-memory IPC: inspect and manage shmkit segments.\n"
	      "\n"
	      "Commands:\n",
	      f);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-8s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(f,
		"\n"
		"Run 'shmkit COMMAND --help' for a command's options.\n"
		"Segments live in %s (set SHMKIT_SHM_DIR to change it).\n"
		"Exit status: 0 success, 1 failure, 2 bad usage.\n"
		"See shmkit(1).\n",
		shmkit_shm_dir());
}

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct command *cmd;
	int rc;

	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		/* The lowest free descriptor: this one. */
		if (open("/dev/null", O_RDWR) != fd)
			return CLI_EXIT_FAIL;
		cli_std_closed[fd] = 1;
	}
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("shmkit %s (libshmkit %s, layout version %u)\n",
		       SHMKIT_VERSION_STRING, shmkit_version(),
		       (unsigned)shmkit_layout_version());
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "help") == 0) {
		if (argc < 3) {
			usage(stdout);
			return CLI_EXIT_OK;
		}
		cmd = find(argv[2]);
		if (!cmd) {
			cli_err("unknown command '%s'\n"
				"Try 'shmkit --help' for the list.",
				argv[2]);
			return CLI_EXIT_USAGE;
		}
		char *hargv[] = {argv[2], (char *)"--help", NULL};

		return cmd->fn(2, hargv);
	}
	if (argv[1][0] == '-') {
		cli_err("unrecognized option '%s'\n"
			"Try 'shmkit --help' for more information.",
			argv[1]);
		return CLI_EXIT_USAGE;
	}
	cmd = find(argv[1]);
	if (!cmd) {
		cli_err("unknown command '%s'\n"
			"Try 'shmkit --help' for the list.",
			argv[1]);
		return CLI_EXIT_USAGE;
	}
	rc = cmd->fn(argc - 1, argv + 1);
	/* A failed write to stdout (full disk, closed pipe) is a failure. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_err("write error on standard output");
		if (rc == CLI_EXIT_OK)
			rc = CLI_EXIT_FAIL;
	}
	return rc;
}
