/* SPDX-License-Identifier: MIT */
/*
 * A model of a shmkit channel (src/chan.c, channel format 5) for the spin
 * model checker: producers commit messages into their lanes and the
 * consumer receives them, each side sleeping on a futex when it cannot go
 * on (the sleep/wake handshake W1-W5 / P1-P5 of chan.c, in both
 * directions), under a weak memory model, with any process dying at any
 * step. models/check.sh runs the configurations below and the mutants that
 * must fail.
 *
 * The ring. A lane's ring has CAP slots, one message each (message k, from
 * 1, in slot (k - 1) % CAP), and a slot has two locations: the record word
 * (the message's number, 0: none) and the payload (the message's number
 * again, standing for its bytes). A send (shmkit_chan_send() with
 * prod_commit()) stores the payload (relaxed), zero into the word of the
 * slot where the next record will start (relaxed), the record word (P1,
 * the commit, a release store), then tail (release), then P2-P5. The room
 * check keeps a slot for that zero word: a producer sends message k only
 * while k + 1 - head <= CAP, so it never clears a word the consumer has
 * not released, and a ring of CAP slots holds CAP - 1 messages (chan.c
 * keeps 8 bytes). The zero makes a zero word at the consumer's head mean
 * "nothing yet": without it (mutant NO_ZERO) the word there may be a
 * record of an earlier lap, which the consumer takes as new. (The zero
 * over a word never written yet, in the first lap, is left out: it changes
 * nothing but the state count.)
 *
 * The consumer (lane_next()) reads the record word at its head (acquire):
 * set, it is a committed record and the consumer reads the payload; zero,
 * it looks at tail (lane_empty()): at or behind head the lane is empty
 * (the tail lags the words by one commit, and for good if the producer
 * died between the two stores); ahead, the word must be there (it was
 * stored before the tail) and is read again, and a zero then is the
 * -EBADMSG of an honest ring (mutant TAIL_FIRST). The consumer's other
 * looks (cons_any() in W4, the end of stream) use lane_has(): the word at
 * head is set or the tail is ahead of head. A consumer taking over
 * (attach_consumer()) finds where the committed records end as
 * lane_extent() does: from the later of head and tail, past every record
 * whose word is set while the record and the next word fit in the room
 * from head. Pads and batches are not modelled: a message never wraps.
 *
 * Memory model. Loads execute in program order; every store goes through
 * its CPU's store buffer and reaches memory later, in any order (PSO),
 * except that a release store waits for every earlier store of its CPU,
 * nothing passes a release store, and two stores to one location keep
 * their order. A load sees its own CPU's newest buffered store to the
 * location, else memory. A seq_cst fence waits until the CPU's buffer is
 * empty. A read-modify-write reads the newest value and buffers its store;
 * no other RMW of that location runs until that store reached memory
 * (atomicity; ARM's exclusive monitor). futex_wait and futex_wake drain
 * their CPU's buffer first (the kernel's barriers) and check the word /
 * wake the sleepers atomically (the futex hash-bucket lock). This is
 * weaker than x86 (TSO) and as weak as ARM for the store->load and
 * store->store reorderings the protocol defends against; load->load
 * reordering is not modelled (the acquire loads are taken as given), nor
 * a later plain store passing a release store, which C11 and ARM allow:
 * where chan.c needs a store after the commit ordered (the tail), it is a
 * release store itself, and the stores of the next send that may pass the
 * commit go where the consumer does not look before that send's commit.
 *
 * Deaths. A process dies between any two of its steps (Promela's unless):
 * its buffered stores still reach memory (a killed CPU does not discard
 * its store buffer), then the kernel releases its liveness lock (dead[]).
 * A dead consumer is replaced by a new one (the supervisor) that takes
 * over the channel as attach_consumer() does.
 *
 * Slices. With SLICE, a sleep may also end when its time slice runs out,
 * modelled with Promela's timeout: when nothing else can happen, time
 * passes until every sleeper's slice has ended. So a slice never hides a
 * race, it only ends sleeps nobody else ends.
 * Without SLICE a sleep ends only by a futex wake, and the WATCHDOG reports
 * a waiter left asleep with its condition true: a lost wake-up.
 *
 * Properties:
 *  - no exposed partial or stale message: the record word the consumer
 *    takes as a commit is the message's own, and so are its bytes, never
 *    those of an earlier lap or not yet written; a tail ahead of head
 *    means the word is there; the takeover's walk never passes a stale
 *    word;
 *  - no loss, FIFO per lane: messages are delivered in order without a
 *    gap; a message delivered twice is the last one handed out before the
 *    consumer died, and it is flagged REDELIVERED;
 *  - end of stream only after every committed message was delivered;
 *  - pan's invalid end states: no process blocked forever (with SLICE);
 *  - WATCHDOG (without SLICE): when nothing can move, no live waiter sleeps
 *    while its condition holds (for the consumer a record word at its head
 *    or a tail ahead of it in some lane, or the end of the stream; room for
 *    a producer), unless the producer that had to wake the consumer died:
 *    then the slice and the liveness check end the wait, which the SLICE
 *    configurations check. A consumer that dies is no excuse: its
 *    successor wakes a producer asleep for room when it takes over.
 *
 * Parameters (spin -D...): NP producers (1 or 2), NMSG messages each, CAP
 * slots per ring (2 or more: room for CAP - 1 messages), QTR messages
 * released between two fenced checks of tx_sleep (a quarter ring in
 * chan.c), QPUB messages confirmed before head is published (a sixteenth
 * of the ring), KILLS deaths at most, KILL_CONSUMER_ONLY, SLICE, WATCHDOG.
 *
 * End of stream: the consumer checks for end of stream, then announces
 * itself, then re-checks the lanes (W4) and, without probing (a lane not
 * CLOSED counts as alive), end of stream (shmkit__chan_sleep_rx(); select
 * and the readiness helper likewise). Without that re-check (mutant
 * NO_EOS_RECHECK, the code before the fix) a producer that closes between
 * the check and the announcement sees no sleeper and does not wake it,
 * and the consumer sleeps until its slice ends: -EPIPE up to a slice late.
 *
 * Takeover: a new consumer publishes head (the confirmed position of the
 * dead one), then runs the fenced check of tx_sleep on every lane, which
 * also covers a head the dead consumer published without its check.
 * Without it (mutant NO_ATTACH_TXCHECK, the code before the fix) a
 * producer asleep for room waits for its slice.
 *
 * Mutants, each of which must fail: NO_W2 (no fence after the waiter
 * announces itself), NO_P2 (no fence between the commit and the look at
 * the sleepers), NO_REL (the record word, the commit, with a plain store:
 * the payload may reach memory after it), NO_ZERO (the producer does not
 * clear the next record's word), TAIL_FIRST (the tail stored before the
 * record word), NO_WALK (a takeover takes the tail for the end of the
 * committed records, as format 4 did), NO_TXFENCE (no fence after a
 * producer raises tx_sleep), NO_TXCHECK (the consumer never runs the
 * fenced check of tx_sleep), NO_MARK (the consumer does not mark a message
 * before reading it), MARK_RESET (a takeover resets the mark),
 * NO_EOS_RECHECK and NO_ATTACH_TXCHECK (above).
 */

