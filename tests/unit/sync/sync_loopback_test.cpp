// A sender and a receiver over a real RpcServer on loopback.

#include <chrono>
#include <cstring>
#include <fstream>

#include <netinet/in.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>

#include <r3d/backend_factory.hpp>
#include <r3d/unique_fd.hpp>

#include "base/runtime.hpp"
#include "base/thread_pool.hpp"
#include "sync/sync_push.hpp"
#include "sync/sync_service.hpp"
#include "test_support.hpp"
#include "transport/block/rpc_server.hpp"

using namespace r3d;
using namespace r3d::sync;

namespace {

constexpr uint64_t kChunk = 64 * 1024;

void writeFile(const std::string &path, const std::vector<std::byte> &data)
{
	std::ofstream out(path, std::ios::binary | std::ios::trunc);
	out.write(reinterpret_cast<const char *>(data.data()), static_cast<std::streamsize>(data.size()));
}

std::vector<std::byte> readFile(const std::string &path)
{
	std::ifstream in(path, std::ios::binary);
	std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
	std::vector<std::byte> out(raw.size());
	std::memcpy(out.data(), raw.data(), raw.size());
	return out;
}

struct Receiver {
	std::unique_ptr<transport::RpcServer> server;
	std::shared_ptr<SyncService> service;
	std::string address;
	std::vector<AppliedGeneration> applied;
	std::mutex mutex;

	Receiver(Runtime &rt, const std::string &dir, ThreadPool *pool, const std::string &tokenFile = "",
		 std::shared_ptr<ReadWriterAt> target = nullptr)
	{
		SyncServiceOptions so;
		so.dir = dir;
		so.target = std::move(target);
		so.onApplied = [this](const AppliedGeneration &g, const SyncReceiver &) {
			std::lock_guard lock(mutex);
			applied.push_back(g);
		};
		transport::RpcServerOptions ro;
		ro.maxPayload = static_cast<uint32_t>(kMaxSyncChunk);
		ro.tokenFile = tokenFile;
		auto s = transport::RpcServer::create(rt, ro);
		REQUIRE(s);
		server = std::move(*s);
		service = std::make_shared<SyncService>(so, pool);
		service->addTo(*server);
		auto a = server->listen("127.0.0.1:0");
		REQUIRE(a);
		address = *a;
		server->start();
	}
	~Receiver() { server->stop(); }
};

/// A push of DIR/src.img to one receiver at `address` over `link`.
SyncPushOptions pushTo(const r3test::TempDir &dir, const std::string &address, const SyncLinkOptions &link)
{
	SyncPushOptions po;
	po.source = dir / "src.img";
	po.targets = { "r3://" + address };
	po.links = { link };
	po.chunk = kChunk;
	return po;
}

} // namespace

