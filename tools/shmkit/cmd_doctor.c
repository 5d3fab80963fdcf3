/* SPDX-License-Identifier: MIT */
/*
 * shmkit doctor: check the things outside shmkit that break shared memory
 * (the directory's file system, space, mode, O_TMPFILE, systemd-logind's
 * RemoveIPC, resource limits, leftover segments) and print the fix for
 * every problem. Exit 1 if any problem was found.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <unistd.h>

enum verdict { V_OK, V_NOTE, V_NA, V_PROBLEM };

struct doctor {
	int problems;
	int dir_ok;	 /* the directory exists: later checks can run */
	int dir_default; /* not chosen by SHMKIT_SHM_DIR */
	int memfs;	 /* the directory is on tmpfs or ramfs */
};

/*
 * Prefix of the system files read for the RemoveIPC check, from
 * $SHMKIT_DOCTOR_SYSROOT (tests point it at a fake /etc and /run).
 */
static const char *sysroot = "";

static const char *sys_path(const char *path, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", sysroot, path);
	return buf;
}

static int sys_exists(const char *path)
{
	char buf[512];

	return access(sys_path(path, buf, sizeof(buf)), F_OK) == 0;
}

static void help(void)
{
	fputs("Usage: shmkit doctor [OPTIONS]\n"
	      "\n"
	      "Check the system for what breaks shared memory and print each\n"
	      "check with a verdict (ok, note, n/a, PROBLEM) and, for every\n"
	      "problem, the fix: the shared-memory directory (exists, tmpfs,\n"
	      "size and free space, mode 1777 with the sticky bit, O_TMPFILE\n"
	      "support), systemd-logind's RemoveIPC, resource limits, and\n"
	      "stale or broken segments.\n"
	      "\n"
	      "Options:\n"
	      "  -h, --help   show this help\n"
	      "\n"
	      "Exit status: 0 no problem found, 1 problems found, 2 bad usage.\n",
	      stdout);
}

