#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Model-check the channel protocol (models/chan.pml) with spin: every
# configuration must verify exhaustively with no error, and every mutant
# (the protocol with one of its fences, orderings, marks, the cleared next
# record word or the takeover's walk removed) must be caught, which shows
# the properties can fail. Each run is spin -a, a pan compiled for a safety
# search (assertions, the watchdog's lost wake-ups, invalid end states) or
# for non-progress cycles (-DNP, pan -l), and pan. CAP counts ring slots: a
# ring of CAP slots holds CAP - 1 messages (a slot is kept for the word the
# producer clears where its next record will start).
#
# Usage: models/check.sh [--full]
#   default  the CI set (a few minutes on 2 vCPUs)
#   --full   adds the larger configurations (about 10 minutes, ~3 GB);
#            kill-2p does not finish (over 200 million states in 12 GB,
#            and no more tractable with the format-4 model)
# Environment: MEMLIM (MB per pan run, default 3000); KEEP=1 keeps the
# work directory. Exit status 0 if everything is as expected, else 1.
set -euo pipefail

cd "$(dirname "$0")"
model=$(pwd)/chan.pml
full=0
case "${1:-}" in
--full) full=1 ;;
"") ;;
*)
	echo "usage: $0 [--full]" >&2
	exit 2
	;;
esac

if ! command -v spin >/dev/null; then
	echo "spin not found (Debian: apt-get install spin)" >&2
	exit 1
fi
CC=${CC:-cc}
MEMLIM=${MEMLIM:-3000}
work=$(mktemp -d "${TMPDIR:-/tmp}/shmkit-spin.XXXXXX")
if [ "${KEEP:-0}" != 1 ]; then
	trap 'rm -rf "$work"' EXIT
else
	echo "work directory: $work"
fi

total_states=0
total_runs=0
failed=0

# run NAME EXPECT "SPIN DEFINES" "PAN FLAGS"
#   EXPECT: pass (no error, search complete) or fail (an error is found).
#   PAN FLAGS: -E (invalid end states are the watchdog's business: a sleep
#   excused by a dead waker stays asleep forever without SLICE), -l (a
#   non-progress cycle search, compiled with -DNP).
run() {
	local name=$1 expect=$2 defs=$3 pflags=$4 cflags=-DSAFETY
	local dir="$work/$name" out errors states trans secs
	mkdir -p "$dir"
	case " $pflags " in *" -l "*) cflags=-DNP ;; esac
	# shellcheck disable=SC2086
	(cd "$dir" && spin -a $defs "$model" >spin.log 2>&1 &&
		$CC -O2 -w $cflags -DCOLLAPSE -DMEMLIM="$MEMLIM" -o pan pan.c) || {
		echo "FAIL  $name: spin -a / cc failed"
		cat "$dir/spin.log"
		failed=1
		return
	}
	# shellcheck disable=SC2086
	(cd "$dir" && ./pan -m2000000 $pflags >pan.out 2>&1) || true
	out="$dir/pan.out"
	errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$out" | tail -1)
	states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$out" |
		tail -1)
	trans=$(sed -n "s/^ *\([0-9.e+]*\) transitions (= .*/\1/p" \
		"$out" | tail -1)
	secs=$(sed -n 's/^pan: elapsed time \([0-9.e+]*\).*/\1/p' "$out" |
		tail -1)
	states=$(awk -v s="${states:-0}" 'BEGIN { printf "%d", s }')
	total_states=$((total_states + states))
	total_runs=$((total_runs + 1))
	if [ -z "$errors" ]; then
		echo "FAIL  $name: pan did not finish"
		tail -n 20 "$out"
		failed=1
		return
	fi
	if grep -qE 'reached -DMEMLIM bound|max search depth too small' "$out"; then
		echo "FAIL  $name: search incomplete ($(grep -oE 'reached -DMEMLIM bound|max search depth too small' "$out" | head -1))"
		failed=1
		return
	fi
	if [ "$expect" = pass ]; then
		if [ "$errors" != 0 ]; then
			echo "FAIL  $name ($defs $pflags): $(grep -m1 '^pan:1:' "$out")"
			(cd "$dir" && spin -t $defs "$model" 2>&1 |
				grep -E '^ +(P[0-9]|C) ' | tail -n 30) || true
			failed=1
			return
		fi
		printf 'ok    %-22s %10s states %12s transitions %7ss\n' \
			"$name" "$states" "${trans:-?}" "${secs:-?}"
	else
		if [ "$errors" = 0 ]; then
			echo "FAIL  $name: expected an error, the model verified ($defs)"
			failed=1
			return
		fi
		printf 'ok    %-22s caught: %s\n' "$name" \
			"$(grep -m1 '^pan:1:' "$out" | sed 's/^pan:1: //; s/ (at depth.*//')"
	fi
}

