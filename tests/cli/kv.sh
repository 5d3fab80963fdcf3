# SPDX-License-Identifier: MIT
# shmkit kv: put creates the segment, get/del/ls, exit codes (a missing
# key exits 1), JSON listing, a full map, concurrent puts from many
# processes, and the heap and map statistics in shmkit stat.
. "$(dirname "$0")/lib.sh"

# ---- usage (exit 2) -----------------------------------------------------------
sk 0 kv --help
contains "$OUT" "Usage: shmkit kv" "kv --help"
sk 0 --help
contains "$OUT" "  kv " "--help lists kv"
sk 2 kv
sk 2 kv store
sk 2 kv store frob k
contains "$ERR" "unknown command 'frob'" "unknown kv command"
sk 2 kv store put onlykey
sk 2 kv store get
sk 2 kv store get a b
sk 2 kv store ls extra
sk 2 kv --capacity 0 store put a b
sk 2 kv '.bad' get a
[ ! -e "$SHMKIT_SHM_DIR/store" ] || fail "usage errors created the segment"

# ---- no segment yet: only put creates it ----------------------------------------
sk 1 kv store get a
contains "$ERR" "no such segment" "get on a missing segment"
sk 1 kv store del a
sk 1 kv store ls
sk 0 kv store put greeting "hello world"
[ -e "$SHMKIT_SHM_DIR/store" ] || fail "put did not create the segment"
sk 0 kv store get greeting
[ "$OUT" = "hello world" ] || fail "get: '$OUT'"
sk 1 kv store get nothing
contains "$ERR" "no key 'nothing'" "missing key message"
[ -z "$OUT" ] || fail "missing key printed '$OUT'"

# ---- overwrite, delete ----------------------------------------------------------------
sk 0 kv store put greeting "bye"
sk 0 kv store get greeting
[ "$OUT" = "bye" ] || fail "overwrite: '$OUT'"
sk 0 kv store put -- -dash "-value"
sk 0 kv store get -- -dash
[ "$OUT" = "-value" ] || fail "dash key: '$OUT'"
sk 0 kv store del -- -dash
sk 1 kv store del -- -dash
sk 1 kv store get -- -dash
sk 0 kv store put empty ""
sk 0 kv store get empty
[ "$OUT" = "" ] || fail "empty value: '$OUT'"

# ---- ls, text and JSON (escaping) -----------------------------------------------
sk 0 kv store put 'quote"key' 'tab	value'
sk 0 kv store ls
contains "$OUT" "KEY" "ls heading"
contains "$OUT" "greeting" "ls lists greeting"
sk 0 kv store ls --json
check "len(j) == 3" \
	"[e['key'] for e in j] == sorted(e['key'] for e in j)" \
	"{e['key']: e['value'] for e in j}['greeting'] == 'bye'" \
	"{e['key']: e['value'] for e in j}['quote\"key'] == 'tab\\tvalue'"
sk 0 kv --json store ls
check "len(j) == 3"

# ---- a map that is full ----------------------------------------------------------------
sk 0 kv --capacity 2 --value-max 8 small put a 1
sk 0 kv small put b 2
sk 1 kv small put c 3
contains "$ERR" "full" "full map message"
sk 0 kv small put a 11
sk 1 kv small put a 123456789
contains "$ERR" "too long" "value too long"
sk 0 kv small del b
sk 0 kv small put c 3
sk 0 kv small ls --json
check "sorted(e['key'] for e in j) == ['a', 'c']"

# ---- many processes at once: all puts land --------------------------------------
pids=""
for p in 1 2 3 4; do
	(for i in 1 2 3 4 5 6 7 8 9 10; do
		"$SHMKIT" kv race put "p$p-$i" "v$p-$i" || exit 1
	done) &
	pids="$pids $!"
done
for p in $pids; do
	wait "$p" || fail "a concurrent put failed"
done
sk 0 kv race ls --json
check "len(j) == 40" \
	"all(e['value'] == 'v' + e['key'][1:] for e in j)"

# ---- statistics in shmkit stat ---------------------------------------------------------
sk 0 stat store
contains "$OUT" "Heap:" "stat shows the heap"
contains "$OUT" "kv: map" "stat shows the map"
contains "$OUT" "3 of 1024 keys" "stat counts keys"
sk 0 stat --json store
check "j['heap']['used_blocks'] >= 1" \
	"j['heap']['free_bytes'] < j['heap']['heap_bytes']" \
	"j['objects'][0]['name'] == 'kv'" \
	"j['objects'][0]['type'] == 'map'" \
	"j['objects'][0]['map']['keys'] == 3" \
	"j['objects'][0]['map']['capacity'] == 1024" \
	"j['directory']['used'] == 1"
sk 0 create plain 64K
sk 0 stat --json plain
check "j['heap'] is None" "j['objects'] == []"
sk 1 kv plain get a
contains "$ERR" "no key-value map" "kv on a segment without a map"
exit 0
