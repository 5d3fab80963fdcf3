/* SPDX-License-Identifier: MIT */
/*
 * shmkit ls: every file in the shared-memory directory, shmkit segments and
 * foreign files alike, as an aligned table or as JSON, with the columns
 * chosen by -o (lsipc conventions).
 */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum col {
	COL_NAME,
	COL_SIZE,
	COL_DATA,
	COL_OWNER,
	COL_UID,
	COL_MODE,
	COL_LAYOUT,
	COL_USERS,
	COL_PIDS,
	COL_STATE,
	COL_LIFETIME,
	COL_CREATED,
	COL_CPID,
	COL_CREATOR,
	COL_OBJECTS,
	COL_PATH,
	NCOLS
};

static const struct {
	const char *name;
	int right;
	const char *help;
} cols[NCOLS] = {
	[COL_NAME] = {"NAME", 0, "segment name"},
	[COL_SIZE] = {"SIZE", 1, "size of the file (header included)"},
	[COL_DATA] = {"DATA", 1, "usable bytes"},
	[COL_OWNER] = {"OWNER", 0, "owner's user name"},
	[COL_UID] = {"UID", 1, "owner's user id"},
	[COL_MODE] = {"MODE", 0, "permission bits, octal"},
	[COL_LAYOUT] = {"LAYOUT", 1, "layout version of the format"},
	[COL_USERS] = {"USERS", 1, "live attached processes (N+: at least N)"},
	[COL_PIDS] = {"PIDS", 0, "pids of the attached processes"},
	[COL_STATE] = {"STATE", 0,
		       "ok, stale, incomplete, creating, corrupt, version, "
		       "foreign"},
	[COL_LIFETIME] = {"LIFETIME", 0, "persistent or scoped"},
	[COL_CREATED] = {"CREATED", 0, "creation time (ISO 8601)"},
	[COL_CPID] = {"CPID", 1, "creator's pid"},
	[COL_CREATOR] = {"CREATOR", 0, "creator's user name"},
	[COL_OBJECTS] = {"OBJECTS", 1, "named objects in the directory"},
	[COL_PATH] = {"PATH", 0, "path of the file"},
};

static const enum col default_cols[] = {
	COL_NAME,   COL_SIZE,  COL_OWNER, COL_MODE,
	COL_LAYOUT, COL_USERS, COL_STATE, COL_LIFETIME,
};
#define NDEFAULT (sizeof(default_cols) / sizeof(default_cols[0]))

#define MAXSEL 64

static void help(void)
{
	fputs("Usage: shmkit ls [OPTIONS]\n"
	      "\n"
	      "List every file in the shared-memory directory: shmkit\n"
	      "segments, and other files (state 'foreign').\n"
	      "\n"
	      "Options:\n"
	      "  -J, --json          JSON output (sizes in bytes)\n"
	      "  -o, --output COLS   columns to show, comma-separated;\n"
	      "                      '+COLS' adds to the default ones\n"
	      "  -b, --bytes         sizes in bytes, not human-readable\n"
	      "  -n, --noheadings    no header line\n"
	      "  -h, --help          show this help\n"
	      "\n"
	      "Columns:\n",
	      stdout);
	for (int i = 0; i < NCOLS; i++)
		printf("  %-9s %s\n", cols[i].name, cols[i].help);
	fputs("\nDefault: NAME,SIZE,OWNER,MODE,LAYOUT,USERS,STATE,LIFETIME\n"
	      "(with --json, PIDS too).\n"
	      "\n"
	      "Exit status: 0 listed, 1 failed, 2 bad usage.\n",
	      stdout);
}

static void valid_columns(FILE *f)
{
	fputs("valid columns:", f);
	for (int i = 0; i < NCOLS; i++)
		fprintf(f, "%s%s", i ? "," : " ", cols[i].name);
	fputc('\n', f);
}