/* One check's line: verdict, name, finding; then the fix, if any. */
static void report(struct doctor *d, enum verdict v, const char *check,
		   const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void report(struct doctor *d, enum verdict v, const char *check,
		   const char *fix, const char *fmt, ...)
{
	static const char *const names[] = {"ok", "note", "n/a", "PROBLEM"};
	va_list ap;

	printf("%-8s %-16s ", names[v], check);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (fix)
		printf("%-8s %-16s %s %s\n", "", "",
		       v == V_PROBLEM ? "fix:" : "hint:", fix);
	if (v == V_PROBLEM)
		d->problems++;
}

static const char *fs_name(unsigned long magic)
{
	switch (magic) {
	case TMPFS_MAGIC:
		return "tmpfs";
	case RAMFS_MAGIC:
		return "ramfs";
	case HUGETLBFS_MAGIC:
		return "hugetlbfs";
	case EXT4_SUPER_MAGIC:
		return "ext2/3/4";
	case BTRFS_SUPER_MAGIC:
		return "btrfs";
	case XFS_SUPER_MAGIC:
		return "xfs";
	case OVERLAYFS_SUPER_MAGIC:
		return "overlayfs";
	case NFS_SUPER_MAGIC:
		return "nfs";
	case 0x2fc12fc1:
		return "zfs";
	}
	return "unknown";
}

static void check_dir(struct doctor *d, const char *dir)
{
	const char *env = getenv("SHMKIT_SHM_DIR");
	char fix[512];
	struct stat st;

	d->dir_default = !(env && *env == '/');
	if (env && *env && *env != '/')
		report(d, V_PROBLEM, "SHMKIT_SHM_DIR",
		       "set it to an absolute path, or unset it",
		       "'%s' is ignored: not an absolute path; using %s", env,
		       dir);
	else if (!d->dir_default)
		report(d, V_NOTE, "SHMKIT_SHM_DIR", NULL,
		       "set: segments live in %s instead of /dev/shm", dir);
	if (stat(dir, &st) < 0) {
		int e = errno;

		if (d->dir_default)
			snprintf(fix, sizeof(fix),
				 "mkdir -p %s && mount -t tmpfs -o "
				 "mode=1777,nosuid,nodev tmpfs %s",
				 dir, dir);
		else
			snprintf(fix, sizeof(fix),
				 "mkdir -m 1777 %s, or unset SHMKIT_SHM_DIR",
				 dir);
		report(d, V_PROBLEM, "directory", fix, "%s: %s", dir,
		       strerror(e));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		report(d, V_PROBLEM, "directory",
		       "remove it and mount a tmpfs there, or point "
		       "SHMKIT_SHM_DIR at a directory",
		       "%s is not a directory", dir);
		return;
	}
	d->dir_ok = 1;
	report(d, V_OK, "directory", NULL, "%s", dir);
}

static void check_fs(struct doctor *d, const char *dir)
{
	struct statfs sf;
	char fix[512];

	if (statfs(dir, &sf) < 0) {
		report(d, V_PROBLEM, "filesystem", NULL, "statfs %s: %s", dir,
		       strerror(errno));
		return;
	}
	switch ((unsigned long)sf.f_type) {
	case TMPFS_MAGIC:
		d->memfs = 1;
		report(d, V_OK, "filesystem", NULL, "tmpfs (memory-backed)");
		return;
	case RAMFS_MAGIC:
		d->memfs = 1;
		report(d, V_NOTE, "filesystem",
		       "prefer a tmpfs, which can be limited in size",
		       "ramfs: memory-backed but without a size limit");
		return;
	default:
		snprintf(fix, sizeof(fix),
			 "mount a tmpfs there (mount -t tmpfs -o mode=1777,"
			 "nosuid,nodev tmpfs %s)%s",
			 dir,
			 d->dir_default ? ""
					: " or point SHMKIT_SHM_DIR at one");
		report(d, V_PROBLEM, "filesystem", fix,
		       "%s (magic 0x%lx), not tmpfs: segments are written "
		       "back to disk",
		       fs_name((unsigned long)sf.f_type),
		       (unsigned long)sf.f_type);
	}
}

static void check_space(struct doctor *d, const char *dir)
{
	char total[32], avail[32], fix[512];
	struct statvfs sv;
	struct sysinfo si;
	uint64_t t, a, used_pct;

	if (statvfs(dir, &sv) < 0) {
		report(d, V_PROBLEM, "space", NULL, "statvfs %s: %s", dir,
		       strerror(errno));
		return;
	}
	t = (uint64_t)sv.f_blocks * sv.f_frsize;
	a = (uint64_t)sv.f_bavail * sv.f_frsize;
	used_pct = sv.f_blocks ? (uint64_t)(sv.f_blocks - sv.f_bfree) * 100 /
					 sv.f_blocks
			       : 0;
	cli_human_size(t, total, sizeof(total));
	cli_human_size(a, avail, sizeof(avail));
	snprintf(fix, sizeof(fix),
		 "free space (shmkit gc, shmkit rm) or enlarge it: mount -o "
		 "remount,size=1G %s (in Docker: --shm-size=1g)",
		 dir);
	if (a < 16ull << 20)
		report(d, V_PROBLEM, "space", fix,
		       "%s total, only %s free (%llu%% used): creating "
		       "segments will fail with ENOSPC",
		       total, avail, (unsigned long long)used_pct);
	else if (t <= 64ull << 20)
		report(d, V_NOTE, "space", fix,
		       "%s total, %s free (%llu%% used): small (Docker's "
		       "default is 64M)",
		       total, avail, (unsigned long long)used_pct);
	else
		report(d, V_OK, "space", NULL,
		       "%s total, %s free (%llu%% used)", total, avail,
		       (unsigned long long)used_pct);
	if (sv.f_files && sv.f_favail < 64)
		report(d, V_PROBLEM, "inodes",
		       "remove files, or mount -o remount,nr_inodes=1M <dir>",
		       "only %llu of %llu inodes free: each segment needs one",
		       (unsigned long long)sv.f_favail,
		       (unsigned long long)sv.f_files);
	if (d->memfs && sysinfo(&si) == 0) {
		uint64_t ram = (uint64_t)si.totalram * si.mem_unit;
		char r[32];

		cli_human_size(ram, r, sizeof(r));
		if (t > ram)
			report(d, V_NOTE, "memory",
			       "limit the tmpfs size below RAM (mount -o "
			       "remount,size=...)",
			       "the file system (%s) is larger than RAM (%s): "
			       "filling it pushes the system into swap or OOM",
			       total, r);
		else
			report(d, V_OK, "memory", NULL,
			       "RAM %s; the tmpfs may "
			       "use up to %s of it",
			       r, total);
	}
}

static void check_mode(struct doctor *d, const char *dir)
{
	struct stat st;
	unsigned mode;
	char fix[512];

	if (stat(dir, &st) < 0)
		return;
	mode = (unsigned)(st.st_mode & 07777);
	snprintf(fix, sizeof(fix), "chmod 1777 %s", dir);
	if (mode == 01777) {
		report(d, V_OK, "permissions", NULL,
		       "mode 1777 (sticky: users cannot remove each other's "
		       "segments)");
	} else if ((mode & 0002) && !(mode & 01000)) {
		report(d, V_PROBLEM, "permissions", fix,
		       "mode %04o: writable by all without the sticky bit, "
		       "so any user can delete or replace your segments",
		       mode);
	} else if (d->dir_default) {
		report(d, V_PROBLEM, "permissions", fix,
		       "mode %04o, expected 1777: other users cannot create "
		       "segments here",
		       mode);
	} else {
		char user[64];

		cli_user_name((uint32_t)st.st_uid, user, sizeof(user));
		report(d, V_NOTE, "permissions",
		       "fine for a private directory; chmod 1777 to share it "
		       "among users",
		       "mode %04o, owner %s: not the usual 1777", mode, user);
	}
	if (access(dir, W_OK | X_OK) < 0) {
		snprintf(fix, sizeof(fix),
			 "run as a user who may write there, or chmod 1777 %s",
			 dir);
		report(d, V_PROBLEM, "access", fix,
		       "you (uid %u) cannot create files in %s: %s",
		       (unsigned)geteuid(), dir, strerror(errno));
	}
}

static void check_tmpfile(struct doctor *d, const char *dir)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0) {
		close(fd);
		report(d, V_OK, "O_TMPFILE", NULL,
		       "works: a creator killed mid-creation leaves nothing");
		return;
	}
	report(d, V_PROBLEM, "O_TMPFILE",
	       "put the directory on tmpfs (Linux >= 3.11) and make it "
	       "writable",
	       "open(O_TMPFILE) in %s fails: %s; shmkit falls back to hidden "
	       ".shmkit-tmp.* names that a killed creator leaves behind",
	       dir, strerror(errno));
}

