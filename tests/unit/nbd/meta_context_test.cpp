// Meta contexts beyond base:allocation: LIST/SET_META_CONTEXT negotiation and the
// BLOCK_STATUS chunks of an export with a MetaSource, over a socketpair with a raw client.

#include "nbd/server.hpp"

#include <future>
#include <string>
#include <utility>
#include <vector>

#include <sys/socket.h>

#include <catch2/catch.hpp>

#include "backends/memory_backend.hpp"
#include "fault_read_writer_at.hpp"
#include "nbd/meta_source.hpp"
#include "nbd/protocol.hpp"
#include "nbd/wire.hpp"
#include "range_meta_source.hpp"
#include "raw_nbd_client.hpp"

using namespace r3d;
using namespace r3d::nbd;
using r3test::RawNbdClient;

namespace {

constexpr uint64_t K = 1024;
const std::string kPresent = "x-r3map:present";
const std::string kDirty = "x-r3map:dirty";

using Contexts = std::vector<std::pair<uint32_t, std::string>>;
using Extents = std::vector<std::pair<uint32_t, uint32_t>>; // length, flags

std::shared_ptr<ReadWriterAt> memory(uint64_t size)
{
	return std::shared_ptr<ReadWriterAt>(std::move(backends::MemoryBackend::create(size).value()));
}

std::shared_ptr<r3test::RangeMetaSource> rangeSource()
{
	auto source = std::make_shared<r3test::RangeMetaSource>();
	source->add(kPresent, { { 0, 64 * K }, { 256 * K, 128 * K } });
	source->add(kDirty, { { 4 * K, 4 * K }, { 300 * K, 4 * K } });
	return source;
}

// Export "meta" (also the default) with the given source, and "plain" without one.
void addExports(Server &server, std::shared_ptr<MetaSource> source, std::shared_ptr<ReadWriterAt> backend = {})
{
	Export meta{ "meta", "", backend ? backend : memory(1 << 20), false };
	meta.meta = std::move(source);
	server.addExport(std::move(meta));
	server.addExport({ "plain", "", memory(1 << 20), false });
}

std::vector<std::byte> metaData(const std::string &name, const std::vector<std::string> &queries)
{
	std::vector<std::byte> data;
	wire::Writer w(data);
	w.u32(static_cast<uint32_t>(name.size())).str(name).u32(static_cast<uint32_t>(queries.size()));
	for (const auto &q : queries)
		w.u32(static_cast<uint32_t>(q.size())).str(q);
	return data;
}

struct MetaReplies {
	Contexts contexts;
	uint32_t end = 0; ///< the reply type after the contexts: ACK or an error
};

MetaReplies metaOption(RawNbdClient &client, Opt opt, const std::vector<std::byte> &data)
{
	client.option(opt, data);
	MetaReplies out;
	for (;;) {
		auto r = client.optReply();
		if (r.type != static_cast<uint32_t>(Rep::MetaContext)) {
			out.end = r.type;
			return out;
		}
		REQUIRE(r.data.size() >= 4);
		out.contexts.emplace_back(wire::get32(r.data.data()),
					  std::string(reinterpret_cast<const char *>(r.data.data()) + 4, r.data.size() - 4));
	}
}

MetaReplies list(RawNbdClient &client, const std::vector<std::string> &queries, const std::string &name = "meta")
{
	return metaOption(client, Opt::ListMetaContext, metaData(name, queries));
}

MetaReplies set(RawNbdClient &client, const std::vector<std::string> &queries, const std::string &name = "meta")
{
	return metaOption(client, Opt::SetMetaContext, metaData(name, queries));
}

constexpr uint32_t kAck = static_cast<uint32_t>(Rep::Ack);
constexpr uint32_t kErrInvalid = static_cast<uint32_t>(Rep::ErrInvalid);

void structuredReplies(RawNbdClient &client)
{
	client.option(Opt::StructuredReply);
	REQUIRE(client.optReply().type == kAck);
}

struct Connection {
	std::future<bool> served;
	RawNbdClient client;
};

// A connection to `server` that has greeted and negotiated structured replies.
Connection connect(Server &server)
{
	int fds[2];
	REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
	auto served = std::async(std::launch::async,
				 [&server, fd = UniqueFd(fds[1])]() mutable { return server.serve(std::move(fd)).has_value(); });
	Connection c{ std::move(served), RawNbdClient(UniqueFd(fds[0])) };
	c.client.greet();
	structuredReplies(c.client);
	return c;
}

void disconnect(Connection &c)
{
	c.client.request(Cmd::Disc, 999, 0, 0);
	CHECK(c.served.get());
}

std::pair<uint32_t, Extents> blockStatusChunk(const RawNbdClient::Chunk &c)
{
	REQUIRE(c.type == static_cast<uint16_t>(ReplyType::BlockStatus));
	REQUIRE(c.payload.size() >= 12);
	REQUIRE((c.payload.size() - 4) % 8 == 0);
	Extents extents;
	for (size_t at = 4; at < c.payload.size(); at += 8)
		extents.emplace_back(wire::get32(c.payload.data() + at), wire::get32(c.payload.data() + at + 4));
	return { wire::get32(c.payload.data()), extents };
}

// The chunks of one BLOCK_STATUS reply, by context id in the order sent.
std::vector<std::pair<uint32_t, Extents>> blockStatus(RawNbdClient &client, uint64_t handle, uint64_t offset,
						      uint32_t length, uint16_t flags = 0)
{
	client.request(Cmd::BlockStatus, handle, offset, length, {}, flags);
	std::vector<std::pair<uint32_t, Extents>> out;
	for (;;) {
		auto c = client.chunk();
		REQUIRE(c.handle == handle);
		out.push_back(blockStatusChunk(c));
		if (c.flags & kReplyFlagDone)
			return out;
	}
}

// The error of a reply that must be a single structured error chunk.
uint32_t errorChunk(RawNbdClient &client, uint64_t handle)
{
	auto c = client.chunk();
	CHECK(c.handle == handle);
	CHECK(c.flags == kReplyFlagDone);
	REQUIRE(c.type == static_cast<uint16_t>(ReplyType::Error));
	REQUIRE(c.payload.size() >= 6);
	return wire::get32(c.payload.data());
}

// A source that returns whatever the test scripted, to check what the server makes of
// extents that break the MetaSource contract.
class ScriptedMetaSource final : public MetaSource
{
public:
	ScriptedMetaSource(std::vector<std::string> names, std::vector<MetaExtent> extents)
		: names_(std::move(names)), extents_(std::move(extents))
	{
	}
	std::vector<std::string> contexts() const override { return names_; }
	Result<std::vector<MetaExtent>> metaExtents(size_t, uint64_t, uint64_t) override { return extents_; }

private:
	std::vector<std::string> names_;
	std::vector<MetaExtent> extents_;
};

} // namespace

