// Live migration over real sockets in one process: a Seeder and Leechers on loopback (some
// through a TcpProxy that cuts the link), a writer thread dirtying the source while
// pre-copy runs. After the handover the leecher's bytes equal the seeder's final bytes.

#include <atomic>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include <catch2/catch.hpp>

#include "base/runtime.hpp"
#include "migration/control_link.hpp"
#include "migration/leecher.hpp"
#include "migration/seeder.hpp"
#include "migration/wire.hpp"
#include "rpc_test_support.hpp"
#include "tcp_proxy.hpp"

using namespace r3d;
using namespace r3d::migration;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t kSize = 16 << 20;
constexpr uint64_t kChunk = 64 << 10;

struct SeederFixture {
	Runtime runtime{ RuntimeOptions{ 1, 8, {} } };
	std::shared_ptr<ReadWriterAt> source;
	std::unique_ptr<Seeder> seeder;
	std::string port;

	explicit SeederFixture(SeederOptions options = {})
	{
		source = r3test::memoryBackend(kSize);
		std::vector<std::byte> fill(kSize);
		std::mt19937_64 rng(1);
		for (auto &b : fill)
			b = std::byte(rng());
		REQUIRE(source->writeAt(fill, 0));
		options.chunkSize = kChunk;
		auto s = Seeder::create(runtime, source, options);
		REQUIRE(s);
		seeder = std::move(*s);
		auto address = seeder->listen("127.0.0.1:0");
		REQUIRE(address);
		port = address->substr(address->rfind(':') + 1);
	}

	LeecherOptions leecherOptions(const std::string &viaPort = "") const
	{
		LeecherOptions o;
		o.host = "127.0.0.1";
		o.port = viaPort.empty() ? port : viaPort;
		o.migrationId = seeder->migrationId();
		o.convergence.downtimeBudget = 50ms;
		o.resumeTimeout = 20s;
		o.postCopyTimeout = 10s;
		o.messageTimeout = 5s;
		o.connectTimeout = 2s;
		return o;
	}

	std::vector<std::byte> sourceBytes() const
	{
		std::vector<std::byte> out(kSize);
		REQUIRE(source->readAt(out, 0));
		return out;
	}
};

std::vector<std::byte> readAll(ReadWriterAt &region)
{
	std::vector<std::byte> out(region.size());
	auto r = region.readAt(out, 0);
	REQUIRE(r);
	return out;
}

/// Writes random 4 KiB blocks through the seeder's front until it refuses (the handover).
struct Writer {
	std::shared_ptr<ReadWriterAt> front;
	std::atomic<bool> stop{ false };
	std::atomic<uint64_t> writes{ 0 };
	std::atomic<int> lastError{ 0 };
	std::thread thread;

	explicit Writer(std::shared_ptr<ReadWriterAt> f, std::chrono::microseconds pause = 200us) : front(std::move(f))
	{
		thread = std::thread([this, pause] {
			std::mt19937_64 rng(7);
			std::vector<std::byte> block(4096);
			while (!stop) {
				for (auto &b : block)
					b = std::byte(rng());
				uint64_t off = (rng() % (kSize / 4096)) * 4096;
				auto r = front->writeAt(block, off);
				if (!r) {
					lastError = r.error().value();
					return;
				}
				writes++;
				std::this_thread::sleep_for(pause);
			}
		});
	}
	~Writer() { join(); }
	void join()
	{
		stop = true;
		if (thread.joinable())
			thread.join();
	}
};

} // namespace

TEST_CASE("a region migrates while written: the leecher ends with the seeder's final bytes")
{
	SeederFixture f;
	Writer writer(f.seeder->front());
	auto leecher = Leecher::connect(f.runtime, f.leecherOptions());
	REQUIRE(leecher);
	REQUIRE((*leecher)->wait(60s));
	writer.join();
	CHECK(writer.writes > 0);
	CHECK(writer.lastError == EROFS); // the writer was stopped by the handover, not by us
	CHECK(f.seeder->handedOver());
	CHECK((*leecher)->owner());
	auto p = (*leecher)->progress();
	CHECK(p.phase == Phase::Complete);
	CHECK(p.downtime.count() > 0);
	CHECK(p.transferredBytes >= kSize);
	// The seeder never writes after the commit.
	std::vector<std::byte> block(4096);
	auto w = f.seeder->front()->writeAt(block, 0);
	REQUIRE_FALSE(w);
	CHECK(w.error().value() == EROFS);
	CHECK(readAll(*(*leecher)->region()) == f.sourceBytes());
	// The new owner writes.
	CHECK((*leecher)->region()->writeAt(block, 0));
	CHECK(f.seeder->waitComplete(5s));
}

