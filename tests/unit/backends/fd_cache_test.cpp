#include "backends/fd_cache.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>

using r3d::UniqueFd;
using r3d::backends::FdCache;

namespace {

UniqueFd openNull(uint64_t)
{
	return UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
}

bool isOpen(int fd)
{
	return ::fcntl(fd, F_GETFD) != -1;
}

} // namespace

TEST_CASE("fd cache keeps at most its capacity and returns the same handle", "[fdcache]")
{
	FdCache cache(3);
	auto a = cache.get(1, openNull);
	CHECK(cache.get(1, openNull) == a);
	cache.get(2, openNull);
	cache.get(3, openNull);
	cache.get(4, openNull);
	CHECK(cache.size() == 3);
	CHECK(cache.get(1, openNull) != a); // 1 was least recently used and evicted
}

TEST_CASE("an evicted handle stays open while someone holds it", "[fdcache]")
{
	FdCache cache(1);
	auto held = cache.get(1, openNull);
	int fd = held->get();
	cache.get(2, openNull); // evicts 1
	CHECK(isOpen(fd));
	held.reset();
	CHECK_FALSE(isOpen(fd));
}

TEST_CASE("a failed open is not cached", "[fdcache]")
{
	FdCache cache(4);
	auto missing = cache.get(1, [](uint64_t) { return UniqueFd(::open("/nonexistent/x", O_RDONLY)); });
	CHECK(missing == nullptr);
	CHECK(cache.size() == 0);
}