/* ---- systemd-logind RemoveIPC ------------------------------------------ */

struct removeipc {
	int value;     /* 1 yes, 0 no */
	char src[512]; /* "default" or the file that set it */
	int bad;       /* an unparsable value was seen (ignored) */
};

static int parse_bool(const char *s)
{
	static const char *const yes[] = {"1", "yes", "y", "true", "t", "on"};
	static const char *const no[] = {"0", "no", "n", "false", "f", "off"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (strcasecmp(s, yes[i]) == 0)
			return 1;
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (strcasecmp(s, no[i]) == 0)
			return 0;
	return -1;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
			 e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Apply one logind.conf-format file (later files override). */
static void parse_logind(const char *path, struct removeipc *r)
{
	char line[1024];
	int in_login = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *s = trim(line), *eq;
		int v;

		if (*s == '#' || *s == ';' || !*s)
			continue;
		if (*s == '[') {
			in_login = strcmp(s, "[Login]") == 0;
			continue;
		}
		eq = strchr(s, '=');
		if (!in_login || !eq)
			continue;
		*eq = '\0';
		if (strcmp(trim(s), "RemoveIPC") != 0)
			continue;
		v = parse_bool(trim(eq + 1));
		if (v < 0) {
			r->bad = 1;
			continue;
		}
		r->value = v;
		snprintf(r->src, sizeof(r->src), "%s", path);
	}
	fclose(f);
}

struct dropin {
	char base[256];
	char path[1024];
};

static int dropin_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dropin *)a)->base,
		      ((const struct dropin *)b)->base);
}

