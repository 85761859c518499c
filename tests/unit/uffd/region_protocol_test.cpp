#include "uffd/region_protocol.hpp"

#include <catch2/catch.hpp>

using namespace r3d::uffd;

TEST_CASE("region protocol: a Map request and a reply survive the trip", "[uffd][region]")
{
	RegionMapRequest q;
	q.base = 0x7f0000000000;
	q.size = 1 << 20;
	q.features = 0x1234;
	q.clientFd = 7;
	q.flags = kRegionNoBackground;
	q.remoteTimeoutMs = 1500;
	q.source = "memory:1M";
	auto bytes = encodeMap(q);
	auto back = decodeMap(bytes);
	REQUIRE(back);
	CHECK(back->base == q.base);
	CHECK(back->size == q.size);
	CHECK(back->features == q.features);
	CHECK(back->clientFd == 7);
	CHECK(back->flags == kRegionNoBackground);
	CHECK(back->remoteTimeoutMs == 1500);
	CHECK(back->source == q.source);

	auto reply = decodeReply(encodeReply({ 8, "3", "NotPermitted: no" }));
	REQUIRE(reply);
	CHECK(reply->status == 8);
	CHECK(reply->id == "3");
	CHECK(reply->message == "NotPermitted: no");
	CHECK(*decodeType(encodeHeaderOnly(RegionMessage::Sync)) == RegionMessage::Sync);
}

TEST_CASE("region protocol: truncated, padded, oversized and foreign messages are refused", "[uffd][region]")
{
	RegionMapRequest q;
	q.size = 4096;
	q.source = "memory:1M";
	auto bytes = encodeMap(q);
	for (size_t n = 0; n < bytes.size(); ++n)
		CHECK_FALSE(decodeMap(std::span(bytes.data(), n)));
	auto padded = bytes;
	padded.push_back(0);
	CHECK_FALSE(decodeMap(padded));
	auto magic = bytes;
	magic[0] ^= 1;
	CHECK_FALSE(decodeMap(magic));
	q.source.assign(kMaxRegionSource + 1, 'x');
	CHECK_FALSE(decodeMap(encodeMap(q)));
	q.source = std::string("mem\0ory", 7);
	CHECK_FALSE(decodeMap(encodeMap(q)));
	q.source = "memory:1M";
	q.flags = 2;
	CHECK_FALSE(decodeMap(encodeMap(q)));
	q.flags = 0;
	q.remoteTimeoutMs = kMaxRegionRemoteTimeoutMs + 1;
	CHECK_FALSE(decodeMap(encodeMap(q)));
	CHECK_FALSE(decodeMap(encodeReply({})));
	std::vector<uint8_t> huge(kMaxRegionMessage + 1);
	CHECK_FALSE(decodeType(huge));
}
