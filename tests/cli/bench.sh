# SPDX-License-Identifier: MIT
# shmkit bench in a tiny configuration (seconds): usage errors exit 2; every
# transport runs and every message is verified, and damaged messages are
# caught (--corrupt); the JSON has the context, results and targets blocks; a
# transport that fails is reported and makes the exit status 1; --plot
# writes its data and script; ping-pong and stream figures are the median of
# their rounds, and the targets the median of the rounds' ratios. No timing
# value is asserted. Without python3 the JSON is checked with grep only.
set -u

: "${SHMKIT:?SHMKIT must name the shmkit tool}"

SHMKIT_SHM_DIR=$(mktemp -d "${TMPDIR:-/tmp}/shmkit-bench.XXXXXX")
export SHMKIT_SHM_DIR
T=$(mktemp -d "${TMPDIR:-/tmp}/shmkit-bench-tmp.XXXXXX")
trap 'rm -rf "$SHMKIT_SHM_DIR" "$T"' EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# run STATUS ARGS...: the tool, stdout in $T/out, stderr in $T/err.
run() {
	local want=$1 rc
	shift
	"$SHMKIT" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" != "$want" ]; then
		echo "--- stdout:" >&2
		cat "$T/out" >&2
		echo "--- stderr:" >&2
		cat "$T/err" >&2
		fail "'shmkit $*' exited $rc, expected $want"
	fi
}

has() { # has FILE TEXT WHAT
	grep -qF -- "$2" "$1" || fail "$3: '$2' not in $(cat "$1")"
}

ALL="floor memcpy chan chan-poll ring eventfd pipe unix seqpacket mq tcp"
PY=
command -v python3 >/dev/null 2>&1 && PY=python3

# ---- usage --------------------------------------------------------------------
run 0 bench --help
has "$T/out" "Usage: shmkit bench" "bench --help"
run 0 --help
has "$T/out" "  bench " "shmkit --help lists bench"
run 2 bench --frob
has "$T/err" "Try 'shmkit bench --help'" "usage hint"
run 2 bench --only nosuch
has "$T/err" "unknown transport 'nosuch'" "--only"
run 2 bench --only ,
run 2 bench --size 1
run 2 bench --size 12Q
run 2 bench --duration 0
run 2 bench --duration abc
run 2 bench extra
run 2 bench --plot
for v in 0 10 x 1x ""; do
	run 2 bench --rounds "$v"
	has "$T/err" "invalid rounds '$v' (1 to 9)" "--rounds $v"
done

# ---- every transport, JSON ----------------------------------------------------
run 0 bench --tiny --json
cp "$T/out" "$T/all.json"
[ -z "$(ls -A "$SHMKIT_SHM_DIR")" ] ||
	fail "left behind in the shm directory: $(ls -A "$SHMKIT_SHM_DIR")"
for k in '"context"' '"git_revision"' '"placement"' '"transports"' \
	'"targets"' '"verification"' '"all_verified": true' '"ok": true' \
	'"pingpong_median_vs_floor"' '"idle_receiver_cpu"' '"loaded_unpinned"'; do
	has "$T/all.json" "$k" "JSON"
done
for t in $ALL; do
	has "$T/all.json" "\"name\": \"$t\"" "transport $t in the JSON"
done
if grep -q '"errors": [1-9]' "$T/all.json"; then
	fail "verification errors: $(grep '"errors": [1-9]' "$T/all.json")"
fi

if [ -n "$PY" ]; then
	$PY - "$T/all.json" "$ALL" <<'EOF' || fail "JSON shape (above)"
import json, sys
j = json.load(open(sys.argv[1]))
want = sys.argv[2].split()
errs = []
def need(c, what):
    if not c:
        errs.append(what)
ctx = j["context"]
for k in ("shmkit_version", "git_revision", "compiler", "kernel",
          "cpu_model", "placement", "timer_ns", "duration_s"):
    need(k in ctx, "context lacks " + k)