TEST_CASE("one-pass mode (max rounds 0) and a manual finalize")
{
	SeederFixture f;
	auto o = f.leecherOptions();
	o.autoFinalize = false;
	Writer writer(f.seeder->front(), 1ms);
	auto leecher = Leecher::connect(f.runtime, o);
	REQUIRE(leecher);
	std::this_thread::sleep_for(500ms);
	CHECK((*leecher)->phase() == Phase::PreCopy); // no auto finalize
	CHECK((*leecher)->region()->size() == kSize);
	(*leecher)->finalize();
	REQUIRE((*leecher)->wait(30s));
	writer.join();
	CHECK(readAll(*(*leecher)->region()) == f.sourceBytes());
}

TEST_CASE("a refused finalize is asked again with a growing pause, then goes through")
{
	// The app says no three times: the leecher asks again after 100, 200, 400 ms, not 10 times a
	// second. The pauses are lower bounds (load only stretches them), so this cannot flake.
	std::mutex mutex;
	std::vector<std::chrono::steady_clock::time_point> asks;
	SeederOptions so;
	so.onSuspend = [&]() -> ResultMsg<void> {
		std::lock_guard lock(mutex);
		asks.push_back(std::chrono::steady_clock::now());
		if (asks.size() <= 3)
			return fail(ECANCELED, "the app refused to pause");
		return {};
	};
	SeederFixture f(so);
	auto o = f.leecherOptions();
	o.autoFinalize = false;
	auto leecher = Leecher::connect(f.runtime, o);
	REQUIRE(leecher);
	(*leecher)->finalize();
	REQUIRE((*leecher)->wait(60s));
	CHECK((*leecher)->owner());
	std::lock_guard lock(mutex);
	REQUIRE(asks.size() == 4);
	CHECK(asks[1] - asks[0] >= 100ms);
	CHECK(asks[2] - asks[1] >= 200ms);
	CHECK(asks[3] - asks[2] >= 400ms);
	CHECK(readAll(*(*leecher)->region()) == f.sourceBytes());
}

TEST_CASE("a link cut during pre-copy resumes and loses nothing")
{
	SeederFixture f;
	r3test::TcpProxy proxy(f.port);
	proxy.setRate(4 << 20); // the first pass takes about 4 s
	Writer writer(f.seeder->front());
	auto leecher = Leecher::connect(f.runtime, f.leecherOptions(proxy.port()));
	REQUIRE(leecher);
	std::this_thread::sleep_for(1s);
	CHECK((*leecher)->phase() == Phase::Tracking);
	proxy.setDown(true);
	std::this_thread::sleep_for(1500ms);
	proxy.setDown(false);
	proxy.setRate(0);
	REQUIRE((*leecher)->wait(60s));
	writer.join();
	CHECK(writer.lastError == EROFS);
	CHECK(readAll(*(*leecher)->region()) == f.sourceBytes());
}

TEST_CASE("post-copy reads wait through a cut, then the migration completes")
{
	SeederFixture f;
	r3test::TcpProxy proxy(f.port);
	auto o = f.leecherOptions(proxy.port());
	o.autoFinalize = false;
	o.pullRate = 1 << 20; // background post-copy is slow: reads go on demand
	auto leecher = Leecher::connect(f.runtime, o);
	REQUIRE(leecher);
	// Let the first pass end, then dirty 64 chunks and finalize: they are post-copied.
	for (int i = 0; i < 200 && (*leecher)->phase() == Phase::Tracking; ++i)
		std::this_thread::sleep_for(100ms);
	REQUIRE((*leecher)->phase() == Phase::PreCopy);
	std::vector<std::byte> block(kChunk, std::byte{ 0x5a });
	for (uint64_t i = 0; i < 64; ++i)
		REQUIRE(f.seeder->front()->writeAt(block, (i * 3) * kChunk));
	(*leecher)->finalize();
	for (int i = 0; i < 100 && (*leecher)->phase() != Phase::PostCopy; ++i)
		std::this_thread::sleep_for(20ms);
	REQUIRE((*leecher)->phase() == Phase::PostCopy);
	proxy.setDown(true);
	std::vector<std::byte> got(kChunk);
	std::atomic<bool> readDone{ false };
	Result<void> read;
	std::thread reader([&] {
		read = (*leecher)->region()->readAt(got, 189 * kChunk); // chunk 63 * 3, dirtied
		readDone = true;
	});
	std::this_thread::sleep_for(1s);
	CHECK_FALSE(readDone); // it waits for the link
	proxy.setDown(false);
	reader.join();
	REQUIRE(read);
	CHECK(got == block);
	REQUIRE((*leecher)->wait(60s));
	CHECK(readAll(*(*leecher)->region()) == f.sourceBytes());
}

