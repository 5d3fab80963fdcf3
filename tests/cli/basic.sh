# SPDX-License-Identifier: MIT
# shmkit create / ls / stat / rm: exit codes 0/1/2, --help, --version,
# columns, JSON output and its escaping.
. "$(dirname "$0")/lib.sh"

# ---- global options and usage errors (exit 2) -------------------------------
sk 0 --version
contains "$OUT" "layout version" "--version"
LAYOUT=$(echo "$OUT" | sed -n 's/.*layout version \([0-9]*\).*/\1/p')
[ -n "$LAYOUT" ] || fail "no layout version in: $OUT"
sk 0 --help
TOP_HELP=$OUT
for c in create ls stat rm gc doctor; do
	contains "$TOP_HELP" "  $c " "--help lists $c"
	sk 0 "$c" --help
	contains "$OUT" "Usage: shmkit $c" "$c --help"
	sk 0 help "$c"
	contains "$OUT" "Usage: shmkit $c" "help $c"
done
sk 2
sk 2 frobnicate
contains "$ERR" "unknown command 'frobnicate'" "unknown command"
sk 2 --frob
sk 2 ls --frob
contains "$ERR" "unrecognized option '--frob'" "unknown option"
sk 2 ls extra
sk 2 create
sk 2 create onlyname
sk 2 create a 1M extra
sk 2 create a 0
sk 2 create a 12Q
sk 2 create a -5
sk 2 create a 65T
sk 2 create a 99999999999999999999999
sk 2 create a 1M --mode 999
sk 2 create a 1M --mode 0
sk 2 create a 1M --mode
sk 2 stat
sk 2 rm
sk 2 gc extra
sk 2 doctor extra
sk 2 ls -o name,bogus
contains "$ERR" "unknown column 'bogus'" "ls -o bogus"
contains "$ERR" "NAME,SIZE,DATA,OWNER" "ls -o lists the valid columns"
[ -z "$(ls -A "$SHMKIT_SHM_DIR")" ] || fail "usage errors created files"

# ---- create -----------------------------------------------------------------
sk 0 create alpha 1M
contains "$OUT" "created 'alpha'" "create output"
[ -f "$SHMKIT_SHM_DIR/alpha" ] || fail "alpha not in $SHMKIT_SHM_DIR"
sk 0 create beta 4K --mode 640
sk 0 create gamma 3000 -q
[ -z "$OUT" ] || fail "create -q printed: $OUT"
sk 0 create delta 2MiB
sk 1 create alpha 1M
contains "$ERR" "cannot create segment 'alpha'" "create existing"
contains "$ERR" "shmkit rm alpha" "create existing names the fix"
sk 1 create 'bad/name' 1M
contains "$ERR" "cannot create segment 'bad/name'" "invalid name"
sk 1 create .hidden 1M
contains "$ERR" "invalid name" "create .hidden"
[ "$(stat -c %a "$SHMKIT_SHM_DIR/alpha")" = 600 ] || fail "default mode"
[ "$(stat -c %a "$SHMKIT_SHM_DIR/beta")" = 640 ] || fail "--mode 640"
# umask does not matter
(umask 000 && "$SHMKIT" create eps 4K -q) || fail "create under umask 0"
[ "$(stat -c %a "$SHMKIT_SHM_DIR/eps")" = 600 ] || fail "umask 0 mode"

# ---- ls ---------------------------------------------------------------------
sk 0 ls
contains "$OUT" "NAME" "ls header"
contains "$OUT" "STATE" "ls header"
contains "$OUT" "alpha" "ls lists alpha"
sk 0 ls -n -o name
[ "$OUT" = "$(printf 'alpha\nbeta\ndelta\neps\ngamma')" ] ||
	fail "ls -n -o name (sorted): $OUT"
sk 0 ls -o NAME,size --bytes
echo "$OUT" | grep -Eq '^beta +12288$' ||
	fail "ls --bytes (4K data + 8K header): $OUT"
sk 0 ls -o +uid,path
echo "$OUT" | head -1 | grep -Eq '^NAME .* LIFETIME +UID PATH$' ||
	fail "-o +COLS appends: $OUT"
contains "$OUT" "$SHMKIT_SHM_DIR/alpha" "PATH column"

sk 0 ls --json
check "len(j['segments']) == 5" \
	"$(seg alpha)['state'] == 'ok'" \
	"$(seg alpha)['lifetime'] == 'persistent'" \
	"$(seg alpha)['mode'] == '0600'" \
	"$(seg beta)['mode'] == '0640'" \
	"$(seg alpha)['layout'] == $LAYOUT" \
	"$(seg alpha)['users'] == 0" \
	"$(seg alpha)['pids'] == []" \
	"$(seg alpha)['owner'] == '$(id -un)'" \
	"$(seg alpha)['size'] >= 1048576" \
	"$(seg gamma)['size'] == 8192 + 4096" \
	"$(seg delta)['size'] == 8192 + 2 * 1048576" \
	"$(seg nosuch) is None"
