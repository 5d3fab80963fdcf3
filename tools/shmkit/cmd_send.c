/* SPDX-License-Identifier: MIT */
/*
 * shmkit send: copy standard input into a channel, in place (each read()
 * lands directly in the ring through reserve/commit). End of input becomes
 * end of stream. Also the option handling shared with `shmkit recv`.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "cmd_chan.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_CAPACITY (1u << 20)
/* shmkit_chan_opts: capacity_bytes 4 KiB .. 1 GiB (shmkit.h). */
#define CHAN_MAX_CAPACITY (1ull << 30)

void cli_chan_args_init(struct cli_chan_args *a)
{
	memset(a, 0, sizeof(*a));
	a->opts.sz = sizeof(a->opts);
	a->opts.capacity_bytes = DEFAULT_CAPACITY;
	a->opts.flags = SHMKIT_CHAN_SCOPED;
	a->timeout_ns = SHMKIT_CHAN_FOREVER;
}

static int parse_secs(const char *s, int64_t *ns)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	/* Zero (or less than a nanosecond) would mean "never wait", which
	 * is no transfer at all. */
	if (errno || end == s || *end || !(v * 1e9 >= 1) || v > 1e9)
		return -EINVAL;
	*ns = (int64_t)(v * 1e9);
	return 0;
}

int cli_chan_option(struct cli_chan_args *a, const char *cmd, int c,
		    const char *arg)
{
	uint64_t v;
	uint32_t mode;

	switch (c) {
	case 'c':
		if (cli_parse_size(arg, &v) < 0 || v == 0)
			return cli_usage_err(cmd, "invalid capacity '%s'", arg);
		a->opts.capacity_bytes = v;
		return 0;
	case 'M':
		if (cli_parse_size(arg, &v) < 0 || v == 0)
			return cli_usage_err(cmd, "invalid size '%s'", arg);
		a->opts.max_msg_bytes = v;
		return 0;
	case 'P': {
		char *end;

		errno = 0;
		v = strtoull(arg, &end, 10);
		if (errno || end == arg || *end || v < 1 ||
		    v > SHMKIT_CHAN_MAX_PRODUCERS)
			return cli_usage_err(cmd, "producers: 1 to %d",
					     SHMKIT_CHAN_MAX_PRODUCERS);
		a->opts.max_producers = (uint32_t)v;
		return 0;
	}
	case 'm':
		if (cli_parse_mode(arg, &mode) < 0)
			return cli_usage_err(cmd, "invalid mode '%s'", arg);
		a->opts.mode = mode;
		return 0;
	case 't':
		if (parse_secs(arg, &a->timeout_ns) < 0)
			return cli_usage_err(cmd,
					     "invalid timeout '%s' (seconds, "
					     "more than 0; leave -t out to "
					     "wait for ever)",
					     arg);
		return 0;
	case 'k':
		a->opts.flags &= ~SHMKIT_CHAN_SCOPED;
		return 0;
	case 'q':
		a->quiet = 1;
		return 0;
	default:
		return cli_usage_err(cmd, "unexpected option");
	}
}

const char *cli_chan_name(const char *cmd, int argc, char **argv)
{
	if (argc - optind != 1) {
		cli_usage_err(cmd, "expected one channel name");
		return NULL;
	}
	if (!cli_name_valid(argv[optind])) {
		cli_usage_err(cmd,
			      "invalid channel name '%s' (" CLI_NAME_RULE ")",
			      argv[optind], SHMKIT_SEG_NAME_MAX);
		return NULL;
	}
	return argv[optind];
}

/* Ring bytes a message of len bytes takes (8-byte header, padded to 8). */
static uint64_t framed(uint64_t len)
{
	return 8 + ((len + 7) & ~7ull);
}

/* The ring a create with these options asks for (the library rounds the
 * capacity up to a power of two, at least 4 KiB). */
static uint64_t ring_of(const struct shmkit_chan_opts *o)
{
	uint64_t cap = o->capacity_bytes, ring = 4096;

	if (!cap) {
		cap = SHMKIT_CHAN_DEFAULT_CAPACITY;
		if (3 * framed(o->max_msg_bytes) > cap)
			cap = 3 * framed(o->max_msg_bytes);
	}
	while (ring < cap && ring <= CHAN_MAX_CAPACITY)
		ring <<= 1;
	return ring;
}

/* The largest message a ring of `ring` bytes takes: three must fit. */
static uint64_t msg_fit(uint64_t ring)
{
	return (ring / 3 & ~7ull) - 8;
}

