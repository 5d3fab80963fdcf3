/* SPDX-License-Identifier: MIT */
/*
 * Map writers killed at every crash point of put, delete, add, entry
 * stealing and the stripe repair itself, while the test process reads
 * and writes beside them. The writer logs each operation in shared memory
 * before it starts (pending) and after it returns (acknowledged). After
 * each death the checker passes (its stripe locks repair what the dead
 * held), every key holds its acknowledged value or, for the one pending
 * operation, the pending one (no acknowledged put or delete is lost), no
 * value is torn, and the survivor's own keys are exact.
 */
#define _GNU_SOURCE
#include "crash.h"
#include "harness.h"

#include <shmkit.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define CTRL 65536
#define WKEYS 380 /* the worker's keys */
#define ACTRS 8	  /* the worker's counters */
#define PKEYS 100 /* the survivor's keys */
#define CAP 512

struct log {
	_Atomic uint64_t acked[WKEYS + ACTRS]; /* 0: absent */
	_Atomic uint32_t pend_key;	       /* key + 1, 0: none */
	_Atomic uint32_t pad;
	_Atomic uint64_t pend_val; /* value if the pending op succeeds */
	_Atomic uint64_t seq;
};

extern const char *shmkit__map_check_why(void);

/* A value: seq, then bytes derived from it; length from seq. */
static size_t mkval(unsigned char *v, uint64_t seq)
{
	size_t len = 8 + seq % 25;

	memcpy(v, &seq, 8);
	for (size_t i = 8; i < len; i++)
		v[i] = (unsigned char)(seq * 13 + i);
	return len;
}

/* Decode and verify a value read back: its seq, or 0 if torn. */
static uint64_t seq_of(const unsigned char *v, int len)
{
	uint64_t seq;

	if (len < 8)
		return 0;
	memcpy(&seq, v, 8);
	if ((size_t)len != 8 + seq % 25)
		return 0;
	for (int i = 8; i < len; i++)
		if (v[i] != (unsigned char)(seq * 13 + (uint64_t)i))
			return 0;
	return seq;
}

static int open_map(const char *name, struct shmkit_seg **seg,
		    struct shmkit_heap **h, struct shmkit_map **m)
{
	if (shmkit_seg_open(name, NULL, seg) < 0 ||
	    shmkit_heap_open(*seg, NULL, h) < 0 ||
	    shmkit_map_open(*h, "m", NULL, m) < 0)
		return -1;
	return 0;
}

static int worker(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct shmkit_map *m;
	struct log *lg;

	if (argc < 1 || open_map(argv[0], &seg, &h, &m) < 0)
		return 2;
	lg = shmkit_seg_base(seg);
	for (int op = 0; op < 20000; op++) {
		uint64_t r = th_rand(), seq, nv;
		uint32_t n = (uint32_t)(r % (WKEYS + ACTRS));
		unsigned char v[40];
		char k[16];
		int rc;

		snprintf(k, sizeof(k), "w%u", n);
		if (n >= WKEYS) {
			int64_t res;
			int64_t d = 1 + (int64_t)(r >> 32) % 5;

			nv = atomic_load(&lg->acked[n]) + (uint64_t)d;
			atomic_store(&lg->pend_val, nv);
			atomic_store(&lg->pend_key, n + 1);
			rc = shmkit_map_add(m, k, strlen(k), d, &res);
			if (rc < 0 || (uint64_t)res != nv)
				return 3;
		} else if ((r >> 40) % 4 == 0) {
			nv = 0;
			atomic_store(&lg->pend_val, 0);
			atomic_store(&lg->pend_key, n + 1);
			rc = shmkit_map_del(m, k, strlen(k));
			if (rc < 0 && rc != -ENOENT)
				return 4;
		} else {
			seq = atomic_fetch_add(&lg->seq, 1) + 1;
			nv = seq;
			atomic_store(&lg->pend_val, nv);
			atomic_store(&lg->pend_key, n + 1);
			rc = shmkit_map_put(m, k, strlen(k), v, mkval(v, seq),
					    0);
			if (rc == -ENOSPC)
				nv = atomic_load(&lg->acked[n]);
			else if (rc < 0)
				return 5;
		}
		atomic_store(&lg->acked[n], nv);
		atomic_store(&lg->pend_key, 0);
	}
	shmkit_map_close(m);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return 0;
}

/* Locks every stripe (repairing, or dying while repairing). */
static int checker(int argc, char **argv)
{
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct shmkit_map *m;
	int rc;

	if (argc < 1 || open_map(argv[0], &seg, &h, &m) < 0)
		return 2;
	rc = shmkit_map_check(m) < 0 ? 3 : 0;
	shmkit_map_close(m);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	return rc;
}

static uint64_t pvals[PKEYS];

/* One survivor step: own keys exact; worker keys never torn. */
static void survivor_step(struct shmkit_map *m)
{
	uint64_t r = th_rand();
	unsigned char v[64];
	char k[16];
	int n, len;

	if (r % 3 == 0) {
		n = (int)((r >> 8) % (WKEYS + ACTRS));
		snprintf(k, sizeof(k), "w%d", n);
		len = shmkit_map_get(m, k, strlen(k), v, sizeof(v));
		if (len == -ENOENT)
			return;
		ASSERT_GE(len, 0);
		if (n < WKEYS)
			ASSERT_NE(seq_of(v, len), 0);
		else
			ASSERT_EQ(len, 8);
		return;
	}
	n = (int)((r >> 8) % PKEYS);
	snprintf(k, sizeof(k), "p%d", n);
	len = shmkit_map_get(m, k, strlen(k), v, sizeof(v));
	if (pvals[n]) {
		ASSERT_EQ(seq_of(v, len), pvals[n]);
	} else {
		ASSERT_ERR(len, ENOENT);
	}
	if (r % 3 == 1) {
		uint64_t seq = 1000000000ull + (r >> 20);
		int rc = shmkit_map_put(m, k, strlen(k), v, mkval(v, seq), 0);

		if (rc != -ENOSPC) {
			ASSERT_GE(rc, 0);
			pvals[n] = seq;
		}
	} else if (pvals[n]) {
		ASSERT_OK(shmkit_map_del(m, k, strlen(k)));
		pvals[n] = 0;
	}
}