#ifndef NP
#define NP 2 /* producers, 1 or 2 (lane loops are unrolled) */
#endif
#ifndef NMSG
#define NMSG 2
#endif
#ifndef CAP
#define CAP 2 /* slots; one is kept for the next record's word */
#endif
#if CAP < 2
#error "CAP is in slots: 2 or more (room for CAP - 1 messages)"
#endif
#define ROOM (CAP - 1) /* messages a ring holds */
#ifndef QTR
#define QTR 1
#endif
#ifndef QPUB
#define QPUB 2
#endif
#ifndef KILLS
#define KILLS 0
#endif
#ifndef SB
#define SB 3 /* store buffer entries per CPU */
#endif

#define NCPU (NP + 1) /* producers 0..NP-1, consumer NP */
#define CONS NP

/* Shared locations. */
#define TAIL(p) (p)
#define HEAD(p) (NP + (p))
#define MARK(p) (2 * NP + (p))
#define TXSLEEP(p) (3 * NP + (p))
#define TXSEQ(p) (4 * NP + (p))
#define STATE(p) (5 * NP + (p))
#define DONE(p) (6 * NP + (p))
#define RXSLEEPERS (7 * NP)
#define RXSEQ (7 * NP + 1)
/* Slot s of lane p: the record word, the payload. */
#define WORD(p, s) (7 * NP + 2 + (p) * 2 * CAP + (s))
#define PAY(p, s) (7 * NP + 2 + (p) * 2 * CAP + CAP + (s))
#define NLOC (7 * NP + 2 + NP * 2 * CAP)

