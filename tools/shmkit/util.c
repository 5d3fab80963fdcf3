/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the subcommands of the shmkit tool: messages that name
 * the problem and the fix, option parsing, sizes, times and user names, the
 * sorted segment list, an aligned table printer and a JSON writer.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- messages ------------------------------------------------------- */

int cli_std_closed[3];

void cli_err(const char *fmt, ...)
{
	va_list ap;

	fputs("shmkit: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_usage_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "shmkit %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'shmkit %s --help' for more information.\n",
		cmd);
	return CLI_EXIT_USAGE;
}

void cli_seg_path(const char *name, char *buf, size_t len)
{
	while (*name == '/')
		name++;
	snprintf(buf, len, "%s/%s", shmkit_shm_dir(), name);
}

/* Who owns the file under name, for permission messages. */
static void owner_hint(const char *name, char *buf, size_t len)
{
	char path[4096], user[64];
	struct stat st;

	cli_seg_path(name, path, sizeof(path));
	if (lstat(path, &st) < 0) {
		snprintf(buf, len, "run as the segment's owner, or as root");
		return;
	}
	cli_user_name((uint32_t)st.st_uid, user, sizeof(user));
	if (st.st_uid == geteuid())
		snprintf(buf, len, "mode %04o, owned by you; check the mode",
			 (unsigned)(st.st_mode & 07777));
	else
		snprintf(buf, len,
			 "owned by uid %u (%s), mode %04o; run as that user, "
			 "or as root",
			 (unsigned)st.st_uid, user,
			 (unsigned)(st.st_mode & 07777));
}

