#include "sync_manager.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>

#include "errors.hpp"
#include "service/request_options.hpp"

using namespace r3mapd;
using service::OptionMap;

namespace {

struct Observer : SyncObserver {
	std::vector<std::string> added, removed;
	void syncAdded(const SyncInfo &info) override { added.push_back(info.id); }
	void syncRemoved(const std::string &id) override { removed.push_back(id); }
};

struct TempDir {
	std::filesystem::path path;
	TempDir()
	{
		char name[] = "/tmp/r3syncmgr-XXXXXX";
		path = ::mkdtemp(name);
	}
	~TempDir() { std::filesystem::remove_all(path); }
};

std::string slurp(const std::filesystem::path &p)
{
	std::ifstream in(p, std::ios::binary);
	return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeRandom(const std::filesystem::path &p, size_t bytes, uint32_t seed)
{
	std::mt19937 rng(seed);
	std::string data(bytes, '\0');
	for (auto &c : data)
		c = static_cast<char>(rng());
	std::ofstream(p, std::ios::binary) << data;
}

Errc errc(const r3d::Error &e)
{
	return classify(e.code);
}

} // namespace

TEST_CASE("SyncManager: serve, push, change, SyncNow, stop", "[sync]")
{
	TempDir tmp;
	std::filesystem::create_directory(tmp.path / "dst");
	writeRandom(tmp.path / "src", (4 << 20) + 1234, 1);
	Observer observer;
	SyncManager syncs(observer, nullptr);

	SyncServeRequest serve;
	serve.listen = "127.0.0.1:0";
	serve.dir = tmp.path / "dst";
	serve.callerUid = 0;
	auto served = syncs.serve(serve);
	REQUIRE(served);
	CHECK(served->role == "serve");
	CHECK(syncs.status(served->id)->state == "serving");

	SyncStartRequest start;
	start.source = tmp.path / "src";
	start.destinations = { "r3://" + served->listen + "/copy" };
	start.callerUid = 0;
	auto pushed = syncs.start(start);
	REQUIRE(pushed);
	CHECK(pushed->destinations == std::vector<std::string>{ "r3://" + served->listen + "/copy" });
	// The first round runs at once; SyncNow waits for one that starts after it.
	REQUIRE(syncs.syncNow(pushed->id));
	CHECK(slurp(tmp.path / "src") == slurp(tmp.path / "dst" / "copy"));
	auto s = syncs.status(pushed->id).value();
	CHECK(s.state == "idle");
	CHECK(s.rounds >= 1);
	CHECK(s.lastSync > 0);
	CHECK(s.generation >= 1);
	REQUIRE(s.destinations.size() == 1);
	CHECK(s.destinations[0].state == "ok");
	CHECK(s.destinations[0].lag == 0);

	{
		std::fstream f(tmp.path / "src", std::ios::in | std::ios::out | std::ios::binary);
		f.seekp(3 << 20);
		f << "changed";
	}
	uint64_t before = s.bytesSent;
	REQUIRE(syncs.syncNow(pushed->id));
	CHECK(slurp(tmp.path / "src") == slurp(tmp.path / "dst" / "copy"));
	s = syncs.status(pushed->id).value();
	CHECK(s.bytesSent - before == 1 << 20);
	CHECK(syncs.status(served->id)->generation == s.generation);

	CHECK(errc(syncs.syncNow(served->id).error()) == Errc::NotSupported);
	CHECK(errc(syncs.syncNow("99").error()) == Errc::NotFound);
	REQUIRE(syncs.stop(pushed->id));
	CHECK(errc(syncs.stop(pushed->id).error()) == Errc::NotFound);
	CHECK_FALSE(syncs.status(pushed->id));
	syncs.stopAll();
	CHECK(syncs.list().empty());
	CHECK(observer.added.size() == 2);
	CHECK(observer.removed.size() == 2);
}

TEST_CASE("SyncManager: bad sources, destinations and directories are refused", "[sync]")
{
	TempDir tmp;
	writeRandom(tmp.path / "src", 4096, 2);
	Observer observer;
	SyncManager syncs(observer, [](const std::string &id) -> std::optional<std::string> {
		if (id == "5")
			return std::string(); // attaching
		return std::nullopt;
	});
	auto startError = [&](std::string source, std::vector<std::string> to, uid_t uid = 0) {
		SyncStartRequest r;
		r.source = std::move(source);
		r.destinations = std::move(to);
		r.callerUid = uid;
		auto out = syncs.start(r);
		REQUIRE_FALSE(out);
		return errc(out.error());
	};
	std::string src = tmp.path / "src";
	CHECK(startError(src, { "r3://127.0.0.1:1/x" }, 1000) == Errc::NotPermitted);
	CHECK(startError("relative", { "r3://127.0.0.1:1/x" }) == Errc::InvalidArgument);
	CHECK(startError("7", { "r3://127.0.0.1:1/x" }) == Errc::NotFound);
	CHECK(startError("5", { "r3://127.0.0.1:1/x" }, 1000) == Errc::Busy);
	CHECK(startError("/org/r3map/mounts/5", { "r3://127.0.0.1:1/x" }) == Errc::Busy);
	CHECK(startError(tmp.path / "missing", { "r3://127.0.0.1:1/x" }) == Errc::InvalidArgument);
	CHECK(startError(tmp.path, { "r3://127.0.0.1:1/x" }) == Errc::InvalidArgument);
	CHECK(startError(src, {}) == Errc::InvalidArgument);
	CHECK(startError(src, { "nbd://127.0.0.1:1/x" }) == Errc::InvalidArgument);
	CHECK(startError(src, { "r3://127.0.0.1:1/x?colour=red" }) == Errc::InvalidArgument);
	CHECK(startError(src, { "r3://127.0.0.1:1/.hidden" }) == Errc::InvalidArgument);

	auto serveError = [&](std::string listen, std::string dir, uid_t uid = 0) {
		SyncServeRequest r;
		r.listen = std::move(listen);
		r.dir = std::move(dir);
		r.callerUid = uid;
		auto out = syncs.serve(r);
		REQUIRE_FALSE(out);
		return errc(out.error());
	};
	CHECK(serveError("127.0.0.1:0", tmp.path, 1000) == Errc::NotPermitted);
	CHECK(serveError("127.0.0.1:0", tmp.path / "missing") == Errc::InvalidArgument);
	CHECK(serveError("127.0.0.1:0", src) == Errc::InvalidArgument);
	CHECK(serveError("0.0.0.0:0", tmp.path) == Errc::InvalidArgument);
	CHECK(syncs.list().empty());
	CHECK(observer.added.empty());
}

TEST_CASE("StartSync, ServeSync and StartSyncHub options", "[sync][options]")
{
	auto r = service::syncStartRequest("/f", { "r3://h:1" }, {}).value();
	CHECK(r.interval.count() == 0);
	CHECK(r.chunkSize == 1 << 20);
	r = service::syncStartRequest("/f", {},
				      { { "interval", sdbus::Variant(std::string("5s")) },
					{ "hub", sdbus::Variant(std::string("r3://hub:1")) },
					{ "chunk_size", sdbus::Variant(std::string("64K")) } })
		    .value();
	CHECK(r.interval == std::chrono::seconds(5));
	CHECK(r.hub == "r3://hub:1");
	CHECK(r.chunkSize == 65536);
	CHECK(service::syncStartRequest("/f", {}, { { "interval", sdbus::Variant(uint64_t(250)) } }).value().interval ==
	      std::chrono::milliseconds(250));
	for (const auto &bad : std::vector<OptionMap>{
		     { { "interval", sdbus::Variant(uint64_t(0)) } },
		     { { "interval", sdbus::Variant(UINT64_MAX) } },
		     { { "interval", sdbus::Variant(std::string("2d")) } },
		     { { "interval", sdbus::Variant(true) } },
		     { { "colour", sdbus::Variant(std::string("red")) } },
	     }) {
		auto e = service::syncStartRequest("/f", { "r3://h:1" }, bad);
		REQUIRE_FALSE(e);
		CHECK(e.error().code == Errc::InvalidArgument);
		CHECK_THAT(e.error().message, Catch::Contains("option '" + bad.begin()->first));
	}
	auto s = service::syncServeRequest("127.0.0.1:0", "/d",
					   { { "apply", sdbus::Variant(std::string("rename")) },
					     { "verify", sdbus::Variant(true) },
					     { "token_file", sdbus::Variant(std::string("/t")) } })
			 .value();
	CHECK(s.renameApply);
	CHECK(s.verify);
	CHECK(s.security.tokenFile == "/t");
	CHECK_FALSE(service::syncServeRequest("", "/d", {}));
	CHECK_FALSE(service::syncServeRequest("127.0.0.1:0", "/d", { { "apply", sdbus::Variant(std::string("x")) } }));
	auto h = service::syncHubRequest("127.0.0.1:0", "/c", { "r3://b:1" }, {}).value();
	CHECK(h.hub);
	CHECK(h.destinations.size() == 1);
	CHECK_FALSE(service::syncHubRequest("127.0.0.1:0", "/c", {}, {}));
	CHECK_FALSE(service::syncHubRequest("127.0.0.1:0", "/c", { "r3://b:1" }, { { "apply", sdbus::Variant(std::string("rename")) } }));
}
