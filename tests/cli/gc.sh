# SPDX-License-Identifier: MIT
# shmkit gc: removes a scoped segment whose users were all SIGKILLed and a
# half-created one, says so; --dry-run removes nothing; never removes a
# persistent segment, one in use, a foreign, corrupt or other-version file.
. "$(dirname "$0")/lib.sh"

D=$SHMKIT_SHM_DIR

# Nothing to do in an empty directory.
sk 0 gc
contains "$OUT" "nothing to remove" "gc on an empty directory"

# A scoped segment whose only user is SIGKILLed becomes stale.
start_helper create-scoped dead 65536
sk 0 ls --json
check "$(seg dead)['state'] == 'ok'" \
	"$(seg dead)['lifetime'] == 'scoped'" \
	"$(seg dead)['users'] == 1" \
	"$(seg dead)['pids'] == [$HELPER]"
kill9 "$HELPER"
sk 0 ls --json
check "$(seg dead)['state'] == 'stale'" "$(seg dead)['users'] == 0"

# A scoped segment still in use.
start_helper create-scoped alive 4096
ALIVE=$HELPER
# A persistent segment nobody uses, and one in use by a killed process.
sk 0 create keep 4K
sk 0 create keep2 4K
start_helper attach keep2
kill9 "$HELPER"
# Files that are not (usable) segments.
printf 'not shmkit' >"$D/foreign"
run 0 "$CLI_HELPER" corrupt broken
run 0 "$CLI_HELPER" version future
# A segment whose creator died before READY.
run 0 "$CLI_HELPER" incomplete half
sk 0 ls --json
check "$(seg half)['state'] == 'incomplete'" \
	"$(seg broken)['state'] == 'corrupt'" \
	"$(seg future)['state'] == 'version'" \
	"$(seg foreign)['state'] == 'foreign'" \
	"$(seg keep2)['state'] == 'ok'" \
	"$(seg alive)['state'] == 'ok'"

before=$(ls "$D" | sort)
sk 0 gc --dry-run
contains "$OUT" "would remove 'dead'" "dry run names the stale segment"
contains "$OUT" "scoped segment whose users all died" "dry run says why"
contains "$OUT" "would remove 'half'" "dry run names the incomplete one"
contains "$OUT" "creator died" "dry run says why"
for n in alive keep keep2 foreign broken future; do
	not_contains "$OUT" "'$n'" "dry run would not touch $n"
done
[ "$(ls "$D" | sort)" = "$before" ] || fail "gc --dry-run removed files"

sk 0 gc -v
contains "$OUT" "removed 'dead'" "gc removes the stale segment"
contains "$OUT" "removed 'half'" "gc removes the incomplete segment"
contains "$OUT" "removed 2 segments" "gc summary"
contains "$OUT" "kept 'keep': persistent" "gc -v says why keep stays"
contains "$OUT" "kept 'alive': scoped, in use" "gc -v: alive"
[ ! -e "$D/dead" ] && [ ! -e "$D/half" ] || fail "gc left a stale file"
for n in alive keep keep2 foreign broken future; do
	[ -e "$D/$n" ] || fail "gc removed $n"
done

# A second run finds nothing; the survivors are unchanged.
sk 0 gc
contains "$OUT" "nothing to remove" "gc is idempotent"
sk 0 ls --json
check "$(seg alive)['state'] == 'ok'" "$(seg alive)['users'] == 1"

# Once the last user of 'alive' dies it is stale, and gc takes it.
kill9 "$ALIVE"
sk 0 gc
contains "$OUT" "removed 'alive'" "gc after the last user died"
[ ! -e "$D/alive" ] || fail "alive not removed"

# The tool's own --scoped: held while it runs, removed when it detaches
# normally, stale (and collected) when it is SIGKILLed.
"$SHMKIT" create held 4K --scoped >"$TEST_TMP/held.out" 2>&1 &
HP=$!
HELPER_PIDS="$HELPER_PIDS $HP"
i=0
until grep -q holding "$TEST_TMP/held.out"; do
	i=$((i + 1))
	[ $i -lt 400 ] || fail "create --scoped did not start"
	sleep 0.05
done
sk 0 ls --json
check "$(seg held)['lifetime'] == 'scoped'" "$(seg held)['pids'] == [$HP]"
kill -TERM "$HP"
wait "$HP" || fail "create --scoped exited $? on SIGTERM"
contains "$(cat "$TEST_TMP/held.out")" "was removed" "scoped detach"
[ ! -e "$D/held" ] || fail "scoped segment left after its holder detached"

"$SHMKIT" create held2 4K --scoped >"$TEST_TMP/held2.out" 2>&1 &
HP=$!
HELPER_PIDS="$HELPER_PIDS $HP"
i=0
until grep -q holding "$TEST_TMP/held2.out"; do
	i=$((i + 1))
	[ $i -lt 400 ] || fail "create --scoped did not start"
	sleep 0.05
done
kill9 "$HP"
sk 0 ls --json
check "$(seg held2)['state'] == 'stale'"
sk 0 gc
contains "$OUT" "removed 'held2'" "gc removes a killed holder's segment"
echo "PASS"