#define CLOSED 2

byte mem[NLOC];
/* Store buffers: entries [c * SB, c * SB + sb_n[c]), oldest first. */
byte sb_addr[NCPU * SB];
byte sb_val[NCPU * SB];
bit sb_rel[NCPU * SB];
bit sb_rmw[NCPU * SB];
byte sb_n[NCPU];
bit rmw_busy[NLOC];

byte sleeping[NCPU]; /* futex word + 1 the CPU sleeps on, 0: none */
bit killed[NCPU];    /* the killer chose it */
bit dead[NCPU];	     /* its liveness lock is released */
bit finished[NCPU];  /* returned normally */
byte kills;
byte cdeaths; /* consumer deaths */

/* Ghosts for the properties. */
byte ncommit[NP]; /* messages producer p committed (P1 issued) */
byte got[NP];	  /* highest message delivered in order */
byte chead[NP];	  /* the live consumer's private heads */
bit eos_seen;	  /* the consumer reported end of stream */

/* ---- memory operations (c: the CPU; r: a variable of the caller; the
 * caller declares byte _i) ------------------------------------------------ */

/*
 * Fewer states: a process clears its scratch variables once it is done
 * with them, and where it can, a load (LOAD_) and what the process decides
 * from the loaded value and its own variables alone are one d_step, and
 * so are a decision and the clearing of what it was made on: nobody else
 * can tell the difference.
 */

inline LOAD_(c, a, r)
{
	r = mem[a];
	_i = 0;
	do
	:: _i < sb_n[c] ->
		if
		:: sb_addr[c * SB + _i] == a -> r = sb_val[c * SB + _i]
		:: else -> skip
		fi;
		_i++
	:: else -> break
	od;
	_i = 0
}

inline LOAD(c, a, r)
{
	d_step { LOAD_(c, a, r) }
}

inline PUSH(c, a, v, rel, rmw)
{
	sb_addr[c * SB + sb_n[c]] = a;
	sb_val[c * SB + sb_n[c]] = v;
	sb_rel[c * SB + sb_n[c]] = rel;
	sb_rmw[c * SB + sb_n[c]] = rmw;
	sb_n[c]++
}

inline STORE(c, a, v, rel)
{
	d_step { sb_n[c] < SB -> PUSH(c, a, v, rel, 0) }
}

inline FENCE(c)
{
	(sb_n[c] == 0)
}

/* r = *a; *a += d (mod 256). */
inline RMW_ADD(c, a, d, rel, r)
{
	d_step {
		(sb_n[c] < SB && !rmw_busy[a]) ->
		LOAD_(c, a, r);
		rmw_busy[a] = 1;
		PUSH(c, a, (r + d) % 256, rel, 1)
	}
}

/* Sleep while *a == expect, until woken or (SLICE) the slice ends. */
inline FUTEX_WAIT(c, a, expect)
{
	FENCE(c);
	d_step {
		if
		:: mem[a] == expect -> sleeping[c] = a + 1
		:: else -> skip
		fi
	};
	(sleeping[c] == 0)
}

inline FUTEX_WAKE(c, a)
{
	FENCE(c);
	d_step {
		_i = 0;
		do
		:: _i < NCPU ->
			if
			:: sleeping[_i] == a + 1 -> sleeping[_i] = 0
			:: else -> skip
			fi;
			_i++
		:: else -> break
		od;
		_i = 0
	}
}

/*
 * The CPU's store buffer drains into memory one store at a time, in any
 * order the model allows. It runs for dead processes too.
 */
