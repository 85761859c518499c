#include "service/request_options.hpp"

#include <catch2/catch.hpp>

#include "errors.hpp"

using namespace r3mapd;
using service::OptionMap;

namespace {

std::string mountError(const OptionMap &options)
{
	auto r = service::mountRequest("memory:1M", options);
	REQUIRE_FALSE(r);
	CHECK(r.error().code == Errc::InvalidArgument);
	return r.error().message;
}

} // namespace

TEST_CASE("Mount options: sizes as t, u or text; read_only as b", "[options]")
{
	auto r = service::mountRequest("memory:1M", {}).value();
	CHECK(r.backendUri == "memory:1M");
	CHECK_FALSE(r.size);
	CHECK_FALSE(r.chunkSize);
	CHECK_FALSE(r.readOnly);

	r = service::mountRequest("memory:1M", { { "size", sdbus::Variant(uint64_t(1) << 20) },
						 { "chunk_size", sdbus::Variant(std::string("64K")) },
						 { "read_only", sdbus::Variant(true) } })
		    .value();
	CHECK(r.size == uint64_t(1) << 20);
	CHECK(r.chunkSize == 65536);
	CHECK(r.readOnly);
	CHECK(service::mountRequest("x", { { "size", sdbus::Variant(uint32_t(4096)) } }).value().size == 4096);
}

TEST_CASE("Mount options: unknown keys, wrong types, 0 and bad text are named", "[options]")
{
	CHECK(mountError({ { "colour", sdbus::Variant(std::string("red")) } })
	      == "unknown option 'colour' (known: size, chunk_size, read_only, managed, and with it cache, "
		 "chunk-size, pull-workers, push-interval, order, pull-first, "
	      "pull-rate, push-rate, remote-timeout, background, discard-local)");
	CHECK(mountError({ { "size", sdbus::Variant(true) } })
	      == "option 'size': expected t (bytes) or s (e.g. \"128M\"), got type b");
	CHECK(mountError({ { "size", sdbus::Variant(int32_t(5)) } }).find("got type i") != std::string::npos);
	CHECK(mountError({ { "chunk_size", sdbus::Variant(uint64_t(0)) } }) == "option 'chunk_size' must not be 0");
	CHECK(mountError({ { "size", sdbus::Variant(std::string("0")) } }) == "option 'size' must not be 0");
	CHECK_THAT(mountError({ { "size", sdbus::Variant(std::string("1Z")) } }),
		   Catch::StartsWith("option 'size': ") && Catch::Contains("1Z"));
	CHECK(mountError({ { "read_only", sdbus::Variant(uint32_t(1)) } })
	      == "option 'read_only': expected b (boolean), got type u");
}

TEST_CASE("Export options: name, description, read_only", "[options]")
{
	auto r = service::exportRequest("memory:1M", "127.0.0.1:0",
					{ { "name", sdbus::Variant(std::string("disk")) },
					  { "description", sdbus::Variant(std::string("a disk")) },
					  { "read_only", sdbus::Variant(true) } })
			 .value();
	CHECK(r.listen == "127.0.0.1:0");
	CHECK(r.name == "disk");
	CHECK(r.description == "a disk");
	CHECK(r.readOnly);

	auto bad = service::exportRequest("memory:1M", "x", { { "size", sdbus::Variant(uint64_t(1)) } });
	REQUIRE_FALSE(bad);
	CHECK(bad.error().message == "unknown option 'size' (known: name, description, protocol, read_only, tls, tls_cert, tls_key, "
	      "tls_ca, tls_psk, token_file, managed, and with it "
		 "cache, chunk-size, pull-workers, push-interval, order, pull-first, "
	      "pull-rate, push-rate, remote-timeout, background, discard-local)");
	CHECK(r.protocol == "nbd");
	auto r3 = service::exportRequest("memory:1M", "127.0.0.1:0", { { "protocol", sdbus::Variant(std::string("r3")) } });
	REQUIRE(r3);
	CHECK(r3->protocol == "r3");
	bad = service::exportRequest("memory:1M", "x", { { "name", sdbus::Variant(uint64_t(1)) } });
	REQUIRE_FALSE(bad);
	CHECK(bad.error().message == "option 'name': expected s (string), got type t");
}
