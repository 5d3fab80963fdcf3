# SPDX-License-Identifier: MIT
# shmkit send / recv: random data through a channel, compared byte for
# byte, with either side starting first, sizes around message and ring
# boundaries, inside shell pipelines; exit status 1 when the other side
# dies, 2 on bad usage; nothing left behind.
. "$(dirname "$0")/lib.sh"

S=$SHMKIT

empty_dir() {
	[ -z "$(ls -A "$SHMKIT_SHM_DIR")" ] ||
		fail "left behind: $(ls -A "$SHMKIT_SHM_DIR")"
}

# ---- usage ------------------------------------------------------------------
for c in send recv; do
	sk 0 "$c" --help
	contains "$OUT" "Usage: shmkit $c" "$c --help"
	sk 2 "$c"
	sk 2 "$c" a b
	sk 2 "$c" --capacity 12Q a
	sk 2 "$c" --timeout -1 a
	sk 2 "$c" --producers 0 a
	sk 2 "$c" --producers 3x a
	sk 2 "$c" --timeout 0 a
	contains "$ERR" "leave -t out" "$c --timeout 0"
	sk 2 "$c" --frob a
done
# Closed standard input or output: refused, not read from or written into
# whatever the tool opens next (the channel's own segment).
run 2 "$S" send -q closed <&-
contains "$ERR" "standard input is closed" "send <&-"
"$S" recv -q closed >&- 2>"$TEST_TMP/err"
rc=$?
[ "$rc" = 2 ] || fail "recv >&- exited $rc"
contains "$(cat "$TEST_TMP/err")" "standard output is closed" "recv >&-"
empty_dir
sk 0 --help
contains "$OUT" "  send " "--help lists send"
contains "$OUT" "  recv " "--help lists recv"
# Errors name the problem and the fix.
sk 1 send -q --capacity 4K --max-msg 4K bad </dev/null
contains "$ERR" "at most 1352 bytes" "impossible geometry"
contains "$ERR" "raise -c or lower -M" "impossible geometry: the fix"
sk 1 send -q --capacity 16T big </dev/null
contains "$ERR" "at most 1024M per sender" "capacity too large"
sk 1 send -q --max-msg 357913929 big </dev/null
contains "$ERR" "messages of at most 357913928 bytes" "message too large"
touch "$TEST_TMP/notadir"
SHMKIT_SHM_DIR="$TEST_TMP/notadir" run 1 "$S" send -q nodir </dev/null
contains "$ERR" "$TEST_TMP/notadir is not a directory" "SHMKIT_SHM_DIR a file"
for c in send recv; do
	sk 2 "$c" bad/name </dev/null
	contains "$ERR" "invalid channel name 'bad/name'" "$c bad/name"
	contains "$ERR" "characters of A-Z" "$c bad/name: the rule"
done
SHMKIT_SHM_DIR="$TEST_TMP/nonexistent" run 1 "$S" send -q nodir </dev/null
contains "$ERR" "$TEST_TMP/nonexistent does not exist" "missing directory"
contains "$ERR" "SHMKIT_SHM_DIR" "missing directory: the fix"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	mkdir "$TEST_TMP/ro" && chmod 0555 "$TEST_TMP/ro"
	chmod o+x "$TEST_TMP"
	SHMKIT_SHM_DIR="$TEST_TMP/ro" run 1 setpriv --reuid=65534 \
		--regid=65534 --clear-groups "$S" send -q rodir </dev/null
	contains "$ERR" "no permission to create files in $TEST_TMP/ro" \
		"read-only directory"
fi
empty_dir

# ---- transfers ----------------------------------------------------------------
# xfer ORDER FILE OPTIONS...: ORDER send (sender first) or recv.
n=0
xfer() {
	local order=$1 file=$2 name rs rr pid
	shift 2
	n=$((n + 1))
	name="pipe$n"
	if [ "$order" = send ]; then
		"$S" send -q -t 20 "$@" "$name" <"$file" &
		pid=$!
		sleep 0.05
		"$S" recv -q -t 20 "$@" "$name" >"$TEST_TMP/out"
		rr=$?
		wait "$pid"
		rs=$?
	else
		"$S" recv -q -t 20 "$@" "$name" >"$TEST_TMP/out" &
		pid=$!
		sleep 0.05
		"$S" send -q -t 20 "$@" "$name" <"$file"
		rs=$?
		wait "$pid"
		rr=$?
	fi
	[ "$rs" = 0 ] || fail "send $* ($order first) exited $rs"
	[ "$rr" = 0 ] || fail "recv $* ($order first) exited $rr"
	cmp -s "$file" "$TEST_TMP/out" ||
		fail "bytes differ: $(stat -c %s "$file") sent, " \
			"$(stat -c %s "$TEST_TMP/out") received ($*)"
	empty_dir
}

for size in 0 1 1023 4096 65535 65536 65537 3000001; do
	head -c "$size" /dev/urandom >"$TEST_TMP/in.$size"