/* Why a create with a valid name was refused as -EINVAL. */
static void create_einval(const char *name, const struct shmkit_chan_opts *o)
{
	uint64_t ring = ring_of(o), most = msg_fit(CHAN_MAX_CAPACITY);

	if (o->capacity_bytes > CHAN_MAX_CAPACITY || o->max_msg_bytes > most ||
	    ring > CHAN_MAX_CAPACITY)
		cli_err("cannot create channel '%s': at most %lluM per sender "
			"(-c), and messages of at most %llu bytes (-M)",
			name, (unsigned long long)(CHAN_MAX_CAPACITY >> 20),
			(unsigned long long)most);
	else if (o->max_msg_bytes > msg_fit(ring))
		cli_err("cannot create channel '%s': a %llu-byte ring takes "
			"messages of at most %llu bytes (three must fit); %s",
			name, (unsigned long long)ring,
			(unsigned long long)msg_fit(ring),
			ring < CHAN_MAX_CAPACITY ? "raise -c or lower -M"
						 : "lower -M");
	else
		cli_err("cannot create channel '%s': invalid options", name);
}

/*
 * Why an open or create failed on the directory rather than on the name:
 * prints the reason and returns 1, or returns 0. `created`: rc came from
 * the create (ENOENT there means the directory, not the name).
 */
static int dir_err(const char *name, int rc, int created)
{
	const char *dir = shmkit_shm_dir();
	struct stat st;

	if (rc != -ENOTDIR && !(created && (rc == -ENOENT || rc == -EACCES ||
					    rc == -EPERM || rc == -EROFS)))
		return 0;
	if (stat(dir, &st) < 0) {
		cli_err("cannot create channel '%s': the directory %s does "
			"not exist (is SHMKIT_SHM_DIR right? see 'shmkit "
			"doctor')",
			name, dir);
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		cli_err("cannot open channel '%s': %s is not a directory "
			"(is SHMKIT_SHM_DIR right? see 'shmkit doctor')",
			name, dir);
		return 1;
	}
	if (rc == -EROFS) {
		cli_err("cannot create channel '%s': %s is on a read-only "
			"file system (set SHMKIT_SHM_DIR to a writable tmpfs)",
			name, dir);
		return 1;
	}
	if (rc != -ENOENT && rc != -ENOTDIR && access(dir, W_OK | X_OK) < 0) {
		cli_err("cannot create channel '%s': no permission to create "
			"files in %s (mode %04o; run as a user who may, or set "
			"SHMKIT_SHM_DIR to a directory of yours)",
			name, dir, (unsigned)(st.st_mode & 07777));
		return 1;
	}
	return 0;
}

int cli_chan_attach(const char *name, enum shmkit_chan_role role,
		    struct cli_chan_args *a, struct shmkit_chan **out)
{
	int rc = -EEXIST, created = 0;

	/* A max message chosen alone sizes the ring to fit it. */
	if (a->opts.max_msg_bytes &&
	    a->opts.capacity_bytes == DEFAULT_CAPACITY &&
	    3 * framed(a->opts.max_msg_bytes) > DEFAULT_CAPACITY)
		a->opts.capacity_bytes = 0;
	/*
	 * Either side may start first. A scoped channel left by a run whose
	 * processes died (nobody attached) is removed first: its data
	 * belongs to that run, not to this one. Then open, and create only
	 * if there is nothing to open (creating first would reserve a
	 * whole channel's space just to find the name taken). Between a
	 * failed open and a failed create, or the reverse, the channel may
	 * appear or vanish: then try again.
	 */
	if (a->opts.flags & SHMKIT_CHAN_SCOPED)
		(void)shmkit_seg_gc(name, 0);
	for (int tries = 0; tries < 20; tries++) {
		created = 0;
		rc = shmkit_chan_open(name, role, &a->opts, out);
		if (rc != -ENOENT)
			break;
		created = 1;
		rc = shmkit_chan_create(name, &a->opts, role, out);
		if (rc != -EEXIST)
			break;
	}
	if (rc == 0)
		return 0;
	if (dir_err(name, rc, created))
		return rc;
	switch (-rc) {
	case EBUSY:
		if (role == SHMKIT_CHAN_CONSUMER)
			cli_err("cannot attach to channel '%s': another "
				"receiver is attached (a channel has one; wait "
				"for it to finish, or use another name)",
				name);
		else
			cli_err("cannot attach to channel '%s': every sender "
				"slot is taken (wait for a sender to finish, "
				"or create the channel with a larger -P)",
				name);
		break;
	case EPROTO:
		cli_err("cannot attach to channel '%s': the segment is not a "
			"channel",
			name);
		break;
	case EINVAL:
		if (created) {
			create_einval(name, &a->opts);
			break;
		}
		/* fall through */
	default:
		cli_seg_err("open channel", name, rc);
	}
	return rc;
}

