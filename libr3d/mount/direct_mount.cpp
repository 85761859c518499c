#include "mount/direct_mount.hpp"

#include <cstring>
#include <thread>

#include <fcntl.h>
#include <sys/socket.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <r3d/log.hpp>
#include <r3d/size.hpp>

#include "nbd/kernel/kernel_device.hpp"
#include "nbd/kernel/sysfs_devices.hpp"
#include "stages/pipeline.hpp"

namespace r3d::mount {

namespace {

constexpr unsigned kMaxConnections = 64;
constexpr std::chrono::seconds kInUseDetachWait{ 1 };

std::shared_ptr<spdlog::logger> logger()
{
	static auto l = log::get("mount");
	return l;
}

ResultMsg<std::optional<unsigned>> parseDevice(const std::string &device)
{
	if (device.empty() || device == "auto")
		return std::optional<unsigned>();
	auto index = nbd::kernel::SysfsDevices::parseDevice(device);
	if (!index || !device.starts_with("/dev/nbd"))
		return fail(EINVAL, fmt::format("device '{}': expected auto or /dev/nbdN", device));
	return std::optional<unsigned>(*index);
}

} // namespace

ResultMsg<std::unique_ptr<DirectMount>> DirectMount::open(const std::string &backendUri, DirectMountOptions options)
{
	stages::PipelineSpec spec;
	spec.callerBlock = options.attach.blockSize;
	auto pipeline = stages::openPipeline(backendUri, spec, options.runtime);
	if (!pipeline)
		return unexpectedOf(pipeline.error());
	if (options.attach.name.empty())
		options.attach.name = backendUri;
	return open(std::move(pipeline->top), std::move(options));
}

ResultMsg<std::unique_ptr<DirectMount>> DirectMount::open(std::shared_ptr<ReadWriterAt> backend,
							  DirectMountOptions options)
{
	auto index = parseDevice(options.device);
	if (!index)
		return unexpectedOf(index.error());
	if (options.connections < 1 || options.connections > kMaxConnections)
		return fail(EINVAL, fmt::format("connections must be 1 .. {}, not {}", kMaxConnections, options.connections));
	if (auto valid = nbd::kernel::checkBlockSize(options.attach.blockSize); !valid)
		return unexpectedOf(valid.error());
	if (options.maxRequest < 4096 || options.maxRequest < options.attach.blockSize)
		return fail(EINVAL, fmt::format("the request cap {} is below 4 KiB or the block size {}",
						options.maxRequest, options.attach.blockSize));
	if (backend->size() % options.attach.blockSize != 0)
		return fail(EINVAL, fmt::format("the backend's size {} is not a multiple of the block size {}",
						formatSize(backend->size()), options.attach.blockSize));

	std::unique_ptr<DirectMount> mount(new DirectMount(std::move(backend), options));
	const nbd::Export &exp = mount->server_->exports().front();

	std::vector<UniqueFd> kernelEnds;
	for (unsigned i = 0; i < options.connections; ++i) {
		int pair[2];
		if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
			int err = errno;
			mount->stopServing();
			return fail(err, fmt::format("socketpair: {}", std::strerror(err)));
		}
		kernelEnds.emplace_back(pair[0]);
		++mount->kernelLoops_;
		mount->serving_.emplace_back(
			[m = mount.get(), fd = UniqueFd(pair[1])]() mutable { m->serveKernel(std::move(fd)); });
	}

	nbd::kernel::AttachOptions attach = options.attach;
	attach.index = *index;
	attach.sizeBytes = mount->backend_->size();
	attach.transmissionFlags = mount->server_->transmissionFlags(exp, false);
	attach.maxRequestBytes = options.maxRequest;
	auto device = nbd::kernel::KernelDevice::attach(std::move(kernelEnds), attach);
	if (!device) {
		mount->stopServing();
		mount->closed_ = true;
		return unexpectedOf(device.error());
	}
	mount->device_ = std::move(*device);
	mount->reconnectable_ = mount->device_->method() == nbd::kernel::AttachMethod::Netlink;
	return mount;
}

DirectMount::DirectMount(std::shared_ptr<ReadWriterAt> backend, const DirectMountOptions &options)
	: backend_(std::move(backend)), options_(options)
{
	nbd::ServerOptions serverOptions;
	serverOptions.ioFlusher = true;
	serverOptions.workerThreads = options.workerThreads;
	serverOptions.runtime = options.runtime;
	serverOptions.maxPayload = options.maxRequest;
	server_ = std::make_unique<nbd::Server>(serverOptions);
	server_->addExport({ "", options.attach.name, backend_, options.readOnly });
}

DirectMount::~DirectMount()
{
	auto closed = close(std::chrono::seconds(10), true);
	if (!closed)
		logger()->error("closing {}: {}", device_ ? device_->path() : options_.attach.name, closed.error().message);
}

ResultMsg<UniqueFd> DirectMount::openFd(int flags)
{
	if (closed_)
		return fail(ENODEV, "the mount is closed");
	UniqueFd fd(::open(device_->path().c_str(), flags | O_CLOEXEC | O_NOCTTY));
	if (!fd) {
		int err = errno;
		return fail(err, fmt::format("cannot open {}: {}", device_->path(), std::strerror(err)));
	}
	return fd;
}

