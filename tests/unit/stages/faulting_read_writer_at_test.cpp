#include "stages/faulting_read_writer_at.hpp"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <r3d/backend_factory.hpp>

#include "backends/memory_backend.hpp"
#include "test_support.hpp"

using namespace r3d;
using namespace r3d::stages;
using namespace std::chrono_literals;

namespace {

FaultOptions optionsOf(const std::string &uri)
{
	auto parsed = BackendUri::parse(uri);
	REQUIRE(parsed);
	auto o = FaultOptions::fromUri(*parsed);
	INFO(uri << ": " << (o ? "" : o.error().message));
	REQUIRE(o);
	return *o;
}

std::string refusal(const std::string &uri)
{
	auto parsed = BackendUri::parse(uri);
	REQUIRE(parsed);
	auto o = FaultOptions::fromUri(*parsed);
	REQUIRE_FALSE(o);
	return o.error().message;
}

std::shared_ptr<ReadWriterAt> memory(uint64_t size)
{
	return std::shared_ptr<ReadWriterAt>(std::move(backends::MemoryBackend::create(size).value()));
}

bool contains(const std::string &text, const std::string &part)
{
	return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("fault options: every parameter in its text form", "[fault]")
{
	auto o = optionsOf("fault+memory:1M?fault-ops=write&fault-eio=0.25&fault-eio-range=4K-1M&fault-short=0.5"
			   "&fault-latency=2ms&fault-latency-dist=exp&fault-seek=500ms&fault-hang-after=3"
			   "&fault-hang-for=1s&fault-seed=42");
	CHECK(o.ops == FaultOptions::kWrites);
	CHECK(o.eioRate == 0.25);
	CHECK(o.eioFrom == 4096);
	CHECK(o.eioTo == 1u << 20);
	CHECK(o.shortRate == 0.5);
	CHECK(o.latency == 2ms);
	CHECK(o.dist == FaultOptions::Dist::Exponential);
	CHECK(o.seek == 500ms);
	CHECK(o.hangAfter == 3);
	CHECK(o.hangFor == 1s);
	CHECK(o.seed == 42);
	CHECK(contains(o.describe(), "seed 42"));
	// None given: nothing faulted, and still a seed to report.
	auto none = optionsOf("fault+memory:1M");
	CHECK(none.eioRate == 0);
	CHECK(none.seed != 0);
}

TEST_CASE("fault options: bad values are refused naming the parameter", "[fault]")
{
	CHECK(contains(refusal("fault+memory:1M?fault-eio=2"), "fault-eio=2"));
	CHECK(contains(refusal("fault+memory:1M?fault-eio=often"), "fault-eio"));
	CHECK(contains(refusal("fault+memory:1M?fault-short=-0.1"), "fault-short"));
	CHECK(contains(refusal("fault+memory:1M?fault-eio-range=8K-4K"), "fault-eio-range"));
	CHECK(contains(refusal("fault+memory:1M?fault-eio-range=4K"), "fault-eio-range"));
	CHECK(contains(refusal("fault+memory:1M?fault-ops=trim"), "fault-ops"));
	CHECK(contains(refusal("fault+memory:1M?fault-latency=soon"), "fault-latency"));
	CHECK(contains(refusal("fault+memory:1M?fault-latency-dist=normal"), "fault-latency-dist"));
	CHECK(contains(refusal("fault+memory:1M?fault-hang-after=0"), "fault-hang-after"));
	CHECK(contains(refusal("fault+memory:1M?fault-seed=x"), "fault-seed"));
	CHECK(contains(refusal("fault+memory:1M?fault-colour=red"), "unknown parameter 'fault-colour'"));
}

TEST_CASE("fault+: the inner URI loses the prefix and the fault parameters only", "[fault]")
{
	CHECK(faultInnerUri("fault+memory:16M?fault-eio=1") == "memory:16M");
	CHECK(faultInnerUri("fault+file:/tmp/x?fault-seed=3&size=1M&fault-eio=0.1") == "file:/tmp/x?size=1M");
	CHECK(faultInnerUri("fault+r3://h:1/disk?tls=on") == "r3://h:1/disk?tls=on");
	CHECK(faultInnerUri("memory:16M?fault-eio=1") == "memory:16M?fault-eio=1");
	// Nested: the outer stage takes every fault- parameter, the inner one none.
	CHECK(faultInnerUri("fault+fault+memory:1M?fault-eio=1") == "fault+memory:1M");
}

TEST_CASE("fault+ through openBackend: EIO in a range, the rest untouched", "[fault]")
{
	auto rw = openBackend("fault+memory:1M?fault-eio-range=64K-128K");
	REQUIRE(rw);
	auto data = r3test::pattern(4096, 3);
	std::vector<std::byte> back(4096);
	REQUIRE((*rw)->writeAt(data, 60 * 1024));
	REQUIRE((*rw)->readAt(back, 60 * 1024));
	CHECK(back == data);
	auto in = (*rw)->readAt(back, 62 * 1024); // straddles the range's start
	REQUIRE_FALSE(in);
	CHECK(in.error().value() == EIO);
	CHECK_FALSE((*rw)->writeAt(data, 100 * 1024));
	CHECK((*rw)->readAt(back, 128 * 1024));
	CHECK((*rw)->size() == 1u << 20);
	CHECK(contains(openBackend("fault+memory:1M?fault-eio=7").error().message, "fault-eio"));
	CHECK_FALSE(openBackend("fault+nosuch:1M"));
}

TEST_CASE("fault rates: the same seed gives the same faults; 0 and 1 are never and always", "[fault]")
{
	auto pattern = [](const std::string &query) {
		FaultingReadWriterAt rw(memory(1 << 20), optionsOf("fault+memory:1M?" + query));
		std::string out;
		std::vector<std::byte> buf(512);
		for (int i = 0; i < 200; ++i)
			out += rw.readAt(buf, static_cast<uint64_t>(i) * 512) ? '.' : 'x';
		return out;
	};
	auto a = pattern("fault-eio=0.3&fault-seed=7");
	CHECK(a == pattern("fault-eio=0.3&fault-seed=7"));
	CHECK(a != pattern("fault-eio=0.3&fault-seed=8"));
	auto failures = std::count(a.begin(), a.end(), 'x');
	CHECK(failures > 20);
	CHECK(failures < 120);
	CHECK(pattern("fault-eio=1&fault-seed=1") == std::string(200, 'x'));
	CHECK(pattern("fault-eio=0&fault-seed=1") == std::string(200, '.'));
	// Faults on writes only leave reads alone.
	CHECK(pattern("fault-eio=1&fault-ops=write") == std::string(200, '.'));
}

TEST_CASE("fault-short: a torn write lands its first half and fails", "[fault]")
{
	auto inner = memory(1 << 20);
	FaultingReadWriterAt rw(inner, optionsOf("fault+memory:1M?fault-short=1&fault-ops=write"));
	auto data = r3test::pattern(8192, 5);
	auto r = rw.writeAt(data, 0);
	REQUIRE_FALSE(r);
	CHECK(r.error().value() == EIO);
	std::vector<std::byte> back(8192);
	REQUIRE(inner->readAt(back, 0));
	CHECK(std::equal(back.begin(), back.begin() + 4096, data.begin()));
	CHECK(std::all_of(back.begin() + 4096, back.end(), [](std::byte b) { return b == std::byte{ 0 }; }));
	CHECK(rw.counters().shortCalls == 1);
}

TEST_CASE("fault-seek counts the calls that do not go on where the last one ended", "[fault]")
{
	FaultingReadWriterAt rw(memory(1 << 20), optionsOf("fault+memory:1M?fault-seek=1ms"));
	std::vector<std::byte> buf(4096);
	for (uint64_t i = 0; i < 8; ++i)
		REQUIRE(rw.readAt(buf, i * 4096)); // one seek to the start, then a stream
	CHECK(rw.counters().seeks == 1);
	REQUIRE(rw.readAt(buf, 100 * 4096));
	REQUIRE(rw.readAt(buf, 10 * 4096));
	CHECK(rw.counters().seeks == 3);
	CHECK(rw.counters().calls == 10);
}

TEST_CASE("fault-hang-after: later calls hang for fault-hang-for, then go on", "[fault]")
{
	FaultingReadWriterAt rw(memory(1 << 20), optionsOf("fault+memory:1M?fault-hang-after=2&fault-hang-for=20ms"));
	std::vector<std::byte> buf(512);
	REQUIRE(rw.readAt(buf, 0));
	REQUIRE(rw.readAt(buf, 0));
	CHECK(rw.counters().hangs == 0);
	REQUIRE(rw.readAt(buf, 0));
	CHECK(rw.counters().hangs == 1);
}

TEST_CASE("fault-hang-count: only that many calls after fault-hang-after hang", "[fault]")
{
	FaultingReadWriterAt rw(memory(1 << 20),
				optionsOf("fault+memory:1M?fault-hang-after=1&fault-hang-for=10ms&fault-hang-count=2"));
	std::vector<std::byte> buf(512);
	for (int i = 0; i < 6; ++i)
		REQUIRE(rw.readAt(buf, 0));
	CHECK(rw.counters().calls == 6);
	CHECK(rw.counters().hangs == 2);
	CHECK(contains(refusal("fault+memory:1M?fault-hang-count=2"), "fault-hang-after"));
	CHECK(contains(refusal("fault+memory:1M?fault-hang-after=1&fault-hang-count=x"), "fault-hang-count"));
}