/* Parse -o: returns the number of columns or -1 after a usage error. */
static int parse_cols(const char *cmd, const char *arg, enum col *sel,
		      size_t nsel_default)
{
	char *copy, *tok, *save = NULL;
	size_t n = 0;

	if (*arg == '+') {
		arg++;
		n = nsel_default;
	}
	copy = strdup(arg);
	if (!copy) {
		cli_err("out of memory");
		return -1;
	}
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		int found = -1;

		for (int i = 0; i < NCOLS; i++)
			if (strcasecmp(tok, cols[i].name) == 0)
				found = i;
		if (found < 0) {
			fprintf(stderr, "shmkit %s: unknown column '%s'; ", cmd,
				tok);
			valid_columns(stderr);
			fprintf(stderr,
				"Try 'shmkit %s --help' for more "
				"information.\n",
				cmd);
			free(copy);
			return -1;
		}
		if (n == MAXSEL) {
			cli_usage_err(cmd, "too many columns (at most %d)",
				      MAXSEL);
			free(copy);
			return -1;
		}
		sel[n++] = (enum col)found;
	}
	free(copy);
	if (n == 0) {
		fprintf(stderr, "shmkit %s: no columns given; ", cmd);
		valid_columns(stderr);
		return -1;
	}
	return (int)n;
}

static uint32_t nusers(const struct shmkit_seg_info *in)
{
	return in->nusers + in->users_untracked;
}

/* The text of one cell; returns NULL for "not applicable" ("-"). */
static const char *cell(const struct shmkit_seg_info *in, enum col c, int bytes,
			char *buf, size_t len)
{
	int hdr = cli_has_header(in);

	switch (c) {
	case COL_NAME:
		return in->name;
	case COL_SIZE:
	case COL_DATA: {
		uint64_t v = c == COL_SIZE ? in->file_size : in->data_size;

		if (c == COL_DATA && !in->data_size)
			return NULL;
		if (bytes)
			snprintf(buf, len, "%llu", (unsigned long long)v);
		else
			cli_human_size(v, buf, len);
		return buf;
	}
	case COL_OWNER:
		cli_user_name(in->owner_uid, buf, len);
		return buf;
	case COL_UID:
		snprintf(buf, len, "%u", (unsigned)in->owner_uid);
		return buf;
	case COL_MODE:
		snprintf(buf, len, "%04o", (unsigned)in->mode);
		return buf;
	case COL_LAYOUT:
		if (!in->layout_version)
			return NULL;
		snprintf(buf, len, "%u", (unsigned)in->layout_version);
		return buf;
	case COL_USERS:
		if (!hdr)
			return NULL;
		snprintf(buf, len, "%u%s", (unsigned)nusers(in),
			 in->users_untracked ? "+" : "");
		return buf;
	case COL_PIDS: {
		size_t off = 0;

		if (!in->nusers)
			return NULL;
		buf[0] = '\0';
		for (uint32_t i = 0; i < in->nusers && off + 16 < len; i++)
			off += (size_t)snprintf(buf + off, len - off, "%s%d",
						i ? "," : "",
						(int)in->users[i].pid);
		return buf;
	}
	case COL_STATE:
		return cli_state_name(in->state);
	case COL_LIFETIME:
		return cli_lifetime(in);
	case COL_CREATED:
		if (!hdr || !in->created_realtime_ns)
			return NULL;
		cli_iso_time(in->created_realtime_ns, buf, len);
		return buf;
	case COL_CPID:
		if (!hdr)
			return NULL;
		snprintf(buf, len, "%d", (int)in->creator_pid);
		return buf;
	case COL_CREATOR:
		if (!hdr)
			return NULL;
		cli_user_name(in->creator_uid, buf, len);
		return buf;
	case COL_OBJECTS:
		if (in->state != SHMKIT_STATE_OK &&
		    in->state != SHMKIT_STATE_STALE)
			return NULL;
		snprintf(buf, len, "%u", (unsigned)in->dir_used);
		return buf;
	case COL_PATH:
		return in->path;
	case NCOLS:
		break;
	}
	return NULL;
}

static void json_cell(struct cli_json *j, const struct shmkit_seg_info *in,
		      enum col c)
{
	char key[16], buf[1024];
	const char *s;
	size_t i;

