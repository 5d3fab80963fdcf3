# SPDX-License-Identifier: MIT
# Shared setup for the shell tests of the shmkit tool (sourced by bash).
# CTest passes SHMKIT (the tool) and CLI_HELPER (tests/cli/cli_helper.c).
# Every test gets a private shared-memory directory; helpers started with
# start_helper are killed and the directory removed on exit.
set -u

: "${SHMKIT:?SHMKIT must name the shmkit tool}"
: "${CLI_HELPER:?CLI_HELPER must name the test helper}"

if ! command -v python3 >/dev/null 2>&1; then
	echo "SKIP: python3 is needed to parse --json output" >&2
	exit 77
fi

SHMKIT_SHM_DIR=$(mktemp -d "${TMPDIR:-/tmp}/shmkit-cli.XXXXXX")
export SHMKIT_SHM_DIR
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/shmkit-cli-tmp.XXXXXX")
HELPER_PIDS=""

cleanup() {
	for p in $HELPER_PIDS; do
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$SHMKIT_SHM_DIR" "$TEST_TMP"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# run EXPECTED_STATUS CMD...: run, keep stdout in $OUT and stderr in $ERR,
# fail unless the exit status is the expected one.
run() {
	local want=$1 rc
	shift
	"$@" >"$TEST_TMP/out" 2>"$TEST_TMP/err"
	rc=$?
	OUT=$(cat "$TEST_TMP/out")
	ERR=$(cat "$TEST_TMP/err")
	if [ "$rc" != "$want" ]; then
		echo "--- stdout:" >&2
		echo "$OUT" >&2
		echo "--- stderr:" >&2
		echo "$ERR" >&2
		fail "'$*' exited $rc, expected $want"
	fi
}

# Shorthand: the tool with arguments.
sk() {
	run "$1" "$SHMKIT" "${@:2}"
}

contains() { # contains HAYSTACK NEEDLE WHAT
	case "$1" in
	*"$2"*) ;;
	*) fail "$3: '$2' not found in: $1" ;;
	esac
}

not_contains() {
	case "$1" in
	*"$2"*) fail "$3: '$2' unexpectedly in: $1" ;;
	*) ;;
	esac
}

# py EXPR: evaluate a Python expression over the JSON in $OUT (bound to
# j); print its value. Fails the test if the JSON does not parse.
py() {
	printf '%s' "$OUT" | python3 -c '
import json, sys
j = json.load(sys.stdin)
v = eval(sys.argv[1])
print(json.dumps(v) if not isinstance(v, str) else v)
' "$1" || fail "JSON did not parse or '$1' failed on: $OUT"
}

# check EXPR...: Python booleans over the JSON in $OUT (bound to j) must
# all be true; one interpreter for all of them.
check() {
	printf '%s' "$OUT" | python3 -c '
import json, sys
j = json.load(sys.stdin)
for e in sys.argv[1:]:
    try:
        v = eval(e)
    except Exception as x:
        v = repr(x)
    if v is not True:
        print("expected %s, got %r" % (e, v))
        sys.exit(1)
' "$@" >"$TEST_TMP/check" 2>&1 ||
		fail "$(cat "$TEST_TMP/check"); JSON: $OUT"
}

# The ls --json entry of a name ("null" if absent), as Python for py/check.
seg() {
	echo "next((s for s in j['segments'] if s['name'] == '$1'), None)"
}

# start_helper ARGS...: run the helper in the background, wait until it
# says it is ready, leave its pid in $HELPER.
start_helper() {
	local log="$TEST_TMP/helper.$RANDOM" i=0
	"$CLI_HELPER" "$@" >"$log" 2>&1 &
	HELPER=$!
	HELPER_PIDS="$HELPER_PIDS $HELPER"
	until grep -q '^ready' "$log" 2>/dev/null; do
		kill -0 "$HELPER" 2>/dev/null ||
			fail "helper '$*' died: $(cat "$log")"
		i=$((i + 1))
		[ $i -lt 400 ] || fail "helper '$*' not ready in 20 s"
		sleep 0.05
	done
}

# kill9 PID: SIGKILL a helper and reap it (its locks are gone after).
kill9() {
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}