proctype drain(byte c)
{
	byte i, j;
	bit ok;

end:
	do
	:: atomic {
		sb_n[c] > 0 ->
		/* Any entry... */
		i = 0;
		do
		:: i + 1 < sb_n[c] -> i++
		:: break
		od;
		/* ...that is not a release store and has no older store to
		 * its location or release store before it; else the oldest. */
		d_step {
			ok = (i == 0 || !sb_rel[c * SB + i]);
			j = 0;
			do
			:: j < i ->
				if
				:: sb_addr[c * SB + j] == sb_addr[c * SB + i] ||
				   sb_rel[c * SB + j] -> ok = 0
				:: else -> skip
				fi;
				j++
			:: else -> break
			od;
			if
			:: !ok -> i = 0
			:: else -> skip
			fi;
			mem[sb_addr[c * SB + i]] = sb_val[c * SB + i];
			if
			:: sb_rmw[c * SB + i] -> rmw_busy[sb_addr[c * SB + i]] = 0
			:: else -> skip
			fi;
			j = i;
			do
			:: j + 1 < sb_n[c] ->
				sb_addr[c * SB + j] = sb_addr[c * SB + j + 1];
				sb_val[c * SB + j] = sb_val[c * SB + j + 1];
				sb_rel[c * SB + j] = sb_rel[c * SB + j + 1];
				sb_rmw[c * SB + j] = sb_rmw[c * SB + j + 1];
				j++
			:: else -> break
			od;
			sb_n[c]--;
			sb_addr[c * SB + sb_n[c]] = 0;
			sb_val[c * SB + sb_n[c]] = 0;
			sb_rel[c * SB + sb_n[c]] = 0;
			sb_rmw[c * SB + sb_n[c]] = 0;
			i = 0;
			j = 0;
			ok = 0
		}
	}
	od
}

/* A death: off the futex queue, the buffer drains, the lock is released. */
inline DIE(c)
{
	sleeping[c] = 0;
	(sb_n[c] == 0);
	dead[c] = 1
}

/* ---- producer: shmkit_chan_send(), prod_wait(), shmkit_chan_close() --- */

/* prod_notify(): P2..P5 (also the end of shmkit_chan_close()). */
inline NOTIFY(p)
{
	LOAD(p, RXSLEEPERS, v); /* P3 */
	if
	:: d_step {
		v != 0 ->
		v = 0
	} ->
		RMW_ADD(p, RXSEQ, 1, 1, s); /* P4 */
		FUTEX_WAKE(p, RXSEQ)	    /* P5 */
	:: d_step { v == 0 -> skip }
	fi
}

proctype producer(byte p)
{
	byte k = 1, h, s, v, _i;

	{
		do
		:: k > NMSG -> break
		:: else ->
			d_step {
				s = 0;
				v = 0
			};
			/* prod_room(), and prod_wait() while full: room for
			 * the record and the next record's word. */
			LOAD(p, HEAD(p), h); /* acquire */
			do
			:: d_step {
				k - 1 - h < ROOM ->
				h = 0;
				s = 0
			} -> break
			:: else ->
				STORE(p, TXSLEEP(p), 1, 0);
#ifndef NO_TXFENCE
				FENCE(p); /* pairs with cons_txcheck() */
#endif
				LOAD(p, TXSEQ(p), s); /* acquire */
				LOAD(p, HEAD(p), h);
				if
				:: k - 1 - h >= ROOM ->
					printf("P%d sleeps for room\n", p);
					FUTEX_WAIT(p, TXSEQ(p), s)
				:: else -> skip
				fi;
				STORE(p, TXSLEEP(p), 0, 0);
				LOAD(p, HEAD(p), h)
			od;
			/* The copy: the message's bytes. */
			STORE(p, PAY(p, (k - 1) % CAP), k, 0);
			/* prod_commit(): clear the word where the next record
			 * will start (in the first lap: never written yet). */
#ifndef NO_ZERO
			if
			:: k >= CAP -> STORE(p, WORD(p, k % CAP), 0, 0)
			:: else -> skip
			fi;
#endif
#ifdef TAIL_FIRST
			STORE(p, TAIL(p), k, 1);
#endif
			/* P1: the commit, the record word. */
			d_step {
#ifdef NO_REL
				STORE(p, WORD(p, (k - 1) % CAP), k, 0);
#else
				STORE(p, WORD(p, (k - 1) % CAP), k, 1);
#endif
				ncommit[p] = k
			};
#ifndef TAIL_FIRST
			/* The tail, for the slow paths (release). */
			STORE(p, TAIL(p), k, 1);
#endif
progress_commit:
			printf("P%d commits %d\n", p, k);
#ifndef NO_P2
			FENCE(p); /* P2 */
#endif
			NOTIFY(p);
			k++
		od;
		/* shmkit_chan_close(): CLOSED, fence, sleepers, wake. */
		STORE(p, STATE(p), CLOSED, 1);
progress_close:
		printf("P%d closes\n", p);
		FENCE(p);
		NOTIFY(p);
		FENCE(p);
		finished[p] = 1
	} unless { killed[p] };
	if
	:: killed[p] ->
progress_pdeath:
		printf("P%d dies\n", p);
		DIE(p)
	:: else -> skip
	fi;
	d_step {
		k = 0;
		h = 0;
		s = 0;
		v = 0
	}
}

