/* SPDX-License-Identifier: MIT */
/*
 * shmkit_chan_wait_peer() with real processes: a producer waits for the
 * consumer and a consumer for its first producer, each attaching later
 * from another process; the waiter returns once the peer is there, and
 * sleeps meanwhile (its CPU time stays a small part of the wait, where a
 * polling loop would burn it). Nobody coming gives -ETIMEDOUT after the
 * timeout, -EAGAIN with timeout 0; a peer that died before (its state word
 * still says attached) must not make the waiter spin, and neither must a
 * hostile process that keeps bumping the claim count the waiter watches.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "th_chan.h"

#include "layout.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <shmkit.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define LATE_MS 150

/* Channels this test made, removed however it ends (a failed assertion
 * exits without closing). */
static char made[2][64];

static void cleanup(void)
{
	for (int i = 0; i < 2; i++)
		if (made[i][0])
			shmkit_chan_unlink(made[i]);
}

static void put_time(int fd)
{
	uint64_t t = th_now_ns();

	ASSERT_EQ(write(fd, &t, sizeof(t)), (ssize_t)sizeof(t));
}

static uint64_t get_time(int fd)
{
	uint64_t t;

	ASSERT_EQ(read(fd, &t, sizeof(t)), (ssize_t)sizeof(t));
	return t;
}

/*
 * Opens argv[0] as argv[1] ("p" or "c") after LATE_MS, stays argv[2] ms
 * (closing), or dies there without closing if argv[3] is "die". With
 * argv[4] (a pipe's write end) and argv[5] (ms): writes the time to the
 * pipe first, attaches argv[5] ms after that instead, and writes the
 * time it had attached.
 */
static int late(int argc, char **argv)
{
	struct shmkit_chan *ch;
	int fd = argc > 5 ? atoi(argv[4]) : -1;

	if (argc < 4)
		return TH_FAIL;
	usleep(LATE_MS * 1000);
	if (fd >= 0) {
		put_time(fd);
		usleep((useconds_t)atoi(argv[5]) * 1000);
	}
	ASSERT_OK(shmkit_chan_open(argv[0],
				   argv[1][0] == 'p' ? SHMKIT_CHAN_PRODUCER
						     : SHMKIT_CHAN_CONSUMER,
				   NULL, &ch));
	if (fd >= 0)
		put_time(fd);
	usleep((useconds_t)atoi(argv[2]) * 1000);
	if (argv[3][0] == 'd')
		_exit(0);
	shmkit_chan_close(ch);
	return 0;
}

/* CPU time of this thread (RUSAGE_THREAD) or process (RUSAGE_SELF), ns. */
static uint64_t cpu_ns_of(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (uint64_t)ru.ru_utime.tv_sec * 1000000000ull +
	       (uint64_t)ru.ru_utime.tv_usec * 1000ull +
	       (uint64_t)ru.ru_stime.tv_sec * 1000000000ull +
	       (uint64_t)ru.ru_stime.tv_usec * 1000ull;
}