TEST_CASE("a post-copy read fails with EIO once the seeder stayed away for the timeout")
{
	SeederFixture f;
	r3test::TcpProxy proxy(f.port);
	auto o = f.leecherOptions(proxy.port());
	o.autoFinalize = false;
	o.pullRate = 1 << 20; // slow enough that chunk 190 is still missing when the link goes down
	o.postCopyTimeout = 1s;
	auto leecher = Leecher::connect(f.runtime, o);
	REQUIRE(leecher);
	for (int i = 0; i < 600 && (*leecher)->phase() == Phase::Tracking; ++i)
		std::this_thread::sleep_for(100ms);
	std::vector<std::byte> block(kChunk, std::byte{ 0x33 });
	for (uint64_t i = 0; i < 64; ++i)
		REQUIRE(f.seeder->front()->writeAt(block, (i * 3 + 1) * kChunk));
	(*leecher)->finalize();
	for (int i = 0; i < 100 && (*leecher)->phase() != Phase::PostCopy; ++i)
		std::this_thread::sleep_for(20ms);
	REQUIRE((*leecher)->phase() == Phase::PostCopy);
	proxy.setDown(true);
	std::vector<std::byte> got(kChunk);
	auto started = std::chrono::steady_clock::now();
	auto read = (*leecher)->region()->readAt(got, 190 * kChunk); // chunk 63 * 3 + 1
	REQUIRE_FALSE(read);
	CHECK(read.error().value() == EIO);
	CHECK(std::chrono::steady_clock::now() - started >= 900ms);
	proxy.setDown(false);
	REQUIRE((*leecher)->wait(60s));
	CHECK(readAll(*(*leecher)->region()) == f.sourceBytes());
}

TEST_CASE("two leechers: one takes ownership, the other ends as a read-only copy")
{
	SeederFixture f;
	auto oa = f.leecherOptions();
	oa.leecherId = "a";
	oa.autoFinalize = false;
	auto ob = f.leecherOptions();
	ob.leecherId = "b";
	ob.autoFinalize = false;
	Writer writer(f.seeder->front(), 1ms);
	auto a = Leecher::connect(f.runtime, oa);
	REQUIRE(a);
	auto b = Leecher::connect(f.runtime, ob);
	REQUIRE(b);
	std::this_thread::sleep_for(1s);
	(*a)->finalize();
	REQUIRE((*a)->wait(30s));
	writer.join();
	(*b)->finalize();
	REQUIRE((*b)->wait(30s));
	CHECK((*a)->owner());
	CHECK_FALSE((*b)->owner());
	auto final = f.sourceBytes();
	CHECK(readAll(*(*a)->region()) == final);
	CHECK(readAll(*(*b)->region()) == final);
	std::vector<std::byte> block(4096);
	auto wb = (*b)->region()->writeAt(block, 0);
	REQUIRE_FALSE(wb);
	CHECK(wb.error().value() == EROFS);
	CHECK((*a)->region()->writeAt(block, 0));
}

