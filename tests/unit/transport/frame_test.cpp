#include "transport/frame.hpp"

#include <array>

#include <catch2/catch.hpp>

using namespace r3d::transport;

namespace {

std::array<std::byte, kFrameHeaderSize> encoded(FrameKind kind, uint32_t meta, uint32_t payload)
{
	std::array<std::byte, kFrameHeaderSize> out{};
	encodeFrameHeader(FrameHeader{ kind, meta, payload }, out);
	return out;
}

} // namespace

TEST_CASE("a frame header round-trips", "[frame]")
{
	auto bytes = encoded(FrameKind::Request, 42, 4096);
	CHECK(bytes[0] == std::byte{ 'R' });
	CHECK(bytes[1] == std::byte{ '3' });
	auto h = decodeFrameHeader(bytes, FrameKind::Request, FrameLimits{});
	REQUIRE(h);
	CHECK(h->kind == FrameKind::Request);
	CHECK(h->metaLength == 42);
	CHECK(h->payloadLength == 4096);
}

TEST_CASE("lengths are little-endian on the wire", "[frame]")
{
	auto bytes = encoded(FrameKind::Response, 0x01020304, 0x0a0b0c0d);
	CHECK(bytes[4] == std::byte{ 0x04 });
	CHECK(bytes[7] == std::byte{ 0x01 });
	CHECK(bytes[8] == std::byte{ 0x0d });
	CHECK(bytes[11] == std::byte{ 0x0a });
}

TEST_CASE("lengths at the limits pass, one byte over is refused", "[frame]")
{
	FrameLimits limits{ 1000, 32 * 1024 * 1024 };
	CHECK(decodeFrameHeader(encoded(FrameKind::Request, 1000, 32 * 1024 * 1024), FrameKind::Request, limits));

	auto meta = decodeFrameHeader(encoded(FrameKind::Request, 1001, 0), FrameKind::Request, limits);
	REQUIRE_FALSE(meta);
	CHECK(meta.error().code.value() == EMSGSIZE);
	CHECK_THAT(meta.error().message, Catch::Contains("1001-byte message, over the limit of 1000"));

	auto payload = decodeFrameHeader(encoded(FrameKind::Request, 10, 32 * 1024 * 1024 + 1), FrameKind::Request, limits);
	REQUIRE_FALSE(payload);
	CHECK(payload.error().code.value() == EMSGSIZE);
	CHECK_THAT(payload.error().message, Catch::Contains("33554433-byte payload"));

	auto huge = decodeFrameHeader(encoded(FrameKind::Request, 0xffffffff, 0xffffffff), FrameKind::Request, limits);
	REQUIRE_FALSE(huge);
}

TEST_CASE("a frame of the wrong kind is refused", "[frame]")
{
	auto r = decodeFrameHeader(encoded(FrameKind::Hello, 1, 0), FrameKind::Request, FrameLimits{});
	REQUIRE_FALSE(r);
	CHECK(r.error().code.value() == EPROTO);
	CHECK_THAT(r.error().message, Catch::Contains("expected a request frame"));
}

TEST_CASE("garbage, other versions and TLS records are told apart", "[frame]")
{
	auto bytes = encoded(FrameKind::Request, 1, 0);
	bytes[2] = std::byte{ 9 };
	auto version = decodeFrameHeader(bytes, FrameKind::Request, FrameLimits{});
	REQUIRE_FALSE(version);
	CHECK(version.error().code.value() == EPROTONOSUPPORT);

	std::array<std::byte, kFrameHeaderSize> http{};
	for (size_t i = 0; i < http.size(); ++i)
		http[i] = static_cast<std::byte>("GET / HTTP/1.1\r\n"[i]);
	auto garbage = decodeFrameHeader(http, FrameKind::Request, FrameLimits{});
	REQUIRE_FALSE(garbage);
	CHECK_THAT(garbage.error().message, Catch::Contains("not an r3 frame"));

	std::array<std::byte, kFrameHeaderSize> tls{ std::byte{ 0x16 }, std::byte{ 0x03 }, std::byte{ 0x01 } };
	auto hello = decodeFrameHeader(tls, FrameKind::Hello, FrameLimits{});
	REQUIRE_FALSE(hello);
	CHECK_THAT(hello.error().message, Catch::Contains("TLS handshake"));
}

TEST_CASE("the stream id round-trips and a stream that is not open is refused", "[frame]")
{
	std::array<std::byte, kFrameHeaderSize> bytes{};
	encodeFrameHeader(FrameHeader{ FrameKind::Request, 1, 0, 7 }, bytes);
	CHECK(bytes[12] == std::byte{ 7 });
	auto open = decodeFrameHeader(bytes, FrameKind::Request, FrameLimits{ 1024, 1024, 7 });
	REQUIRE(open);
	CHECK(open->stream == 7);
	auto closed = decodeFrameHeader(bytes, FrameKind::Request, FrameLimits{});
	REQUIRE_FALSE(closed);
	CHECK(closed.error().code.value() == EPROTO);
	CHECK_THAT(closed.error().message, Catch::Contains("stream 7, which is not open"));
}