sk 0 ls -J -o name,data,uid,created,cpid,objects
check "set(j['segments'][0]) == {'name', 'data', 'uid', 'created',"\
" 'cpid', 'objects'}"
check "$(seg alpha)['data'] == 1048576" \
	"$(seg alpha)['uid'] == $(id -u)" \
	"$(seg alpha)['objects'] == 0"

# ---- stat -------------------------------------------------------------------
sk 0 stat beta
contains "$OUT" "$SHMKIT_SHM_DIR/beta" "stat path"
contains "$OUT" "persistent" "stat lifetime"
contains "$OUT" "0640" "stat mode"
sk 0 stat beta --json
check "j['name'] == 'beta'" \
	"j['path'] == '$SHMKIT_SHM_DIR/beta'" \
	"j['kind'] == 'named'" \
	"j['state'] == 'ok'" \
	"j['lifetime'] == 'persistent'" \
	"j['data_size'] == 4096" \
	"j['size'] == 12288" \
	"j['mode'] == '0640'" \
	"j['uid'] == $(id -u) and j['creator_uid'] == $(id -u)" \
	"isinstance(j['creator_pid'], int) and j['creator_pid'] > 0" \
	"j['layout_version'] == $LAYOUT" \
	"j['directory'] == {'used': 0, 'capacity': j['directory']['capacity']}" \
	"j['directory']['capacity'] > 0" \
	"j['users'] == 0 and j['attached'] == []"
python3 - "$(py "j['created']")" <<'EOF' || fail "created is not ISO 8601"
import datetime, sys
datetime.datetime.fromisoformat(sys.argv[1])
EOF
sk 1 stat nosuch
contains "$ERR" "'nosuch': no such segment" "stat missing"
contains "$ERR" "shmkit ls" "stat missing names the fix"
sk 1 stat 'a/b'
sk 0 stat --file "$SHMKIT_SHM_DIR/alpha" --json
check "j['state'] == 'ok' and j['data_size'] == 1048576"
sk 1 stat --file "$SHMKIT_SHM_DIR/nosuch"

# ---- rm ---------------------------------------------------------------------
sk 0 rm alpha
[ ! -e "$SHMKIT_SHM_DIR/alpha" ] || fail "rm left alpha"
sk 0 ls --json
check "$(seg alpha) is None"
sk 1 rm alpha
contains "$ERR" "'alpha': no such segment" "rm missing"
# one bad name among good ones: the good ones go, exit 1, each failure named
sk 1 rm beta nosuch1 gamma nosuch2
contains "$ERR" "nosuch1" "rm reports each failure"
contains "$ERR" "nosuch2" "rm reports each failure"
not_contains "$ERR" "beta" "rm succeeded on beta"
[ ! -e "$SHMKIT_SHM_DIR/beta" ] && [ ! -e "$SHMKIT_SHM_DIR/gamma" ] ||
	fail "rm with a failure did not remove the others"
sk 0 rm -v delta eps
contains "$OUT" "removed 'delta'" "rm -v"

# ---- foreign files and JSON escaping -----------------------------------------
printf 'x' >"$SHMKIT_SHM_DIR/plain-file"
weird=$(printf 'q"b\\s\tt\001c\377e')
printf 'x' >"$SHMKIT_SHM_DIR/$weird"
sk 0 ls --json
check "$(seg plain-file)['state'] == 'foreign'" \
	"$(seg plain-file)['lifetime'] is None" \
	"$(seg plain-file)['layout'] is None" \
	"any(s['name'] == 'q\"b\\\\s\\tt\\x01c\\ufffde' for s in j['segments'])"
sk 0 ls
contains "$OUT" 'q"b\x5cs\x09t\x01c\xffe' "ls escapes non-printable bytes"
sk 0 stat plain-file --json
check "j['state'] == 'foreign' and j['lifetime'] is None"
sk 1 rm plain-file
contains "$ERR" "not a shmkit segment" "rm refuses a foreign file"
[ -e "$SHMKIT_SHM_DIR/plain-file" ] || fail "rm removed a foreign file"
sk 0 rm --force plain-file
[ ! -e "$SHMKIT_SHM_DIR/plain-file" ] || fail "rm --force"
sk 1 rm "$weird"
contains "$ERR" "not a shmkit segment name" "rm of an invalid name"

# ---- missing directory --------------------------------------------------------
SHMKIT_SHM_DIR=/nonexistent/shmkit-dir run 1 "$SHMKIT" ls
contains "$ERR" "cannot list /nonexistent/shmkit-dir" "ls without dir"
echo "PASS"
