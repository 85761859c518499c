#include "mount_manager.hpp"

#include <optional>

#include <fcntl.h>

#include <catch2/catch.hpp>

#include "config.hpp"
#include "errors.hpp"
#include "kernel_attach.hpp"
#include "backends/memory_backend.hpp"

using namespace r3mapd;

namespace {

// Records what the manager announces.
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

r3d::Error mountError(MountManager &m, MountRequest request)
{
	auto r = m.mount(request);
	REQUIRE_FALSE(r);
	return r.error();
}

} // namespace

TEST_CASE("requests are validated before anything is listed", "[mount]")
{
	Config config;
	config.allowedSchemes = { "memory" };
	Recorder events;
	MountManager m(config, kernelAttach(), events);

	auto e = mountError(m, { "memory:1M", std::nullopt, 3000, false });
	CHECK(e.code == Errc::InvalidArgument);
	CHECK_THAT(e.message, Catch::Contains("chunk size 3000"));
	// The daemon is root: nobody else may have it open a local file (see backend_opener_test).
	config.allowedSchemes = { "memory", "file" };
	e = mountError(m, { "file:/etc/shadow", std::nullopt, std::nullopt, false, 65534 });
	CHECK(e.code == Errc::NotPermitted);
	e = mountError(m, { "file:etc/shadow", std::nullopt, std::nullopt, false, 0 });
	CHECK(e.code == Errc::InvalidArgument);
	config.allowedSchemes = { "memory" };
	e = mountError(m, { "memory:1M", std::nullopt, 3000, false });
	CHECK(e.code == Errc::InvalidArgument);
	CHECK_THAT(e.message, Catch::Contains("chunk size 3000"));
	e = mountError(m, { "bogus:1", std::nullopt, std::nullopt, false });
	CHECK(e.code == Errc::BadUri);
	e = mountError(m, { "file:/tmp/x?size=1M", std::nullopt, std::nullopt, false });
	CHECK(e.code == Errc::SchemeNotAllowed);
	e = mountError(m, { "memory:1M", 2u << 20, std::nullopt, false });
	CHECK(e.code == Errc::InvalidArgument);
	CHECK(e.message == "size 2 MiB was asked but backend 'memory:1M' has 1 MiB");
	e = mountError(m, { "memory:1M", 0, std::nullopt, false });
	CHECK(e.code == Errc::InvalidArgument);
	CHECK(events.events.empty());
	CHECK(m.list().empty());
}

TEST_CASE("a failed attach leaves nothing behind", "[mount]")
{
	// An attach that fails as the real one does on a machine without the nbd driver, so
	// the failure path is tested whether or not the module is loaded here.
	Config config;
	Recorder events;
	int attaches = 0;
	AttachFn attach = [&](AttachParams params) -> r3d::ResultMsg<std::unique_ptr<r3d::mount::Mount>> {
		++attaches;
		CHECK(params.backend);
		return fail(Errc::NotSupported, "the nbd driver is not loaded");
	};
	MountManager m(config, attach, events);
	auto e = mountError(m, { "memory:1M", std::nullopt, std::nullopt, false });
	CHECK(attaches == 1);
	CHECK(e.code == Errc::NotSupported);
	CHECK(events.events == std::vector<std::string>{ "added 1", "removed 1" });
	CHECK(m.list().empty());
	CHECK_FALSE(m.find("1"));
}

TEST_CASE("unknown mounts and bad OpenFd flags are refused precisely", "[mount]")
{
	Config config;
	Recorder events;
	MountManager m(config, kernelAttach(), events);
	CHECK(m.unmount("1").error().code == Errc::NotFound);
	CHECK(m.unmount("x").error().code == Errc::NotFound);
	CHECK(m.openFd("1", O_RDWR).error().code == Errc::NotFound);
	auto e = m.openFd("1", O_RDWR | O_CREAT);
	CHECK(e.error().code == Errc::InvalidArgument);
	CHECK_THAT(e.error().message, Catch::Contains("bits OpenFd does not allow: 0x40"));
	CHECK(m.openFd("1", O_ACCMODE).error().code == Errc::InvalidArgument);
	CHECK_FALSE(m.resolve("/dev/nbd0"));
	CHECK_FALSE(m.counters("1"));
}

namespace {

// What a device was asked to do, in order.
struct DeviceLog {
	std::vector<std::string> calls;
	bool destroyed = false;
};

// Behaves like a DirectMount whose filesystem is still mounted: close() answers EBUSY
// and leaves it connected; close(force) syncs and disconnects.
class MountedDevice final : public r3d::mount::Mount
{
public:
	explicit MountedDevice(DeviceLog &log) : log_(log) {}
	~MountedDevice() override { log_.destroyed = true; }
	r3d::mount::MountKind kind() const override { return r3d::mount::MountKind::Direct; }
	std::string path() const override { return "/dev/nbd7"; }
	uint64_t size() const override { return 1 << 20; }
	r3d::ResultMsg<r3d::UniqueFd> openFd(int) override { return r3d::fail(ENODEV, "not a real device"); }
	r3d::Counters counters() const override { return { { "reads", 0 } }; }
	bool serving() const override { return !closed_; }
	std::vector<std::string> holders() const override { return { "/srv/data" }; }
	r3d::ResultMsg<void> close(bool force) override
	{
		log_.calls.push_back(force ? "close force" : "close");
		if (closed_)
			return {};
		if (!force)
			return r3d::fail(EBUSY, "/dev/nbd7 is in use (mounted?); unmount it first");
		closed_ = true;
		return {};
	}

private:
	DeviceLog &log_;
	bool closed_ = false;
};

// A manager with one mount, whose device behaves as if a filesystem on it were mounted.
struct WithMountedFilesystem {
	Config config;
	Recorder events;
	DeviceLog log;
	std::optional<MountManager> manager;

