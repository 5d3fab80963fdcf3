# SPDX-License-Identifier: MIT
# shmkit ls / stat show the processes attached to a segment, and stop
# showing one as soon as it is SIGKILLed (liveness comes from the kernel).
. "$(dirname "$0")/lib.sh"

sk 0 create shared 64K --mode 644
start_helper attach shared
A=$HELPER
start_helper attach shared
B=$HELPER

sk 0 ls --json
check "$(seg shared)['users'] == 2" \
	"sorted($(seg shared)['pids']) == sorted([$A, $B])"
sk 0 ls -o name,users,pids
echo "$OUT" | grep -Eq "^shared +2 ($A,$B|$B,$A)\$" ||
	fail "ls USERS/PIDS columns: $OUT"
sk 0 stat shared --json
check "j['users'] == 2" \
	"sorted(u['pid'] for u in j['attached']) == sorted([$A, $B])" \
	"all(u['uid'] == $(id -u) for u in j['attached'])" \
	"all(u['attached_ns'] > 0 for u in j['attached'])"
sk 0 stat shared
contains "$OUT" "pid $A" "stat lists A"
contains "$OUT" "pid $B" "stat lists B"

kill9 "$A"
sk 0 ls --json
check "$(seg shared)['users'] == 1" "$(seg shared)['pids'] == [$B]" \
	"$(seg shared)['state'] == 'ok'"
sk 0 stat shared --json
check "[u['pid'] for u in j['attached']] == [$B]"

kill9 "$B"
sk 0 ls --json
check "$(seg shared)['users'] == 0" "$(seg shared)['pids'] == []" \
	"$(seg shared)['state'] == 'ok'"
# persistent: still there with nobody attached
[ -e "$SHMKIT_SHM_DIR/shared" ] || fail "persistent segment vanished"

# rm while attached: the user keeps going, the name is gone at once.
start_helper attach shared
C=$HELPER
sk 0 rm shared
sk 0 ls --json
check "$(seg shared) is None"
kill -0 "$C" || fail "attached process died when its segment was removed"
echo "PASS"
