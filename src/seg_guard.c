/* SPDX-License-Identifier: MIT */
/*
 * The SIGBUS guard. Touching a page of a shared file mapping beyond the
 * file's current end raises SIGBUS; a hostile or buggy peer can provoke it
 * with one ftruncate. The handler looks the address up in a registry of
 * guarded mappings; if it is ours, it maps a private zero page over the
 * faulting page and returns, so the access completes (reading zeros, which
 * the library's validation then rejects) and the segment is marked hit
 * (shmkit_seg_check() reports -EBADMSG). Faults elsewhere go to the handler
 * that was installed before ours, or to the default action.
 */
#define _GNU_SOURCE
#include "seg_guard.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUARD_SLOTS 1024

/*
 * A slot is free when start is 0. add() claims it with a CAS on start and
 * then publishes len with a release store; the handler reads len with an
 * acquire load (pairs with that store) and ignores a slot whose len is 0.
 */
static struct guard {
	_Atomic uintptr_t start;
	_Atomic size_t len;
	_Atomic int hit;
} guards[GUARD_SLOTS];

static struct sigaction old_action;
static uintptr_t page_size;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int installed;

static void chain(int sig, siginfo_t *si, void *uc)
{
	if (old_action.sa_flags & SA_SIGINFO) {
		if (old_action.sa_sigaction) {
			old_action.sa_sigaction(sig, si, uc);
			return;
		}
	} else if (old_action.sa_handler != SIG_DFL &&
		   old_action.sa_handler != SIG_IGN) {
		old_action.sa_handler(sig);
		return;
	}
	/*
	 * Default (or ignored, which for a fault would loop forever): restore
	 * the default action; the faulting instruction runs again and the
	 * process dies of SIGBUS as it would have without shmkit.
	 */
	signal(SIGBUS, SIG_DFL);
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	int saved = errno;

	for (int i = 0; i < GUARD_SLOTS; i++) {
		uintptr_t start = atomic_load_explicit(&guards[i].start,
						       memory_order_relaxed);
		/* Pairs with the release store of len in shmkit__guard_add. */
		size_t len = atomic_load_explicit(&guards[i].len,
						  memory_order_acquire);

		if (!start || !len || a < start || a - start >= len)
			continue;
		void *page = (void *)(a & ~(page_size - 1));

		if (mmap(page, page_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
			 0) == MAP_FAILED)
			break;
		atomic_store_explicit(&guards[i].hit, 1, memory_order_relaxed);
		errno = saved;
		return;
	}
	errno = saved;
	chain(sig, si, uc);
}

static void install(void)
{
	struct sigaction sa;

	page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	installed = sigaction(SIGBUS, &sa, &old_action) == 0;
}

int shmkit__guard_add(void *start, size_t len)
{
	uintptr_t s = (uintptr_t)start;

	pthread_once(&once, install);
	if (!installed || !s || !len)
		return -1;
	for (int i = 0; i < GUARD_SLOTS; i++) {
		uintptr_t expect = 0;

		if (!atomic_compare_exchange_strong(&guards[i].start, &expect,
						    s))
			continue;
		atomic_store_explicit(&guards[i].hit, 0, memory_order_relaxed);
		/* Pairs with the acquire load of len in on_sigbus(). */
		atomic_store_explicit(&guards[i].len, len,
				      memory_order_release);
		return i;
	}
	return -1;
}

void shmkit__guard_del(int idx)
{
	if (idx < 0 || idx >= GUARD_SLOTS)
		return;
	/* Relaxed: the caller unmaps next; a fault there is its own bug. */
	atomic_store_explicit(&guards[idx].len, 0, memory_order_relaxed);
	atomic_store_explicit(&guards[idx].start, 0, memory_order_relaxed);
}

int shmkit__guard_hit(int idx)
{
	if (idx < 0 || idx >= GUARD_SLOTS)
		return 0;
	return atomic_load_explicit(&guards[idx].hit, memory_order_relaxed);
}