static void verify(struct shmkit_map *m, struct log *lg, const char *cp, long n)
{
	uint32_t pk = atomic_load(&lg->pend_key);
	uint64_t pv = atomic_load(&lg->pend_val);

	if (shmkit_map_check(m) < 0)
		th_fail(__FILE__, __LINE__, "%s:%ld: map check: %s", cp, n,
			shmkit__map_check_why());
	for (uint32_t i = 0; i < WKEYS + ACTRS; i++) {
		unsigned char v[64];
		uint64_t cur = 0, ack = atomic_load(&lg->acked[i]);
		char k[16];
		int len;

		snprintf(k, sizeof(k), "w%u", i);
		len = shmkit_map_get(m, k, strlen(k), v, sizeof(v));
		if (len >= 0 && i < WKEYS) {
			cur = seq_of(v, len);
			if (!cur)
				th_fail(__FILE__, __LINE__, "%s:%ld: %s torn",
					cp, n, k);
		} else if (len >= 0) {
			ASSERT_EQ(len, 8);
			memcpy(&cur, v, 8);
		} else {
			ASSERT_ERR(len, ENOENT);
		}
		if (cur != ack && !(pk == i + 1 && cur == pv))
			th_fail(__FILE__, __LINE__,
				"%s:%ld: %s = %llu, acknowledged %llu "
				"(pending %u: %llu)",
				cp, n, k, (unsigned long long)cur,
				(unsigned long long)ack, pk,
				(unsigned long long)pv);
		atomic_store(&lg->acked[i], cur);
	}
	atomic_store(&lg->pend_key, 0);
	for (int i = 0; i < PKEYS; i++) {
		unsigned char v[64];
		char k[16];
		int len;

		snprintf(k, sizeof(k), "p%d", i);
		len = shmkit_map_get(m, k, strlen(k), v, sizeof(v));
		if (pvals[i])
			ASSERT_EQ(seq_of(v, len), pvals[i]);
		else
			ASSERT_ERR(len, ENOENT);
	}
}

static int test(void)
{
	const struct shmkit__crash_point *cps;
	struct shmkit_heap_opts ho = {
		.sz = sizeof(ho), .flags = SHMKIT_HEAP_CREATE, .offset = CTRL};
	struct shmkit_map_opts mo = {.sz = sizeof(mo),
				     .flags = SHMKIT_MAP_CREATE,
				     .capacity = CAP,
				     .key_max = 16,
				     .val_max = 40};
	struct shmkit_map_stats st = {.sz = sizeof(st)};
	struct shmkit_seg *seg;
	struct shmkit_heap *h;
	struct shmkit_map *m;
	struct log *lg;
	char name[128];
	const char *args[] = {name, NULL};
	size_t ncp = shmkit__crash_points(&cps);
	int points = 0, kills = 0;

	if (!ncp)
		SKIP("crash points not compiled in");
	th_name(name, sizeof(name), "mcrash");
	ASSERT_OK(shmkit_seg_create(name, 4 << 20, NULL, &seg));
	ASSERT_OK(shmkit_heap_open(seg, &ho, &h));
	ASSERT_EQ(shmkit_map_open(h, "m", &mo, &m), 1);
	lg = shmkit_seg_base(seg);
	for (size_t c = 0; c < ncp; c++) {
		const char *cp = cps[c].name;
		int killed = 0, dup = 0;

		if (strncmp(cp, "map.", 4) != 0)
			continue;
		for (size_t d = 0; d < c; d++)
			dup |= strcmp(cps[d].name, cp) == 0;
		if (dup)
			continue;
		points++;
		for (int round = 0; round < 6; round++) {
			long n = round == 0 ? 1 : 1 + (long)(th_rand() % 60);
			int status = -1;
			pid_t pid;

			if (strcmp(cp, "map.repair.locked") == 0) {
				pid = th_spawn_crash("worker", args,
						     "map.put.written", n);
				ASSERT_TRUE(th_was_killed(th_wait(pid, 30000)));
				pid = th_spawn_crash("checker", args, cp, 1);
				status = th_wait(pid, 30000);
			} else {
				pid = th_spawn_crash("worker", args, cp, n);
			}
			while (status == -1 &&
			       waitpid(pid, &status, WNOHANG) == 0)
				survivor_step(m);
			if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
				killed++;
			else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				th_fail(__FILE__, __LINE__,
					"%s:%ld: worker status %#x", cp, n,
					status);
			verify(m, lg, cp, n);
		}
		if (!killed)
			th_fail(__FILE__, __LINE__, "%s never fired", cp);
		kills += killed;
	}
	ASSERT_GE(points, 7);
	ASSERT_OK(shmkit_map_stats(m, &st));
	ASSERT_GT(st.repairs, 0);
	fprintf(stderr, "%d points, %d kills, %llu stripe repairs\n", points,
		kills, (unsigned long long)st.repairs);
	ASSERT_OK(shmkit_heap_check(h));
	shmkit_map_close(m);
	shmkit_heap_close(h);
	shmkit_seg_close(seg);
	ASSERT_OK(shmkit_seg_unlink(name));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct th_role roles[] = {
		{"worker", worker}, {"checker", checker}, {NULL, NULL}};

	return th_run(argc, argv, roles, test);
}