TEST_CASE("pushes over loopback send only what changed and converge", "[sync-loopback]")
{
	r3test::TempDir dir;
	RuntimeOptions ro;
	ro.ioThreads = 2;
	Runtime rt(ro);
	ThreadPool pool(2);
	auto receiver = std::make_unique<Receiver>(rt, (dir / "dst"), &pool);
	std::filesystem::create_directories(dir / "dst");

	const uint64_t chunks = 200;
	auto data = r3test::pattern(chunks * kChunk + 777, 9);
	writeFile(dir / "src.img", data);
	auto link = parseSyncTarget("r3://" + receiver->address, "src.img");
	REQUIRE(link);
	CHECK(link->name == "src.img");
	auto po = pushTo(dir, receiver->address, *link);
	po.backoff = std::chrono::milliseconds(50);
	auto push = SyncPush::create(rt, pool, po);
	REQUIRE(push);

	auto r1 = (*push)->round();
	REQUIRE(r1);
	REQUIRE(r1->allAcked());
	CHECK(r1->chunksChanged == chunks + 1);
	CHECK(r1->generation == 1);
	CHECK(readFile(dir / "dst/src.img") == data);

	// Unchanged: nothing sent, no generation.
	auto r2 = (*push)->round();
	REQUIRE(r2);
	CHECK(r2->chunksChanged == 0);
	CHECK(r2->bytesSent == 0);
	CHECK(r2->generation == 1);

	// 1 % of the chunks changed: exactly those are sent.
	for (uint64_t c : { 3, 77 })
		data[c * kChunk + 5] = ~data[c * kChunk + 5];
	writeFile(dir / "src.img", data);
	auto r3 = (*push)->round();
	REQUIRE(r3);
	CHECK(r3->chunksChanged == 2);
	CHECK(r3->bytesSent == 2 * kChunk);
	CHECK(r3->generation == 2);
	CHECK(readFile(dir / "dst/src.img") == data);

	// A receiver restart: the sender reconnects, gets the hashes from the sidecar, and a
	// change made meanwhile converges.
	receiver.reset();
	data.resize(data.size() - 1000); // the source shrinks
	data[0] = ~data[0];
	writeFile(dir / "src.img", data);
	receiver = std::make_unique<Receiver>(rt, (dir / "dst"), &pool);
	po.links[0] = *parseSyncTarget("r3://" + receiver->address, "src.img");
	po.targets[0] = "r3://" + receiver->address;
	auto push2 = SyncPush::create(rt, pool, po);
	REQUIRE(push2);
	auto r4 = (*push2)->round();
	REQUIRE(r4);
	REQUIRE(r4->allAcked());
	CHECK(r4->chunksChanged == 2); // chunk 0 and the new short last chunk
	CHECK(r4->generation == 3);
	CHECK(readFile(dir / "dst/src.img") == data);
}

TEST_CASE("with compress, chunks that shrink travel as zstd and the copy is the same", "[sync-loopback]")
{
	r3test::TempDir dir;
	RuntimeOptions ro;
	ro.ioThreads = 2;
	Runtime rt(ro);
	ThreadPool pool(2);
	Receiver receiver(rt, (dir / "dst"), &pool);
	std::filesystem::create_directories(dir / "dst");
	// Half the chunks text-like (they shrink), half random (they do not).
	const uint64_t chunks = 64;
	auto data = r3test::pattern(chunks * kChunk + 100, 3);
	for (uint64_t c = 0; c < chunks; c += 2)
		for (uint64_t i = 0; i < kChunk; ++i)
			data[c * kChunk + i] = std::byte(static_cast<unsigned char>('a' + (i * 7 + c) % 13));
	writeFile(dir / "src.img", data);
	auto link = parseSyncTarget("r3://" + receiver.address, "src.img");
	REQUIRE(link);
	link->compress = true;
	auto push = SyncPush::create(rt, pool, pushTo(dir, receiver.address, *link));
	REQUIRE(push);
	auto r1 = (*push)->round();
	REQUIRE(r1);
	REQUIRE(r1->allAcked());
	CHECK(r1->chunksChanged == chunks + 1);
	CHECK(r1->bytesSent < data.size() * 6 / 10); // the random half and little of the rest
	CHECK(r1->bytesSent > data.size() * 4 / 10);
	CHECK(readFile(dir / "dst/src.img") == data);
	// A change to a compressible chunk converges too.
	data[4 * kChunk + 9] = std::byte{ 0 };
	writeFile(dir / "src.img", data);
	auto r2 = (*push)->round();
	REQUIRE(r2);
	CHECK(r2->chunksChanged == 1);
	CHECK(r2->bytesSent < kChunk / 4);
	CHECK(readFile(dir / "dst/src.img") == data);
}