for k in ("cpu_a", "cpu_b", "cpus_allowed", "pinning_verified"):
    need(k in ctx["placement"], "placement lacks " + k)
need(ctx.get("rounds") == 2, "a tiny run has 2 rounds: %r" % ctx.get("rounds"))
def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
def close(a, b):
    return abs(a - b) <= 1e-4 * max(abs(a), abs(b))
names = [t["name"] for t in j["transports"]]
need(names == want, "transports %r, expected %r" % (names, want))
works = {
    "floor": ["pingpong", "pingpong_unpinned", "loaded_pinned",
              "loaded_unpinned"],
    "memcpy": ["stream_large"],
}
full = ["pingpong", "stream_small", "stream_large", "wake",
        "pingpong_unpinned", "loaded_pinned", "loaded_unpinned", "idle"]
total = 0
for t in j["transports"]:
    n = t["name"]
    need(t["ok"] is True and t["error"] is None,
         "%s failed: %s" % (n, t.get("error")))
    for w in works.get(n, full):
        r = t.get(w)
        if r is None:
            errs.append("%s lacks %s" % (n, w))
            continue
        need(r["ok"] is True, "%s %s: %s" % (n, w, r.get("error")))
        need(r["messages"] > 0, "%s %s: no message" % (n, w))
        need(r["verified"] == r["messages"] == r["sent"],
             "%s %s: %d sent, %d received, %d verified" %
             (n, w, r["sent"], r["messages"], r["verified"]))
        need(r["errors"] == 0, "%s %s: %d errors" % (n, w, r["errors"]))
        need(r["bad_message"] is None,
             "%s %s: bad message %r" % (n, w, r["bad_message"]))
        total += r["messages"]
        if w == "pingpong" or w.startswith("stream"):
            rr = r.get("round_rates_per_s")
            need(isinstance(rr, list) and len(rr) == 2,
                 "%s %s: round rates %r" % (n, w, rr))
            if rr and len(rr) == 2:
                need(close(r["rate_per_s"], median(rr)),
                     "%s %s: rate %r is not the median of %r" %
                     (n, w, r["rate_per_s"], rr))
        if w == "pingpong":
            rp = r.get("round_p50_ns")
            need(isinstance(rp, list) and len(rp) == 2
                 and abs(r["p50_ns"] - (rp[0] + rp[1]) / 2) <= 1,
                 "%s: p50 %r is not the median of the rounds' %r" %
                 (n, r["p50_ns"], rp))
        if w in ("pingpong", "wake", "loaded_pinned"):
            for k in ("p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"):
                need(isinstance(r.get(k), int), "%s %s lacks %s" % (n, w, k))
            need(r["p50_ns"] <= r["p90_ns"] <= r["p99_ns"] <= r["p999_ns"]
                 <= r["max_ns"], "%s %s: percentiles out of order" % (n, w))
        if w.startswith("stream"):
            for k in ("msgs_per_s", "gb_per_s", "vs_pipe", "vs_floor"):
                need(k in r, "%s %s lacks %s" % (n, w, k))
        if w.startswith("loaded"):
            need("slowdown" in r, "%s %s lacks slowdown" % (n, w))
    if n not in ("floor", "memcpy"):
        need("receiver_cpu_pct" in t["idle"], n + " idle lacks cpu")
    need(t["messages"] == t["verified"] and t["errors"] == 0,
         "%s totals %d/%d/%d" % (n, t["messages"], t["verified"],
                                 t["errors"]))
v = j["verification"]
need(v["all_verified"] is True and v["errors"] == 0, "verification %r" % v)
need(v["messages"] == total == v["verified"],
     "verification counts %r, rows add up to %d" % (v, total))
names = [t["name"] for t in j["targets"]]
need(names == ["pingpong_median_vs_floor", "stream_64B_vs_ring",
               "stream_64B_vs_pipe", "stream_1MiB_vs_memcpy",
               "idle_receiver_cpu", "loaded_pinned", "loaded_unpinned"],
     "targets %r" % names)
