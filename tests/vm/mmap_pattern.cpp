// mmap_pattern write|verify|print OFFSET LENGTH SEED
//
// The unprivileged side of the fd-passing test: maps the descriptor in $R3MAP_FD (handed
// out by r3mapd through Mount1.OpenFd) MAP_SHARED, then writes a seeded pattern and
// msyncs it, or checks that the pattern is there. "print" writes the pattern to stdout,
// for comparing with a plain read of the device. Exit 0 on success.

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include <sys/mman.h>
#include <unistd.h>

namespace {

int usage()
{
	std::fprintf(stderr, "usage: mmap_pattern write|verify|print OFFSET LENGTH SEED (descriptor in R3MAP_FD)\n");
	return 2;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc != 5)
		return usage();
	std::string mode = argv[1];
	if (mode != "write" && mode != "verify" && mode != "print")
		return usage();
	size_t length = std::strtoull(argv[3], nullptr, 0);
	uint32_t seed = static_cast<uint32_t>(std::strtoul(argv[4], nullptr, 0));
	std::mt19937 rng(seed);
	if (mode == "print") {
		for (size_t i = 0; i < length; ++i)
			std::putchar(static_cast<int>(rng() & 0xff));
		return 0;
	}
	const char *fdText = std::getenv("R3MAP_FD");
	if (!fdText)
		return usage();
	int fd = std::atoi(fdText);
	off_t offset = std::strtoll(argv[2], nullptr, 0);
	bool writing = mode == "write";

	void *map = ::mmap(nullptr, length, PROT_READ | (writing ? PROT_WRITE : 0), MAP_SHARED, fd, offset);
	if (map == MAP_FAILED) {
		std::fprintf(stderr, "mmap_pattern: mmap of fd %d: %s\n", fd, std::strerror(errno));
		return 1;
	}
	auto *bytes = static_cast<unsigned char *>(map);
	size_t bad = 0;
	for (size_t i = 0; i < length; ++i) {
		auto expected = static_cast<unsigned char>(rng() & 0xff);
		if (writing)
			bytes[i] = expected;
		else if (bytes[i] != expected && bad++ == 0)
			std::fprintf(stderr, "mmap_pattern: first difference at byte %zu\n", i);
	}
	if (writing && ::msync(map, length, MS_SYNC) != 0) {
		std::fprintf(stderr, "mmap_pattern: msync: %s\n", std::strerror(errno));
		return 1;
	}
	::munmap(map, length);
	if (bad) {
		std::fprintf(stderr, "mmap_pattern: %zu of %zu bytes differ\n", bad, length);
		return 1;
	}
	std::printf("%s %zu bytes at %lld as uid %u\n", writing ? "wrote" : "verified", length,
		    static_cast<long long>(offset), ::getuid());
	return 0;
}
