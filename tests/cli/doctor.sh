# SPDX-License-Identifier: MIT
# shmkit doctor: runs every check and names it, exits 0 without problems
# and 1 with any, gives the fix for each problem. The systemd files it
# reads are faked under $SHMKIT_DOCTOR_SYSROOT.
. "$(dirname "$0")/lib.sh"

CHECKS="directory filesystem space permissions O_TMPFILE RemoveIPC
RLIMIT_NOFILE RLIMIT_FSIZE RLIMIT_MEMLOCK fs.file-max vm.max_map_count
kernel.shmmax segments"

# doctor STATUS...: run doctor, accept any of the listed exit statuses.
doctor() {
	local rc
	"$SHMKIT" doctor >"$TEST_TMP/out" 2>"$TEST_TMP/err"
	rc=$?
	OUT=$(cat "$TEST_TMP/out")
	ERR=$(cat "$TEST_TMP/err")
	for want in "$@"; do
		[ "$rc" = "$want" ] && return 0
	done
	fail "doctor exited $rc, expected $*: $OUT $ERR"
}

# verdict CHECK: the verdict word on CHECK's line.
verdict() {
	echo "$OUT" | awk -v c="$1" '$2 == c { print $1; exit }'
}

# On the real /dev/shm (whatever this machine is like).
SHMKIT_SHM_DIR=/dev/shm doctor 0 1
for c in $CHECKS; do
	[ -n "$(verdict "$c")" ] || fail "doctor has no '$c' check: $OUT"
done
contains "$OUT" "does not apply to shmkit" "shmmax is SysV only"
n=$(echo "$OUT" | grep -c '^PROBLEM')
m=$(echo "$OUT" | grep -c 'fix:')
[ "$n" = "$m" ] || fail "every problem needs a fix ($n problems, $m fixes)"
if [ "$n" = 0 ]; then
	contains "$OUT" "no problems found" "summary"
	SHMKIT_SHM_DIR=/dev/shm doctor 0
else
	contains "$OUT" "$n problem" "summary"
	SHMKIT_SHM_DIR=/dev/shm doctor 1
fi

# A directory that does not exist: a problem, with the fix.
SHMKIT_SHM_DIR=/nonexistent/shm doctor 1
[ "$(verdict directory)" = PROBLEM ] || fail "missing dir: $OUT"
contains "$OUT" "mkdir -m 1777 /nonexistent/shm" "missing dir fix"

# World-writable without the sticky bit.
chmod 0777 "$SHMKIT_SHM_DIR"
doctor 1
[ "$(verdict permissions)" = PROBLEM ] || fail "mode 0777: $OUT"
contains "$OUT" "chmod 1777 $SHMKIT_SHM_DIR" "mode fix"
chmod 1777 "$SHMKIT_SHM_DIR"
doctor 0 1
[ "$(verdict permissions)" = ok ] || fail "mode 1777: $OUT"
[ "$(verdict O_TMPFILE)" = ok ] || fail "O_TMPFILE in $SHMKIT_SHM_DIR: $OUT"

# A stale segment is a problem whose fix is gc.
start_helper create-scoped stale 4096
kill9 "$HELPER"
doctor 1
[ "$(verdict stale)" = PROBLEM ] || fail "stale segment: $OUT"
contains "$OUT" "fix: shmkit gc" "stale fix"
sk 0 gc
doctor 0 1
[ -z "$(verdict stale)" ] || fail "stale after gc: $OUT"

# ---- RemoveIPC, on a fake root --------------------------------------------
R=$TEST_TMP/root
mkdir -p "$R/etc/systemd" "$R/run"
chmod -R 755 "$TEST_TMP"
export SHMKIT_DOCTOR_SYSROOT=$R

doctor 0 1
contains "$OUT" "systemd is absent" "no systemd"
[ "$(verdict RemoveIPC)" = ok ] || fail "no systemd: $OUT"

# Installed, not running.
printf '[Login]\n#RemoveIPC=yes\n' >"$R/etc/systemd/logind.conf"
doctor 0 1
contains "$OUT" "not running" "systemd not running"
contains "$OUT" "would be yes (default)" "default is yes"

# Running, default yes: root and system users are exempt (a note);
# a regular user is hit (a problem, exit 1).
mkdir -p "$R/run/systemd/system"
doctor 0 1
if [ "$(id -u)" = 0 ]; then
	[ "$(verdict RemoveIPC)" = note ] || fail "RemoveIPC for root: $OUT"
	contains "$OUT" "RemoveIPC=no" "the fix is named in the hint"
	if command -v setpriv >/dev/null; then
		setpriv --reuid=65534 --regid=65534 --clear-groups \
			"$SHMKIT" doctor >"$TEST_TMP/out" 2>&1
		rc=$?
		OUT=$(cat "$TEST_TMP/out")
		# nobody (65534) is above SYS_UID_MAX: a problem
		[ $rc = 1 ] || fail "doctor as nobody exited $rc: $OUT"
		[ "$(verdict RemoveIPC)" = PROBLEM ] ||
			fail "RemoveIPC for uid 65534: $OUT"
		contains "$OUT" "fix: create /etc/systemd/logind.conf.d/" \
			"RemoveIPC fix"
	fi
fi

# The main file says yes, a drop-in says no; a later drop-in says yes;
# an /etc drop-in replaces a /run one of the same name.
printf '[Login]\nRemoveIPC=yes\n' >"$R/etc/systemd/logind.conf"
mkdir -p "$R/etc/systemd/logind.conf.d" "$R/run/systemd/logind.conf.d"
printf '# c\n[Login]\n  RemoveIPC = no  \n' \
	>"$R/run/systemd/logind.conf.d/10-shmkit.conf"
doctor 0 1
[ "$(verdict RemoveIPC)" = ok ] || fail "drop-in RemoveIPC=no: $OUT"
contains "$OUT" "no ($R/run/systemd/logind.conf.d/10-shmkit.conf)" \
	"the file that set it"
printf '[Login]\nRemoveIPC=yes\n' \
	>"$R/etc/systemd/logind.conf.d/20-later.conf"
doctor 0 1
[ "$(verdict RemoveIPC)" != ok ] || fail "later drop-in yes: $OUT"
rm "$R/etc/systemd/logind.conf.d/20-later.conf"
printf '[Login]\nRemoveIPC=yes\n' \
	>"$R/etc/systemd/logind.conf.d/10-shmkit.conf"
doctor 0 1
[ "$(verdict RemoveIPC)" != ok ] || fail "/etc masks /run: $OUT"
# Outside [Login] the key means nothing.
printf '[Other]\nRemoveIPC=no\n' \
	>"$R/etc/systemd/logind.conf.d/10-shmkit.conf"
doctor 0 1
[ "$(verdict RemoveIPC)" != ok ] || fail "RemoveIPC outside [Login]: $OUT"
echo "PASS"
