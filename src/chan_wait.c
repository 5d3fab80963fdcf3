/* SPDX-License-Identifier: MIT */
/*
 * Waiting on many channels: shmkit_chan_select() (one sleep over the
 * futex words of several segments with futex_waitv) and the readiness
 * descriptor of shmkit_chan_fd() (an eventfd fed by a helper thread of the
 * consumer process).
 */
#define _GNU_SOURCE
#include "chan.h"

#include "futex.h"
#include "platform.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define SELECT_SPIN_NS 20000ull
#define FALLBACK_SLICE_NS 1000000ull /* per channel without futex_waitv */
#define HELPER_LIVE_NS 10000000ull

static atomic_int have_waitv = 1; /* cleared if missing or refused */

/*
 * End of stream as far as it shows without a system call (a lane not
 * CLOSED counts as alive), given the consumer's heads: the re-check a
 * waiter makes after announcing itself (W4), since a producer that closed
 * before the announcement saw no sleeper and woke nobody. The lane state
 * loads in shmkit__chan_eos() are acquires paired with the CLOSED store.
 */
static int eos_known(struct shmkit_chan *ch, const uint64_t *heads,
		     size_t stride)
{
	struct shmkit__death d;

	return shmkit__chan_eos(ch, heads, stride, 0, &d) != 0;
}

/*
 * Is ch ready (its recv would not say -EAGAIN)? Publishes what the last
 * call handed out first, as recv would. The liveness part of end of
 * stream is probed at most every few milliseconds per handle (it costs
 * system calls).
 */
static int chan_ready(struct shmkit_chan *ch)
{
	if (shmkit__chan_ready(ch))
		return 1; /* a message, or an error recv will report */
	return shmkit__chan_cons_eos(ch) != 0;
}

int shmkit_chan_select(struct shmkit_chan *const *chans, unsigned n,
		       uint64_t *ready, int64_t timeout_ns)
{
	_Atomic uint32_t *words[SHMKIT_CHAN_MAX_LANES];
	uint32_t vals[SHMKIT_CHAN_MAX_LANES];
	uint64_t deadline, mask, spins = 0, start, t0;
	unsigned rr = 0, fruitless = 0;
	int rc, fallback, woken;

	if (ready)
		*ready = 0;
	if (!chans || n == 0 || n > 64)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		rc = shmkit__chan_check(chans[i], SHMKIT_CHAN_CONSUMER);
		if (rc < 0)
			return rc;
	}
	deadline = shmkit__chan_deadline(timeout_ns);
	start = shmkit__now_ns();
	for (;;) {
		mask = 0;
		for (unsigned i = 0; i < n; i++)
			if (chan_ready(chans[i]))
				mask |= 1ull << i;
		if (mask)
			break;
		if (timeout_ns == 0)
			return -EAGAIN;
		/* Spin a little while traffic may be flowing. */
		if ((++spins & 63) ||
		    shmkit__now_ns() - start < SELECT_SPIN_NS) {
			shmkit__cpu_relax();
			continue;
		}
		uint64_t slice = shmkit__chan_slice(deadline);

		if (!slice)
			return -ETIMEDOUT;
		if (slice > HELPER_LIVE_NS)
			slice = HELPER_LIVE_NS;
		if (shmkit__chan_nap(&fruitless, slice))
			continue; /* see SHMKIT__NAP_NS (chan.h) */
		/*
		 * Announce in every channel, then one fence, then read each
		 * sequence word and re-check each channel (messages and
		 * end of stream): the waiter half of the handshake in
		 * chan.c, once per channel.
		 */
		for (unsigned i = 0; i < n; i++)
			atomic_fetch_add_explicit(&chans[i]->hdr->rx_sleepers,
						  1, memory_order_relaxed);
		/* Pairs with P2 of each producer's commit and with the
		 * fence after its CLOSED store (chan.c). */
		slice = shmkit__chan_rx_barrier(chans, n, slice);
		for (unsigned i = 0; i < n; i++) {
			words[i] = &chans[i]->hdr->rx_seq;
			/* Pairs with the release fetch_add of the waker. */
			vals[i] = load_acquire(words[i]);
		}
		for (unsigned i = 0; i < n && !mask; i++)
			mask |= (uint64_t)(shmkit__chan_any(chans[i]) ||
					   eos_known(chans[i],
						     &chans[i]->cl[0].head,
						     sizeof(chans[i]->cl[0])))
				<< i;
		fallback = !load_relaxed(&have_waitv);
		woken = 0;
		t0 = shmkit__now_ns();
		if (!mask && !fallback) {
			int e = shmkit__futex_waitv(words, vals, n, t0 + slice);

			/* Missing or refused for good: latch. Anything
			 * else (a word's page gone, say) falls back for
			 * this round only; the deadline and a signal are
			 * not errors. */
			if (e == -ENOSYS || e == -EPERM || e == -EACCES)
				store_relaxed(&have_waitv, 0);
			fallback = e < 0 && e != -ETIMEDOUT && e != -EINTR;
			woken = e == 0;
		}
		if (!mask && fallback) {
			/* Old kernel, or futex_waitv refused (seccomp):
			 * short sleeps on each word in turn. */
			unsigned i = rr++ % n;

			woken = shmkit__futex_wait(
					words[i], vals[i],
					slice < FALLBACK_SLICE_NS
						? slice
						: FALLBACK_SLICE_NS) == 0;
		}
		fruitless = shmkit__fruitless(fruitless, !mask && woken, t0,
					      shmkit__now_ns());
		for (unsigned i = 0; i < n; i++)
			atomic_fetch_sub_explicit(&chans[i]->hdr->rx_sleepers,
						  1, memory_order_relaxed);
		mask = 0;
	}
	if (ready)
		*ready = mask;
	return __builtin_popcountll(mask);
}

