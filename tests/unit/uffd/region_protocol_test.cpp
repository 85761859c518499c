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
	q.flags = kRegionNoBackground | kRegionTrackWrites;
	q.remoteTimeoutMs = 1500;
	q.writeBackMs = 250;
	q.source = "memory:1M";
	auto bytes = encodeMap(q);
	auto back = decodeMap(bytes);
	REQUIRE(back);
	CHECK(back->base == q.base);
	CHECK(back->size == q.size);
	CHECK(back->features == q.features);
	CHECK(back->clientFd == 7);
	CHECK(back->flags == (kRegionNoBackground | kRegionTrackWrites));
	CHECK(back->remoteTimeoutMs == 1500);
	CHECK(back->writeBackMs == 250);
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
	q.flags = 8; // not a flag (1 and 2 are)
	CHECK_FALSE(decodeMap(encodeMap(q)));
	q.flags = 0;
	q.remoteTimeoutMs = kMaxRegionRemoteTimeoutMs + 1;
	CHECK_FALSE(decodeMap(encodeMap(q)));
	CHECK_FALSE(decodeMap(encodeReply({})));
	std::vector<uint8_t> huge(kMaxRegionMessage + 1);
	CHECK_FALSE(decodeType(huge));
}

TEST_CASE("region protocol: a version 1 Map request (no write-back interval) is still taken", "[uffd][region]")
{
	RegionMapRequest q;
	q.base = 0x10000;
	q.size = 8192;
	q.source = "memory:1M";
	auto v2 = encodeMap(q);
	// Version 1: the same without the interval field (4 bytes before the source length).
	std::vector<uint8_t> v1(v2.begin(), v2.end());
	v1[4] = 1;
	v1.erase(v1.begin() + kRegionHeaderSize + 36, v1.begin() + kRegionHeaderSize + 40);
	v1[8] = static_cast<uint8_t>(v1.size() - kRegionHeaderSize);
	auto back = decodeMap(v1);
	REQUIRE(back);
	CHECK(back->writeBackMs == 0);
	CHECK(back->source == "memory:1M");
	q.writeBackMs = kMaxRegionWriteBackMs + 1;
	CHECK(!decodeMap(encodeMap(q)));
}