	WithMountedFilesystem()
	{
		AttachFn attach = [this](AttachParams) -> r3d::ResultMsg<std::unique_ptr<r3d::mount::Mount>> {
			return std::unique_ptr<r3d::mount::Mount>(std::make_unique<MountedDevice>(log));
		};
		manager.emplace(config, attach, events);
		REQUIRE(manager->mount({ "memory:1M", std::nullopt, std::nullopt, false }));
	}
};

} // namespace

TEST_CASE("Unmount of a mounted device is Busy and leaves it connected", "[mount]")
{
	WithMountedFilesystem f;
	auto e = f.manager->unmount("1");
	REQUIRE_FALSE(e);
	CHECK(e.error().code == Errc::Busy);
	CHECK(f.log.calls == std::vector<std::string>{ "close" });
	REQUIRE(f.manager->find("1"));
	CHECK(f.manager->find("1")->state == MountState::Ready);
}

TEST_CASE("shutdown disconnects a mounted device explicitly, forced, not in a destructor", "[mount]")
{
	WithMountedFilesystem f;
	f.manager->unmountAll();
	// Asked politely first, then forced (which syncs the filesystems) and forgotten.
	CHECK(f.log.calls == std::vector<std::string>{ "close", "close force" });
	CHECK(f.log.destroyed);
	CHECK(f.manager->list().empty());
	CHECK(f.events.events.back() == "removed 1");
	f.manager.reset();
	CHECK(f.log.calls.size() == 2); // the destructor had nothing left to do
}

TEST_CASE("a mount lends its pipeline to a memory region and stays while the lease is out", "[mount]")
{
	WithMountedFilesystem f;
	CHECK(f.manager->lease("2").error().code == Errc::NotFound);
	auto lent = f.manager->lease("1");
	REQUIRE(lent);
	CHECK(lent->name == "mount 1");
	CHECK(lent->backendUri == "memory:1M");
	CHECK_FALSE(lent->readOnly);
	REQUIRE(lent->pipeline);
	CHECK(lent->pipeline->size() == 1u << 20);
	// Busy before the device is even asked: the region reads and writes through it.
	auto e = f.manager->unmount("1");
	REQUIRE_FALSE(e);
	CHECK(e.error().code == Errc::Busy);
	CHECK_THAT(e.error().message, Catch::Contains("lent to 1 memory region or migration"));
	CHECK(f.log.calls.empty());
	CHECK(f.manager->find("1")->state == MountState::Ready);
	auto second = f.manager->lease("1");
	REQUIRE(second);
	CHECK_THAT(f.manager->unmount("1").error().message, Catch::Contains("lent to 2 memory regions or migrations"));
	lent->hold.reset();
	second->hold.reset();
	// Given back: the device decides again (here: a mounted filesystem, EBUSY).
	CHECK(f.manager->unmount("1").error().code == Errc::Busy);
	CHECK(f.log.calls == std::vector<std::string>{ "close" });
	f.manager->unmountAll();
	CHECK(f.manager->lease("1").error().code == Errc::NotFound);
}

TEST_CASE("a lease's diverter sends the device's I/O elsewhere and back (a seeded mount)", "[mount]")
{
	Config config;
	Recorder events;
	std::shared_ptr<r3d::ReadWriterAt> served; // what the device reads and writes
	DeviceLog log;
	AttachFn attach = [&](AttachParams params) -> r3d::ResultMsg<std::unique_ptr<r3d::mount::Mount>> {
		served = params.backend;
		return std::unique_ptr<r3d::mount::Mount>(std::make_unique<MountedDevice>(log));
	};
	MountManager m(config, attach, events);
	REQUIRE(m.mount({ "memory:1M", std::nullopt, std::nullopt, false }));
	auto lent = m.lease("1");
	REQUIRE(lent);
	REQUIRE(lent->diverter);
	auto original = lent->diverter->current();
	auto elsewhere = std::shared_ptr<r3d::ReadWriterAt>(std::move(r3d::backends::MemoryBackend::create(1 << 20).value()));
	std::vector<std::byte> a(4096, std::byte{ 0xa1 }), b(4096, std::byte{ 0xb2 }), back(4096);
	REQUIRE(served->writeAt(a, 0));
	lent->diverter->lock();
	REQUIRE(lent->diverter->replaceNext(elsewhere));
	lent->diverter->unlock();
	REQUIRE(served->writeAt(b, 0));
	REQUIRE(elsewhere->readAt(back, 0));
	CHECK(back == b);
	REQUIRE(original->readAt(back, 0));
	CHECK(back == a); // the write after the divert went elsewhere only
	lent->diverter->lock();
	REQUIRE(lent->diverter->replaceNext(original));
	lent->diverter->unlock();
	REQUIRE(served->readAt(back, 0));
	CHECK(back == a);
	lent->hold.reset();
	m.unmountAll();
}