int cli_name_valid(const char *name)
{
	size_t n;

	if (*name == '/')
		name++;
	n = strlen(name);
	if (n == 0 || n > SHMKIT_SEG_NAME_MAX || name[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

void cli_seg_err(const char *verb, const char *name, int rc)
{
	char hint[512];
	const char *what = shmkit_strerror(rc);

	switch (-rc) {
	case ENOENT:
		what = "no such segment";
		snprintf(hint, sizeof(hint), "see 'shmkit ls'");
		break;
	case EEXIST:
		what = "a segment or file of that name already exists";
		snprintf(hint, sizeof(hint),
			 "remove it with 'shmkit rm %s' or choose another "
			 "name",
			 name);
		break;
	case EINVAL:
		if (cli_name_valid(name)) {
			what = "invalid argument";
			hint[0] = '\0';
			break;
		}
		what = "invalid name";
		snprintf(hint, sizeof(hint), CLI_NAME_RULE,
			 SHMKIT_SEG_NAME_MAX);
		break;
	case EACCES:
	case EPERM:
		what = "permission denied";
		owner_hint(name, hint, sizeof(hint));
		break;
	case ENOSPC:
		what = "no space left in the shared-memory directory";
		snprintf(hint, sizeof(hint),
			 "free space in %s or enlarge it; see 'shmkit doctor'",
			 shmkit_shm_dir());
		break;
	case EFBIG:
		snprintf(hint, sizeof(hint),
			 "raise the file size limit (ulimit -f unlimited)");
		break;
	case ENOMEM:
		snprintf(hint, sizeof(hint), "try a smaller size");
		break;
	case EPROTO:
		snprintf(hint, sizeof(hint), "see 'shmkit stat %s'", name);
		break;
	case EBADMSG:
		what = "corrupt segment header";
		snprintf(hint, sizeof(hint),
			 "see 'shmkit stat %s'; remove it with 'shmkit rm %s'",
			 name, name);
		break;
	case ENOTRECOVERABLE:
		what = "its creator died before finishing it";
		snprintf(hint, sizeof(hint), "remove it with 'shmkit gc'");
		break;
	case ETIMEDOUT:
		what = "its creator is still initialising it";
		snprintf(hint, sizeof(hint), "try again");
		break;
	case ENAMETOOLONG:
		snprintf(hint, sizeof(hint),
			 "use a name of at most %d "
			 "characters",
			 SHMKIT_SEG_NAME_MAX);
		break;
	default:
		hint[0] = '\0';
		break;
	}
	if (hint[0])
		cli_err("cannot %s segment '%s': %s (%s)", verb, name, what,
			hint);
	else
		cli_err("cannot %s segment '%s': %s", verb, name, what);
}

int cli_getopt(int argc, char **argv, const char *shortopts,
	       const struct option *longopts)
{
	int c;

	opterr = 0;
	c = getopt_long(argc, argv, shortopts, longopts, NULL);
	if (c == '?') {
		if (optopt)
			cli_usage_err(argv[0], "invalid option -- '%c'",
				      optopt);
		else
			cli_usage_err(argv[0], "unrecognized option '%s'",
				      argv[optind - 1]);
		return '?';
	}
	if (c == ':') {
		if (optopt)
			cli_usage_err(argv[0],
				      "option requires an argument -- '%c'",
				      optopt);
		else
			cli_usage_err(argv[0],
				      "option '%s' requires an argument",
				      argv[optind - 1]);
		return '?';
	}
	return c;
}

/* ---- parsing and formatting ---------------------------------------- */

int cli_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (shift) {
		end++;
		if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)
			end += strlen(end);
	}
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

int cli_parse_mode(const char *s, uint32_t *out)
{
	unsigned long v;
	char *end;

	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '7')
			return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 8);
	if (errno || *end || v == 0 || v > 0777)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

void cli_human_size(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "KMGTPE";
	uint64_t div = 1;
	int u = -1;

	while (u < 5 && bytes / div >= 1024) {
		div *= 1024;
		u++;
	}
	if (u < 0) {
		snprintf(buf, len, "%lluB", (unsigned long long)bytes);
		return;
	}
	/* One decimal, rounded, dropped when it is zero. */
	uint64_t tenths = (bytes % div * 10 + div / 2) / div;
	uint64_t whole = bytes / div;

	if (tenths == 10) {
		whole++;
		tenths = 0;
	}
	if (tenths)
		snprintf(buf, len, "%llu.%llu%c", (unsigned long long)whole,
			 (unsigned long long)tenths, units[u]);
	else
		snprintf(buf, len, "%llu%c", (unsigned long long)whole,
			 units[u]);
}

void cli_iso_time(uint64_t realtime_ns, char *buf, size_t len)
{
	time_t t = (time_t)(realtime_ns / 1000000000ull);
	char date[40], zone[8];
	struct tm tm;

	if (!localtime_r(&t, &tm) ||
	    !strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) ||
	    strftime(zone, sizeof(zone), "%z", &tm) != 5) {
		snprintf(buf, len, "%llu", (unsigned long long)realtime_ns);
		return;
	}
	/* %z is +hhmm; ISO 8601 extended format wants +hh:mm. */
	snprintf(buf, len, "%s%.3s:%s", date, zone, zone + 3);
}

void cli_user_name(uint32_t uid, char *buf, size_t len)
{
	struct passwd pw, *res = NULL;
	char tmp[4096];

	if (getpwuid_r((uid_t)uid, &pw, tmp, sizeof(tmp), &res) == 0 && res)
		snprintf(buf, len, "%s", res->pw_name);
	else
		snprintf(buf, len, "%u", (unsigned)uid);
}

const char *cli_state_name(enum shmkit_seg_state st)
{
	switch (st) {
	case SHMKIT_STATE_OK:
		return "ok";
	case SHMKIT_STATE_STALE:
		return "stale";
	case SHMKIT_STATE_INCOMPLETE:
		return "incomplete";
	case SHMKIT_STATE_CREATING:
		return "creating";
	case SHMKIT_STATE_CORRUPT:
		return "corrupt";
	case SHMKIT_STATE_VERSION:
		return "version";
	case SHMKIT_STATE_FOREIGN:
		return "foreign";
	case SHMKIT_STATE_DENIED:
		return "denied";
	}
	return "unknown";
}