# Both directions of the handshake without deaths or slices: a waiter left
# asleep with its condition true is a lost wake-up (the watchdog).
WD="-DWATCHDOG"
run wake-1p pass "-DNP=1 -DNMSG=3 -DCAP=2 $WD" -E
run wake-1p-lazy pass "-DNP=1 -DNMSG=4 -DCAP=3 -DQTR=2 -DQPUB=2 $WD" -E
run wake-2p pass "-DNP=2 -DNMSG=1 -DCAP=2 $WD" -E
# Deaths at any step: no partial message, no loss, duplicates flagged,
# every sleep ends (slices), end of stream after everything.
run kill-1p pass "-DNP=1 -DNMSG=2 -DCAP=2 -DKILLS=1 -DSLICE" ""
run kill-consumer-2 pass "-DNP=1 -DNMSG=2 -DCAP=2 -DKILLS=2 -DKILL_CONSUMER_ONLY -DSLICE" ""
# A producer that dies between its commit and its tail store leaves the
# tail behind for good: the consumer reads past it, and a consumer taking
# over after that walks the committed records past it.
run kill-tail-lag pass "-DNP=1 -DNMSG=1 -DCAP=2 -DKILLS=2 -DSLICE" ""
# With deaths and no slices: a sleeper stuck with its condition true
# always had its waker die.
run kill-1p-wd pass "-DNP=1 -DNMSG=2 -DCAP=2 -DKILLS=1 $WD" -E
# No livelock: every infinite run makes progress.
run progress-1p pass "-DNP=1 -DNMSG=1 -DCAP=2 -DKILLS=1 -DSLICE" -l
# End of stream wakes the consumer (the watchdog checks it everywhere;
# here also no invalid end state), and a takeover wakes a producer asleep
# for room (no excuse for a consumer's death).
run eos-recheck pass "-DNP=1 -DNMSG=3 -DCAP=2 $WD" ""
run takeover-wake pass "-DNP=1 -DNMSG=2 -DCAP=2 -DKILLS=2 -DKILL_CONSUMER_ONLY $WD" -E
# Mutants: each must be caught.
M="-DNP=1 -DNMSG=3 -DCAP=2 $WD"
run mutant-no-w2 fail "$M -DNO_W2" -E
run mutant-no-p2 fail "$M -DNO_P2" -E
run mutant-no-release fail "$M -DNO_REL" -E
run mutant-no-zero fail "$M -DNO_ZERO" -E
run mutant-tail-first fail "$M -DTAIL_FIRST" -E
run mutant-no-walk fail "-DNP=1 -DNMSG=1 -DCAP=2 -DKILLS=2 -DSLICE -DNO_WALK" ""
run mutant-no-txfence fail "$M -DNO_TXFENCE" -E
run mutant-no-txcheck fail "$M -DNO_TXCHECK" -E
# The two lost wake-ups of the code before their fixes (see chan.pml).
run mutant-no-eos-recheck fail "-DNP=1 -DNMSG=2 -DCAP=2 $WD -DNO_EOS_RECHECK" ""
run mutant-no-attach-txcheck fail "-DNP=1 -DNMSG=2 -DCAP=2 -DKILLS=1 -DKILL_CONSUMER_ONLY $WD -DNO_ATTACH_TXCHECK" -E
MK="-DNP=1 -DNMSG=2 -DCAP=2 -DKILLS=2 -DKILL_CONSUMER_ONLY -DSLICE"
run mutant-no-mark fail "$MK -DNO_MARK" ""
run mutant-mark-reset fail "$MK -DMARK_RESET" ""

if [ "$full" = 1 ]; then
	run wake-2p-lazy pass "-DNP=2 -DNMSG=1 -DCAP=3 -DQTR=2 $WD" -E
	run kill-1p-2 pass "-DNP=1 -DNMSG=2 -DCAP=2 -DKILLS=2 -DSLICE" ""
	run kill-1p-3msg pass "-DNP=1 -DNMSG=3 -DCAP=3 -DKILLS=1 -DSLICE" ""
	run kill-2p pass "-DNP=2 -DNMSG=1 -DCAP=2 -DKILLS=1 -DSLICE" ""
	run progress-1p-2 pass "-DNP=1 -DNMSG=2 -DCAP=2 -DKILLS=1 -DSLICE" -l
fi

echo "runs: $total_runs, states explored: $total_states"
if [ "$failed" != 0 ]; then
	echo "models/check.sh: FAILED" >&2
	exit 1
fi
echo "models/check.sh: all as expected"