/*
 * The main file, then the *.conf drop-ins of every directory in order of
 * name; a drop-in in a later (higher-priority) directory replaces one of
 * the same name in an earlier one, as systemd does.
 */
static void read_logind(struct removeipc *r)
{
	static const char *const dirs[] = {
		"/usr/lib/systemd/logind.conf.d",
		"/usr/local/lib/systemd/logind.conf.d",
		"/run/systemd/logind.conf.d",
		"/etc/systemd/logind.conf.d",
	};
	struct dropin *v = NULL;
	size_t n = 0, cap = 0;
	char p[512];

	r->value = 1; /* systemd's compiled-in default */
	snprintf(r->src, sizeof(r->src), "default");
	r->bad = 0;
	if (sys_exists("/etc/systemd/logind.conf"))
		parse_logind(sys_path("/etc/systemd/logind.conf", p, sizeof(p)),
			     r);
	else
		parse_logind(sys_path("/usr/lib/systemd/logind.conf", p,
				      sizeof(p)),
			     r);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		DIR *dp = opendir(sys_path(dirs[i], p, sizeof(p)));
		struct dirent *de;

		if (!dp)
			continue;
		while ((de = readdir(dp)) != NULL) {
			size_t len = strlen(de->d_name), k;

			if (len < 6 || strcmp(de->d_name + len - 5, ".conf") ||
			    len >= sizeof(v->base))
				continue;
			for (k = 0; k < n; k++)
				if (strcmp(v[k].base, de->d_name) == 0)
					break;
			if (k == n) {
				if (n == cap) {
					size_t nc = cap ? cap * 2 : 8;
					struct dropin *nv =
						realloc(v, nc * sizeof(*nv));

					if (!nv)
						break;
					v = nv;
					cap = nc;
				}
				n++;
			}
			snprintf(v[k].base, sizeof(v[k].base), "%s",
				 de->d_name);
			snprintf(v[k].path, sizeof(v[k].path), "%s/%s", p,
				 de->d_name);
		}
		closedir(dp);
	}
	if (n)
		qsort(v, n, sizeof(*v), dropin_cmp);
	for (size_t k = 0; k < n; k++)
		parse_logind(v[k].path, r);
	free(v);
}

/* SYS_UID_MAX from /etc/login.defs (logind's system-user range). */
static unsigned long sys_uid_max(void)
{
	unsigned long v = 999;
	char line[256], p[512];
	FILE *f = fopen(sys_path("/etc/login.defs", p, sizeof(p)), "re");

	if (!f)
		return v;
	while (fgets(line, sizeof(line), f)) {
		char *s = trim(line);

		if (strncmp(s, "SYS_UID_MAX", 11) == 0 &&
		    (s[11] == ' ' || s[11] == '\t'))
			v = strtoul(s + 11, NULL, 10);
	}
	fclose(f);
	return v;
}

