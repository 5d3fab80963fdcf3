/* SPDX-License-Identifier: MIT */
/*
 * shmkit kv: a key-value store in a named segment, through the shared hash
 * map (put creates the segment, its heap and the map when missing; get,
 * del and ls only open them). Public API only.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_MAP "kv"
#define KV_SIZE (8u << 20)
#define KV_CAPACITY 1024u
#define KV_KEY_MAX 256u
#define KV_VAL_MAX 4096u

static void help(void)
{
	fputs("Usage: shmkit kv [OPTIONS] NAME put KEY VALUE\n"
	      "       shmkit kv [OPTIONS] NAME get KEY\n"
	      "       shmkit kv [OPTIONS] NAME del KEY\n"
	      "       shmkit kv [OPTIONS] NAME ls [--json]\n"
	      "\n"
	      "A key-value store in the segment NAME, kept in a shared hash\n"
	      "map that any number of processes read and write at once.\n"
	      "put creates the segment (persistent, mode 0600), its heap and\n"
	      "the map when they do not exist yet; get prints the value and a\n"
	      "newline; del removes the key; ls lists keys and values sorted\n"
	      "by key (bytes that are not printable are shown as \\xHH).\n"
	      "\n"
	      "Options:\n"
	      "  -J, --json           ls: JSON output\n"
	      "  -m, --map MAP        the map's object name (default \"kv\")\n"
	      "  -s, --size SIZE      put, new segment: size (default 8M)\n"
	      "  -c, --capacity N     put, new map: keys it holds (default "
	      "1024)\n"
	      "      --key-max N      put, new map: longest key (default 256)\n"
	      "      --value-max N    put, new map: longest value (default "
	      "4096)\n"
	      "  -h, --help           show this help\n"
	      "\n"
	      "Exit status: 0 success, 1 failure (get/del: no such key; no\n"
	      "such segment or map; map full), 2 bad usage.\n",
	      stdout);
}

struct kv {
	struct shmkit_seg *seg;
	struct shmkit_heap *heap;
	struct shmkit_map *map;
};

static void kv_close(struct kv *kv)
{
	shmkit_map_close(kv->map);
	shmkit_heap_close(kv->heap);
	shmkit_seg_close(kv->seg);
}

/* Open (create with put) segment, heap and map. Prints the error. */
static int kv_open(struct kv *kv, const char *name, const char *map, int create,
		   uint64_t size, const struct shmkit_map_opts *mo)
{
	struct shmkit_heap_opts ho = {.sz = sizeof(ho)};
	struct shmkit_map_opts o = *mo;
	int rc;

	memset(kv, 0, sizeof(*kv));
	rc = shmkit_seg_open(name, NULL, &kv->seg);
	if (rc == -ENOENT && create) {
		rc = shmkit_seg_create(name, size, NULL, &kv->seg);
		if (rc == -EEXIST)
			rc = shmkit_seg_open(name, NULL, &kv->seg);
	}
	if (rc < 0) {
		cli_seg_err("open", name, rc);
		return rc;
	}
	if (create)
		ho.flags = SHMKIT_HEAP_CREATE;
	rc = shmkit_heap_open(kv->seg, &ho, &kv->heap);
	if (rc == 0) {
		if (create)
			o.flags |= SHMKIT_MAP_CREATE;
		rc = shmkit_map_open(kv->heap, map, &o, &kv->map);
	}
	if (rc < 0) {
		if (rc == -ENOENT)
			cli_err("segment '%s' holds no key-value map '%s' "
				"(create one with 'shmkit kv %s put')",
				name, map, name);
		else if (rc == -EPROTO)
			cli_err("object '%s' in segment '%s' is not a map", map,
				name);
		else
			cli_err("cannot open map '%s' in segment '%s': %s", map,
				name, shmkit_strerror(rc));
		kv_close(kv);
		return rc;
	}
	return 0;
}

