/* SPDX-License-Identifier: MIT */
/*
 * Shared pieces of the shmkit tool: the subcommand entry point macro, usage
 * and error reporting, argument parsing, and the two output formats (an
 * aligned table and JSON). Uses <shmkit.h> only, never the library's src/.
 */
#ifndef SHMKIT_CLI_H
#define SHMKIT_CLI_H

#include <shmkit.h>

#include <stdint.h>
#include <stdio.h>

/* Exit codes (util-linux conventions). */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/*
 * Which of descriptors 0, 1, 2 the tool was started with closed. main()
 * puts /dev/null there, so that no segment or file it opens lands on
 * them (and is read or written as standard input or output).
 */
extern int cli_std_closed[3];

/*
 * Defines the entry point of subcommand NAME, listed in main.c's table.
 * argv[0] is the subcommand's name; returns an exit code.
 */
#define CLI_COMMAND(name)                          \
	int cli_cmd_##name(int argc, char **argv); \
	int cli_cmd_##name(int argc, char **argv)

/* ---- messages ------------------------------------------------------- */

/* "shmkit: ..." on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "shmkit CMD: ...", then a pointer to --help, on stderr; returns 2. */
int cli_usage_err(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Report a failed library call on a named segment: "shmkit: cannot VERB
 * segment 'NAME': <problem> (<fix>)". rc is the negative errno.
 */
void cli_seg_err(const char *verb, const char *name, int rc);

/*
 * Parse the options of a subcommand with getopt_long (opterr off):
 * unknown options and missing arguments become usage errors. Returns the
 * option character, -1 at the end, or '?' after printing a usage error.
 */
struct option;
int cli_getopt(int argc, char **argv, const char *shortopts,
	       const struct option *longopts);

/* ---- parsing and formatting ---------------------------------------- */

/* "123", "4K", "16M", "1G", "2GiB" (powers of 1024). 0 or -EINVAL. */
int cli_parse_size(const char *s, uint64_t *out);
/* Octal permission bits 1..0777. 0 or -EINVAL. */
int cli_parse_mode(const char *s, uint32_t *out);
/* "1.5M" style, powers of 1024 (like lsipc without --bytes). */
void cli_human_size(uint64_t bytes, char *buf, size_t len);
/* ISO 8601 local time with offset, e.g. 2024-05-01T12:00:00.123+02:00. */
void cli_iso_time(uint64_t realtime_ns, char *buf, size_t len);
/* User name of uid, or the number if it has none. */
void cli_user_name(uint32_t uid, char *buf, size_t len);
/* 1 if name follows shmkit's rules for segment names (shmkit_seg_create(3)):
 * an optional leading '/', then 1..SHMKIT_SEG_NAME_MAX of A-Z a-z 0-9 . _ -,
 * not starting with '.'. */
int cli_name_valid(const char *name);
/* What cli_name_valid() accepts, for messages (one %d: the longest). */
#define CLI_NAME_RULE                                                   \
	"names are 1-%d characters of A-Z a-z 0-9 . _ -, not starting " \
	"with '.'"
/* Path of a named segment in the shared-memory directory. */
void cli_seg_path(const char *name, char *buf, size_t len);

const char *cli_state_name(enum shmkit_seg_state st);
const char *cli_state_why(enum shmkit_seg_state st);
const char *cli_kind_name(enum shmkit_seg_kind k);
/* "persistent"/"scoped", or NULL where the header is not trusted. */
const char *cli_lifetime(const struct shmkit_seg_info *in);
/* 1 if the header was read and is ours (fields beyond stat are valid). */
int cli_has_header(const struct shmkit_seg_info *in);

/* Every entry of the shared-memory directory, sorted by name. */
struct cli_seglist {
	struct shmkit_seg_info *v;
	size_t n, cap;
};
int cli_seglist_load(struct cli_seglist *l);
void cli_seglist_free(struct cli_seglist *l);

/* ---- aligned table --------------------------------------------------- */

struct cli_table;
/* right: for each column, 1 to right-align (numbers). */
struct cli_table *cli_table_new(size_t ncols, const char *const *headers,
				const int *right);
/* Copies the cells; a NULL cell prints as "-". Returns 0 or -ENOMEM. */
int cli_table_add(struct cli_table *t, const char *const *cells);
/* Prints and frees. Non-printable bytes are shown as \xHH. */
void cli_table_print(struct cli_table *t, FILE *f, int headings);
void cli_table_free(struct cli_table *t);

/* ---- JSON ------------------------------------------------------------ */

/*
 * A small streaming writer: pretty-printed, strings escaped (control
 * characters, quotes, backslashes; invalid UTF-8 becomes U+FFFD) so the
 * output always parses. key is NULL inside arrays and at the top level.
 */
struct cli_json {
	FILE *f;
	int depth;
	int first[16]; /* no member written yet at this depth */
};
void cli_json_init(struct cli_json *j, FILE *f);
void cli_json_obj_begin(struct cli_json *j, const char *key);
void cli_json_obj_end(struct cli_json *j);
void cli_json_arr_begin(struct cli_json *j, const char *key);
void cli_json_arr_end(struct cli_json *j);
void cli_json_str(struct cli_json *j, const char *key, const char *val);
void cli_json_int(struct cli_json *j, const char *key, long long val);
void cli_json_uint(struct cli_json *j, const char *key, unsigned long long v);
void cli_json_bool(struct cli_json *j, const char *key, int val);
void cli_json_null(struct cli_json *j, const char *key);
/* Ends the document with a newline. */
void cli_json_end(struct cli_json *j);

#endif /* SHMKIT_CLI_H */
