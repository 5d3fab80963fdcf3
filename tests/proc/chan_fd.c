/* SPDX-License-Identifier: MIT */
/*
 * The readiness descriptor inside epoll, with producers in other
 * processes: readable exactly when a message (or end of stream) is there,
 * quiet when the channel is empty, and usable next to ordinary
 * descriptors; then select() over several channels, also where seccomp
 * refuses futex_waitv.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <shmkit.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Producer driven by commands on a control channel: n>0 send n, 0 close. */
static int stepper(int argc, char **argv)
{
	struct shmkit_chan *ctl, *p;
	uint32_t cmd, seq = 0;

	if (argc < 2)
		return TH_FAIL;
	ASSERT_OK(shmkit_chan_open(argv[1], SHMKIT_CHAN_CONSUMER, NULL, &ctl));
	ASSERT_OK(shmkit_chan_open(argv[0], SHMKIT_CHAN_PRODUCER, NULL, &p));
	while (shmkit_chan_recv(ctl, &cmd, sizeof(cmd), NULL, -1) ==
	       sizeof(cmd)) {
		if (cmd == 0)
			break;
		for (uint32_t i = 0; i < cmd; i++, seq++)
			ASSERT_OK(shmkit_chan_send(p, &seq, sizeof(seq), -1));
	}
	shmkit_chan_close(p);
	shmkit_chan_close(ctl);
	return 0;
}

/* Free-running producer: count messages in bursts with pauses. */
static int burster(int argc, char **argv)
{
	struct shmkit_chan *p;
	uint32_t count;

	if (argc < 2)
		return TH_FAIL;
	count = (uint32_t)atoi(argv[1]);
	ASSERT_OK(shmkit_chan_open(argv[0], SHMKIT_CHAN_PRODUCER, NULL, &p));
	for (uint32_t i = 0; i < count; i++) {
		ASSERT_OK(shmkit_chan_send(p, &i, sizeof(i), -1));
		if (th_rand() % 200 == 0)
			usleep((useconds_t)(th_rand() % 3000));
	}
	shmkit_chan_close(p);
	return 0;
}

static int wait_one(int ep, int ms)
{
	struct epoll_event ev;
	int n = epoll_wait(ep, &ev, 1, ms);

	ASSERT_GE(n, 0);
	return n ? (int)ev.data.u32 : -1;
}

static void test_stepped(void)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7};
	struct shmkit_chan *c, *ctl;
	char name[128], cname[128];
	uint32_t v, cmd;
	int ep, fd;

	th_name(name, sizeof(name), "fd");
	th_name(cname, sizeof(cname), "ctl");
	ASSERT_OK(shmkit_chan_create(name, NULL, SHMKIT_CHAN_CONSUMER, &c));
	ASSERT_OK(shmkit_chan_create(cname, NULL, SHMKIT_CHAN_PRODUCER, &ctl));
	fd = shmkit_chan_fd(c);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(shmkit_chan_fd(c), fd); /* one per handle */
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	/* Empty, no producer yet: quiet. */
	ASSERT_EQ(wait_one(ep, 50), -1);
	const char *args[] = {name, cname, NULL};
	pid_t pid = th_spawn("stepper", args, NULL);

	for (uint32_t round = 0, seq = 0; round < 20; round++) {
		cmd = 1 + round % 5;
		ASSERT_OK(shmkit_chan_send(ctl, &cmd, sizeof(cmd), -1));
		/* Readable once the messages are there... */
		ASSERT_EQ(wait_one(ep, 10000), 7);
		for (uint32_t i = 0; i < cmd; i++, seq++) {
			ASSERT_EQ(shmkit_chan_recv(c, &v, sizeof(v), NULL,
						   5000000000ll),
				  sizeof(v));
			ASSERT_EQ(v, seq);
		}
		ASSERT_ERR(shmkit_chan_recv(c, &v, sizeof(v), NULL, 0), EAGAIN);
		/* ...and quiet again once drained: the producer waits for
		 * the next command, so nothing can arrive. */
		ASSERT_EQ(wait_one(ep, round < 3 ? 100 : 5), -1);
	}
	cmd = 0;
	ASSERT_OK(shmkit_chan_send(ctl, &cmd, sizeof(cmd), -1));
	/* End of stream makes it readable too. */
	ASSERT_EQ(wait_one(ep, 10000), 7);
	ASSERT_ERR(shmkit_chan_recv(c, &v, sizeof(v), NULL, 0), EPIPE);
	ASSERT_TRUE(th_exited_ok(th_wait(pid, 10000)));
	close(ep);
	shmkit_chan_close(ctl);
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_unlink(name));
	ASSERT_OK(shmkit_chan_unlink(cname));
}