/* ---- readiness descriptor ------------------------------------------------ */

/*
 * Producers are other processes: they cannot write to the consumer's
 * eventfd, and passing it to each of them would need a socket per
 * producer. Instead a helper thread of the consumer process sleeps on the
 * channel's futex like any consumer-side waiter and turns "a message may be
 * there" into an eventfd count. It reads only shared, atomic words (the
 * published heads, the record words there, the tails), never the handle's
 * private state, so the application thread keeps sole use of the handle.
 *
 * Protocol with recv. fd_armed (a private futex word the helper sleeps on
 * while disarmed) and the eventfd count change together under fd_lock:
 *   helper: lock; if armed and the channel is ready: write(efd, 1),
 *           armed = 0; unlock.
 *   recv:   on -EAGAIN (everything it handed out is published by then):
 *           lock; if !armed: read(efd) to clear it, armed = 1; unlock;
 *           wake the helper.
 * A helper decision taken before the re-arm is undone by it (the count is
 * cleared); one taken after it sees what recv published (the lock orders
 * them), so the descriptor is readable exactly while something may be
 * there, with no spurious readiness left behind.
 */
static int helper_any(struct shmkit_chan *ch, uint64_t *heads)
{
	for (unsigned i = 0; i < ch->nlanes; i++) {
		/* Pairs with the release store of head. When the helper
		 * is armed, recv has published all it handed out. */
		uint64_t h = load_acquire(&ch->lanes[i].head);

		heads[i] = h;
		if (shmkit__chan_lane_has(ch, i, h))
			return 1;
	}
	return 0;
}

