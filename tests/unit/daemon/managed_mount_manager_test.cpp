// The managed path of MountManager with an attach that serves no kernel device, so it runs
// where nbd.ko is missing: validation before anything opens, status and Sync(), the push
// at unmount (or not, with discard-dirty), the journal and restore() after a restart.
#include "mount_manager.hpp"

#include <fstream>
#include <optional>

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "config.hpp"
#include "errors.hpp"
#include "test_support.hpp"

using namespace r3mapd;

namespace {

class Recorder final : public MountObserver
{
public:
	void mountAdded(const MountInfo &info) override { events.push_back("added " + info.id); }
	void mountChanged(const MountInfo &info) override
	{
		events.push_back("changed " + info.id + " " + stateName(info.state));
	}
	void mountRemoved(const std::string &id) override { events.push_back("removed " + id); }
	std::vector<std::string> events;
};

// Stands in for the kernel device: what the manager attached is the region's top(). Its
// close() flushes as the kernel's does (a FLUSH kicks the region's pusher), unless told
// not to, so a test can tell the manager's own push from that.
class FakeDevice final : public r3d::mount::Mount
{
public:
	FakeDevice(std::shared_ptr<r3d::ReadWriterAt> top, const bool &flush) : top_(std::move(top)), flush_(flush) {}
	r3d::mount::MountKind kind() const override { return r3d::mount::MountKind::Managed; }
	std::string path() const override { return "/dev/nbd9"; }
	uint64_t size() const override { return top_->size(); }
	r3d::ResultMsg<r3d::UniqueFd> openFd(int) override { return r3d::fail(ENODEV, "not a real device"); }
	r3d::Counters counters() const override { return {}; }
	bool serving() const override { return true; }
	r3d::ResultMsg<void> close(bool) override
	{
		if (!flush_)
			return {};
		if (auto r = top_->sync(); !r)
			return r3d::fail(r.error(), "flush failed");
		return {};
	}

private:
	std::shared_ptr<r3d::ReadWriterAt> top_;
	const bool &flush_; ///< read at close()
};

struct Fixture {
	r3test::TempDir dir;
	Config config;
	Recorder events;
	std::unique_ptr<StateStore> store;
	int attaches = 0;
	bool flushOnClose = true;
	std::shared_ptr<r3d::ReadWriterAt> top; ///< what the last attach got
	std::optional<MountManager> manager;

	Fixture()
	{
		store = std::move(*StateStore::open(dir / "state"));
		std::ofstream(dir / "remote.img").close();
		start();
	}

	/// A new daemon on the same state directory; the old one goes as if killed.
	void start()
	{
		top.reset();
		manager.reset();
		AttachFn attach = [this](AttachParams params) -> r3d::ResultMsg<std::unique_ptr<r3d::mount::Mount>> {
			++attaches;
			REQUIRE(params.region);
			top = params.backend;
			return std::unique_ptr<r3d::mount::Mount>(std::make_unique<FakeDevice>(params.backend, flushOnClose));
		};
		manager.emplace(config, attach, events, *store);
	}

	std::string remote() const { return "file:" + dir / "remote.img" + "?size=1M"; }

	MountRequest managed(std::map<std::string, std::string> options, uid_t uid = 0) const
	{
		MountRequest r;
		r.backendUri = remote();
		r.callerUid = uid;
		r.managed.emplace();
		for (const auto &[key, value] : options)
			REQUIRE(r.managed->set(key, value));
		return r;
	}

	void write(uint8_t value, uint64_t offset, size_t length)
	{
		std::vector<std::byte> buf(length, std::byte{ value });
		REQUIRE(top->writeAt(buf, offset));
	}

	uint8_t remoteByte(uint64_t offset) const
	{
		std::ifstream in(dir / "remote.img", std::ios::binary);
		in.seekg(static_cast<std::streamoff>(offset));
		return static_cast<uint8_t>(in.get());
	}
};

r3d::Error mountError(Fixture &f, const MountRequest &r)
{
	auto m = f.manager->mount(r);
	REQUIRE_FALSE(m);
	return m.error();
}

} // namespace

TEST_CASE("bad managed requests are refused before anything is opened or attached", "[managed]")
{
	Fixture f;
	auto r = f.managed({});
	r.readOnly = true;
	CHECK(mountError(f, r).code == Errc::InvalidArgument);
	r = f.managed({});
	r.chunkSize = 65536;
	CHECK_THAT(mountError(f, r).message, Catch::Contains("chunk-size"));
	// A cache the daemon cannot create or write, and paths only root may name.
	std::ofstream(f.dir / "file").close();
	auto e = mountError(f, f.managed({ { "cache", f.dir / "file/cache" } }));
	CHECK(e.code == Errc::InvalidArgument);
	CHECK_THAT(e.message, Catch::Contains("not a directory", Catch::CaseSensitive::No));
	e = mountError(f, f.managed({ { "cache", f.dir / "missing/cache" } }));
	CHECK(e.code == Errc::InvalidArgument);
	CHECK_THAT(e.message, Catch::Contains("cannot create it"));
	CHECK(mountError(f, f.managed({ { "cache", f.dir / "c" } }, 1000)).code == Errc::NotPermitted);
	CHECK(mountError(f, f.managed({ { "order", "hot:" + f.dir / "hot" } }, 1000)).code == Errc::NotPermitted);
	CHECK(mountError(f, f.managed({ { "order", "hot:relative" } })).code == Errc::InvalidArgument);
	CHECK(mountError(f, f.managed({ { "cache", "a/b" } })).code == Errc::InvalidArgument);
	// The remote's rules as for a direct mount.
	auto bad = f.managed({});
	bad.backendUri = "file:relative?size=1M";
	CHECK(mountError(f, bad).code == Errc::InvalidArgument);
	CHECK(f.attaches == 0);
	CHECK(f.events.events.empty());
	CHECK(f.manager->list().empty());
	CHECK_FALSE(std::filesystem::exists(f.dir / "state/caches"));
}