TEST_CASE("LIST_META_CONTEXT lists all, by namespace, by name, and ignores the unknown", "[nbd][meta]")
{
	Server server;
	addExports(server, rangeSource());
	auto c = connect(server);
	auto &client = c.client;

	auto all = list(client, {});
	CHECK(all.end == kAck);
	CHECK(all.contexts == Contexts{ { 0, "base:allocation" }, { 0, kPresent }, { 0, kDirty } });
	CHECK(list(client, {}, "").contexts == all.contexts); // the default export is "meta"

	CHECK(list(client, { "x-r3map:" }).contexts == Contexts{ { 0, kPresent }, { 0, kDirty } });
	CHECK(list(client, { "base:" }).contexts == Contexts{ { 0, "base:allocation" } });
	CHECK(list(client, { kDirty }).contexts == Contexts{ { 0, kDirty } });
	// Each context once, however many queries name it.
	CHECK(list(client, { kDirty, "x-r3map:", kDirty }).contexts == Contexts{ { 0, kPresent }, { 0, kDirty } });

	for (const std::string unknown : { "x-r3map:nosuch", "x-r3map", "nosuch:", "x-r3map:present:", "X-R3MAP:",
					   ":", "", "x-r3map:*", "base:allocatio" }) {
		auto none = list(client, { unknown });
		CHECK(none.end == kAck);
		CHECK(none.contexts.empty());
	}

	// An export without a source offers base:allocation alone, as before.
	CHECK(list(client, {}, "plain").contexts == Contexts{ { 0, "base:allocation" } });
	CHECK(list(client, { "x-r3map:" }, "plain").contexts.empty());
	CHECK(list(client, { kPresent }, "plain").contexts.empty());

	CHECK(list(client, {}, "nosuch").end == static_cast<uint32_t>(Rep::ErrUnknown));
	c.client.go();
	disconnect(c);
}