# Evaluated unless the machine stalled so long that a tiny run timed too
# few messages (which the note then says): no timing assert.
# The comparisons are the median of the rounds' ratios.
tp = {t["name"]: t for t in j["transports"]}
tg = {t["name"]: t for t in j["targets"]}
for name, a, b, w in (("stream_64B_vs_ring", "chan", "ring", "stream_small"),
                      ("stream_64B_vs_pipe", "chan", "pipe", "stream_small"),
                      ("stream_1MiB_vs_memcpy", "chan", "memcpy",
                       "stream_large")):
    if not tg[name]["evaluated"]:
        continue
    ra = tp[a][w]["round_rates_per_s"]
    rb = tp[b][w]["round_rates_per_s"]
    want = median([x / y for x, y in zip(ra, rb)])
    need(close(tg[name]["measured"], want),
         "%s: %r, the rounds' ratios give %r" %
         (name, tg[name]["measured"], want))
    need("median of 2 rounds' ratios" in tg[name]["note"],
         "%s note: %r" % (name, tg[name]["note"]))
if tg["pingpong_median_vs_floor"]["evaluated"]:
    tm = ctx["timer_ns"]
    want = median([(x - tm) / (y - tm) for x, y in
                   zip(tp["chan"]["pingpong"]["round_p50_ns"],
                       tp["floor"]["pingpong"]["round_p50_ns"])])
    need(close(tg["pingpong_median_vs_floor"]["measured"], want),
         "ping-pong target %r, the rounds' ratios give %r" %
         (tg["pingpong_median_vs_floor"]["measured"], want))
for t in j["targets"]:
    n = t["name"]
    need(t["compare"] in ("<=", ">=", "<"), "target %s compare" % n)
    need(isinstance(t["limit"], (int, float)), "target %s limit" % n)
    if t["evaluated"] is True:
        need(isinstance(t["measured"], (int, float)), "target %s value" % n)
        need(t["met"] in (True, False), "target %s met" % n)
    else:
        need(t["evaluated"] is False and t["met"] is None
             and "too few samples" in t["note"], "target %s: %r" % (n, t))
need(j["ok"] is True, "ok is not true")
if errs:
    print("\n".join(errs))
    sys.exit(1)
EOF
else
	echo "python3 not found: JSON checked with grep only"
fi

# ---- one round: the figures of that round ------------------------------------------
run 0 bench --tiny --only floor,pipe --rounds 1 --json
if [ -n "$PY" ]; then
	$PY -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["context"]["rounds"] == 1, j["context"]
for t in j["transports"]:
    p = t["pingpong"]
    assert p["round_rates_per_s"] == [p["rate_per_s"]], p
    assert p["round_p50_ns"] == [p["p50_ns"]], p
' "$T/out" || fail "--rounds 1 in the JSON: $(cat "$T/out")"
else
	has "$T/out" '"rounds": 1' "--rounds 1"
fi

# ---- table, focused run, --size ---------------------------------------------------
run 0 bench --tiny --only chan,pipe,floor --size 4K
for k in "placement:" "TRANSPORT" "P50(ns)" "P99.9(ns)" "VS_FLOOR(x)" \
	"VS_PIPE(x)" "4KiB(GB/s)" "WAKE_P50(us)" "UNPINNED_P50(ns)" \
	"LOADED_PINNED(x)" "VERIFIED" "Targets"; do
	has "$T/out" "$k" "table"
done
grep -q '^chan .* ok$' "$T/out" || fail "chan not verified: $(cat "$T/out")"
if grep -q FAILED "$T/out"; then
	fail "a transport failed: $(cat "$T/out")"
fi