TEST_CASE("a silent destination does not hold up the rounds to the others", "[sync-loopback]")
{
	r3test::TempDir dir;
	RuntimeOptions ro;
	ro.ioThreads = 2;
	Runtime rt(ro);
	ThreadPool pool(2);
	std::filesystem::create_directories(dir / "dst");
	Receiver receiver(rt, dir / "dst", &pool);
	// A blackhole: it listens, the kernel completes the connection, nobody ever answers.
	UniqueFd hole(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	REQUIRE(hole.isValid());
	sockaddr_in addr{};
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	REQUIRE(::bind(hole.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
	REQUIRE(::listen(hole.get(), 4) == 0);
	socklen_t len = sizeof addr;
	REQUIRE(::getsockname(hole.get(), reinterpret_cast<sockaddr *>(&addr), &len) == 0);
	std::string holeAddress = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

	auto data = r3test::pattern(20 * kChunk, 4);
	writeFile(dir / "src.img", data);
	SyncPushOptions po;
	po.source = dir / "src.img";
	po.targets = { "r3://" + receiver.address, "r3://" + holeAddress };
	po.links = { *parseSyncTarget(po.targets[0], "src.img"), *parseSyncTarget(po.targets[1], "src.img") };
	// Also how long the push takes to end: a connect under way runs to its timeout.
	const auto silence = std::chrono::seconds(6);
	po.links[1].connectTimeout = silence;
	po.chunk = kChunk;
	po.lagWait = std::chrono::milliseconds(100);
	auto push = SyncPush::create(rt, pool, po);
	REQUIRE(push);

	auto started = std::chrono::steady_clock::now();
	auto r1 = (*push)->round();
	REQUIRE(r1);
	CHECK(r1->destinations[0].error == 0);
	CHECK(r1->destinations[0].ackedGeneration == 1);
	CHECK(r1->destinations[1].lagging);
	CHECK(r1->destinations[1].error == EINPROGRESS);
	CHECK_FALSE(r1->allAcked());
	CHECK(readFile(dir / "dst/src.img") == data);

	// The next round reaches the healthy one while the silent one is still on round 1.
	data[5 * kChunk] = ~data[5 * kChunk];
	writeFile(dir / "src.img", data);
	auto r2 = (*push)->round();
	REQUIRE(r2);
	CHECK(r2->destinations[0].ackedGeneration == 2);
	CHECK(r2->destinations[0].chunksChanged == 1);
	CHECK(r2->destinations[1].lagging);
	CHECK(readFile(dir / "dst/src.img") == data);
	// Both rounds well inside the silence a round waiting on every destination would sit out.
	CHECK(std::chrono::steady_clock::now() - started < silence / 2);
}

TEST_CASE("a wrong token is a refusal, not retried", "[sync-loopback]")
{
	r3test::TempDir dir;
	Runtime rt;
	ThreadPool pool(1);
	std::filesystem::create_directories(dir / "dst");
	std::string tokenFile = dir / "token";
	{
		std::ofstream(tokenFile) << "the-right-token-1234\n";
		std::filesystem::permissions(tokenFile, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
	}
	Receiver receiver(rt, dir / "dst", &pool, tokenFile);
	writeFile(dir / "src.img", r3test::pattern(2 * kChunk, 3));
	SyncPushOptions po;
	po.source = dir / "src.img";
	po.targets = { "r3://" + receiver.address };
	po.links = { *parseSyncTarget(po.targets[0], "src.img") };
	po.links[0].token = "a-wrong-token-5678";
	po.chunk = kChunk;
	po.attempts = 5;
	po.backoff = std::chrono::seconds(2); // a retry would show in the round's time
	auto push = SyncPush::create(rt, pool, po);
	REQUIRE(push);
	auto r = (*push)->round();
	REQUIRE(r);
	const auto &d = r->destinations[0];
	CHECK(d.error == EACCES);
	CHECK(d.kind == SyncErrorKind::Auth);
	CHECK(d.refused());
	CHECK(r->refusal() == &d);
	CHECK_THAT(d.message, Catch::Contains("token"));
	CHECK(r->seconds < std::chrono::duration<double>(po.backoff).count());
	CHECK_THAT(r->json(), Catch::Contains("\"error_kind\":\"auth\""));
	// Later rounds report it again without knocking.
	auto r2 = (*push)->round();
	REQUIRE(r2);
	CHECK(r2->destinations[0].refused());
	CHECK(r2->seconds < std::chrono::duration<double>(po.backoff).count());
}

TEST_CASE("connect errors are told apart: refusals from the network's", "[sync-loopback]")
{
	CHECK(connectErrorKind(EACCES) == SyncErrorKind::Auth);
	CHECK(connectErrorKind(EPROTO) == SyncErrorKind::Tls);
	CHECK(connectErrorKind(EPROTONOSUPPORT) == SyncErrorKind::Version);
	for (int e : { ECONNREFUSED, ECONNRESET, ETIMEDOUT, EHOSTUNREACH, ENETUNREACH, EPIPE, EBUSY })
		CHECK(connectErrorKind(e) == SyncErrorKind::Transient);
	CHECK(std::string(syncErrorKindName(SyncErrorKind::Version)) == "version");
}

TEST_CASE("pushes into a backend target: memory and file", "[sync-loopback]")
{
	for (std::string scheme : { "memory", "file" }) {
		DYNAMIC_SECTION(scheme)
		{
			r3test::TempDir dir;
			Runtime rt;
			ThreadPool pool(2);
			std::string uri = scheme == "memory" ? "memory:4M" : "file:" + std::string(dir / "target.img") + "?size=4M";
			auto target = openBackend(uri, &rt);
			REQUIRE(target);
			Receiver receiver(rt, "", &pool, "", *target);
			auto data = r3test::pattern(20 * kChunk + 100, 6); // smaller than the target
			writeFile(dir / "src.img", data);
			SyncPushOptions po;
			po.source = dir / "src.img";
			po.targets = { "r3://" + receiver.address };
			po.links = { *parseSyncTarget(po.targets[0], "src.img") };
			po.chunk = kChunk;
			po.backoff = std::chrono::milliseconds(10);
			auto push = SyncPush::create(rt, pool, po);
			REQUIRE(push);
			auto r1 = (*push)->round();
			REQUIRE(r1);
			REQUIRE(r1->allAcked());
			CHECK(r1->generation == 1);
			std::vector<std::byte> back(data.size());
			REQUIRE((*target)->readAt(back, 0));
			CHECK(back == data);

			data[7 * kChunk] = ~data[7 * kChunk];
			writeFile(dir / "src.img", data);
			auto r2 = (*push)->round();
			REQUIRE(r2);
			CHECK(r2->chunksChanged == 1);
			CHECK(r2->generation == 2);
			REQUIRE((*target)->readAt(back, 0));
			CHECK(back == data);

			// Larger than the target: the generation fails with ENOSPC, the target keeps 2.
			auto big = r3test::pattern(5 << 20, 7);
			writeFile(dir / "src.img", big);
			auto r3 = (*push)->round();
			REQUIRE(r3);
			CHECK(r3->destinations[0].error == ENOSPC);
			CHECK_THAT(r3->destinations[0].message, Catch::Contains("the target holds"));
			CHECK(r3->destinations[0].ackedGeneration == 2);
			REQUIRE((*target)->readAt(back, 0));
			CHECK(back == data);
		}
	}
}

TEST_CASE("a destination that is down is reported and the push fails", "[sync-loopback]")
{
	r3test::TempDir dir;
	Runtime rt;
	ThreadPool pool(1);
	writeFile(dir / "src.img", r3test::pattern(kChunk, 1));
	SyncPushOptions po;
	po.source = dir / "src.img";
	po.targets = { "r3://127.0.0.1:1" };
	po.links = { *parseSyncTarget("r3://127.0.0.1:1/x", "src.img") };
	po.chunk = kChunk;
	po.attempts = 2;
	po.backoff = std::chrono::milliseconds(10);
	auto push = SyncPush::create(rt, pool, po);
	REQUIRE(push);
	auto r = (*push)->round();
	REQUIRE(r);
	CHECK_FALSE(r->allAcked());
	CHECK(r->destinations[0].error != 0);
	CHECK_THAT(r->destinations[0].message, Catch::Contains("cannot connect"));
	CHECK(r->destinations[0].kind == SyncErrorKind::Transient);
	CHECK_FALSE(r->refusal());
	CHECK_FALSE(parseSyncTarget("http://x:1", "a"));
	CHECK_FALSE(parseSyncTarget("r3://x:1/.hidden", "a"));
}