/* ---- consumer: attach_consumer(), recv, cons_wait(), sleep_rx() ------- */

inline WAKE_TX(q)
{
	RMW_ADD(CONS, TXSEQ(q), 1, 1, s);
	FUTEX_WAKE(CONS, TXSEQ(q))
}

inline TXCHECK_LANE(q)
{
	if
	:: unchecked[q] > 0 ->
		unchecked[q] = 0;
		LOAD(CONS, TXSLEEP(q), v);
		if
		:: v -> WAKE_TX(q)
		:: else -> skip
		fi
	:: else -> skip
	fi
}

/* cons_txcheck(): one fence, then a look at every lane published since. */
inline TXCHECK()
{
#ifndef NO_TXCHECK
	if
	:: unchecked[0] + unchecked[NP - 1] > 0 ->
		FENCE(CONS);
		TXCHECK_LANE(0);
#if NP > 1
		TXCHECK_LANE(1);
#endif
		skip
	:: else -> skip
	fi
#else
	skip
#endif
}

/* cons_publish(): the confirmed position becomes head (release). */
inline PUBLISH(q)
{
	if
	:: pub[q] != done[q] ->
		STORE(CONS, HEAD(q), done[q], 1);
		d_step {
			unchecked[q] = unchecked[q] + done[q] - pub[q];
			pub[q] = done[q]
		};
		LOAD(CONS, TXSLEEP(q), v);
		if
		:: v -> WAKE_TX(q)
		:: else ->
			if
			:: unchecked[q] >= QTR -> TXCHECK()
			:: else -> skip
			fi
		fi
	:: else -> skip
	fi
}

/* cons_confirm() of a lane handed out by the last call: done per
 * message; head lazily, or at once if the producer waits. */
inline CONFIRM(q)
{
	if
	:: deferred & (1 << q) ->
		done[q] = chead[q];
		STORE(CONS, DONE(q), done[q], 0);
		LOAD(CONS, TXSLEEP(q), v);
		if
		:: done[q] - pub[q] >= QPUB || v -> PUBLISH(q)
		:: else -> skip
		fi
	:: else -> skip
	fi
}

/* attach_consumer(): resume after the last consumer's confirmed position,
 * flag what it had been handed beyond that. */