const char *cli_state_why(enum shmkit_seg_state st)
{
	switch (st) {
	case SHMKIT_STATE_OK:
		return "ready";
	case SHMKIT_STATE_STALE:
		return "scoped segment whose users all died";
	case SHMKIT_STATE_INCOMPLETE:
		return "creator died before the segment was ready";
	case SHMKIT_STATE_CREATING:
		return "creator still initialising it";
	case SHMKIT_STATE_CORRUPT:
		return "shmkit magic but an inconsistent header";
	case SHMKIT_STATE_VERSION:
		return "shmkit segment of another layout version";
	case SHMKIT_STATE_FOREIGN:
		return "not a shmkit segment";
	case SHMKIT_STATE_DENIED:
		return "this user may not read it (another user's file)";
	}
	return "unknown state";
}

const char *cli_kind_name(enum shmkit_seg_kind k)
{
	switch (k) {
	case SHMKIT_SEG_NAMED:
		return "named";
	case SHMKIT_SEG_ANON:
		return "anonymous";
	case SHMKIT_SEG_MEMFD:
		return "memfd";
	case SHMKIT_SEG_FILE:
		return "file";
	}
	return "unknown";
}

int cli_has_header(const struct shmkit_seg_info *in)
{
	return in->state == SHMKIT_STATE_OK ||
	       in->state == SHMKIT_STATE_STALE ||
	       in->state == SHMKIT_STATE_INCOMPLETE ||
	       in->state == SHMKIT_STATE_CREATING;
}

const char *cli_lifetime(const struct shmkit_seg_info *in)
{
	if (!cli_has_header(in))
		return NULL;
	return in->flags & SHMKIT_SEG_SCOPED ? "scoped" : "persistent";
}

/* ---- segment list --------------------------------------------------- */

static int seglist_add(const struct shmkit_seg_info *info, void *arg)
{
	struct cli_seglist *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct shmkit_seg_info *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *info;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	const struct shmkit_seg_info *x = a, *y = b;

	return strcmp(x->name, y->name);
}

int cli_seglist_load(struct cli_seglist *l)
{
	int rc;

	memset(l, 0, sizeof(*l));
	rc = shmkit_seg_list(seglist_add, l);
	if (rc < 0) {
		cli_seglist_free(l);
		return rc;
	}
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), by_name);
	return 0;
}

void cli_seglist_free(struct cli_seglist *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* ---- aligned table --------------------------------------------------- */

struct cli_table {
	size_t ncols, nrows, cap;
	char **cells; /* nrows * ncols, row-major; row 0 holds the headers */
	int *right;
};

/* A copy of s with non-printable bytes (and any non-ASCII) as \xHH. */
static char *sanitize(const char *s)
{
	size_t n = 0;
	char *out, *p;

	if (!s)
		s = "-";
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		n += (*c >= 0x20 && *c < 0x7f && *c != '\\') ? 1 : 4;
	out = malloc(n + 1);
	if (!out)
		return NULL;
	p = out;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c >= 0x20 && *c < 0x7f && *c != '\\')
			*p++ = (char)*c;
		else
			p += sprintf(p, "\\x%02x", *c);
	}
	*p = '\0';
	return out;
}

struct cli_table *cli_table_new(size_t ncols, const char *const *headers,
				const int *right)
{
	struct cli_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ncols = ncols;
	t->right = calloc(ncols ? ncols : 1, sizeof(int));
	if (!t->right || (ncols && cli_table_add(t, headers) < 0)) {
		cli_table_free(t);
		return NULL;
	}
	for (size_t i = 0; i < ncols; i++)
		t->right[i] = right ? right[i] : 0;
	return t;
}

int cli_table_add(struct cli_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **v = realloc(t->cells, cap * t->ncols * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->cells = v;
		t->cap = cap;
	}
	for (size_t i = 0; i < t->ncols; i++) {
		char *c = sanitize(cells[i]);

		if (!c) {
			while (i--)
				free(t->cells[t->nrows * t->ncols + i]);
			return -ENOMEM;
		}
		t->cells[t->nrows * t->ncols + i] = c;
	}
	t->nrows++;
	return 0;
}

