/* SPDX-License-Identifier: MIT */
/*
 * shmkit recv: copy a channel to standard output until end of stream,
 * writing each message straight from the ring (peek, write, release).
 */
#define _GNU_SOURCE
#include "cli.h"
#include "cmd_chan.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void help(void)
{
	fputs("Usage: shmkit recv [OPTIONS] NAME\n"
	      "\n"
	      "Copy the channel NAME to standard output until end of stream\n"
	      "(every sender has finished and everything they sent is out).\n"
	      "Either side may start first: the first creates the channel.\n"
	      "\n"
	      "Options:\n" CLI_CHAN_OPTIONS_HELP "\n"
	      "Exit status: 0 complete stream written, 1 failure (a sender\n"
	      "died, timeout, write error, corrupt channel), 2 bad usage.\n",
	      stdout);
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *b = p;

	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

CLI_COMMAND(recv)
{
	static const struct option opts[] = {
		CLI_CHAN_LONGOPTS,
		{NULL, 0, NULL, 0},
	};
	struct cli_chan_args a;
	struct shmkit_chan *ch;
	uint64_t total = 0, redelivered = 0;
	const char *name;
	int c, rc, broken = 0;

	cli_chan_args_init(&a);
	while ((c = cli_getopt(argc, argv, CLI_CHAN_SHORTOPTS, opts)) != -1) {
		if (c == '?')
			return CLI_EXIT_USAGE;
		if (c == 'h') {
			help();
			return CLI_EXIT_OK;
		}
		if (cli_chan_option(&a, argv[0], c, optarg))
			return CLI_EXIT_USAGE;
	}
	name = cli_chan_name(argv[0], argc, argv);
	if (!name)
		return CLI_EXIT_USAGE;
	if (cli_std_closed[1])
		return cli_usage_err(argv[0],
				     "standard output is closed: give recv a "
				     "file or pipe there (shmkit recv NAME > "
				     "FILE)");
	if (cli_chan_attach(name, SHMKIT_CHAN_CONSUMER, &a, &ch) < 0)
		return CLI_EXIT_FAIL;
	for (;;) {
		const void *p;
		uint32_t fl;
		int len, wr;

		len = shmkit_chan_peek(ch, &p, &fl, a.timeout_ns);
		if (len == -ECONNRESET) {
			/* A sender died mid-stream: keep what the others
			 * send, but the stream is not complete. */
			cli_err("recv from '%s': a sender died before "
				"finishing",
				name);
			broken = 1;
			continue;
		}
		if (len < 0) {
			rc = len == -EPIPE ? 0 : len; /* -EPIPE: the end */
			if (rc == -ETIMEDOUT)
				cli_err("recv from '%s': no data within the "
					"timeout",
					name);
			else if (rc < 0)
				cli_err("recv from '%s': %s", name,
					shmkit_strerror(rc));
			break;
		}
		if (fl & SHMKIT_CHAN_REDELIVERED)
			redelivered++;
		wr = write_all(STDOUT_FILENO, p, (size_t)len);
		if (wr < 0) {
			cli_err("recv from '%s': writing standard output: %s",
				name, strerror(-wr));
			rc = wr;
			break;
		}
		total += (uint64_t)len;
		shmkit_chan_release(ch);
	}
	if (redelivered)
		cli_err("recv from '%s': %llu message(s) delivered again after "
			"an earlier receiver died: output may repeat data",
			name, (unsigned long long)redelivered);
	shmkit_chan_close(ch);
	if (broken)
		rc = -ECONNRESET;
	if (rc == 0 && !a.quiet)
		fprintf(stderr, "shmkit recv: %llu bytes\n",
			(unsigned long long)total);
	return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