done
for size in 0 1 65537 3000001; do
	xfer send "$TEST_TMP/in.$size"
	xfer recv "$TEST_TMP/in.$size"
done
# A small ring: every message wraps around it many times.
for size in 1023 4096 65536 3000001; do
	xfer send "$TEST_TMP/in.$size" --capacity 4K
	xfer recv "$TEST_TMP/in.$size" --capacity 4K --max-msg 100
done
# --keep leaves the channel for the next pair.
"$S" send -q --keep -t 20 kept <"$TEST_TMP/in.65535" &
pid=$!
"$S" recv -q --keep -t 20 kept >"$TEST_TMP/out" || fail "recv --keep"
wait "$pid" || fail "send --keep"
cmp -s "$TEST_TMP/in.65535" "$TEST_TMP/out" || fail "--keep bytes"
[ -e "$SHMKIT_SHM_DIR/kept" ] || fail "--keep removed the channel"
sk 0 rm kept
empty_dir

# Inside pipelines, as a faster pipe.
cat "$TEST_TMP/in.3000001" | "$S" send -q -t 20 inpipe &
pid=$!
"$S" recv -q -t 20 inpipe | cat >"$TEST_TMP/out" || fail "recv | cat"
wait "$pid" || fail "cat | send"
cmp -s "$TEST_TMP/in.3000001" "$TEST_TMP/out" || fail "pipeline bytes"
empty_dir

# ---- a side dies: the other exits 1 -------------------------------------------
# The receiver is stopped, then killed while the sender waits for room.
# wait_for COND WHAT: poll a shell condition for up to 20 s.
wait_for() {
	local i=0
	until eval "$1"; do
		i=$((i + 1))
		[ $i -lt 400 ] || fail "timed out waiting for $2"
		sleep 0.05
	done
}

"$S" recv -q -t 20 --capacity 4K dies >/dev/null &
rpid=$!
HELPER_PIDS="$HELPER_PIDS $rpid"
wait_for '[ -e "$SHMKIT_SHM_DIR/dies" ]' "the receiver's channel"
sleep 0.2 # it attaches right after creating the channel
kill -STOP "$rpid"
"$S" send -q -t 20 dies <"$TEST_TMP/in.3000001" 2>"$TEST_TMP/err" &
spid=$!
sleep 0.3
kill9 "$rpid"
wait "$spid"
rc=$?
[ "$rc" = 1 ] || fail "send after the receiver died exited $rc"
contains "$(cat "$TEST_TMP/err")" "receiver died" "send's message"
empty_dir

# The sender is killed mid-stream: the receiver writes what was sent, says
# so, and exits 1.
mkfifo "$TEST_TMP/fifo"
"$S" recv -q -t 20 sdies >"$TEST_TMP/out" 2>"$TEST_TMP/err" &
rpid=$!
"$S" send -q -t 20 sdies <"$TEST_TMP/fifo" &
spid=$!
HELPER_PIDS="$HELPER_PIDS $spid $rpid"
exec 3>"$TEST_TMP/fifo"
head -c 10000 /dev/urandom >&3
wait_for '[ "$(stat -c %s "$TEST_TMP/out")" = 10000 ]' "10000 bytes out"
kill9 "$spid"
exec 3>&-
wait "$rpid"
rc=$?
[ "$rc" = 1 ] || fail "recv after the sender died exited $rc"
contains "$(cat "$TEST_TMP/err")" "sender died" "recv's message"
[ "$(stat -c %s "$TEST_TMP/out")" = 10000 ] ||
	fail "recv wrote $(stat -c %s "$TEST_TMP/out") of 10000 bytes"

empty_dir

# fifo_send NAME: `send NAME` in the background reading a new FIFO, which
# this shell holds open on fd 5 (write to it, close it to end the input);
# sets spid.
fifo_send() {
	rm -f "$TEST_TMP/fifo.$1"
	mkfifo "$TEST_TMP/fifo.$1"
	"$S" send -q -t 20 "$1" <"$TEST_TMP/fifo.$1" &
	spid=$!
	HELPER_PIDS="$HELPER_PIDS $spid"
	exec 5>"$TEST_TMP/fifo.$1"
}