/* Two channels and a pipe in one epoll set, free-running producers. */
static void test_mixed(void)
{
	struct shmkit_chan *c[2];
	char names[2][128];
	uint32_t next[2] = {0, 0};
	const uint32_t count = 20000;
	int ep, pfd[2], done = 0, piped = 0;
	pid_t pids[2];
	char cnt[16];

	snprintf(cnt, sizeof(cnt), "%u", count);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_OK(pipe(pfd));
	for (uint32_t i = 0; i < 2; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};

		th_name(names[i], sizeof(names[i]), "mix");
		ASSERT_OK(shmkit_chan_create(names[i], NULL,
					     SHMKIT_CHAN_CONSUMER, &c[i]));
		ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, shmkit_chan_fd(c[i]),
				    &ev));
		const char *args[] = {names[i], cnt, NULL};

		pids[i] = th_spawn("burster", args, NULL);
	}
	{
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 2};

		ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, pfd[0], &ev));
	}
	while (done < 2) {
		int who = wait_one(ep, 10000);
		uint32_t v;
		int rc;

		ASSERT_GE(who, 0);
		if (who == 2) {
			char b;

			ASSERT_EQ(read(pfd[0], &b, 1), 1);
			piped++;
			continue;
		}
		while ((rc = shmkit_chan_recv(c[who], &v, sizeof(v), NULL,
					      0)) >= 0) {
			ASSERT_EQ(v, next[who]);
			next[who]++;
			/* The application's own descriptor, now and then. */
			if (v % 5000 == 0)
				ASSERT_EQ(write(pfd[1], "x", 1), 1);
		}
		if (rc == -EPIPE) {
			struct epoll_event ev;

			ASSERT_EQ(next[who], count);
			ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_DEL,
					    shmkit_chan_fd(c[who]), &ev));
			done++;
		} else {
			ASSERT_ERR(rc, EAGAIN);
		}
	}
	/* Whatever the pipe still holds was written, not lost. */
	for (char b; piped < 8 && wait_one(ep, 0) == 2;) {
		ASSERT_EQ(read(pfd[0], &b, 1), 1);
		piped++;
	}
	ASSERT_EQ(piped, 8);
	for (int i = 0; i < 2; i++) {
		ASSERT_TRUE(th_exited_ok(th_wait(pids[i], 10000)));
		shmkit_chan_close(c[i]);
		ASSERT_OK(shmkit_chan_unlink(names[i]));
	}
	close(pfd[0]);
	close(pfd[1]);
	close(ep);
}