static void help(void)
{
	fputs("Usage: shmkit send [OPTIONS] NAME\n"
	      "\n"
	      "Copy standard input into the channel NAME until end of input,\n"
	      "which becomes end of stream for the receiver ('shmkit recv\n"
	      "NAME'). Either side may start first: the first creates the\n"
	      "channel. By default send then waits until the receiver has\n"
	      "taken every byte, so exit status 0 means a complete transfer.\n"
	      "\n"
	      "Options:\n" CLI_CHAN_OPTIONS_HELP
	      "      --no-flush        exit once the input is in the channel,\n"
	      "                        without waiting for the receiver (with\n"
	      "                        --keep, or the channel may go with us)\n"
	      "\n"
	      "Exit status: 0 every byte delivered, 1 failure (receiver gone,\n"
	      "timeout, read error), 2 bad usage.\n",
	      stdout);
}

static const char *peer_error(int rc)
{
	switch (-rc) {
	case ECONNRESET:
		return "the receiver died";
	case EPIPE:
		return "the receiver closed the channel";
	case ETIMEDOUT:
		return "timed out waiting for the receiver";
	default:
		return shmkit_strerror(rc);
	}
}

/*
 * With nothing sent, flush has nothing to wait for; but a scoped channel
 * dies with its last user, so stay until a receiver is attached to see
 * the end of stream (it keeps the channel alive from then on).
 */
static int wait_receiver(struct shmkit_chan *ch, const char *name,
			 int64_t timeout_ns)
{
	int rc = shmkit_chan_wait_peer(ch, timeout_ns);

	if (rc == -ETIMEDOUT)
		cli_err("send to '%s': no receiver came", name);
	else if (rc < 0)
		cli_err("send to '%s': %s", name, shmkit_strerror(rc));
	return rc < 0 ? rc : 0;
}

CLI_COMMAND(send)
{
	static const struct option opts[] = {
		CLI_CHAN_LONGOPTS,
		{"no-flush", no_argument, NULL, 'F'},
		{NULL, 0, NULL, 0},
	};
	struct shmkit_chan_info info = {.sz = sizeof(info)};
	struct cli_chan_args a;
	struct shmkit_chan *ch;
	uint64_t total = 0;
	const char *name;
	int c, rc;

	cli_chan_args_init(&a);
	while ((c = cli_getopt(argc, argv, CLI_CHAN_SHORTOPTS, opts)) != -1) {
		if (c == '?')
			return CLI_EXIT_USAGE;
		if (c == 'h') {
			help();
			return CLI_EXIT_OK;
		}
		if (c == 'F') {
			a.no_flush = 1;
			continue;
		}
		if (cli_chan_option(&a, argv[0], c, optarg))
			return CLI_EXIT_USAGE;
	}
	name = cli_chan_name(argv[0], argc, argv);
	if (!name)
		return CLI_EXIT_USAGE;
	if (cli_std_closed[0])
		return cli_usage_err(argv[0],
				     "standard input is closed: give send its "
				     "data there (shmkit send NAME < FILE)");
	if (cli_chan_attach(name, SHMKIT_CHAN_PRODUCER, &a, &ch) < 0)
		return CLI_EXIT_FAIL;
	rc = shmkit_chan_info(ch, &info);
	if (rc < 0)
		cli_err("send to '%s': %s", name, shmkit_strerror(rc));
	while (rc == 0) {
		void *w;
		ssize_t n;

		rc = shmkit_chan_reserve(ch, info.max_msg_bytes, &w,
					 a.timeout_ns);
		if (rc < 0) {
			cli_err("send to '%s': %s", name, peer_error(rc));
			break;
		}
		/* Whatever one read() gives: a pipe's data goes out as it
		 * comes, a file's in full messages. */
		do
			n = read(STDIN_FILENO, w, info.max_msg_bytes);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			rc = -errno;
			cli_err("send to '%s': reading standard input: %s",
				name, strerror(errno));
			break;
		}
		if (n == 0)
			break; /* the reservation is simply never committed */
		rc = shmkit_chan_commit(ch, (size_t)n);
		total += (uint64_t)n;
	}
	if (rc == 0 && !a.no_flush) {
		rc = shmkit_chan_flush(ch, a.timeout_ns);
		if (rc < 0)
			cli_err("send to '%s': %s before taking everything",
				name, peer_error(rc));
	}
	if (rc == 0 && !a.no_flush)
		rc = wait_receiver(ch, name, a.timeout_ns);
	/* A clean close is end of stream, and a receiver would take what it
	 * got for the whole input and exit 0. So after a failure with a
	 * receiver attached, leave as a dead sender does: it then says the
	 * stream is incomplete and exits 1 (and, scoped, the channel goes
	 * with it). With no receiver, close: a scoped channel goes now, and
	 * a receiver that comes later finds nothing to take for a stream. */
	if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET &&
	    shmkit_chan_peers(ch) > 0)
		_exit(CLI_EXIT_FAIL);
	shmkit_chan_close(ch);
	if (rc == 0 && !a.quiet)
		fprintf(stderr, "shmkit send: %llu bytes\n",
			(unsigned long long)total);
	return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