static uint64_t cpu_ns(void)
{
	return cpu_ns_of(RUSAGE_THREAD);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * `me` waits while a process attaches as the other role, five times. The
 * waiter sleeps meanwhile (CPU time a tenth of the wait at most) and the
 * attach wakes it. To tell that from the end of a sleep slice (25 ms)
 * on a machine that may be loaded: the peer first wakes us through a
 * pipe (that wake-up's delay is the reference), we start waiting at
 * once, and it attaches 3-12 ms later, inside our first slice. Woken by
 * the attach, we return about one reference delay after it; a lost
 * wake-up would return at the slice's end, 13 ms or more after the
 * attach beyond the reference. The median excess must stay under 6 ms.
 */
static void waits_for_late_peer(enum shmkit_chan_role me)
{
	struct shmkit_chan_opts o = th_chan_opts(4096, 64, 2);
	struct shmkit_chan *ch;
	char *name = made[me == SHMKIT_CHAN_PRODUCER], wfd[16], delay[16];
	const char *args[] = {NULL,  me == SHMKIT_CHAN_PRODUCER ? "c" : "p",
			      "100", "close",
			      wfd,   delay,
			      NULL};
	int64_t excess[5];
	int pfd[2];

	th_name(name, sizeof(made[0]), "late");
	args[0] = name;
	ASSERT_OK(pipe(pfd));
	snprintf(wfd, sizeof(wfd), "%d", pfd[1]);
	ASSERT_OK(shmkit_chan_create(name, &o, me, &ch));
	ASSERT_EQ(shmkit_chan_peers(ch), 0);
	ASSERT_ERR(shmkit_chan_wait_peer(ch, 0), EAGAIN);
	for (int k = 0; k < 5; k++) {
		pid_t pid;
		uint64_t t0, c0, wall, cpu, told, ref, at, back;

		snprintf(delay, sizeof(delay), "%d", 3 + (int)(th_rand() % 10));
		pid = th_spawn("late", args, NULL);
		told = get_time(pfd[0]);
		t0 = th_now_ns();
		ref = t0 - told;
		c0 = cpu_ns();
		ASSERT_EQ(shmkit_chan_wait_peer(ch, 10000000000ll), 1);
		back = th_now_ns();
		wall = back - t0;
		cpu = cpu_ns() - c0;
		ASSERT_LT(cpu, wall / 10 + 1000000);
		/* Already there: at once. */
		ASSERT_EQ(shmkit_chan_wait_peer(ch, 0), 1);
		at = get_time(pfd[0]);
		ASSERT_TRUE(th_exited_ok(th_wait(pid, 20000)));
		excess[k] = (int64_t)(back - at) - (int64_t)ref;
	}
	qsort(excess, 5, sizeof(excess[0]), cmp_i64);
	ASSERT_LT(excess[2], 6000000);
	close(pfd[0]);
	close(pfd[1]);
	shmkit_chan_close(ch);
	ASSERT_OK(shmkit_chan_unlink(name));
	name[0] = '\0';
}

/*
 * Nobody comes: -ETIMEDOUT after the timeout. First with a peer that
 * attached and died before the wait: its state word still says attached,
 * and the waiter must sleep anyway, not spin on it.
 */
static void nobody_comes(enum shmkit_chan_role me)
{
	struct shmkit_chan_opts o = th_chan_opts(4096, 64, 2);
	struct shmkit_chan *ch;
	const char *args[] = {NULL, me == SHMKIT_CHAN_PRODUCER ? "c" : "p", "0",
			      "die", NULL};
	char *name = made[0];
	uint64_t t0, c0, wall, cpu;

	th_name(name, sizeof(made[0]), "nobody");
	args[0] = name;
	ASSERT_OK(shmkit_chan_create(name, &o, me, &ch));
	ASSERT_TRUE(th_exited_ok(th_wait(th_spawn("late", args, NULL), 20000)));
	t0 = th_now_ns();
	c0 = cpu_ns();
	ASSERT_ERR(shmkit_chan_wait_peer(ch, 200000000), ETIMEDOUT);
	wall = th_now_ns() - t0;
	cpu = cpu_ns() - c0;
	ASSERT_GE(wall, 200000000ull);
	ASSERT_LT(cpu, wall / 10);
	shmkit_chan_close(ch);
	ASSERT_OK(shmkit_chan_unlink(name));
	name[0] = '\0';
}

/* The waits that a hostile waker must not keep looping. */
enum bumped {
	B_WAIT_PEER, /* either role, nobody attached */
	B_RECV,	     /* consumer, its producer attached and silent */
	B_SELECT,    /* the same, through shmkit_chan_select() */
	B_FD,	     /* the same, through the readiness descriptor */
	B_SEND,	     /* producer, ring full, its consumer attached, idle */
	B_FLUSH,     /* producer, a message unread, the same consumer */
};

static const char *const bumped_name[] = {"wait_peer",	"recv", "select",
					  "descriptor", "send", "flush"};

/*
 * A process with write access keeps incrementing the claim count that a
 * waiter compares and the futex word it sleeps on, and waking that word,
 * as a stream of peers that never stay would. Each bump ends the waiter's
 * sleep early; it must still time out, having used little CPU, not loop
 * for the whole timeout. For the descriptor, the CPU is the process's
 * (its helper thread's) while the caller sits in poll().
 */
static void counts_bumped(enum shmkit_chan_role me, enum bumped what)
{
	struct shmkit_chan_opts o = th_chan_opts(4096, 64, 2);
	struct shmkit_chan *ch, *peer = NULL;
	char buf[64] = {0};
	char *name = made[0], path[4096];
	uint64_t t0, c0, wall, cpu, lanes;
	unsigned char *p;
	struct stat st;
	pid_t pid, parent;
	int fd;

	th_name(name, sizeof(made[0]), "bumped");
	ASSERT_OK(shmkit_chan_create(name, &o, me, &ch));
	/* A live, silent peer: the wait is then not end of stream nor a
	 * consumer gone. */
	if (what != B_WAIT_PEER)
		ASSERT_OK(shmkit_chan_open(name,
					   me == SHMKIT_CHAN_PRODUCER
						   ? SHMKIT_CHAN_CONSUMER
						   : SHMKIT_CHAN_PRODUCER,
					   NULL, &peer));
	if (what == B_SEND)
		while (shmkit_chan_send(ch, buf, sizeof(buf), 0) == 0)
			;
	if (what == B_FLUSH)
		ASSERT_OK(shmkit_chan_send(ch, buf, sizeof(buf), 0));
	snprintf(path, sizeof(path), "%s/%s", shmkit_shm_dir(), name);
	fd = open(path, O_RDWR);
	ASSERT_GE(fd, 0);
	ASSERT_OK(fstat(fd, &st));
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 fd, 0);
	ASSERT_TRUE(p != MAP_FAILED);
	close(fd);
	/* The channel header is at the start of the data area; its word at
	 * 0x28 is the offset of lane 0 from there. */
	memcpy(&lanes, p + SHMKIT_HDR_SIZE + 0x28, 8);
	parent = getpid();
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		unsigned char *h = p + SHMKIT_HDR_SIZE, *l = h + lanes;
		int prod = me == SHMKIT_CHAN_PRODUCER;
		/* What the waiter compares, and the futex word it sleeps on:
		 * the consumer's claims and lane 0's tx_seq for a producer;
		 * lane 0's claims and the header's rx_seq for a consumer. */
		_Atomic uint32_t *claims =
			(_Atomic uint32_t *)(void *)(prod ? h + 0x84
							  : l + 0x84);
		_Atomic uint32_t *seq =
			(_Atomic uint32_t *)(void *)(prod ? l + 0x48
							  : h + 0x40);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0); /* the parent died before the prctl */
		for (;;) {
			atomic_fetch_add_explicit(claims, 1,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(seq, 1, memory_order_relaxed);
			syscall(SYS_futex, (uint32_t *)seq, FUTEX_WAKE,
				INT32_MAX, NULL, NULL, 0);
		}
	}
	t0 = th_now_ns();
	c0 = cpu_ns_of(what == B_FD ? RUSAGE_SELF : RUSAGE_THREAD);
	switch (what) {
	case B_WAIT_PEER:
		ASSERT_ERR(shmkit_chan_wait_peer(ch, 300000000), ETIMEDOUT);
		break;
	case B_RECV:
		ASSERT_ERR(shmkit_chan_recv(ch, buf, sizeof(buf), NULL,
					    300000000),
			   ETIMEDOUT);
		break;
	case B_SELECT:
		ASSERT_ERR(shmkit_chan_select(&ch, 1, NULL, 300000000),
			   ETIMEDOUT);
		break;
	case B_FD: {
		struct pollfd pfd = {.fd = shmkit_chan_fd(ch),
				     .events = POLLIN};

		ASSERT_GE(pfd.fd, 0);
		ASSERT_EQ(poll(&pfd, 1, 300), 0);
		break;
	}
	case B_SEND:
		ASSERT_ERR(shmkit_chan_send(ch, buf, sizeof(buf), 300000000),
			   ETIMEDOUT);
		break;
	case B_FLUSH:
		ASSERT_ERR(shmkit_chan_flush(ch, 300000000), ETIMEDOUT);
		break;
	}
	wall = th_now_ns() - t0;
	cpu = (cpu_ns_of(what == B_FD ? RUSAGE_SELF : RUSAGE_THREAD)) - c0;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	printf("bumped, %s: %.1f ms of CPU in a %.0f ms wait\n",
	       what == B_WAIT_PEER ? (me == SHMKIT_CHAN_PRODUCER
					      ? "producer waiting for a peer"
					      : "consumer waiting for a peer")
				   : bumped_name[what],
	       (double)cpu / 1e6, (double)wall / 1e6);
	ASSERT_GE(wall, 300000000ull);
	ASSERT_LT(cpu, wall / 10);
	munmap(p, (size_t)st.st_size);
	shmkit_chan_close(peer);
	shmkit_chan_close(ch);
	ASSERT_OK(shmkit_chan_unlink(name));
	name[0] = '\0';
}

static int test(void)
{
	atexit(cleanup);
	ASSERT_ERR(shmkit_chan_wait_peer(NULL, 0), EINVAL);
	waits_for_late_peer(SHMKIT_CHAN_PRODUCER);
	waits_for_late_peer(SHMKIT_CHAN_CONSUMER);
	nobody_comes(SHMKIT_CHAN_PRODUCER);
	nobody_comes(SHMKIT_CHAN_CONSUMER);
	counts_bumped(SHMKIT_CHAN_PRODUCER, B_WAIT_PEER);
	counts_bumped(SHMKIT_CHAN_CONSUMER, B_WAIT_PEER);
	counts_bumped(SHMKIT_CHAN_CONSUMER, B_RECV);
	counts_bumped(SHMKIT_CHAN_CONSUMER, B_SELECT);
	counts_bumped(SHMKIT_CHAN_CONSUMER, B_FD);
	counts_bumped(SHMKIT_CHAN_PRODUCER, B_SEND);
	counts_bumped(SHMKIT_CHAN_PRODUCER, B_FLUSH);
	return 0;
}

static const struct th_role roles[] = {
	{"late", late},
	{NULL, NULL},
};

int main(int argc, char **argv)
{
	return th_run(argc, argv, roles, test);
}