TEST_CASE("a managed mount: status, Sync, the journal, restore after a restart, the push at unmount", "[managed]")
{
	Fixture f;
	auto info = f.manager->mount(f.managed({ { "cache", "disk" }, { "push-interval", "1h" }, { "pull-workers", "2" } }));
	REQUIRE(info);
	CHECK(info->kind == r3d::mount::MountKind::Managed);
	CHECK(info->chunkSize == 65536);
	CHECK(info->managedOptions.at("chunk-size") == "65536");
	CHECK(info->managedOptions.at("cache") == "disk");
	CHECK(f.attaches == 1);

	f.write(7, 0, 4096);
	auto s = f.manager->managedStatus("1");
	REQUIRE(s);
	CHECK(s->dirtyBytes == 65536);
	CHECK(s->cache == f.dir / "state/caches/disk");
	CHECK_FALSE(s->resumed);
	REQUIRE(f.manager->sync("1"));
	CHECK(f.manager->managedStatus("1")->dirtyBytes == 0);
	CHECK(f.remoteByte(0) == 7);

	// Journaled: a managed spec with the options as given and the chunk it resolved to.
	auto specs = f.store->load("mounts");
	REQUIRE(specs.size() == 1);
	CHECK(specs[0].second["kind"] == "managed");
	CHECK(specs[0].second["managed"]["cache"] == "disk");
	CHECK(specs[0].second["managed"]["chunk-size"] == "65536");
	CHECK(specs[0].second["region_size"] == 1u << 20);

	// A write nobody pushed, then the daemon goes as if killed: no flush, no push.
	f.write(9, 65536, 100);
	f.flushOnClose = false;
	f.start();
	f.flushOnClose = true;
	CHECK(f.manager->list().empty());
	f.manager->restore();
	auto back = f.manager->find("1");
	REQUIRE(back);
	CHECK(back->state == MountState::Ready);
	CHECK(back->kind == r3d::mount::MountKind::Managed);
	CHECK(back->managedOptions == info->managedOptions);
	s = f.manager->managedStatus("1");
	REQUIRE(s);
	CHECK(s->resumed);
	CHECK(s->dirtyBytes == 65536);
	CHECK(f.remoteByte(65536) == 0);
	// New mounts never take the restored id.
	auto second = f.manager->mount(f.managed({ { "cache", "other" } }));
	REQUIRE(second);
	CHECK(second->id == "2");

	// Unmount pushes first, then forgets the spec.
	f.top.reset();
	REQUIRE(f.manager->unmount("1"));
	CHECK(f.remoteByte(65536) == 9);
	CHECK_FALSE(f.manager->find("1"));
	REQUIRE(f.store->load("mounts").size() == 1);
	CHECK(f.store->load("mounts")[0].first == "2");
}

TEST_CASE("discard-dirty skips the push; shutdown pushes and keeps the spec", "[managed]")
{
	Fixture f;
	f.flushOnClose = false;
	REQUIRE(f.manager->mount(f.managed({ { "cache", "disk" }, { "push-interval", "1h" } })));
	f.write(5, 0, 10);
	f.top.reset();
	REQUIRE(f.manager->unmount("1", UnmountOptions{ true }));
	CHECK(f.remoteByte(0) == 0);
	CHECK(f.store->load("mounts").empty());

	// The cache kept the dirty chunk for its next mount.
	REQUIRE(f.manager->mount(f.managed({ { "cache", "disk" }, { "push-interval", "1h" } })));
	CHECK(f.manager->managedStatus("2")->dirtyBytes == 65536);
	f.top.reset();
	f.manager->unmountAll();
	CHECK(f.remoteByte(0) == 5);
	CHECK(f.manager->list().empty());
	REQUIRE(f.store->load("mounts").size() == 1);

	f.start();
	f.manager->restore();
	REQUIRE(f.manager->find("2"));
	CHECK(f.manager->find("2")->state == MountState::Ready);
	CHECK(f.manager->managedStatus("2")->dirtyBytes == 0);
}

TEST_CASE("a managed mount whose restore fails stays listed, failed, until Unmount", "[managed]")
{
	Fixture f;
	REQUIRE(f.manager->mount(f.managed({ { "cache", "disk" } })));
	f.top.reset();
	f.manager.reset();
	std::filesystem::remove(f.dir / "remote.img");
	std::filesystem::create_directory(f.dir / "remote.img"); // the remote no longer opens
	f.start();
	f.manager->restore();
	auto m = f.manager->find("1");
	REQUIRE(m);
	CHECK(m->state == MountState::Failed);
	CHECK_THAT(m->stateMessage, Catch::Contains("restore failed"));
	CHECK_FALSE(f.manager->managedStatus("1"));
	CHECK(f.manager->sync("1").error().code == Errc::Busy);
	// Still journaled for the next start; Unmount forgets it.
	CHECK(f.store->load("mounts").size() == 1);
	f.manager->unmountAll();
	CHECK(f.store->load("mounts").size() == 1);
	f.start();
	f.manager->restore();
	REQUIRE(f.manager->unmount("1"));
	CHECK(f.store->load("mounts").empty());
}
