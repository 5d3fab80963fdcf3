/* SPDX-License-Identifier: MIT */
/*
 * shmkit stat: everything shmkit_seg_stat() knows about one segment (or a
 * file-backed segment given by path), as "field: value" lines or as JSON.
 * Inspection never attaches, so it works on stale and broken segments too.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
	fputs("Usage: shmkit stat [OPTIONS] NAME\n"
	      "       shmkit stat [OPTIONS] --file PATH\n"
	      "\n"
	      "Show everything known about a segment without attaching to\n"
	      "it: path, state, lifetime, sizes, mode, owner, layout version,\n"
	      "creator, creation time, named-object directory usage and the\n"
	      "attached processes.\n"
	      "\n"
	      "Options:\n"
	      "  -J, --json   JSON output\n"
	      "  -f, --file   the argument is the path of a file-backed "
	      "segment\n"
	      "  -h, --help   show this help\n"
	      "\n"
	      "Exit status: 0 shown (whatever the segment's state), 1 failed\n"
	      "(no such segment, permission), 2 bad usage.\n",
	      stdout);
}

#define LINE(label, ...)                     \
	do {                                 \
		printf("%-13s ", label ":"); \
		printf(__VA_ARGS__);         \
		putchar('\n');               \
	} while (0)

static void print_text(const struct shmkit_seg_info *in)
{
	char a[128], b[128];
	int hdr = cli_has_header(in);

	LINE("Name", "%s", in->name[0] ? in->name : "-");
	LINE("Path", "%s", in->path);
	LINE("Kind", "%s", cli_kind_name(in->kind));
	LINE("State", "%s (%s)", cli_state_name(in->state),
	     cli_state_why(in->state));
	if (hdr)
		LINE("Lifetime", "%s", cli_lifetime(in));
	cli_human_size(in->file_size, a, sizeof(a));
	LINE("File size", "%llu bytes (%s)", (unsigned long long)in->file_size,
	     a);
	if (in->data_size) {
		cli_human_size(in->data_size, a, sizeof(a));
		LINE("Data size", "%llu bytes (%s)",
		     (unsigned long long)in->data_size, a);
	}
	LINE("Mode", "%04o", (unsigned)in->mode);
	cli_user_name(in->owner_uid, a, sizeof(a));
	LINE("Owner", "%s (uid %u)", a, (unsigned)in->owner_uid);
	if (in->layout_version)
		LINE("Layout", "%u (this library: %u)",
		     (unsigned)in->layout_version,
		     (unsigned)shmkit_layout_version());
	if (!hdr)
		return;
	cli_user_name(in->creator_uid, a, sizeof(a));
	LINE("Creator", "%s (uid %u), pid %d", a, (unsigned)in->creator_uid,
	     (int)in->creator_pid);
	if (in->created_realtime_ns) {
		cli_iso_time(in->created_realtime_ns, b, sizeof(b));
		LINE("Created", "%s", b);
	}
	if (in->dir_capacity)
		LINE("Directory", "%u of %u named objects used",
		     (unsigned)in->dir_used, (unsigned)in->dir_capacity);
	if (in->users_untracked)
		LINE("Users",
		     "%u (and at least %u without a slot: read-only "
		     "or beyond %d)",
		     (unsigned)in->nusers, (unsigned)in->users_untracked,
		     SHMKIT_SEG_MAX_USERS);
	else
		LINE("Users", "%u", (unsigned)in->nusers);
	for (uint32_t i = 0; i < in->nusers && i < SHMKIT_SEG_MAX_USERS; i++) {
		const struct shmkit_seg_user *u = &in->users[i];

		cli_user_name(u->uid, a, sizeof(a));
		cli_iso_time(u->attach_realtime_ns, b, sizeof(b));
		printf("  pid %-8d uid %-6u %-12s attached %s\n", (int)u->pid,
		       (unsigned)u->uid, a, b);
	}
}

static void print_json(const struct shmkit_seg_info *in)
{
	struct cli_json j;
	char a[128];
	int hdr = cli_has_header(in);

	cli_json_init(&j, stdout);
	cli_json_obj_begin(&j, NULL);
	cli_json_str(&j, "name", in->name[0] ? in->name : NULL);
	cli_json_str(&j, "path", in->path);
	cli_json_str(&j, "kind", cli_kind_name(in->kind));
	cli_json_str(&j, "state", cli_state_name(in->state));
	cli_json_str(&j, "state_reason", cli_state_why(in->state));
	cli_json_str(&j, "lifetime", cli_lifetime(in));
	cli_json_uint(&j, "size", in->file_size);
	if (in->data_size)
		cli_json_uint(&j, "data_size", in->data_size);
	else
		cli_json_null(&j, "data_size");
	snprintf(a, sizeof(a), "%04o", (unsigned)in->mode);
	cli_json_str(&j, "mode", a);
	cli_json_uint(&j, "uid", in->owner_uid);
	cli_user_name(in->owner_uid, a, sizeof(a));
	cli_json_str(&j, "owner", a);
	if (in->layout_version)
		cli_json_uint(&j, "layout_version", in->layout_version);
	else
		cli_json_null(&j, "layout_version");
	if (hdr) {
		cli_json_uint(&j, "creator_uid", in->creator_uid);
		cli_user_name(in->creator_uid, a, sizeof(a));
		cli_json_str(&j, "creator", a);
		cli_json_int(&j, "creator_pid", in->creator_pid);
		cli_iso_time(in->created_realtime_ns, a, sizeof(a));
		cli_json_str(&j, "created", a);
		cli_json_uint(&j, "created_ns", in->created_realtime_ns);
	} else {
		cli_json_null(&j, "creator_uid");
		cli_json_null(&j, "creator");
		cli_json_null(&j, "creator_pid");
		cli_json_null(&j, "created");
		cli_json_null(&j, "created_ns");
	}
	if (in->dir_capacity) {
		cli_json_obj_begin(&j, "directory");
		cli_json_uint(&j, "used", in->dir_used);
		cli_json_uint(&j, "capacity", in->dir_capacity);
		cli_json_obj_end(&j);
	} else {
		cli_json_null(&j, "directory");
	}
	if (hdr)
		cli_json_uint(&j, "users", in->nusers + in->users_untracked);
	else
		cli_json_null(&j, "users");
	cli_json_uint(&j, "users_untracked", in->users_untracked);
	cli_json_arr_begin(&j, "attached");
	for (uint32_t i = 0; i < in->nusers && i < SHMKIT_SEG_MAX_USERS; i++) {
		const struct shmkit_seg_user *u = &in->users[i];

		cli_json_obj_begin(&j, NULL);
		cli_json_int(&j, "pid", u->pid);
		cli_json_uint(&j, "uid", u->uid);
		cli_user_name(u->uid, a, sizeof(a));
		cli_json_str(&j, "user", a);
		cli_iso_time(u->attach_realtime_ns, a, sizeof(a));
		cli_json_str(&j, "attached", a);
		cli_json_uint(&j, "attached_ns", u->attach_realtime_ns);
		cli_json_obj_end(&j);
	}
	cli_json_arr_end(&j);
	cli_json_obj_end(&j);
	cli_json_end(&j);
}

CLI_COMMAND(stat)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'J'},
		{"file", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct shmkit_seg_info *info;
	int c, rc, json = 0, file = 0;
	const char *name;

	while ((c = cli_getopt(argc, argv, ":Jfh", opts)) != -1) {
		switch (c) {
		case 'J':
			json = 1;
			break;
		case 'f':
			file = 1;
			break;
		case 'h':
			help();
			return CLI_EXIT_OK;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return cli_usage_err(argv[0],
				     "expected one %s, got %d "
				     "arguments",
				     file ? "PATH" : "NAME", argc - optind);
	name = argv[optind];
	info = calloc(1, sizeof(*info));
	if (!info) {
		cli_err("out of memory");
		return CLI_EXIT_FAIL;
	}
	info->sz = sizeof(*info);
	rc = file ? shmkit_seg_stat_file(name, info)
		  : shmkit_seg_stat(name, info);
	if (rc < 0) {
		if (file)
			cli_err("cannot inspect '%s': %s%s", name,
				shmkit_strerror(rc),
				rc == -ENOENT ? " (check the path)" : "");
		else
			cli_seg_err("inspect", name, rc);
		free(info);
		return CLI_EXIT_FAIL;
	}
	if (json)
		print_json(info);
	else
		print_text(info);
	free(info);
	return CLI_EXIT_OK;
}
