#include "transport/block/request_check.hpp"

#include <catch2/catch.hpp>

using namespace r3d::transport;

namespace {

constexpr uint64_t kSize = 10 * 4096 + 100; // a short last chunk

Request req(Op op, uint64_t offset, uint64_t length)
{
	return Request{ 1, op, offset, length, {} };
}

} // namespace

TEST_CASE("byte-range exports: bounds, caps and payload", "[check]")
{
	ExportGeometry g{ kSize, 0, 65536, false };
	CHECK(checkRequest(req(Op::Read, 1, 4000), 0, g) == 0);
	CHECK(checkRequest(req(Op::Read, kSize - 1, 1), 0, g) == 0);
	CHECK(checkRequest(req(Op::Read, kSize - 1, 2), 0, g) == EINVAL);
	CHECK(checkRequest(req(Op::Read, ~0ull, 2), 0, g) == EINVAL);
	CHECK(checkRequest(req(Op::Read, 0, 65537), 0, g) == EOVERFLOW);
	CHECK(checkRequest(req(Op::Write, 0, 100), 100, g) == 0);
	CHECK(checkRequest(req(Op::Write, kSize - 50, 100), 100, g) == ENOSPC);
	CHECK(checkRequest(req(Op::Write, 0, 100), 99, g) == EINVAL);
	CHECK(checkRequest(req(Op::Read, 0, 100), 100, g) == EINVAL); // reads carry no payload
	CHECK(checkRequest(req(Op::Trim, 0, kSize), 0, g) == 0);
	CHECK(checkRequest(req(Op::Trim, 1, kSize), 0, g) == ENOSPC);
	CHECK(checkRequest(req(Op::Sync, 0, 0), 0, g) == 0);
	CHECK(checkRequest(req(Op::Size, 0, 0), 0, g) == 0);
	CHECK(checkRequest(req(static_cast<Op>(99), 0, 0), 0, g) == EOPNOTSUPP);
}

TEST_CASE("read-only exports refuse every change", "[check]")
{
	ExportGeometry g{ kSize, 0, 65536, true };
	CHECK(checkRequest(req(Op::Write, 0, 1), 1, g) == EROFS);
	CHECK(checkRequest(req(Op::Trim, 0, 1), 0, g) == EROFS);
	CHECK(checkRequest(req(Op::WriteZeroes, 0, 1), 0, g) == EROFS);
	CHECK(checkRequest(req(Op::Read, 0, 1), 0, g) == 0);
}

TEST_CASE("chunked exports take whole aligned chunks only", "[check]")
{
	ExportGeometry g{ kSize, 4096, 65536, false };
	CHECK(checkRequest(req(Op::Read, 4096, 4096), 0, g) == 0);
	CHECK(checkRequest(req(Op::Read, 10 * 4096, 100), 0, g) == 0); // the short last chunk
	CHECK(checkRequest(req(Op::Read, 10 * 4096, 4096), 0, g) == EINVAL);
	CHECK(checkRequest(req(Op::Read, 4096, 8192), 0, g) == EINVAL);
	CHECK(checkRequest(req(Op::Read, 100, 4096), 0, g) == EINVAL);
	CHECK(checkRequest(req(Op::Write, 4096, 4095), 4095, g) == EINVAL);
	CHECK(checkRequest(req(Op::Trim, 4096, 3 * 4096), 0, g) == 0);
	CHECK(checkRequest(req(Op::Trim, 4096, 4095), 0, g) == EINVAL);
	CHECK(checkRequest(req(Op::Trim, 9 * 4096, 4096 + 100), 0, g) == 0); // up to the end
}

TEST_CASE("read-ranges: every range checked, the total capped", "[check]")
{
	ExportGeometry g{ kSize, 4096, 3 * 4096, false };
	Request r{ 1, Op::ReadRanges, 0, 0, { { 0, 4096 }, { 4096, 4096 } } };
	CHECK(checkRequest(r, 0, g) == 0);
	r.ranges.push_back({ 8192, 4096 });
	r.ranges.push_back({ 12288, 4096 });
	CHECK(checkRequest(r, 0, g) == EOVERFLOW);
	Request bad{ 1, Op::ReadRanges, 0, 0, { { 0, 4096 }, { 100, 4096 } } };
	CHECK(checkRequest(bad, 0, g) == EINVAL);
	Request none{ 1, Op::ReadRanges, 0, 0, {} };
	CHECK(checkRequest(none, 0, g) == EINVAL);
	Request stray{ 1, Op::Read, 0, 4096, { { 0, 4096 } } };
	CHECK(checkRequest(stray, 0, g) == EINVAL);
}