static void *helper_main(void *arg)
{
	struct shmkit_chan *ch = arg;
	struct shmkit_chan_hdr *h = ch->hdr;
	uint64_t heads[SHMKIT_CHAN_MAX_LANES], live_next = 0, now, slice, t0;
	struct shmkit__death d;
	unsigned fruitless = 0;
	uint32_t s;
	int ready, woken;

	while (!load_acquire(&ch->fd_stop)) {
		/* Pairs with the release store in shmkit__chan_fd_rearm(). */
		if (!load_acquire(&ch->fd_armed)) {
			shmkit__futex_wait(&ch->fd_armed, 0, HELPER_LIVE_NS);
			continue;
		}
		pthread_mutex_lock(&ch->fd_lock);
		ready = load_relaxed(&ch->fd_armed) && helper_any(ch, heads);
		now = shmkit__now_ns();
		if (!ready && load_relaxed(&ch->fd_armed)) {
			int probe = now >= live_next;

			if (probe)
				live_next = now + HELPER_LIVE_NS;
			if (shmkit__chan_eos(ch, heads, sizeof(heads[0]), probe,
					     &d) != 0) {
				store_release(&ch->fd_eos, 1);
				ready = 1;
			}
		}
		if (ready) {
			uint64_t one = 1;

			if (write(ch->efd, &one, sizeof(one)) < 0) {
				/* Counter saturated: readable anyway. */
			}
			store_relaxed(&ch->fd_armed, 0);
		}
		pthread_mutex_unlock(&ch->fd_lock);
		if (ready) {
			fruitless = 0;
			continue;
		}
		if (fruitless >= 2) {
			/* See SHMKIT__NAP_NS (chan.h). On fd_armed, which is
			 * ours alone and which a stop wakes: a close does not
			 * wait out the nap. */
			shmkit__futex_wait(&ch->fd_armed, 1, SHMKIT__NAP_NS);
			fruitless = 1;
			continue;
		}
		atomic_fetch_add_explicit(&h->rx_sleepers, 1,
					  memory_order_relaxed);
		/* The waiter half of the handshake in chan.c: pairs with P2
		 * and the fence after a producer's CLOSED store. */
		slice = shmkit__chan_rx_barrier(
			&ch, 1,
			live_next > now ? live_next - now : HELPER_LIVE_NS);
		s = load_acquire(&h->rx_seq);
		/* helper_any() filled heads[] when it found nothing. */
		woken = 0;
		t0 = shmkit__now_ns();
		if (!helper_any(ch, heads) &&
		    !eos_known(ch, heads, sizeof(heads[0])) &&
		    !load_acquire(&ch->fd_stop))
			woken = shmkit__futex_wait(&h->rx_seq, s, slice) == 0;
		fruitless = shmkit__fruitless(fruitless, woken, t0,
					      shmkit__now_ns());
		atomic_fetch_sub_explicit(&h->rx_sleepers, 1,
					  memory_order_relaxed);
	}
	return NULL;
}

int shmkit_chan_fd(struct shmkit_chan *ch)
{
	sigset_t all, old;
	int rc = shmkit__chan_check(ch, SHMKIT_CHAN_CONSUMER);

	if (rc < 0)
		return rc;
	if (ch->efd >= 0)
		return ch->efd;
	ch->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ch->efd < 0) {
		rc = -errno;
		ch->efd = -1;
		return rc;
	}
	store_relaxed(&ch->fd_stop, 0);
	store_relaxed(&ch->fd_armed, 1);
	pthread_mutex_init(&ch->fd_lock, NULL);
	/* The helper takes no signals: they belong to the application. But
	 * those the kernel sends to the faulting thread stay open: a blocked
	 * SIGBUS (a peer truncated the segment under the helper) kills the
	 * whole process instead of reaching the segment guard, which turns
	 * it into an error (seg_guard.c). */
	sigfillset(&all);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&ch->thr, NULL, helper_main, ch);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		close(ch->efd);
		ch->efd = -1;
		return -rc;
	}
	ch->thr_started = 1;
	return ch->efd;
}

void shmkit__chan_fd_rearm(struct shmkit_chan *ch)
{
	uint64_t v;
	int woke = 0;

	if (ch->efd < 0)
		return;
	shmkit__chan_republish(ch);
	pthread_mutex_lock(&ch->fd_lock);
	if (!load_relaxed(&ch->fd_armed)) {
		if (read(ch->efd, &v, sizeof(v)) < 0) {
			/* Already clear (EAGAIN). */
		}
		/* Pairs with the acquire load of fd_armed in helper_main(). */
		store_release(&ch->fd_armed, 1);
		woke = 1;
	}
	pthread_mutex_unlock(&ch->fd_lock);
	if (woke)
		shmkit__futex_wake(&ch->fd_armed, 1);
}

void shmkit__chan_fd_stop(struct shmkit_chan *ch)
{
	if (ch->thr_started) {
		store_release(&ch->fd_stop, 1);
		store_release(&ch->fd_armed, 1);
		shmkit__futex_wake(&ch->fd_armed, 1);
		/* The helper may be asleep on rx_seq. */
		shmkit__chan_wake_rx(ch->hdr);
		pthread_join(ch->thr, NULL);
		pthread_mutex_destroy(&ch->fd_lock);
		ch->thr_started = 0;
	}
	if (ch->efd >= 0) {
		close(ch->efd);
		ch->efd = -1;
	}
}