static void check_removeipc(struct doctor *d)
{
	static const char fix[] =
		"create /etc/systemd/logind.conf.d/shmkit.conf with "
		"'[Login]' and 'RemoveIPC=no', then systemctl restart "
		"systemd-logind (or run the service as a system user)";
	int running = sys_exists("/run/systemd/system");
	int installed = sys_exists("/lib/systemd/systemd-logind") ||
			sys_exists("/usr/lib/systemd/systemd-logind") ||
			sys_exists("/etc/systemd/logind.conf");
	unsigned long sysmax = sys_uid_max();
	uid_t uid = geteuid();
	struct removeipc r;

	if (!running && !installed) {
		report(d, V_OK, "RemoveIPC", NULL,
		       "systemd is absent: logind's RemoveIPC does not apply");
		return;
	}
	read_logind(&r);
	if (r.bad)
		report(d, V_NOTE, "RemoveIPC", NULL,
		       "an unparsable RemoveIPC= value in logind's "
		       "configuration is ignored");
	if (!running) {
		report(d, V_OK, "RemoveIPC", NULL,
		       "systemd is installed but not running (no "
		       "/run/systemd/system): RemoveIPC does not apply; it "
		       "would be %s (%s)",
		       r.value ? "yes" : "no", r.src);
		return;
	}
	if (!r.value) {
		report(d, V_OK, "RemoveIPC", NULL,
		       "no (%s): logout does not delete segments", r.src);
		return;
	}
	if ((unsigned long)uid > sysmax)
		report(d, V_PROBLEM, "RemoveIPC", fix,
		       "yes (%s): systemd-logind deletes your (uid %u) "
		       "segments when your last session ends",
		       r.src, (unsigned)uid);
	else
		report(d, V_NOTE, "RemoveIPC", fix,
		       "yes (%s): you (uid %u) are a system user and exempt, "
		       "but segments of regular users (uid > %lu) are deleted "
		       "when their last session ends",
		       r.src, (unsigned)uid, sysmax);
}

/* ---- limits ------------------------------------------------------------ */

static int read_ull(const char *path, unsigned long long *v)
{
	FILE *f = fopen(path, "re");
	int ok;

	if (!f)
		return -1;
	ok = fscanf(f, "%llu", v) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

static void lim_str(rlim_t v, char *buf, size_t len)
{
	if (v == RLIM_INFINITY)
		snprintf(buf, len, "unlimited");
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

static void check_limits(struct doctor *d)
{
	char s[32], h[32], fix[256];
	unsigned long long v;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		lim_str(rl.rlim_cur, s, sizeof(s));
		lim_str(rl.rlim_max, h, sizeof(h));
		snprintf(fix, sizeof(fix),
			 "ulimit -n %s (LimitNOFILE= in a systemd unit)", h);
		if (rl.rlim_cur < 1024)
			report(d, V_NOTE, "RLIMIT_NOFILE", fix,
			       "%s (hard %s): each open segment holds a "
			       "descriptor; low",
			       s, h);
		else
			report(d, V_OK, "RLIMIT_NOFILE", NULL,
			       "%s (hard %s): each open segment holds a "
			       "descriptor",
			       s, h);
	}
	if (getrlimit(RLIMIT_FSIZE, &rl) == 0) {
		lim_str(rl.rlim_cur, s, sizeof(s));
		if (rl.rlim_cur != RLIM_INFINITY)
			report(d, V_PROBLEM, "RLIMIT_FSIZE",
			       "ulimit -f unlimited (LimitFSIZE= in a unit)",
			       "%s bytes: larger segments cannot be created "
			       "(EFBIG/SIGXFSZ)",
			       s);
		else
			report(d, V_OK, "RLIMIT_FSIZE", NULL,
			       "unlimited (segment files may be any size)");
	}
	if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		lim_str(rl.rlim_cur, s, sizeof(s));
		report(d, V_NOTE, "RLIMIT_AS", "ulimit -v unlimited",
		       "%s bytes: every mapped segment counts against it", s);
	}
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
		lim_str(rl.rlim_cur, s, sizeof(s));
		report(d, V_NA, "RLIMIT_MEMLOCK", NULL,
		       "%s: shmkit does not lock memory (matters only if you "
		       "mlock() segments)",
		       s);
	}
	if (read_ull("/proc/sys/fs/file-max", &v) == 0) {
		if (v < 65536)
			report(d, V_NOTE, "fs.file-max",
			       "sysctl -w fs.file-max=1000000",
			       "%llu open files system-wide: low", v);
		else
			report(d, V_OK, "fs.file-max", NULL,
			       "%llu open files system-wide", v);
	}
	if (read_ull("/proc/sys/vm/max_map_count", &v) == 0) {
		if (v < 65530)
			report(d, V_NOTE, "vm.max_map_count",
			       "sysctl -w vm.max_map_count=262144",
			       "%llu mappings per process: below the usual "
			       "65530; each mapped segment uses one",
			       v);
		else
			report(d, V_OK, "vm.max_map_count", NULL,
			       "%llu mappings per process (each mapped segment "
			       "uses one)",
			       v);
	}
	if (read_ull("/proc/sys/kernel/shmmax", &v) == 0)
		report(d, V_NA, "kernel.shmmax", NULL,
		       "%llu: SysV shared memory only; does not apply to "
		       "shmkit (POSIX shared memory, limited by the tmpfs)",
		       v);
}