TEST_CASE("SET_META_CONTEXT gives base:allocation id 1 and the source's contexts 2, 3, ...", "[nbd][meta]")
{
	Server server;
	addExports(server, rangeSource());
	auto c = connect(server);
	auto &client = c.client;

	// Replies come in id order, whatever the order of the queries; wildcards select nothing.
	auto chosen = set(client, { kDirty, "base:allocation", "x-r3map:", kPresent, "base:", "x-r3map:nosuch" });
	CHECK(chosen.end == kAck);
	CHECK(chosen.contexts == Contexts{ { 1, "base:allocation" }, { 2, kPresent }, { 3, kDirty } });
	// The ids belong to the contexts, not to the order of selection.
	CHECK(set(client, { kDirty }).contexts == Contexts{ { 3, kDirty } });
	CHECK(set(client, { "x-r3map:" }).contexts.empty());
	CHECK(set(client, {}).contexts.empty());
	CHECK(set(client, { kPresent }, "plain").contexts.empty());
	CHECK(set(client, { "base:allocation", kPresent }, "plain").contexts == Contexts{ { 1, "base:allocation" } });

	// The last SET counts: dirty alone.
	CHECK(set(client, { kDirty }, "").contexts == Contexts{ { 3, kDirty } });
	client.go("meta");
	auto reply = blockStatus(client, 1, 0, 8 * K);
	REQUIRE(reply.size() == 1);
	CHECK(reply[0].first == 3);
	disconnect(c);
}

TEST_CASE("BLOCK_STATUS sends one chunk per selected context", "[nbd][meta]")
{
	bool blocking = GENERATE(false, true); // inline, and on the worker pool
	auto backend = std::make_shared<r3test::FaultReadWriterAt>(memory(1 << 20));
	if (blocking)
		backend->blocking();
	Server server;
	addExports(server, rangeSource(), backend);
	auto c = connect(server);
	auto &client = c.client;

	SECTION("two meta contexts")
	{
		REQUIRE(set(client, { kPresent, kDirty }).contexts.size() == 2);
		client.go();
		auto reply = blockStatus(client, 1, 0, 512 * K);
		REQUIRE(reply.size() == 2);
		CHECK(reply[0].first == 2);
		CHECK(reply[0].second == Extents{ { 64 * K, 1 }, { 192 * K, 0 }, { 128 * K, 1 }, { 128 * K, 0 } });
		CHECK(reply[1].first == 3);
		CHECK(reply[1].second ==
		      Extents{ { 4 * K, 0 }, { 4 * K, 1 }, { 292 * K, 0 }, { 4 * K, 1 }, { 208 * K, 0 } });

		// REQ_ONE: one extent per context, none longer than the request.
		reply = blockStatus(client, 2, 0, 512 * K, kCmdFlagReqOne);
		REQUIRE(reply.size() == 2);
		CHECK(reply[0] == std::make_pair(2u, Extents{ { 64 * K, 1 } }));
		CHECK(reply[1] == std::make_pair(3u, Extents{ { 4 * K, 0 } }));
		reply = blockStatus(client, 3, 32 * K, 16 * K, kCmdFlagReqOne);
		REQUIRE(reply.size() == 2);
		CHECK(reply[0] == std::make_pair(2u, Extents{ { 16 * K, 1 } }));
		CHECK(reply[1] == std::make_pair(3u, Extents{ { 16 * K, 0 } }));

		// An unaligned range inside the export.
		reply = blockStatus(client, 4, 300 * K + 1, 100);
		CHECK(reply[0].second == Extents{ { 100, 1 } });
		CHECK(reply[1].second == Extents{ { 100, 1 } });
	}
	SECTION("base:allocation first, then a meta context")
	{
		REQUIRE(set(client, { kPresent, "base:allocation" }).contexts.size() == 2);
		client.go();
		auto reply = blockStatus(client, 1, 0, 512 * K);
		REQUIRE(reply.size() == 2);
		CHECK(reply[0].first == kMetaIdBaseAllocation);
		CHECK(reply[0].second == Extents{ { 512 * K, kStateHole | kStateZero } });
		CHECK(reply[1].first == 2);
		reply = blockStatus(client, 2, 0, 512 * K, kCmdFlagReqOne);
		REQUIRE(reply.size() == 2);
		CHECK(reply[0].second.size() == 1);
		CHECK(reply[1].second == Extents{ { 64 * K, 1 } });
	}
	SECTION("base:allocation alone is answered as before")
	{
		REQUIRE(set(client, { "base:allocation" }).contexts.size() == 1);
		client.go();
		auto reply = blockStatus(client, 1, 0, 64 * K);
		CHECK(reply == std::vector<std::pair<uint32_t, Extents>>{
				       { kMetaIdBaseAllocation, Extents{ { 64 * K, kStateHole | kStateZero } } } });
	}
	SECTION("without a selected context it is EINVAL")
	{
		REQUIRE(set(client, { "x-r3map:" }).contexts.empty());
		client.go();
		client.request(Cmd::BlockStatus, 1, 0, 4096);
		CHECK(errorChunk(client, 1) == kEinval);
	}
	disconnect(c);
}

