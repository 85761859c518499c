#include "daemon.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>

#include <unistd.h>

#include <boost/asio/post.hpp>

#include <r3d/log.hpp>

#include "daemon_args.hpp"
#include "errors.hpp"
#include "kernel_attach.hpp"
#include "nbd/server.hpp"
#include "notify.hpp"
#include "version.hpp"

namespace r3mapd {

namespace {

constexpr unsigned kWorkers = 4;
// Request workers shared by every mount and export: the bound on blocking data-path threads.
constexpr unsigned kBlockingThreads = 16;

r3d::RuntimeOptions runtimeOptions()
{
	r3d::RuntimeOptions o;
	o.ioThreads = 1;
	o.blockingThreads = kBlockingThreads;
	// They serve kernel devices: reclaim writing back those devices must not wait on them.
	o.onBlockingStart = r3d::nbd::markIoFlusher;
	return o;
}
// How soon a device whose connections the kernel dropped shows as failed, and how often
// managed mounts and exports signal their progress.
constexpr std::chrono::seconds kDeviceCheckInterval{ 1 };

} // namespace

Daemon::Daemon(Config config, AttachFactory attach, std::unique_ptr<StateStore> state)
	: config_(std::move(config)), state_(std::move(state)), runtime_(runtimeOptions()), signals_(io_, SIGTERM, SIGINT), deviceTimer_(io_), watchdog_(io_), access_(config_.accessGroup),
	  mounts_(config_, attach(runtime_), service_, state_ ? *state_ : StateStore::none(), &runtime_),
	  exports_(config_, access_, service_, &runtime_, state_ ? *state_ : StateStore::none()),
	  migrations_(config_, access_, service_, runtime_, attach(runtime_)), syncs_(service_,
		 [this](const std::string &id) -> std::optional<std::string> {
			 auto m = mounts_.find(id);
			 if (!m)
				 return std::nullopt;
			 return m->state == MountState::Ready ? m->device : std::string();
		 }), regions_(config_, access_, &runtime_), work_(kWorkers),
	  busCheck_(io_, [this](std::function<void()> answered) { service_.probe(std::move(answered)); },
		    std::chrono::seconds(config_.busCheckSeconds))
{
}

Daemon::~Daemon()
{
	shutdown(exitCode_);
}

int Daemon::run()
{
	auto log = r3d::log::get("daemon");
	signals_.async_wait([this, log](const boost::system::error_code &ec, int signal) {
		if (ec)
			return;
		log->info("{}: shutting down", strsignal(signal));
		shutdown(0);
	});

	service::ServiceContext context{
		mounts_,
		exports_,
		access_,
		work_,
		r3map::kVersion,
		[] { return std::string(spdlog::level::to_string_view(r3d::log::get("daemon")->level()).data()); },
		[](const std::string &level) -> r3d::ResultMsg<void> {
			if (!isLogLevel(level) || !r3d::log::setLevel(level))
				return fail(Errc::InvalidArgument, fmt::format("'{}' is not one of trace, debug, info, "
									       "warning, error, critical, off",
									       level));
			r3d::log::get("daemon")->info("log level set to {}", level);
			return {};
		},
	};
	context.regions = &regions_;
	context.migrations = &migrations_;
	context.syncs = &syncs_;
	auto started = service_.start(context, [this](const std::string &why) {
		boost::asio::post(io_, [this, why] {
			r3d::log::get("daemon")->critical("lost the system bus: {}", why);
			shutdown(1);
		});
	});
	if (!started) {
		log->critical("{}", started.error().message);
		shutdown(1);
		return exitCode_;
	}
	// Restored mounts and exports are listed at once and come up on the workers.
	auto defer = [this](std::function<void()> job) { return work_.post(std::move(job)); };
	mounts_.restore(defer);
	exports_.restore(defer);
	regions_.setObserver(&service_);
	// mount:ID and export:ID regions read and write through that mount's or export's pipeline.
	regions_.lendFrom("mount", [this](const std::string &id) { return mounts_.lease(id); });
	regions_.lendFrom("export", [this](const std::string &id) { return exports_.lease(id); });
	// mount:ID and export:ID seeds divert that mount's or export's I/O through the seeder.
	migrations_.lendFrom("mount", [this](const std::string &id) { return mounts_.lease(id); });
	migrations_.lendFrom("export", [this](const std::string &id) { return exports_.lease(id); });
	if (!config_.regionSocket.empty())
		if (auto r = regions_.start(config_.regionSocket); !r)
			log->error("no memory regions: {}", r.error().message);
	notify::ready();
	notify::status("serving org.r3map.r3mapd");
	watchdog_.start();
	busCheck_.start();
	watchDevices();
	log->info("r3mapd {} ready (access group '{}', {} runtime threads)", r3map::kVersion, config_.accessGroup,
		  runtime_.threadCount());
	io_.run();
	return exitCode_;
}

void Daemon::watchDevices()
{
	deviceTimer_.expires_after(kDeviceCheckInterval);
	deviceTimer_.async_wait([this](const boost::system::error_code &ec) {
		if (ec || stopping_)
			return;
		mounts_.checkDevices();
		// Managed1 properties: at most one PropertiesChanged per object and tick.
		service_.refreshManaged();
		watchDevices();
	});
}

void Daemon::shutdown(int exitCode)
{
	if (stopping_)
		return;
	stopping_ = true;
	exitCode_ = exitCode;
	notify::stopping();
	service_.stopAccepting();
	work_.close();
	regions_.stopAll();
	// Before the mounts: seeded mounts get their backends back, leechers' devices go.
	migrations_.stopAll();
	mounts_.unmountAll();
	syncs_.stopAll();
	exports_.stopAll();
	busCheck_.stop();
	service_.stop();
	watchdog_.stop();
	deviceTimer_.cancel();
	signals_.cancel();
	io_.stop();
	r3d::log::get("daemon")->info("stopped");
}

int Daemon::main(int argc, char **argv)
{
	r3d::log::setup();
	auto log = r3d::log::get("daemon");
	auto args = DaemonArgs::parse(argc, argv);
	if (!args) {
		std::fprintf(stderr, "r3mapd: %s\n%s", args.error().message.c_str(), DaemonArgs::usage());
		return 2;
	}
	if (args->help) {
		std::fputs(DaemonArgs::usage(), stdout);
		return 0;
	}
	if (args->version) {
		std::printf("r3mapd %s\n", r3map::kVersion);
		return 0;
	}
	auto config = Config::load(args->configPath, args->configGiven);
	if (!config) {
		log->critical("bad configuration: {}", config.error().message);
		return 1;
	}
	if (args->logLevel)
		config->logLevel = *args->logLevel;
	r3d::log::setLevel(config->logLevel);
	// Broken NBD clients must cost a connection, not the daemon.
	std::signal(SIGPIPE, SIG_IGN);
	if (::geteuid() != 0)
		log->warn("not running as root: attaching devices will fail");
	if (config->stateDir.empty())
		if (const char *dir = std::getenv("STATE_DIRECTORY"); dir && *dir)
			config->stateDir = std::string(dir).substr(0, std::string(dir).find(':'));
	auto state = StateStore::open(config->stateDir);
	if (!state) {
		log->critical("{}", state.error().message);
		return 1;
	}
	if (!(*state)->persistent())
		log->info("no state directory (state_dir, or $STATE_DIRECTORY under systemd): ids restart at 1");
	Daemon daemon(std::move(*config), [](r3d::Runtime &runtime) { return kernelAttach(&runtime); }, std::move(*state));
	return daemon.run();
}

} // namespace r3mapd