	for (i = 0; cols[c].name[i] && i + 1 < sizeof(key); i++)
		key[i] = (char)(cols[c].name[i] - 'A' + 'a');
	key[i] = '\0';
	switch (c) {
	case COL_SIZE:
		cli_json_uint(j, key, in->file_size);
		return;
	case COL_DATA:
		if (in->data_size)
			cli_json_uint(j, key, in->data_size);
		else
			cli_json_null(j, key);
		return;
	case COL_UID:
		cli_json_uint(j, key, in->owner_uid);
		return;
	case COL_LAYOUT:
		if (in->layout_version)
			cli_json_uint(j, key, in->layout_version);
		else
			cli_json_null(j, key);
		return;
	case COL_USERS:
		if (cli_has_header(in))
			cli_json_uint(j, key, nusers(in));
		else
			cli_json_null(j, key);
		return;
	case COL_PIDS:
		cli_json_arr_begin(j, key);
		for (uint32_t u = 0; u < in->nusers; u++)
			cli_json_int(j, NULL, in->users[u].pid);
		cli_json_arr_end(j);
		return;
	case COL_CPID:
		if (cli_has_header(in))
			cli_json_int(j, key, in->creator_pid);
		else
			cli_json_null(j, key);
		return;
	case COL_OBJECTS:
		if (in->state == SHMKIT_STATE_OK ||
		    in->state == SHMKIT_STATE_STALE)
			cli_json_uint(j, key, in->dir_used);
		else
			cli_json_null(j, key);
		return;
	default:
		s = cell(in, c, 1, buf, sizeof(buf));
		cli_json_str(j, key, s);
		return;
	}
}

CLI_COMMAND(ls)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'J'},
		{"output", required_argument, NULL, 'o'},
		{"bytes", no_argument, NULL, 'b'},
		{"noheadings", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	enum col sel[MAXSEL];
	struct cli_seglist list;
	int c, rc, json = 0, bytes = 0, headings = 1, nsel;
	const char *outarg = NULL;

	while ((c = cli_getopt(argc, argv, ":Jo:bnh", opts)) != -1) {
		switch (c) {
		case 'J':
			json = 1;
			break;
		case 'o':
			outarg = optarg;
			break;
		case 'b':
			bytes = 1;
			break;
		case 'n':
			headings = 0;
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
	memcpy(sel, default_cols, sizeof(default_cols));
	nsel = (int)NDEFAULT;
	if (json && !outarg)
		sel[nsel++] = COL_PIDS;
	if (outarg) {
		nsel = parse_cols(argv[0], outarg, sel, NDEFAULT);
		if (nsel < 0)
			return CLI_EXIT_USAGE;
	}

	rc = cli_seglist_load(&list);
	if (rc < 0) {
		cli_err("cannot list %s: %s (is it mounted? is "
			"SHMKIT_SHM_DIR right? see 'shmkit doctor')",
			shmkit_shm_dir(), shmkit_strerror(rc));
		return CLI_EXIT_FAIL;
	}

	if (json) {
		struct cli_json j;

		cli_json_init(&j, stdout);
		cli_json_obj_begin(&j, NULL);
		cli_json_arr_begin(&j, "segments");
		for (size_t i = 0; i < list.n; i++) {
			cli_json_obj_begin(&j, NULL);
			for (int k = 0; k < nsel; k++)
				json_cell(&j, &list.v[i], sel[k]);
			cli_json_obj_end(&j);
		}
		cli_json_arr_end(&j);
		cli_json_obj_end(&j);
		cli_json_end(&j);
		cli_seglist_free(&list);
		return CLI_EXIT_OK;
	}

	const char *heads[MAXSEL];
	int right[MAXSEL];
	struct cli_table *t;

	for (int k = 0; k < nsel; k++) {
		heads[k] = cols[sel[k]].name;
		right[k] = cols[sel[k]].right;
	}
	t = cli_table_new((size_t)nsel, heads, right);
	if (!t)
		goto nomem;
	for (size_t i = 0; i < list.n; i++) {
		static char bufs[MAXSEL][1024];
		const char *cells[MAXSEL];

		for (int k = 0; k < nsel; k++)
			cells[k] = cell(&list.v[i], sel[k], bytes, bufs[k],
					sizeof(bufs[k]));
		if (cli_table_add(t, cells) < 0) {
			cli_table_free(t);
			goto nomem;
		}
	}
	cli_table_print(t, stdout, headings);
	cli_seglist_free(&list);
	return CLI_EXIT_OK;
nomem:
	cli_seglist_free(&list);
	cli_err("out of memory");
	return CLI_EXIT_FAIL;
}