inline ATTACH_LANE(q)
{
	LOAD(CONS, HEAD(q), h); /* acquire */
	LOAD(CONS, TAIL(q), t); /* acquire */
	/* lane_extent(): the committed records end at the tail, or past it
	 * if the producer died between a commit and its tail store. Walk
	 * from the later of head and tail over every record whose word is
	 * set, while the record and the next word fit in the room from head
	 * (the walk reads the word first, as chan.c does). */
	d_step {
		if
		:: t < h -> t = h
		:: else -> skip
		fi;
#ifdef NO_WALK
		w = 0
#else
		w = 1
#endif
	};
	do
	:: w != 0 ->
		d_step {
			LOAD_(CONS, WORD(q, t % CAP), w); /* acquire */
			/* Never a stale record of an earlier lap. */
			assert(w == 0 || w == t + 1);
			if
			:: w != 0 && t + 2 - h <= CAP -> t++
			:: else -> w = 0
			fi
		}
	:: else -> break
	od;
	LOAD(CONS, DONE(q), k);
	d_step {
		if
		:: k < h || k > t -> k = h
		:: else -> skip
		fi;
		chead[q] = k;
		done[q] = k;
		pub[q] = k
	};
	if
	:: k != h -> STORE(CONS, HEAD(q), k, 1)
	:: else -> skip
	fi;
	LOAD(CONS, MARK(q), m);
	if
	:: m > k && m <= t ->
		redeliver[q] = m;
#ifdef MARK_RESET
		STORE(CONS, MARK(q), k, 0)
#else
		skip
#endif
	:: else -> STORE(CONS, MARK(q), k, 0)
	fi;
	STORE(CONS, DONE(q), k, 0)
}

/* The end of attach_consumer(): after the fence, wake a producer that
 * sleeps for room. */
inline ATTACH_TXCHECK_LANE(q)
{
	LOAD(CONS, TXSLEEP(q), v);
	if
	:: v -> WAKE_TX(q)
	:: else -> skip
	fi
}

/* lane_next() of cons_next(): a committed message in lane q? Its record
 * word (left in w) is at the head, or the tail says it is. */
inline NEXT_LANE(q)
{
	if
	:: p == 255 ->
		d_step {
			LOAD_(CONS, WORD(q, chead[q] % CAP), w); /* acquire */
			if
			:: w != 0 -> p = q
			:: else -> skip
			fi
		};
		if
		:: p == 255 ->
			/* lane_empty(): at or behind head, the lane is
			 * empty; ahead (within the room), the word was
			 * stored before the tail: it is there. */
			d_step {
				LOAD_(CONS, TAIL(q), t); /* acquire */
				if
				:: t > chead[q] ->
					assert(t - chead[q] <= ROOM);
					p = q
				:: else -> skip
				fi;
				t = 0
			};
			if
			:: p == q ->
				d_step {
					LOAD_(CONS, WORD(q, chead[q] % CAP),
					      w);
					/* Else chan.c says -EBADMSG. */
					assert(w != 0)
				}
			:: else -> skip
			fi
		:: else -> skip
		fi
	:: else -> skip
	fi
}

/* shmkit__chan_lane_has(): r = val if lane q may have a message at the
 * head: its record word there is set, or the tail is ahead. Not looked
 * at once r is val (no lane can change the answer). */
inline HAS(q, r, val)
{
	if
	:: r != val ->
		d_step {
			LOAD_(CONS, WORD(q, chead[q] % CAP), w); /* acquire */
			if
			:: w != 0 -> r = val
			:: else -> skip
			fi;
			w = 0
		};
		if
		:: r != val ->
			d_step {
				LOAD_(CONS, TAIL(q), t); /* acquire */
				if
				:: t > chead[q] -> r = val
				:: else -> skip
				fi;
				t = 0
			}
		:: else -> skip
		fi
	:: else -> skip
	fi
}

/* cons_end(): end of stream? A lane's state is read before the lane. */
inline EOS_LANE(q)
{
	if
	:: eos ->
		LOAD(CONS, STATE(q), v);
		if
		:: d_step {
			v != CLOSED && !dead[q] ->
			eos = 0;
			v = 0
		}
		:: d_step {
			v == CLOSED || dead[q] ->
			v = 0
		} -> HAS(q, eos, 0)
		fi
	:: else -> skip
	fi
}

/* W4 of sleep_rx(): cons_any(). */
inline ANY_LANE(q)
{
	HAS(q, any, 1)
}

/* W4 for end of stream: without probing (a lane not CLOSED counts as
 * alive), re-checked after announcing. */
inline EOS_NOPROBE_LANE(q)
{
	if
	:: eos ->
		LOAD(CONS, STATE(q), v);
		if
		:: d_step {
			v != CLOSED ->
			eos = 0;
			v = 0
		}
		:: d_step {
			v == CLOSED ->
			v = 0
		} -> HAS(q, eos, 0)
		fi
	:: else -> skip
	fi
}