TEST_CASE("the seeder refuses bad hellos, bad messages and stale epochs")
{
	SeederFixture f;
	auto link = [&](const std::string &id) {
		ControlLinkOptions o;
		o.host = "127.0.0.1";
		o.port = f.port;
		o.migrationId = id;
		auto l = ControlLink::create(f.runtime, o);
		REQUIRE(l);
		return std::move(*l);
	};
	auto hello = [&](ControlLink &l, MigrationHello h) {
		REQUIRE(l.send(MessageType::Hello, encode(h)));
		auto m = l.receive(5s);
		REQUIRE(m);
		REQUIRE(m->type == MessageType::HelloReply);
		auto reply = decodeMigrationHelloReply(m->bytes());
		REQUIRE(reply);
		return *reply;
	};
	std::string id = f.seeder->migrationId();

	SECTION("no such migration")
	{
		auto l = link("nope");
		auto c = l->connect();
		REQUIRE_FALSE(c);
		CHECK(c.error().code.value() == ENOENT);
	}
	SECTION("a region of another size or chunk")
	{
		auto l = link(id);
		REQUIRE(l->connect());
		auto reply = hello(*l, MigrationHello{ kMigrationVersion, id, "x", kSize * 2, kChunk, 0 });
		CHECK(reply.error != 0);
	}
	SECTION("an epoch newer than the seeder's")
	{
		auto l = link(id);
		REQUIRE(l->connect());
		auto reply = hello(*l, MigrationHello{ kMigrationVersion, id, "x", 0, 0, 0 });
		REQUIRE(reply.error == 0);
		l->close();
		auto l2 = link(id);
		REQUIRE(l2->connect());
		auto again = hello(*l2, MigrationHello{ kMigrationVersion, id, "x", 0, 0, 7 });
		CHECK(again.error != 0);
	}
	SECTION("a message before the hello, or garbage, closes the connection")
	{
		auto l = link(id);
		REQUIRE(l->connect());
		REQUIRE(l->send(MessageType::RoundRequest, encode(RoundRequest{ 0 })));
		CHECK_FALSE(l->receive(5s));
		auto l2 = link(id);
		REQUIRE(l2->connect());
		(void)hello(*l2, MigrationHello{ kMigrationVersion, id, "y", 0, 0, 0 });
		REQUIRE(l2->send(MessageType::RoundRequest, std::string("\xff\xff\xff\xff", 4)));
		CHECK_FALSE(l2->receive(5s));
	}
	SECTION("a commit of a stale epoch is refused and the seeder keeps writing")
	{
		auto l = link(id);
		REQUIRE(l->connect());
		auto reply = hello(*l, MigrationHello{ kMigrationVersion, id, "z", 0, 0, 0 });
		REQUIRE(reply.error == 0);
		REQUIRE(l->send(MessageType::FinalizeCommit, encode(FinalizeCommit{ id, "z", 5 })));
		auto m = l->receive(5s);
		REQUIRE(m);
		REQUIRE(m->type == MessageType::FinalizeCommitAck);
		auto ack = decodeFinalizeCommitAck(m->bytes());
		REQUIRE(ack);
		CHECK(ack->error != 0);
		CHECK_FALSE(f.seeder->handedOver());
		std::vector<std::byte> block(4096);
		CHECK(f.seeder->front()->writeAt(block, 0));
	}
	SECTION("a finalize of a stale epoch is refused")
	{
		auto l = link(id);
		REQUIRE(l->connect());
		(void)hello(*l, MigrationHello{ kMigrationVersion, id, "w", 0, 0, 0 });
		REQUIRE(l->send(MessageType::FinalizeRequest, encode(FinalizeRequest{ id, "w", 3, 0 })));
		auto m = l->receive(5s);
		REQUIRE(m);
		auto ack = decodeFinalizeAck(m->bytes());
		REQUIRE(ack);
		CHECK(ack->error == ESTALE);
	}
	SECTION("a leecher killed in its handover: the seeder takes ownership back")
	{
		auto l = link(id);
		REQUIRE(l->connect());
		auto reply = hello(*l, MigrationHello{ kMigrationVersion, id, "k", 0, 0, 0 });
		REQUIRE(l->send(MessageType::FinalizeRequest, encode(FinalizeRequest{ id, "k", reply.epoch, 0 })));
		auto m = l->receive(5s);
		REQUIRE(m);
		auto ack = decodeFinalizeAck(m->bytes());
		REQUIRE(ack);
		REQUIRE(ack->error == 0);
		l->close(); // gone before the commit
		std::vector<std::byte> block(4096);
		CHECK(f.seeder->front()->writeAt(block, 0)); // unlocked again, not handed over
		CHECK_FALSE(f.seeder->handedOver());
	}
}

TEST_CASE("a wrong token is refused before anything else")
{
	r3test::TempDir dir;
	std::string tokenFile = dir / "token";
	{
		FILE *fp = std::fopen(tokenFile.c_str(), "w");
		std::fputs("sesame-sesame-sesame\n", fp);
		std::fclose(fp);
	}
	SeederOptions so;
	so.server.tokenFile = tokenFile;
	SeederFixture f(so);
	auto o = f.leecherOptions();
	o.token = "wrong";
	auto l = Leecher::connect(f.runtime, o);
	REQUIRE_FALSE(l);
	CHECK(l.error().code.value() == EACCES);
	o.token = "sesame-sesame-sesame";
	auto ok = Leecher::connect(f.runtime, o);
	REQUIRE(ok);
	REQUIRE((*ok)->wait(30s));
}
