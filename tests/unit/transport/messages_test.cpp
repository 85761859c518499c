#include "transport/block/messages.hpp"
#include "transport/block/ops.hpp"

#include <catch2/catch.hpp>

using namespace r3d::transport;

namespace {

// Splits an encoded frame into its decoded header and message bytes.
std::pair<FrameHeader, std::span<const std::byte>> split(const std::string &frame, FrameKind kind)
{
	auto bytes = std::as_bytes(std::span(frame.data(), frame.size()));
	auto h = decodeFrameHeader(bytes.first<kFrameHeaderSize>(), kind, FrameLimits{});
	REQUIRE(h);
	REQUIRE(frame.size() == kFrameHeaderSize + h->metaLength);
	return { *h, bytes.subspan(kFrameHeaderSize) };
}

} // namespace

TEST_CASE("requests round-trip, ranges included", "[messages]")
{
	Request r;
	r.id = 77;
	r.op = Op::ReadRanges;
	r.ranges = { { 0, 4096 }, { 8192, 4096 } };
	std::string frame;
	appendFrame(frame, r, 0);
	auto [h, meta] = split(frame, FrameKind::Request);
	CHECK(h.payloadLength == 0);
	auto back = decodeRequest(meta);
	REQUIRE(back);
	CHECK(back->id == 77);
	CHECK(back->op == Op::ReadRanges);
	REQUIRE(back->ranges.size() == 2);
	CHECK(back->ranges[1].offset == 8192);
	CHECK(replyPayloadLength(*back) == 8192);
}

TEST_CASE("a request frame announces its payload", "[messages]")
{
	Request w{ 5, Op::Write, 1 << 20, 65536, {} };
	std::string frame;
	appendFrame(frame, w, 65536);
	auto [h, meta] = split(frame, FrameKind::Request);
	CHECK(h.payloadLength == 65536);
	auto back = decodeRequest(meta);
	REQUIRE(back);
	CHECK(back->offset == 1 << 20);
	CHECK(replyPayloadLength(*back) == 0);
}

TEST_CASE("hello, hello reply and response round-trip", "[messages]")
{
	std::string frames;
	appendFrame(frames, Hello{ kProtocolVersion, "disk", "s3cret", "test" });
	auto [h1, m1] = split(frames, FrameKind::Hello);
	auto hello = decodeHello(m1);
	REQUIRE(hello);
	CHECK(hello->exportName == "disk");
	CHECK(hello->token == "s3cret");

	std::string reply;
	HelloReply hr;
	hr.error = EACCES;
	hr.message = "no";
	hr.size = 1ull << 40;
	appendFrame(reply, hr);
	auto [h2, m2] = split(reply, FrameKind::HelloReply);
	auto back = decodeHelloReply(m2);
	REQUIRE(back);
	CHECK(back->error == EACCES);
	CHECK(back->size == 1ull << 40);

	std::string response;
	appendFrame(response, Response{ 9, ENOSPC, 0 }, 0);
	auto [h3, m3] = split(response, FrameKind::Response);
	auto r = decodeResponse(m3);
	REQUIRE(r);
	CHECK(r->id == 9);
	CHECK(r->error == ENOSPC);
}

TEST_CASE("malformed messages are refused with the reason", "[messages]")
{
	std::array<std::byte, 3> junk{ std::byte{ 0xff }, std::byte{ 0xff }, std::byte{ 0xff } };
	auto r = decodeRequest(junk);
	REQUIRE_FALSE(r);
	CHECK(r.error().code.value() == EPROTO);
	CHECK_THAT(r.error().message, Catch::Contains("malformed request"));
}

TEST_CASE("more ranges than the limit are refused", "[messages]")
{
	Request r;
	r.op = Op::ReadRanges;
	r.ranges.assign(kMaxRanges + 1, IoRange{ 0, 1 });
	std::string frame;
	appendFrame(frame, r, 0);
	auto back = decodeRequest(std::as_bytes(std::span(frame)).subspan(kFrameHeaderSize));
	REQUIRE_FALSE(back);
	CHECK_THAT(back.error().message, Catch::Contains("over the limit"));
}