proctype consumer()
{
	byte done[NP], pub[NP], redeliver[NP], unchecked[NP];
	byte p, t, h, m, k, w, s, v, cur, deferred, _i;
	bit any, eos;

restart:
	{
		/* attach_consumer() (all zero for the first consumer). */
		if
		:: cdeaths > 0 ->
			ATTACH_LANE(0);
#if NP > 1
			ATTACH_LANE(1);
#endif
			STORE(CONS, RXSLEEPERS, 0, 0);
#ifndef NO_ATTACH_TXCHECK
			FENCE(CONS);
			ATTACH_TXCHECK_LANE(0);
#if NP > 1
			ATTACH_TXCHECK_LANE(1);
#endif
#endif
			skip
		:: else -> skip
		fi;
		do
		:: /* cons_take(): confirm what the last call handed out. */
			CONFIRM(0);
#if NP > 1
			CONFIRM(1);
#endif
			/* cons_next(): round-robin from cur. Scratch variables
			 * are cleared (fewer distinct states). */
			d_step {
				deferred = 0;
				p = 255;
				t = 0;
				h = 0;
				m = 0;
				k = 0;
				w = 0;
				s = 0;
				v = 0;
				any = 0;
				eos = 0
			};
			if
			:: cur == 0 ->
				NEXT_LANE(0);
				NEXT_LANE(NP - 1)
			:: else ->
				NEXT_LANE(NP - 1);
				NEXT_LANE(0)
			fi;
			if
			:: p != 255 ->
				k = chead[p] + 1;
#ifndef NO_MARK
				/* cons_mark(), never below redeliver. */
				if
#ifndef MARK_NOFLOOR
				:: k < redeliver[p] ->
					STORE(CONS, MARK(p), redeliver[p], 0)
#endif
				:: else -> STORE(CONS, MARK(p), k, 0)
				fi;
#endif
				d_step {
					LOAD_(CONS, PAY(p, (k - 1) % CAP), v);
					/* No partial or stale message is
					 * exposed: the word taken as the
					 * commit and the bytes are this
					 * message's. */
					assert(w == k && v == k);
					w = 0;
					v = 0
				};
				/* Handed to the application. */
				d_step {
					if
					:: k == got[p] + 1 -> got[p] = k
					:: else ->
						/* Only messages a dead
						 * consumer had been handed,
						 * again and flagged. */
						assert(k <= got[p] &&
						       k <= redeliver[p])
					fi;
					chead[p] = k;
					deferred = deferred | (1 << p);
					cur = (p + 1) % NP
				};
progress_recv:
				printf("C receives %d from P%d\n", k, p)
			:: else ->
				/* cons_wait(), once spinning found nothing
				 * (there is no spinning here): publish
				 * everything, the fenced tx_sleep check...
				 * (A lane whose producer raised tx_sleep is
				 * published before the spin: the same
				 * PUBLISH, only sooner.) */
				PUBLISH(0);
#if NP > 1
				PUBLISH(1);
#endif
				TXCHECK();
				/* ...end of stream... */
				eos = 1;
				EOS_LANE(0);
#if NP > 1
				EOS_LANE(1);
#endif
				if
				:: eos -> break
				:: else -> skip
				fi;
				/* ...then sleep_rx(): W1..W5. */
				RMW_ADD(CONS, RXSLEEPERS, 1, 0, v); /* W1 */
#ifndef NO_W2
				FENCE(CONS); /* W2 */
#endif
				LOAD(CONS, RXSEQ, s); /* W3 */
				any = 0;	      /* W4 */
				ANY_LANE(0);
#if NP > 1
				ANY_LANE(1);
#endif
#ifndef NO_EOS_RECHECK
				if
				:: !any ->
					eos = 1;
					EOS_NOPROBE_LANE(0);
#if NP > 1
					EOS_NOPROBE_LANE(1);
#endif
					any = eos
				:: else -> skip
				fi;
#endif
				if
				:: !any ->
					printf("C sleeps\n");
					FUTEX_WAIT(CONS, RXSEQ, s) /* W5 */
				:: else -> skip
				fi;
				RMW_ADD(CONS, RXSLEEPERS, 255, 0, v) /* -1 */
			fi
		od;
		/* End of stream: everything committed was delivered. */
progress_eos:
		printf("C end of stream\n");
		assert(got[0] == ncommit[0]);
		assert(got[NP - 1] == ncommit[NP - 1]);
		eos_seen = 1;
		finished[CONS] = 1
	} unless { killed[CONS] };
	if
	:: killed[CONS] ->
progress_cdeath:
		printf("C dies\n");
		DIE(CONS);
		/* The supervisor starts a new consumer, which takes over
		 * (this process, its private state cleared). */
		d_step {
			cdeaths++;
			killed[CONS] = 0;
			dead[CONS] = 0;
			done[0] = 0;
			pub[0] = 0;
			redeliver[0] = 0;
			unchecked[0] = 0;
#if NP > 1
			done[1] = 0;
			pub[1] = 0;
			redeliver[1] = 0;
			unchecked[1] = 0;
#endif
			p = 0;
			t = 0;
			h = 0;
			m = 0;
			k = 0;
			w = 0;
			s = 0;
			v = 0;
			cur = 0;
			deferred = 0;
			any = 0;
			eos = 0
		};
		goto restart
	:: else -> skip
	fi
}

