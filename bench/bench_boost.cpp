// SPDX-License-Identifier: MIT
//
// shmkit-bench-boost: the Boost.Interprocess baselines of bench_heap.c and
// bench_map.c (which run it): managed_shared_memory allocate/deallocate
// pairs, and a boost::unordered_map in shared memory under an
// interprocess_mutex. Usage: MODE PROCS OPS RUNS, MODE one of heap,
// map-get, map-put; prints one rate (operations per second, all
// processes together) per run.
#include <boost/functional/hash.hpp>
#include <boost/interprocess/allocators/allocator.hpp>
#include <boost/interprocess/managed_shared_memory.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>
#include <boost/unordered_map.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <vector>

namespace bip = boost::interprocess;

static const int LIVE = 10000;
static const unsigned NRAND = 1u << 20;
static const int NKEYS = 100000;

struct Key {
	char b[16];
	bool operator==(const Key &o) const
	{
		return std::memcmp(b, o.b, 16) == 0;
	}
};
struct Val {
	char b[64];
};
struct KeyHash {
	std::size_t operator()(const Key &k) const
	{
		return boost::hash_range(k.b, k.b + 16);
	}
};
typedef std::pair<const Key, Val> Pair;
typedef bip::allocator<Pair, bip::managed_shared_memory::segment_manager>
	PairAlloc;
typedef boost::unordered_map<Key, Val, KeyHash, std::equal_to<Key>, PairAlloc>
	Map;

struct SyncArea {
	std::atomic<int> ready, go, err;
	std::atomic<uint64_t> end[2];
};

static std::vector<uint32_t> rnd;
static bip::managed_shared_memory *seg;
static Map *map;
static bip::interprocess_mutex *mtx;

static uint64_t now_ns()
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static std::vector<Key> keys; /* "key" and 13 digits, no NUL */

static void make_key(Key &k, int i)
{
	k = keys[i];
}

static int run_heap(long n, int seed)
{
	std::vector<void *> live(LIVE, nullptr);

	for (long i = 0; i < n; i++) {
		uint32_t r = rnd[(i + seed * 7919) & (NRAND - 1)];
		uint32_t s = r >> 10;

		if (live[s])
			seg->deallocate(live[s]);
		live[s] = seg->allocate(r & 1023, std::nothrow);
		if (!live[s])
			return -1;
		*(volatile char *)live[s] = 1;
	}
	for (int i = 0; i < LIVE; i++)
		if (live[i])
			seg->deallocate(live[i]);
	return 0;
}

static int run_get(long n, int seed)
{
	Val out;
	Key k;

	for (long i = 0; i < n; i++) {
		make_key(k,
			 (int)(rnd[(i + seed * 7919) & (NRAND - 1)] % NKEYS));
		bip::scoped_lock<bip::interprocess_mutex> l(*mtx);
		Map::iterator it = map->find(k);

		if (it == map->end())
			return -1;
		std::memcpy(out.b, it->second.b, 64);
	}
	return out.b[0] == 0x7f ? 1 : 0;
}

static int run_put(long n, int seed)
{
	Val v;
	Key k;

	std::memset(v.b, 'v', sizeof(v.b));
	for (long i = 0; i < n; i++) {
		make_key(k,
			 (int)(rnd[(i + seed * 7919) & (NRAND - 1)] % NKEYS));
		v.b[0] = (char)i;
		bip::scoped_lock<bip::interprocess_mutex> l(*mtx);
		(*map)[k] = v;
	}
	return 0;
}

static double measure(int (*fn)(long, int), int procs, long ops)
{
	SyncArea *sa;
	uint64_t t0, t1 = 0;
	pid_t pid[2];

	if (procs == 1) {
		t0 = now_ns();
		if (fn(ops, 0) < 0)
			return -1;
		return (double)ops / ((double)(now_ns() - t0) / 1e9);
	}
	sa = (SyncArea *)mmap(nullptr, sizeof(*sa), PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sa == MAP_FAILED)
		return -1;
	new (sa) SyncArea();
	for (int p = 0; p < procs; p++) {
		pid[p] = fork();
		if (pid[p] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			sa->ready++;
			while (!sa->go.load())
				;
			if (fn(ops, p + 1) < 0)
				sa->err = 1;
			sa->end[p] = now_ns();
			_exit(0);
		}
	}
	while (sa->ready.load() < procs)
		usleep(100);
	t0 = now_ns();
	sa->go = 1;
	for (int p = 0; p < procs; p++)
		waitpid(pid[p], nullptr, 0);
	for (int p = 0; p < procs; p++)
		if (sa->end[p] > t1)
			t1 = sa->end[p];
	double r = sa->err ? -1
			   : (double)ops * procs / ((double)(t1 - t0) / 1e9);
	munmap(sa, sizeof(*sa));
	return r;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		std::fprintf(stderr,
			     "usage: %s heap|map-get|map-put PROCS "
			     "OPS RUNS\n",
			     argv[0]);
		return 2;
	}
	std::string mode = argv[1];
	int procs = std::atoi(argv[2]);
	long ops = std::atol(argv[3]);
	int runs = std::atoi(argv[4]);
	char name[64];
	uint64_t x = 0x9e3779b97f4a7c15ull;

	keys.resize(NKEYS);
	for (int i = 0; i < NKEYS; i++) {
		char tmp[32];

		std::snprintf(tmp, sizeof(tmp), "key%013d", i);
		std::memcpy(keys[i].b, tmp, 16);
	}
	rnd.resize(NRAND);
	for (unsigned i = 0; i < NRAND; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		rnd[i] = mode == "heap"
				 ? (uint32_t)((x >> 32) % LIVE) << 10 |
					   (uint32_t)(16 + (x & 0xffff) % 497)
				 : (uint32_t)(x >> 33);
	}
	std::snprintf(name, sizeof(name), "shmkit-bench-boost-%d",
		      (int)getpid());
	bip::shared_memory_object::remove(name);
	try {
		seg = new bip::managed_shared_memory(bip::create_only, name,
						     128u << 20);
		int (*fn)(long, int) = run_heap;

		if (mode != "heap") {
			Val v;

			std::memset(v.b, 'v', sizeof(v.b));
			mtx = seg->construct<bip::interprocess_mutex>("mtx")();
			map = seg->construct<Map>(
				"map")(NKEYS, KeyHash(), std::equal_to<Key>(),
				       PairAlloc(seg->get_segment_manager()));
			for (int i = 0; i < NKEYS; i++) {
				Key k;

				make_key(k, i);
				(*map)[k] = v;
			}
			fn = mode == "map-get" ? run_get : run_put;
		}
		for (int r = 0; r < runs; r++) {
			double rate = measure(fn, procs, ops);

			if (rate < 0)
				throw std::runtime_error("run failed");
			std::printf("%.0f\n", rate);
			std::fflush(stdout);
		}
	} catch (const std::exception &e) {
		std::fprintf(stderr, "shmkit-bench-boost: %s\n", e.what());
		bip::shared_memory_object::remove(name);
		return 1;
	}
	delete seg;
	bip::shared_memory_object::remove(name);
	return 0;
}