const std::string &DirectMount::devicePath() const
{
	return device_->path();
}

unsigned DirectMount::index() const
{
	return device_->index();
}

nbd::kernel::AttachMethod DirectMount::method() const
{
	return device_->method();
}

nbd::kernel::ReadyMethod DirectMount::readyMethod() const
{
	return device_->readyMethod();
}

std::chrono::microseconds DirectMount::timeToReady() const
{
	return device_->timeToReady();
}

std::vector<std::string> DirectMount::mountpoints() const
{
	return device_ && !closed_ ? device_->mountpoints() : std::vector<std::string>{};
}

void DirectMount::serveKernel(UniqueFd serverEnd)
{
	struct Done {
		std::atomic<unsigned> &loops;
		~Done() { --loops; }
	} done{ kernelLoops_ };
	unsigned quickEnds = 0;
	for (;;) {
		bool sawDisc = false;
		auto started = std::chrono::steady_clock::now();
		auto served = server_->serveTransmission(std::move(serverEnd), "", &sawDisc);
		if (!served)
			logger()->warn("connection from the kernel ended: {}", served.error().message());
		if (sawDisc || closed_ || !reconnectable_)
			return;
		// EOF without NBD_CMD_DISC: the kernel gave up on the connection (a request timed
		// out on it). Its I/O waits attach.deadConnTimeout for a new one, so give it one.
		// A socket the kernel did not take (no connection was dead yet) closes at once: try
		// again a little later, a bounded number of times.
		if (std::chrono::steady_clock::now() - started < std::chrono::milliseconds(100)) {
			if (++quickEnds > 50) {
				logger()->error("{}: the kernel keeps dropping new connections; giving up", device_->path());
				return;
			}
			std::this_thread::sleep_for(std::chrono::milliseconds(50));
		} else {
			quickEnds = 0;
		}
		auto next = reconnectKernel();
		if (!next) {
			logger()->error("{}: the kernel dropped a connection and it could not be replaced: {}",
					device_->path(), next.error().message);
			return;
		}
		serverEnd = std::move(*next);
	}
}

ResultMsg<UniqueFd> DirectMount::reconnectKernel()
{
	int pair[2];
	if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
		return fail(errno, fmt::format("socketpair: {}", std::strerror(errno)));
	UniqueFd kernelEnd(pair[0]), serverEnd(pair[1]);
	auto r = device_->reconnect(kernelEnd.get(), std::chrono::seconds(5));
	if (!r)
		return unexpectedOf(r.error());
	auto n = ++reconnects_;
	logger()->warn("{}: the kernel dropped a connection (a request timed out?); gave it a new one through "
		       "netlink RECONFIGURE ({} so far)",
		       device_->path(), n);
	return serverEnd;
}

bool DirectMount::serving() const
{
	return !closed_ && kernelLoops_ > 0;
}

void DirectMount::stopServing()
{
	server_->shutdown();
	for (auto &t : serving_)
		if (t.joinable())
			t.join();
	serving_.clear();
}

ResultMsg<void> DirectMount::close(std::chrono::milliseconds timeout, bool force)
{
	if (closed_)
		return {};
	const bool inUse = device_ && serving() && device_->inUse();
	if (!force && inUse)
		return fail(EBUSY, fmt::format("{} is in use (mounted?); unmount it first", device_->path()));
	closed_ = true;
	ResultMsg<void> result;
	if (inUse) {
		// Forced while in use: the filesystem's dirty data and journal are in its own
		// caches, which the fsync of the device below does not write.
		auto mounts = device_->mountpoints();
		if (mounts.empty())
			logger()->warn("{}: disconnecting while in use, and no mount of it is visible here to sync "
				       "(held open exclusively, or mounted in another mount namespace)",
				       device_->path());
		else
			logger()->warn("{}: disconnecting while in use (mounted at: {})", device_->path(),
				       fmt::join(mounts, ", "));
		auto synced = device_->syncMounted();
		if (!synced) {
			logger()->error("{}", synced.error().message);
			result = unexpectedOf(synced.error());
		}
	}
	if (device_ && !options_.readOnly) {
		auto flushed = device_->flush();
		if (!flushed) {
			logger()->warn("{}", flushed.error().message);
			if (result)
				result = flushed;
		}
	}
	if (device_) {
		// The kernel sends NBD_CMD_DISC; the serving threads see it and return.
		// A filesystem still mounted keeps the device configured until it is unmounted:
		// waiting for that would only delay the shutdown.
		auto detached = device_->detach(inUse ? std::min<std::chrono::milliseconds>(timeout, kInUseDetachWait) : timeout);
		if (!detached && result)
			result = detached;
	}
	stopServing();
	if (!options_.readOnly) {
		auto synced = backend_->sync();
		if (!synced && result)
			result = fail(synced.error(), fmt::format("syncing the backend: {}", synced.error().message()));
	}
	return result;
}

} // namespace r3d::mount