# ---- a transport that cannot run: reported, exit 1 --------------------------------
SHMKIT_SHM_DIR="$T/nonexistent" run 1 bench --tiny --only chan,pipe --json
has "$T/out" '"ok": false' "failed run in the JSON"
has "$T/out" 'shmkit_chan_create' "the reason"
if [ -n "$PY" ]; then
	$PY -c '
import json, sys
j = json.load(open(sys.argv[1]))
t = {x["name"]: x for x in j["transports"]}
assert t["chan"]["ok"] is False and t["chan"]["error"], t["chan"]
assert t["pipe"]["ok"] is True, t["pipe"]
' "$T/out" || fail "failed transport in the JSON: $(cat "$T/out")"
fi
SHMKIT_SHM_DIR="$T/nonexistent" run 1 bench --tiny --only chan
has "$T/out" "FAILED: chan pingpong: shmkit_chan_create" \
	"failed transport in the table"

# ---- a transport that damages messages cannot look fast -----------------------
# --corrupt N (for tests) flips a byte of every Nth message a side sends (the
# sequence number on the floor, which carries nothing else). N is 2: side A
# of every job sends at least two messages (a round and the stop message),
# so the first job of every transport has a damaged one however few rounds
# a slow machine manages in a tiny run (under ASan with the CPUs taken, a
# 50 ms ping-pong can be two rounds: with N 100 the first damaged message
# came in a later workload, or in none).
run 1 bench --tiny --only floor,chan,pipe --corrupt 2 --json
for t in floor chan pipe; do
	grep -A8 "\"name\": \"$t\"" "$T/out" | grep -q '"ok": false' ||
		fail "$t with damaged messages not failed: $(cat "$T/out")"
done
has "$T/out" 'floor pingpong: verification, A to B: message 2 arrived as number 3' \
	"the damaged message is named with its transport and workload"
has "$T/out" 'chan pingpong: verification, A to B: message 2: wrong bytes at offset 24 (expected 0x' \
	"the damaged bytes are named with their transport and workload"
if [ -n "$PY" ]; then
	$PY -c '
import json, sys
j = json.load(open(sys.argv[1]))
for t in j["transports"]:
    n = t["name"]
    assert t["ok"] is False and t["errors"] > 0, t
    assert t["verified"] < t["messages"], t
    want = n + " pingpong: verification, A to B: message 2"
    assert t["error"].startswith(want), (n, t["error"])
    p = t["pingpong"]
    assert p["error"] == t["error"], (n, p["error"])
    b = p["bad_message"]
    assert b["direction"] == "a_to_b" and b["expected_seq"] == 2, (n, b)
    if n == "floor":
        assert b["arrived_seq"] == 3 and b["wrong_offset"] is None, (n, b)
    else:
        assert b["arrived_seq"] == 2 and b["wrong_offset"] == 24, (n, b)
        assert b["expected_word"] != b["arrived_word"], (n, b)
assert j["verification"]["all_verified"] is False
assert j["ok"] is False
' "$T/out" || fail "damaged messages in the JSON: $(cat "$T/out")"
fi

# Messages over 256 bytes are checked at 16 sampled words: a damaged one is
# caught there too.
run 1 bench --tiny --only chan --size 4K --corrupt 2
has "$T/out" 'chan pingpong: verification, A to B: message 2: wrong bytes at offset' \
	"a damaged sampled word"

# ---- plot -------------------------------------------------------------------------
run 0 bench --tiny --only floor,pipe,memcpy --plot "$T/p.png"
[ -s "$T/p.dat" ] || fail "--plot wrote no data file"
[ -s "$T/p.gp" ] || fail "--plot wrote no gnuplot script"
has "$T/p.gp" "$T/p.png" "the script draws the file asked for"
has "$T/p.dat" '"pipe"' "plot data"
if command -v gnuplot >/dev/null 2>&1; then
	[ -s "$T/p.png" ] || fail "gnuplot is there but drew nothing"
else
	has "$T/err" "gnuplot is not installed" "the plot's fallback message"
fi
echo "bench: ok"