TEST_CASE("a MetaSource error becomes one error reply and the connection goes on", "[nbd][meta]")
{
	auto source = rangeSource();
	Server server;
	addExports(server, source);
	auto c = connect(server);
	auto &client = c.client;
	REQUIRE(set(client, { "base:allocation", kPresent, kDirty }).contexts.size() == 3);
	client.go();
	source->failWith(ENOSPC);
	client.request(Cmd::BlockStatus, 1, 0, 4096);
	CHECK(errorChunk(client, 1) == kEnospc);
	source->failWith(ENOENT); // no NBD errno: EIO on the wire
	client.request(Cmd::BlockStatus, 2, 0, 4096, {}, kCmdFlagReqOne);
	CHECK(errorChunk(client, 2) == kEio);
	source->failWith(0);
	CHECK(blockStatus(client, 3, 0, 4096).size() == 3);
	disconnect(c);
}

TEST_CASE("extents that break the MetaSource contract are fitted to the wire", "[nbd][meta]")
{
	// Empty extents dropped, equal neighbours merged, nothing past the request.
	auto messy = std::make_shared<ScriptedMetaSource>(
		std::vector<std::string>{ kPresent },
		std::vector<MetaExtent>{ { 0, 1 }, { 4 * K, 1 }, { 4 * K, 1 }, { 0, 0 }, { 8 * K, 0 }, { 1 << 30, 1 } });
	Server server;
	addExports(server, messy);
	auto c = connect(server);
	REQUIRE(set(c.client, { kPresent }).contexts.size() == 1);
	c.client.go();
	CHECK(blockStatus(c.client, 1, 0, 64 * K)[0].second == Extents{ { 8 * K, 1 }, { 8 * K, 0 }, { 48 * K, 1 } });
	CHECK(blockStatus(c.client, 2, 0, 12 * K)[0].second == Extents{ { 8 * K, 1 }, { 4 * K, 0 } });
	CHECK(blockStatus(c.client, 3, 0, 64 * K, kCmdFlagReqOne)[0].second == Extents{ { 8 * K, 1 } });
	disconnect(c);

	// No usable extent at all is an EIO reply, not an empty chunk.
	Server empty;
	addExports(empty,
		   std::make_shared<ScriptedMetaSource>(std::vector<std::string>{ kPresent },
							std::vector<MetaExtent>{ { 0, 1 } }));
	auto d = connect(empty);
	REQUIRE(set(d.client, { kPresent }).contexts.size() == 1);
	d.client.go();
	d.client.request(Cmd::BlockStatus, 1, 0, 4096);
	CHECK(errorChunk(d.client, 1) == kEio);
	disconnect(d);
}

TEST_CASE("context names the protocol cannot carry are not offered", "[nbd][meta]")
{
	auto odd = std::make_shared<ScriptedMetaSource>(
		std::vector<std::string>{ "nocolon", "base:allocation", ":empty-namespace", kPresent, kPresent,
					  std::string(5000, 'x') + ":long", kDirty },
		std::vector<MetaExtent>{ { 4096, 1 } });
	Server server;
	addExports(server, odd);
	auto c = connect(server);
	CHECK(list(c.client, {}).contexts == Contexts{ { 0, "base:allocation" }, { 0, kPresent }, { 0, kDirty } });
	// The ids still follow the source's indices.
	CHECK(set(c.client, { kPresent, kDirty, "nocolon" }).contexts == Contexts{ { 5, kPresent }, { 8, kDirty } });
	c.client.go();
	auto reply = blockStatus(c.client, 1, 0, 4096);
	REQUIRE(reply.size() == 2);
	CHECK(reply[0].first == 5);
	CHECK(reply[1].first == 8);
	disconnect(c);
}