void cli_table_print(struct cli_table *t, FILE *f, int headings)
{
	size_t *w = calloc(t->ncols ? t->ncols : 1, sizeof(*w));

	if (!w) {
		cli_table_free(t);
		return;
	}
	for (size_t r = headings ? 0 : 1; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t n = strlen(t->cells[r * t->ncols + c]);

			if (n > w[c])
				w[c] = n;
		}
	for (size_t r = headings ? 0 : 1; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			int last = c + 1 == t->ncols;
			int pad = (int)w[c];

			if (c)
				fputc(' ', f);
			if (t->right[c])
				fprintf(f, "%*s", pad, s);
			else if (last)
				fputs(s, f);
			else
				fprintf(f, "%-*s", pad, s);
		}
		fputc('\n', f);
	}
	free(w);
	cli_table_free(t);
}

void cli_table_free(struct cli_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->right);
	free(t);
}

/* ---- JSON ------------------------------------------------------------ */

void cli_json_init(struct cli_json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->first[0] = 1;
}

/* Length of a valid UTF-8 sequence at s, or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0; /* also stops at the NUL */
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	/* Overlong forms, surrogates and values past U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

static void json_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p) {
		size_t n;

		switch (*p) {
		case '"':
			fputs("\\\"", f);
			p++;
			continue;
		case '\\':
			fputs("\\\\", f);
			p++;
			continue;
		case '\n':
			fputs("\\n", f);
			p++;
			continue;
		case '\t':
			fputs("\\t", f);
			p++;
			continue;
		case '\r':
			fputs("\\r", f);
			p++;
			continue;
		default:
			break;
		}
		if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p);
			p++;
			continue;
		}
		n = utf8_len(p);
		if (!n) {
			fputs("\\ufffd", f);
			p++;
			continue;
		}
		fwrite(p, 1, n, f);
		p += n;
	}
	fputc('"', f);
}

/* Comma, newline and indentation before a member; then the key. */
static void json_member(struct cli_json *j, const char *key)
{
	if (j->depth > 0) {
		if (!j->first[j->depth])
			fputc(',', j->f);
		fputc('\n', j->f);
		for (int i = 0; i < j->depth; i++)
			fputs("   ", j->f);
	}
	j->first[j->depth] = 0;
	if (key) {
		json_string(j->f, key);
		fputs(": ", j->f);
	}
}

static void json_open(struct cli_json *j, const char *key, char c)
{
	json_member(j, key);
	fputc(c, j->f);
	if (j->depth + 1 < (int)(sizeof(j->first) / sizeof(j->first[0])))
		j->depth++;
	j->first[j->depth] = 1;
}

static void json_close(struct cli_json *j, char c)
{
	int empty = j->first[j->depth];

	if (j->depth > 0)
		j->depth--;
	if (!empty) {
		fputc('\n', j->f);
		for (int i = 0; i < j->depth; i++)
			fputs("   ", j->f);
	}
	fputc(c, j->f);
}

void cli_json_obj_begin(struct cli_json *j, const char *key)
{
	json_open(j, key, '{');
}

void cli_json_obj_end(struct cli_json *j)
{
	json_close(j, '}');
}

void cli_json_arr_begin(struct cli_json *j, const char *key)
{
	json_open(j, key, '[');
}

void cli_json_arr_end(struct cli_json *j)
{
	json_close(j, ']');
}

void cli_json_str(struct cli_json *j, const char *key, const char *val)
{
	json_member(j, key);
	if (val)
		json_string(j->f, val);
	else
		fputs("null", j->f);
}

void cli_json_int(struct cli_json *j, const char *key, long long val)
{
	json_member(j, key);
	fprintf(j->f, "%lld", val);
}

void cli_json_uint(struct cli_json *j, const char *key, unsigned long long v)
{
	json_member(j, key);
	fprintf(j->f, "%llu", v);
}

void cli_json_bool(struct cli_json *j, const char *key, int val)
{
	json_member(j, key);
	fputs(val ? "true" : "false", j->f);
}

void cli_json_null(struct cli_json *j, const char *key)
{
	json_member(j, key);
	fputs("null", j->f);
}

void cli_json_end(struct cli_json *j)
{
	fputc('\n', j->f);
}