struct item {
	char *key, *val;
	size_t klen, vlen;
};

struct items {
	struct item *v;
	size_t n, cap;
};

static int collect(const void *key, size_t klen, const void *val, size_t vlen,
		   void *arg)
{
	struct items *it = arg;
	struct item *x;

	if (it->n == it->cap) {
		size_t nc = it->cap ? it->cap * 2 : 64;
		struct item *nv = realloc(it->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		it->v = nv;
		it->cap = nc;
	}
	x = &it->v[it->n];
	x->key = malloc(klen + 1);
	x->val = malloc(vlen + 1);
	if (!x->key || !x->val) {
		free(x->key);
		free(x->val);
		return -ENOMEM;
	}
	memcpy(x->key, key, klen);
	x->key[klen] = '\0';
	memcpy(x->val, val, vlen);
	x->val[vlen] = '\0';
	x->klen = klen;
	x->vlen = vlen;
	it->n++;
	return 0;
}

static int by_key(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	size_t n = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp(x->key, y->key, n);

	if (c)
		return c;
	return x->klen < y->klen ? -1 : x->klen > y->klen;
}

static int do_ls(struct kv *kv, int json)
{
	static const char *const heads[] = {"KEY", "VALUE"};
	static const int right[] = {0, 0};
	struct items it = {NULL, 0, 0};
	int rc = shmkit_map_foreach(kv->map, collect, &it);

	if (rc < 0) {
		cli_err("cannot list the map: %s", shmkit_strerror(rc));
		goto out;
	}
	qsort(it.v, it.n, sizeof(*it.v), by_key);
	if (json) {
		struct cli_json j;

		cli_json_init(&j, stdout);
		cli_json_arr_begin(&j, NULL);
		for (size_t i = 0; i < it.n; i++) {
			cli_json_obj_begin(&j, NULL);
			cli_json_str(&j, "key", it.v[i].key);
			cli_json_str(&j, "value", it.v[i].val);
			cli_json_obj_end(&j);
		}
		cli_json_arr_end(&j);
		cli_json_end(&j);
	} else if (it.n) {
		struct cli_table *t = cli_table_new(2, heads, right);

		if (!t) {
			rc = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < it.n; i++) {
			const char *cells[] = {it.v[i].key, it.v[i].val};

			if (cli_table_add(t, cells) < 0) {
				cli_table_free(t);
				rc = -ENOMEM;
				goto out;
			}
		}
		cli_table_print(t, stdout, 1);
	}
out:
	for (size_t i = 0; i < it.n; i++) {
		free(it.v[i].key);
		free(it.v[i].val);
	}
	free(it.v);
	return rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

CLI_COMMAND(kv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'J'},
		{"map", required_argument, NULL, 'm'},
		{"size", required_argument, NULL, 's'},
		{"capacity", required_argument, NULL, 'c'},
		{"key-max", required_argument, NULL, 'K'},
		{"value-max", required_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct shmkit_map_opts mo = {.sz = sizeof(mo),
				     .capacity = KV_CAPACITY,
				     .key_max = KV_KEY_MAX,
				     .val_max = KV_VAL_MAX};
	const char *name, *verb, *map = KV_MAP;
	uint64_t size = KV_SIZE;
	int c, rc, json = 0, nargs, want;
	struct kv kv;

	while ((c = cli_getopt(argc, argv, "+:Jm:s:c:h", opts)) != -1) {
		switch (c) {
		case 'J':
			json = 1;
			break;
		case 'm':
			map = optarg;
			break;
		case 's':
			if (cli_parse_size(optarg, &size) < 0 || !size)
				return cli_usage_err(
					argv[0], "invalid size '%s'", optarg);
			break;
		case 'c':
			if (parse_u32(optarg, &mo.capacity) < 0)
				return cli_usage_err(argv[0],
						     "invalid capacity '%s'",
						     optarg);
			break;
		case 'K':
			if (parse_u32(optarg, &mo.key_max) < 0)
				return cli_usage_err(argv[0],
						     "invalid key length '%s'",
						     optarg);
			break;
		case 'V':
			if (parse_u32(optarg, &mo.val_max) < 0)
				return cli_usage_err(
					argv[0], "invalid value length '%s'",
					optarg);
			break;
		case 'h':
			help();
			return CLI_EXIT_OK;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	/* A "--" after the command ends its options: drop it (getopt
	 * stopped at NAME). */
	for (int i = optind + 2; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			memmove(&argv[i], &argv[i + 1],
				(size_t)(argc - i - 1) * sizeof(*argv));
			argc--;
			break;
		}
	}
	nargs = argc - optind;
	if (nargs < 2)
		return cli_usage_err(argv[0], "expected NAME and a command "
					      "(put, get, del or ls)");
	name = argv[optind];
	verb = argv[optind + 1];
	/* "ls --json" after the command is accepted too. */
	if (strcmp(verb, "ls") == 0 && nargs == 3 &&
	    (strcmp(argv[optind + 2], "--json") == 0 ||
	     strcmp(argv[optind + 2], "-J") == 0)) {
		json = 1;
		nargs = 2;
	}
	if (strcmp(verb, "put") == 0)
		want = 4;
	else if (strcmp(verb, "get") == 0 || strcmp(verb, "del") == 0)
		want = 3;
	else if (strcmp(verb, "ls") == 0)
		want = 2;
	else
		return cli_usage_err(argv[0],
				     "unknown command '%s' (put, "
				     "get, del or ls)",
				     verb);
	if (nargs != want)
		return cli_usage_err(argv[0], "'%s' takes %d argument%s", verb,
				     want - 2, want == 3 ? "" : "s");
	if (!cli_name_valid(name)) {
		cli_seg_err("open", name, -EINVAL);
		return CLI_EXIT_USAGE;
	}
	if (kv_open(&kv, name, map, want == 4, size, &mo) < 0)
		return CLI_EXIT_FAIL;
	rc = CLI_EXIT_OK;
	if (want == 2) {
		rc = do_ls(&kv, json);
	} else {
		const char *key = argv[optind + 2];
		size_t klen = strlen(key);

		if (want == 4) {
			const char *val = argv[optind + 3];
			int r = shmkit_map_put(kv.map, key, klen, val,
					       strlen(val), 0);

			if (r < 0) {
				cli_err("cannot put '%s': %s%s", key,
					shmkit_strerror(r),
					r == -ENOSPC ? " (the map is full)"
					: r == -EMSGSIZE
						? " (key or value too long "
						  "for this map)"
						: "");
				rc = CLI_EXIT_FAIL;
			}
		} else if (strcmp(verb, "get") == 0) {
			struct shmkit_map_stats st = {.sz = sizeof(st)};
			char *buf = NULL;
			int len = shmkit_map_stats(kv.map, &st);

			if (len == 0) {
				buf = malloc((size_t)st.val_max + 1);
				len = buf ? shmkit_map_get(kv.map, key, klen,
							   buf, st.val_max)
					  : -ENOMEM;
			}
			if (len >= 0) {
				fwrite(buf, 1, (size_t)len, stdout);
				putchar('\n');
			} else {
				if (len == -ENOENT)
					cli_err("no key '%s' in '%s'", key,
						name);
				else
					cli_err("cannot get '%s': %s", key,
						shmkit_strerror(len));
				rc = CLI_EXIT_FAIL;
			}
			free(buf);
		} else {
			int r = shmkit_map_del(kv.map, key, klen);

			if (r < 0) {
				if (r == -ENOENT)
					cli_err("no key '%s' in '%s'", key,
						name);
				else
					cli_err("cannot delete '%s': %s", key,
						shmkit_strerror(r));
				rc = CLI_EXIT_FAIL;
			}
		}
	}
	kv_close(&kv);
	return rc;
}