TEST_CASE("contexts chosen for one export are dropped when the client goes to another", "[nbd][meta]")
{
	Server server;
	addExports(server, rangeSource());

	SECTION("OPT_GO")
	{
		auto c = connect(server);
		REQUIRE(set(c.client, { "base:allocation", kPresent }).contexts.size() == 2);
		c.client.go("plain");
		c.client.request(Cmd::BlockStatus, 1, 0, 4096);
		CHECK(errorChunk(c.client, 1) == kEinval);
		disconnect(c);
	}
	SECTION("NBD_OPT_EXPORT_NAME")
	{
		auto c = connect(server);
		REQUIRE(set(c.client, { kPresent }).contexts.size() == 1);
		c.client.option(Opt::ExportName, { std::byte{ 'p' }, std::byte{ 'l' }, std::byte{ 'a' }, std::byte{ 'i' },
						   std::byte{ 'n' } });
		c.client.take(10); // size and flags; no zeroes
		c.client.request(Cmd::BlockStatus, 1, 0, 4096);
		CHECK(errorChunk(c.client, 1) == kEinval);
		disconnect(c);
	}
	SECTION("the default name and the export's own name are the same export")
	{
		auto c = connect(server);
		REQUIRE(set(c.client, { kPresent }, "").contexts.size() == 1);
		c.client.go("meta");
		CHECK(blockStatus(c.client, 1, 0, 4096).size() == 1);
		disconnect(c);
	}
}

TEST_CASE("malformed meta context options are refused with ERR_INVALID", "[nbd][meta]")
{
	Server server;
	addExports(server, rangeSource());
	auto c = connect(server);
	auto &client = c.client;
	auto bytes = [](std::initializer_list<uint32_t> words, const std::string &tail = "") {
		std::vector<std::byte> data;
		wire::Writer w(data);
		for (uint32_t v : words)
			w.u32(v);
		w.str(tail);
		return data;
	};
	auto good = metaData("meta", { kPresent });
	auto trailing = good;
	trailing.push_back(std::byte{ 0 });
	auto truncated = good;
	truncated.pop_back();
	auto longQuery = metaData("meta", { "x-r3map:" + std::string(kMaxStringLength, 'a') });
	std::vector<std::vector<std::byte>> malformed{
		{},
		{ std::byte{ 0 }, std::byte{ 0 } },
		bytes({ 0 }),                          // no query count
		bytes({ 100 }, "meta"),                // name longer than the data
		bytes({ 0, 1 }),                       // one query, not there
		bytes({ 0, 0xffffffff }),              // a count no data could hold
		bytes({ 0, 2, 1 }, "abcd"),           // second query missing
		bytes({ 0, 1, 0xfffffff0 }, "x-r3map:"), // query length past the data
		bytes({ 5000 }, std::string(5000, 'm') + std::string(4, '\0')), // name too long
		trailing,
		truncated,
		longQuery,
	};
	for (Opt opt : { Opt::ListMetaContext, Opt::SetMetaContext }) {
		for (const auto &data : malformed) {
			auto r = metaOption(client, opt, data);
			CHECK(r.contexts.empty());
			CHECK(r.end == kErrInvalid);
		}
	}
	// And the session is fine afterwards.
	CHECK(set(client, { kPresent }).contexts == Contexts{ { 2, kPresent } });
	client.go();
	CHECK(blockStatus(client, 1, 0, 4096).size() == 1);
	disconnect(c);
}

TEST_CASE("a SET_META_CONTEXT that fails still replaces the selection", "[nbd][meta]")
{
	Server server;
	addExports(server, rangeSource());
	auto c = connect(server);
	REQUIRE(set(c.client, { "base:allocation", kPresent }).contexts.size() == 2);
	auto broken = metaData("meta", { kPresent });
	broken.pop_back();
	CHECK(metaOption(c.client, Opt::SetMetaContext, broken).end == kErrInvalid);
	CHECK(set(c.client, { kPresent }, "nosuch").end == static_cast<uint32_t>(Rep::ErrUnknown));
	c.client.go();
	c.client.request(Cmd::BlockStatus, 1, 0, 4096);
	CHECK(errorChunk(c.client, 1) == kEinval);
	disconnect(c);
}

TEST_CASE("meta context options need structured replies first", "[nbd][meta]")
{
	Server server;
	addExports(server, rangeSource());
	int fds[2];
	REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
	auto served = std::async(std::launch::async,
				 [&server, fd = UniqueFd(fds[1])]() mutable { return server.serve(std::move(fd)).has_value(); });
	RawNbdClient client{ UniqueFd(fds[0]) };
	client.greet();
	CHECK(list(client, {}).end == kErrInvalid);
	CHECK(set(client, { kPresent }).end == kErrInvalid);
	client.go();
	client.request(Cmd::BlockStatus, 1, 0, 4096);
	CHECK(client.reply() == std::make_pair(kEinval, uint64_t{ 1 }));
	client.request(Cmd::Disc, 2, 0, 0);
	CHECK(served.get());
}