/* Kills up to KILLS processes, each at any step of its life. */
#define KILL_ONE(v)                                                        \
	:: atomic {                                                        \
		kills < KILLS && !finished[v] && !killed[v] && !dead[v] -> \
		killed[v] = 1;                                             \
		kills++                                                    \
	}

proctype killer()
{
	do
#ifndef KILL_CONSUMER_ONLY
	KILL_ONE(0)
#if NP > 1
	KILL_ONE(1)
#endif
#endif
	KILL_ONE(CONS)
	:: break
	od
}

/*
 * SLICE: when nothing else can happen, time passes until every sleeper's
 * slice has ended (all slices are bounded): every sleep ends.
 */
proctype ticker()
{
end:
	do
	:: atomic {
		timeout && (sleeping[0] != 0 || sleeping[NP - 1] != 0 ||
			    sleeping[CONS] != 0) ->
		sleeping[0] = 0;
		sleeping[NP - 1] = 0;
		sleeping[CONS] = 0
	}
	od
}

/*
 * When nothing can move, no live waiter sleeps with its condition true
 * unless the process that had to wake it died.
 */
inline WD_LANE(q)
{
	/* A committed message pending (lane_has()): only a dead producer
	 * may have failed to wake the consumer. */
	assert((mem[WORD(q, chead[q] % CAP)] == 0 &&
		mem[TAIL(q)] <= chead[q]) || dead[q]);
	if
	:: mem[STATE(q)] != CLOSED && !dead[q] -> alleos = 0
	:: else -> skip
	fi;
	excuse = excuse | dead[q];
	/* A producer asleep for room: its lane is full (a consumer that
	 * died leaves the check to its successor). */
	assert(sleeping[q] == 0 || ncommit[q] - mem[HEAD(q)] >= ROOM)
}

proctype watchdog()
{
	bit alleos, excuse;

	timeout ->
	atomic {
		if
		:: sleeping[CONS] != 0 ->
			alleos = 1;
			excuse = 0;
			WD_LANE(0);
#if NP > 1
			WD_LANE(1);
#endif
			/* The end of the stream must wake it too. */
			assert(!alleos || excuse)
		:: else ->
			assert(sleeping[0] == 0 ||
			       ncommit[0] - mem[HEAD(0)] >= ROOM);
			assert(sleeping[NP - 1] == 0 ||
			       ncommit[NP - 1] - mem[HEAD(NP - 1)] >= ROOM)
		fi
	}
}

init
{
	atomic {
		run drain(0);
#if NP > 1
		run drain(1);
#endif
		run drain(CONS);
		run producer(0);
#if NP > 1
		run producer(1);
#endif
		run consumer();
#if KILLS > 0
		run killer();
#endif
#ifdef WATCHDOG
		run watchdog();
#endif
#ifdef SLICE
		run ticker();
#endif
	}
}
