/* SPDX-License-Identifier: MIT */
/*
 * What `shmkit send` and `shmkit recv` share: the channel options both
 * accept, and attaching to a channel that either side may create.
 */
#ifndef SHMKIT_CMD_CHAN_H
#define SHMKIT_CMD_CHAN_H

#include <shmkit.h>

#include <stdint.h>

struct cli_chan_args {
	struct shmkit_chan_opts opts; /* used if this side creates it */
	int64_t timeout_ns;	      /* SHMKIT_CHAN_FOREVER by default */
	int quiet;
	int no_flush; /* send only */
};

/* Options common to both (getopt letters and long names). */
#define CLI_CHAN_SHORTOPTS ":c:M:P:m:t:kqh"
#define CLI_CHAN_LONGOPTS                                    \
	{"capacity", required_argument, NULL, 'c'},          \
		{"max-msg", required_argument, NULL, 'M'},   \
		{"producers", required_argument, NULL, 'P'}, \
		{"mode", required_argument, NULL, 'm'},      \
		{"timeout", required_argument, NULL, 't'},   \
		{"keep", no_argument, NULL, 'k'},            \
		{"quiet", no_argument, NULL, 'q'},           \
	{                                                    \
		"help", no_argument, NULL, 'h'               \
	}

#define CLI_CHAN_OPTIONS_HELP                                                   \
	"  -c, --capacity SIZE   ring bytes per sender if this side creates\n"  \
	"                        the channel (default 1M; K, M, G suffixes)\n"  \
	"  -M, --max-msg SIZE    largest message if it creates it (default\n"   \
	"                        capacity/4)\n"                                 \
	"  -P, --producers N     senders attached at once if it creates it\n"   \
	"                        (default 4)\n"                                 \
	"  -m, --mode MODE       permission bits in octal (default 0600)\n"     \
	"  -t, --timeout SECS    give up after SECS seconds without progress\n" \
	"                        (default: wait for ever)\n"                    \
	"  -k, --keep            keep the channel after both sides are done\n"  \
	"                        (default: removed with its last user)\n"       \
	"  -q, --quiet           no messages on success\n"                      \
	"  -h, --help            show this help\n"

void cli_chan_args_init(struct cli_chan_args *a);
/* Handle one common option c (optarg set); 0, or 2 after a usage error. */
int cli_chan_option(struct cli_chan_args *a, const char *cmd, int c,
		    const char *arg);
/* The NAME operand of send/recv: NULL after a usage error (printed). */
const char *cli_chan_name(const char *cmd, int argc, char **argv);
/*
 * Create the channel, or attach to it if it exists: the side that starts
 * first creates it. Prints an error and returns a negative errno on
 * failure.
 */
int cli_chan_attach(const char *name, enum shmkit_chan_role role,
		    struct cli_chan_args *a, struct shmkit_chan **out);

#endif /* SHMKIT_CMD_CHAN_H */
