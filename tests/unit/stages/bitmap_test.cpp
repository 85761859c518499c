#include "stages/bitmap.hpp"

#include <thread>

#include <catch2/catch.hpp>

using r3d::stages::Bitmap;

TEST_CASE("bitmap sets, tests, counts and takes bits", "[bitmap]")
{
	Bitmap b(200);
	b.set(0);
	b.set(63);
	b.set(64);
	b.set(199);
	CHECK(b.test(63));
	CHECK_FALSE(b.test(62));
	CHECK(b.count() == 4);
	b.clear(63);
	CHECK(b.take() == std::vector<uint64_t>{ 0, 64, 199 });
	CHECK(b.count() == 0);
}

TEST_CASE("bitmap setRange covers word boundaries exactly", "[bitmap]")
{
	Bitmap b(300);
	b.setRange(60, 130);
	CHECK(b.count() == 71);
	CHECK_FALSE(b.test(59));
	CHECK(b.test(60));
	CHECK(b.test(130));
	CHECK_FALSE(b.test(131));
	Bitmap one(64);
	one.setRange(0, 63);
	CHECK(one.count() == 64);
	one.clearAll();
	one.setRange(5, 5);
	CHECK(one.take() == std::vector<uint64_t>{ 5 });
}

TEST_CASE("bitmap bits set from many threads are all seen", "[bitmap]")
{
	Bitmap b(4096);
	std::vector<std::thread> threads;
	for (uint64_t t = 0; t < 4; ++t)
		threads.emplace_back([&, t] {
			for (uint64_t i = t; i < 4096; i += 4)
				b.set(i);
		});
	for (auto &t : threads)
		t.join();
	CHECK(b.count() == 4096);
}