/* select over three channels fed by three processes. */
static void test_select(void)
{
	struct shmkit_chan *c[3], *active[3];
	char names[3][128];
	uint32_t next[3] = {0, 0, 0};
	const uint32_t count = 20000;
	int idx[3], nact = 3;
	pid_t pids[3];
	char cnt[16];

	snprintf(cnt, sizeof(cnt), "%u", count);
	for (int i = 0; i < 3; i++) {
		th_name(names[i], sizeof(names[i]), "sel");
		ASSERT_OK(shmkit_chan_create(names[i], NULL,
					     SHMKIT_CHAN_CONSUMER, &c[i]));
		active[i] = c[i];
		idx[i] = i;
	}
	ASSERT_ERR(shmkit_chan_select(c, 3, NULL, 0), EAGAIN);
	ASSERT_ERR(shmkit_chan_select(c, 3, NULL, 20000000), ETIMEDOUT);
	for (int i = 0; i < 3; i++) {
		const char *args[] = {names[i], cnt, NULL};

		pids[i] = th_spawn("burster", args, NULL);
	}
	while (nact > 0) {
		uint64_t ready;
		int n = shmkit_chan_select(active, (unsigned)nact, &ready,
					   10000000000ll);

		ASSERT_GT(n, 0);
		ASSERT_EQ(__builtin_popcountll(ready), n);
		/* Walk backwards so removing j keeps lower indices valid. */
		for (int j = nact - 1; j >= 0; j--) {
			int i = idx[j], rc;
			uint32_t v;

			if (!(ready & (1ull << j)))
				continue;
			while ((rc = shmkit_chan_recv(c[i], &v, sizeof(v), NULL,
						      0)) >= 0) {
				ASSERT_EQ(v, next[i]);
				next[i]++;
			}
			if (rc != -EPIPE) {
				ASSERT_ERR(rc, EAGAIN);
				continue;
			}
			/* At end of stream it stays ready: leave it out. */
			ASSERT_EQ(next[i], count);
			active[j] = active[nact - 1];
			idx[j] = idx[nact - 1];
			nact--;
		}
	}
	for (int i = 0; i < 3; i++) {
		ASSERT_TRUE(th_exited_ok(th_wait(pids[i], 10000)));
		shmkit_chan_close(c[i]);
		ASSERT_OK(shmkit_chan_unlink(names[i]));
	}
}

static uint64_t cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) *
		       1000000000ull +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

/*
 * futex_waitv refused, as a seccomp profile may do (Docker's default
 * answers unknown calls with EPERM): select must fall back to sleeping on
 * one word at a time, not take each refusal for a wake-up and spin. A 300
 * ms select on an idle channel then uses a few ms of CPU, not 300.
 */
static int refused(int argc, char **argv)
{
#ifndef SYS_futex_waitv
	(void)argc;
	(void)argv;
	return TH_SKIP; /* no futex_waitv in these headers */
#else
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_futex_waitv, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
	struct shmkit_chan_opts o = {.sz = sizeof(o)};
	struct shmkit_chan *c, *p;
	uint64_t ready, t0, cpu0;
	char name[128];

	(void)argc;
	(void)argv;
	ASSERT_OK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
		ASSERT_EQ(errno, EINVAL); /* a kernel without seccomp filters */
		return TH_SKIP;
	}
	th_name(name, sizeof(name), "refused");
	o.capacity_bytes = 4096;
	o.max_msg_bytes = 64;
	ASSERT_OK(shmkit_chan_create(name, &o, SHMKIT_CHAN_CONSUMER, &c));
	ASSERT_OK(shmkit_chan_open(name, SHMKIT_CHAN_PRODUCER, NULL, &p));
	t0 = th_now_ns();
	cpu0 = cpu_ns();
	ASSERT_ERR(shmkit_chan_select(&c, 1, &ready, 300000000ll), ETIMEDOUT);
	fprintf(stderr, "futex_waitv refused: 300 ms select, %.1f ms of CPU\n",
		(double)(cpu_ns() - cpu0) / 1e6);
	ASSERT_GE(th_now_ns() - t0, 300000000ull);
	ASSERT_LT(cpu_ns() - cpu0, 100000000ull);
	/* And it still wakes up for a message. */
	ASSERT_OK(shmkit_chan_send(p, "x", 1, 0));
	ASSERT_EQ(shmkit_chan_select(&c, 1, &ready, 300000000ll), 1);
	shmkit_chan_close(p);
	shmkit_chan_close(c);
	ASSERT_OK(shmkit_chan_unlink(name));
	return 0;
#endif
}

static void test_refused(void)
{
	pid_t pid = th_spawn("refused", NULL, NULL);
	int st = th_wait(pid, 30000);

	if (WIFEXITED(st) && WEXITSTATUS(st) == TH_SKIP) {
		fprintf(stderr, "futex_waitv refused: skipped (no "
				"futex_waitv or no seccomp filters here)\n");
		return;
	}
	ASSERT_TRUE(th_exited_ok(st));
}

static int test(void)
{
	test_stepped();
	test_mixed();
	test_select();
	test_refused();
	return 0;
}

static const struct th_role roles[] = {
	{"stepper", stepper},
	{"burster", burster},
	{"refused", refused},
	{NULL, NULL},
};

int main(int argc, char **argv)
{
	return th_run(argc, argv, roles, test);
}
