// SPDX-License-Identifier: MIT
//
// Install test, C++ side: <shmkit.h> must be usable from C++ (extern "C",
// no C-only constructs). Same checks as consumer.c, written as C++.
//
#include <shmkit.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <unistd.h>

namespace
{

// Closes a segment handle when it goes out of scope.
class Segment {
    public:
	Segment()
		: seg_(0)
	{
	}
	~Segment()
	{
		shmkit_seg_close(seg_);
	}
	struct shmkit_seg **out()
	{
		return &seg_;
	}
	char *data() const
	{
		return static_cast<char *>(shmkit_seg_base(seg_));
	}
	size_t size() const
	{
		return shmkit_seg_size(seg_);
	}

    private:
	struct shmkit_seg *seg_;
	Segment(const Segment &);
	Segment &operator=(const Segment &);
};

int fail(const char *what, int rc)
{
	std::fprintf(stderr, "consumer++: %s: %s\n", what, shmkit_strerror(rc));
	return 1;
}

} // namespace

int main()
{
	std::printf("shmkit %s (header %s), layout %u\n", shmkit_version(),
		    SHMKIT_VERSION_STRING,
		    static_cast<unsigned>(shmkit_layout_version()));
	if (std::string(shmkit_version()) != SHMKIT_VERSION_STRING) {
		std::fprintf(stderr, "consumer++: version mismatch\n");
		return 1;
	}

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char name[64];
	std::snprintf(name, sizeof(name), "shmkit-install-cxx-%ld-%ld",
		      static_cast<long>(getpid()),
		      static_cast<long>(ts.tv_nsec));

	struct shmkit_seg_opts opts;
	std::memset(&opts, 0, sizeof(opts));
	opts.sz = sizeof(opts);
	opts.flags = SHMKIT_SEG_SCOPED;
	bool same;
	{
		Segment a, b;
		int rc = shmkit_seg_create(name, 8192, &opts, a.out());
		if (rc < 0)
			return fail("create", rc);
		rc = shmkit_seg_open(name, NULL, b.out());
		if (rc < 0) {
			shmkit_seg_unlink(name);
			return fail("open", rc);
		}
		std::strcpy(a.data(), "hello from C++");
		same = std::strcmp(b.data(), "hello from C++") == 0 &&
		       b.size() >= 8192;
	}
	// Scoped: closing the last handle removed the name.
	struct shmkit_seg *c = NULL;
	int rc = shmkit_seg_open(name, NULL, &c);
	if (rc == 0) {
		shmkit_seg_close(c);
		shmkit_seg_unlink(name);
		std::fprintf(stderr, "consumer++: scoped segment survived\n");
		return 1;
	}
	if (rc != -ENOENT)
		return fail("open after last close", rc);
	if (!same) {
		std::fprintf(stderr, "consumer++: data not shared\n");
		return 1;
	}
	std::printf("consumer (C++): scoped segment %s created, shared, "
		    "removed on last close\n",
		    name);
	return 0;
}
