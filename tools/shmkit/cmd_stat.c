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

/* ---- heap, named objects and maps: shmkit_heap(3), shmkit_map(3) ---- */

#define STAT_MAX_OBJS 64

struct objview {
	int have_heap;
	struct shmkit_heap_stats hs;
	int nobj;
	struct shmkit_obj_info obj[STAT_MAX_OBJS];
	int is_map[STAT_MAX_OBJS];
	struct shmkit_map_stats ms[STAT_MAX_OBJS];
};

static int objview_add(const struct shmkit_obj_info *oi, void *arg)
{
	struct objview *v = arg;

	if (v->nobj < STAT_MAX_OBJS)
		v->obj[v->nobj++] = *oi;
	return 0;
}

/* Open the segment read-only (no slot, no writes) and read the heap's
 * and every map's statistics. Leaves v empty if there is no heap. */
static void objview_load(const struct shmkit_seg_info *in, struct objview *v)
{
	struct shmkit_seg_opts so = {.sz = sizeof(so),
				     .mode = 0777,
				     .flags = SHMKIT_SEG_RDONLY |
					      SHMKIT_SEG_ANY_OWNER};
	struct shmkit_seg *seg = NULL;
	struct shmkit_heap *h = NULL;
	int rc;

	memset(v, 0, sizeof(*v));
	if (in->state != SHMKIT_STATE_OK)
		return;
	rc = in->kind == SHMKIT_SEG_FILE
		     ? shmkit_seg_open_file(in->path, &so, &seg)
		     : shmkit_seg_open(in->name, &so, &seg);
	if (rc < 0)
		return;
	v->hs.sz = sizeof(v->hs);
	if (shmkit_heap_open(seg, NULL, &h) == 0 &&
	    shmkit_heap_stats(h, &v->hs) == 0) {
		v->have_heap = 1;
		shmkit_obj_list(h, objview_add, v);
		for (int i = 0; i < v->nobj; i++) {
			struct shmkit_map *m;

			if (v->obj[i].kind != SHMKIT_OBJ_KIND_MAP ||
			    shmkit_map_open(h, v->obj[i].name, NULL, &m) < 0)
				continue;
			v->ms[i].sz = sizeof(v->ms[i]);
			v->is_map[i] = shmkit_map_stats(m, &v->ms[i]) == 0;
			shmkit_map_close(m);
		}
	}
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
}

static void objview_text(const struct objview *v)
{
	char a[32], b[32], c[32];

	if (!v->have_heap)
		return;
	cli_human_size(v->hs.free_bytes, a, sizeof(a));
	cli_human_size(v->hs.heap_bytes, b, sizeof(b));
	cli_human_size(v->hs.largest_free, c, sizeof(c));
	LINE("Heap", "%s of %s free (largest block %s)", a, b, c);
	cli_human_size(v->hs.used_bytes, a, sizeof(a));
	cli_human_size(v->hs.cached_bytes, b, sizeof(b));
	LINE("Heap use",
	     "%llu blocks (%s) used, %llu (%s) cached, "
	     "%u handles, %llu repairs",
	     (unsigned long long)v->hs.used_blocks, a,
	     (unsigned long long)v->hs.cached_blocks, b, (unsigned)v->hs.owners,
	     (unsigned long long)v->hs.repairs);
	for (int i = 0; i < v->nobj; i++) {
		const struct shmkit_obj_info *o = &v->obj[i];

		cli_human_size(o->size, a, sizeof(a));
		if (v->is_map[i])
			LINE("Object",
			     "%s: map, %s, %llu of %llu keys (key "
			     "<= %u, value <= %u bytes), %u stripes, %llu "
			     "repairs",
			     o->name, a, (unsigned long long)v->ms[i].count,
			     (unsigned long long)v->ms[i].capacity,
			     (unsigned)v->ms[i].key_max,
			     (unsigned)v->ms[i].val_max,
			     (unsigned)v->ms[i].stripes,
			     (unsigned long long)v->ms[i].repairs);
		else
			LINE("Object", "%s: kind %u, %s at offset %llu",
			     o->name, (unsigned)o->kind, a,
			     (unsigned long long)o->off);
	}
}

static void objview_json(struct cli_json *j, const struct objview *v)
{
	if (!v->have_heap) {
		cli_json_null(j, "heap");
		cli_json_arr_begin(j, "objects");
		cli_json_arr_end(j);
		return;
	}
	cli_json_obj_begin(j, "heap");
	cli_json_uint(j, "heap_bytes", v->hs.heap_bytes);
	cli_json_uint(j, "free_bytes", v->hs.free_bytes);
	cli_json_uint(j, "free_blocks", v->hs.free_blocks);
	cli_json_uint(j, "largest_free", v->hs.largest_free);
	cli_json_uint(j, "used_bytes", v->hs.used_bytes);
	cli_json_uint(j, "used_blocks", v->hs.used_blocks);
	cli_json_uint(j, "cached_bytes", v->hs.cached_bytes);
	cli_json_uint(j, "cached_blocks", v->hs.cached_blocks);
	cli_json_uint(j, "handles", v->hs.owners);
	cli_json_uint(j, "repairs", v->hs.repairs);
	cli_json_obj_end(j);
	cli_json_arr_begin(j, "objects");
	for (int i = 0; i < v->nobj; i++) {
		const struct shmkit_obj_info *o = &v->obj[i];

		cli_json_obj_begin(j, NULL);
		cli_json_str(j, "name", o->name);
		cli_json_str(j, "type", v->is_map[i] ? "map" : "object");
		cli_json_uint(j, "kind", o->kind);
		cli_json_uint(j, "size", o->size);
		cli_json_uint(j, "offset", o->off);
		if (v->is_map[i]) {
			cli_json_obj_begin(j, "map");
			cli_json_uint(j, "keys", v->ms[i].count);
			cli_json_uint(j, "capacity", v->ms[i].capacity);
			cli_json_uint(j, "key_max", v->ms[i].key_max);
			cli_json_uint(j, "value_max", v->ms[i].val_max);
			cli_json_uint(j, "buckets", v->ms[i].buckets);
			cli_json_uint(j, "stripes", v->ms[i].stripes);
			cli_json_uint(j, "repairs", v->ms[i].repairs);
			cli_json_obj_end(j);
		}
		cli_json_obj_end(j);
	}
	cli_json_arr_end(j);
}

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
	{
		struct objview *v = malloc(sizeof(*v));

		if (v) {
			objview_load(in, v);
			objview_text(v);
			free(v);
		}
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
	{
		struct objview *v = malloc(sizeof(*v));

		if (v) {
			objview_load(in, v);
			objview_json(&j, v);
			free(v);
		}
	}
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
