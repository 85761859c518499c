#pragma once

// Just enough of an NBD client to drive a Server over a socketpair byte by byte, for the
// tests that need to see (or break) the wire format. Fails the Catch2 case on a short read.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <r3d/unique_fd.hpp>

#include "nbd/protocol.hpp"
#include "nbd/socket_reader.hpp"
#include "nbd/wire.hpp"

namespace r3test {

class RawNbdClient
{
public:
	/// One option reply: its type and data.
	struct OptReply {
		uint32_t type = 0;
		std::vector<std::byte> data;
	};
	/// One structured reply chunk.
	struct Chunk {
		uint16_t flags = 0;
		uint16_t type = 0;
		uint64_t handle = 0;
		std::vector<std::byte> payload;
	};

	explicit RawNbdClient(r3d::UniqueFd fd) : fd_(std::move(fd)), reader_(fd_.get(), 1 << 20, {}) {}

	/// The socket, e.g. to run TLS on it after STARTTLS.
	int fd() const { return fd_.get(); }

	std::vector<std::byte> take(size_t n)
	{
		REQUIRE(reader_.fill(n).value());
		std::vector<std::byte> out(reader_.data(), reader_.data() + n);
		reader_.consume(n);
		return out;
	}
	void send(const std::vector<std::byte> &bytes) { REQUIRE(r3d::nbd::sendAll(fd_.get(), bytes)); }

	/// Takes the server's greeting and answers it (fixed newstyle, no zeroes).
	void greet()
	{
		using namespace r3d::nbd;
		auto hello = take(18);
		CHECK(wire::get64(hello.data()) == kInitPasswd);
		CHECK(wire::get16(hello.data() + 16) == (kFlagFixedNewstyle | kFlagNoZeroes));
		std::vector<std::byte> msg;
		wire::Writer(msg).u32(kClientFlagFixedNewstyle | kClientFlagNoZeroes);
		send(msg);
	}
	void option(r3d::nbd::Opt opt, const std::vector<std::byte> &data = {})
	{
		std::vector<std::byte> msg;
		r3d::nbd::wire::Writer(msg)
			.u64(r3d::nbd::kIHaveOpt)
			.u32(static_cast<uint32_t>(opt))
			.u32(static_cast<uint32_t>(data.size()));
		msg.insert(msg.end(), data.begin(), data.end());
		send(msg);
	}
	OptReply optReply()
	{
		auto head = take(20);
		REQUIRE(r3d::nbd::wire::get64(head.data()) == r3d::nbd::kOptReplyMagic);
		OptReply r;
		r.type = r3d::nbd::wire::get32(head.data() + 12);
		r.data = take(r3d::nbd::wire::get32(head.data() + 16));
		return r;
	}
	/// Sends OPT_GO for `name` and takes the replies up to the ACK; returns the export size.
	uint64_t go(const std::string &name = "")
	{
		using namespace r3d::nbd;
		std::vector<std::byte> data;
		wire::Writer(data).u32(static_cast<uint32_t>(name.size())).str(name).u16(0);
		option(Opt::Go, data);
		uint64_t size = 0;
		for (;;) {
			auto r = optReply();
			if (r.type == static_cast<uint32_t>(Rep::Ack))
				return size;
			REQUIRE(r.type == static_cast<uint32_t>(Rep::Info));
			if (wire::get16(r.data.data()) == static_cast<uint16_t>(Info::Export))
				size = wire::get64(r.data.data() + 2);
		}
	}
	/// Newstyle greeting, then OPT_GO on the default export; returns the export size.
	uint64_t handshake()
	{
		greet();
		return go();
	}

	void request(r3d::nbd::Cmd cmd, uint64_t handle, uint64_t offset, uint32_t length,
		     const std::vector<std::byte> &data = {}, uint16_t flags = 0)
	{
		std::vector<std::byte> msg;
		r3d::nbd::wire::Writer(msg)
			.u32(r3d::nbd::kRequestMagic)
			.u16(flags)
			.u16(static_cast<uint16_t>(cmd))
			.u64(handle)
			.u64(offset)
			.u32(length);
		msg.insert(msg.end(), data.begin(), data.end());
		send(msg);
	}
	/// A simple reply: error and handle.
	std::pair<uint32_t, uint64_t> reply()
	{
		auto head = take(16);
		REQUIRE(r3d::nbd::wire::get32(head.data()) == r3d::nbd::kSimpleReplyMagic);
		return { r3d::nbd::wire::get32(head.data() + 4), r3d::nbd::wire::get64(head.data() + 8) };
	}
	/// A structured reply chunk with its payload.
	Chunk chunk()
	{
		auto head = take(20);
		REQUIRE(r3d::nbd::wire::get32(head.data()) == r3d::nbd::kStructuredReplyMagic);
		Chunk c;
		c.flags = r3d::nbd::wire::get16(head.data() + 4);
		c.type = r3d::nbd::wire::get16(head.data() + 6);
		c.handle = r3d::nbd::wire::get64(head.data() + 8);
		c.payload = take(r3d::nbd::wire::get32(head.data() + 16));
		return c;
	}

private:
	r3d::UniqueFd fd_;
	r3d::nbd::SocketReader reader_;
};

} // namespace r3test