# A sender is killed and the next takes its lane before the receiver
# looked: the receiver still says the stream is incomplete and exits 1.
# The receiver is stopped from before the death until the second sender
# holds the lane, so that it cannot see the death first.
users_of() { "$S" stat "$1" 2>/dev/null | awk '/^Users:/ { print $2 }'; }
"$S" recv -q -t 20 -P 1 taken >"$TEST_TMP/tout" 2>"$TEST_TMP/terr" &
rpid=$!
HELPER_PIDS="$HELPER_PIDS $rpid"
fifo_send taken
echo first >&5
wait_for '[ -s "$TEST_TMP/tout" ]' "the first sender's bytes"
kill -STOP "$rpid"
kill9 "$spid"
exec 5>&-
wait_for '[ "$(users_of taken)" = 1 ]' "the first sender's death"
echo second | "$S" send -q -t 20 taken &
spid=$!
HELPER_PIDS="$HELPER_PIDS $spid"
wait_for '[ "$(users_of taken)" = 2 ]' "the second sender"
sleep 0.2 # it claims its lane right after opening the segment
kill -CONT "$rpid"
wait "$spid" || fail "the second sender failed"
wait "$rpid"
rc=$?
[ "$rc" = 1 ] || fail "recv after a sender died, lane taken over, exited $rc"
contains "$(cat "$TEST_TMP/terr")" "sender died" "recv's message (lane taken)"
[ "$(cat "$TEST_TMP/tout")" = "first
second" ] || fail "lane taken: got '$(cat "$TEST_TMP/tout")'"
empty_dir

# A sender that fails with the receiver still there (here: it times out
# while the receiver is stopped) must not end the stream cleanly: the
# receiver says the stream is incomplete and exits 1, not 0.
"$S" recv -q -t 20 sfail >"$TEST_TMP/rout" 2>"$TEST_TMP/rerr" &
rpid=$!
HELPER_PIDS="$HELPER_PIDS $rpid"
wait_for '[ -e "$SHMKIT_SHM_DIR/sfail" ]' "the receiver's channel"
sleep 0.2
kill -STOP "$rpid"
run 1 "$S" send -q -t 0.5 sfail <"$TEST_TMP/in.3000001"
kill -CONT "$rpid"
wait "$rpid"
rc=$?
[ "$rc" = 1 ] || fail "recv after the sender failed exited $rc"
contains "$(cat "$TEST_TMP/rerr")" "sender died" "recv's message"
# Same for a read error on the sender's input (a directory).
"$S" recv -q -t 20 rderr >/dev/null 2>"$TEST_TMP/rerr" &
rpid=$!
HELPER_PIDS="$HELPER_PIDS $rpid"
wait_for '[ -e "$SHMKIT_SHM_DIR/rderr" ]' "the receiver's channel"
sleep 0.2 # it attaches right after creating the channel
run 1 "$S" send -q -t 20 rderr <"$TEST_TMP"
contains "$ERR" "reading standard input" "send's read error"
wait "$rpid"
rc=$?
[ "$rc" = 1 ] || fail "recv after the sender's read error exited $rc"
contains "$(cat "$TEST_TMP/rerr")" "sender died" "recv's message after a read error"
empty_dir

# A sender killed before any receiver came leaves its channel, with data
# in it; the next run on that name must not receive that data.
rm -f "$TEST_TMP/fifo2"
mkfifo "$TEST_TMP/fifo2"
"$S" send -q stale <"$TEST_TMP/fifo2" &
spid=$!
HELPER_PIDS="$HELPER_PIDS $spid"
exec 4>"$TEST_TMP/fifo2"
head -c 5000 /dev/urandom >&4
wait_for '[ -e "$SHMKIT_SHM_DIR/stale" ]' "the stale channel"
sleep 0.3
kill9 "$spid"
exec 4>&-
[ -e "$SHMKIT_SHM_DIR/stale" ] || fail "no stale channel to test with"
"$S" send -q -t 20 stale <"$TEST_TMP/in.3000001" &
spid=$!
"$S" recv -q -t 20 stale >"$TEST_TMP/out" || fail "recv after a stale run"
wait "$spid" || fail "send after a stale run"
cmp -s "$TEST_TMP/in.3000001" "$TEST_TMP/out" ||
	fail "a stale run's data leaked: $(stat -c %s "$TEST_TMP/out") bytes"
empty_dir

# A second receiver, and a sender finding every lane taken, are told
# what to do; the first two then finish their transfer.
"$S" recv -q -t 20 -P 1 busy >"$TEST_TMP/bout" &
rpid=$!
HELPER_PIDS="$HELPER_PIDS $rpid"
wait_for '[ -e "$SHMKIT_SHM_DIR/busy" ]' "the receiver's channel"
sleep 0.2 # it attaches right after creating the channel
run 1 "$S" recv -q -t 5 busy
contains "$ERR" "another receiver is attached" "second receiver"
contains "$ERR" "wait for it to finish" "second receiver: the fix"
fifo_send busy
echo first >&5
wait_for '[ -s "$TEST_TMP/bout" ]' "the first sender's bytes"
run 1 "$S" send -q -t 5 busy </dev/null
contains "$ERR" "every sender slot is taken" "sender without a lane"
contains "$ERR" "larger -P" "sender without a lane: the fix"
exec 5>&-
wait "$spid" || fail "the first sender failed"
wait "$rpid" || fail "the first receiver failed"
[ "$(cat "$TEST_TMP/bout")" = first ] ||
	fail "busy: got '$(cat "$TEST_TMP/bout")'"
empty_dir

# A receiver that sees no sender gives up after its timeout.
sk 1 recv -q -t 0.2 lonely
contains "$ERR" "no data within the timeout" "recv timeout"
echo "PASS"