/* ---- segments ------------------------------------------------------------ */

static void check_segments(struct doctor *d)
{
	struct cli_seglist l;
	size_t nstale = 0, nbroken = 0, nforeign = 0, nok = 0;
	uint64_t stale_bytes = 0;
	char hs[32];
	int rc = cli_seglist_load(&l);

	if (rc < 0) {
		report(d, V_PROBLEM, "segments", NULL, "cannot list %s: %s",
		       shmkit_shm_dir(), shmkit_strerror(rc));
		return;
	}
	for (size_t i = 0; i < l.n; i++) {
		switch (l.v[i].state) {
		case SHMKIT_STATE_STALE:
		case SHMKIT_STATE_INCOMPLETE:
			nstale++;
			stale_bytes += l.v[i].file_size;
			break;
		case SHMKIT_STATE_CORRUPT:
		case SHMKIT_STATE_VERSION:
			nbroken++;
			break;
		case SHMKIT_STATE_FOREIGN:
		case SHMKIT_STATE_DENIED:
			nforeign++;
			break;
		default:
			nok++;
			break;
		}
	}
	cli_seglist_free(&l);
	report(d, V_OK, "segments", NULL,
	       "%zu shmkit segment%s in use or persistent, %zu other file%s",
	       nok, nok == 1 ? "" : "s", nforeign, nforeign == 1 ? "" : "s");
	if (nstale) {
		cli_human_size(stale_bytes, hs, sizeof(hs));
		report(d, V_PROBLEM, "stale", "shmkit gc",
		       "%zu stale or half-created segment%s holding %s", nstale,
		       nstale == 1 ? "" : "s", hs);
	}
	if (nbroken)
		report(d, V_NOTE, "broken",
		       "inspect with 'shmkit stat NAME', remove with "
		       "'shmkit rm NAME'",
		       "%zu corrupt or other-layout-version segment%s "
		       "(see 'shmkit ls')",
		       nbroken, nbroken == 1 ? "" : "s");
}

CLI_COMMAND(doctor)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = shmkit_shm_dir();
	const char *root = getenv("SHMKIT_DOCTOR_SYSROOT");
	struct doctor d;
	int c;

	while ((c = cli_getopt(argc, argv, ":h", opts)) != -1) {
		switch (c) {
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
	if (root && *root == '/')
		sysroot = root;
	memset(&d, 0, sizeof(d));
	printf("shmkit %s, layout version %u, shared-memory directory %s\n\n",
	       shmkit_version(), (unsigned)shmkit_layout_version(), dir);
	check_dir(&d, dir);
	if (d.dir_ok) {
		check_fs(&d, dir);
		check_space(&d, dir);
		check_mode(&d, dir);
		check_tmpfile(&d, dir);
	}
	check_removeipc(&d);
	check_limits(&d);
	if (d.dir_ok)
		check_segments(&d);
	if (d.problems)
		printf("\n%d problem%s found.\n", d.problems,
		       d.problems == 1 ? "" : "s");
	else
		printf("\nno problems found.\n");
	return d.problems ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
