#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

#include "nbd/kernel/attach_options.hpp"
#include "mount/mount.hpp"
#include "nbd/server.hpp"
#include "nbd/stats.hpp"

namespace r3d {
class Runtime;
}

namespace r3d::nbd::kernel {
class KernelDevice;
}

namespace r3d::mount {

struct DirectMountOptions {
	std::string device = "auto"; ///< "auto" or "/dev/nbdN"
	unsigned connections = 1;    ///< sockets between kernel and server (multi-conn)
	bool readOnly = false;
	/// Method, readiness, block size, timeouts and attach.name (for logs and
	/// /sys/block/nbdN/backend; open(uri) defaults it to the URI). open() fills in the
	/// device index, the size and the transmission flags.
	nbd::kernel::AttachOptions attach;
	/// Request workers come from its blocking pool (whose threads must be started with
	/// nbd::markIoFlusher); without one the server starts workerThreads of its own.
	Runtime *runtime = nullptr;
	unsigned workerThreads = 16;
	/// Largest request the device's server takes; the kernel is held to it too
	/// (AttachOptions::maxRequestBytes).
	uint32_t maxRequest = limits::kDefaultMaxPayload;
};

/// A backend as a kernel block device, served from this process:
///   /dev/nbdN ⇄ socketpair(s) ⇄ nbd::Server ⇄ backend.
/// The serving threads are PR_SET_IO_FLUSHER, so memory reclaim that writes back pages of
/// the device cannot deadlock on them. open() returns once the device is usable or with
/// an error within options.readyTimeout; close() (or the destructor) flushes,
/// disconnects and leaves the device free.
class DirectMount final : public Mount
{
public:
	static ResultMsg<std::unique_ptr<DirectMount>> open(const std::string &backendUri, DirectMountOptions options);
	static ResultMsg<std::unique_ptr<DirectMount>> open(std::shared_ptr<ReadWriterAt> backend,
							    DirectMountOptions options);
	~DirectMount();
	DirectMount(const DirectMount &) = delete;
	DirectMount &operator=(const DirectMount &) = delete;

	MountKind kind() const override { return MountKind::Direct; }
	std::string path() const override { return devicePath(); }
	uint64_t size() const override { return backend_->size(); }
	ResultMsg<UniqueFd> openFd(int flags) override;
	Counters counters() const override { return nbd::counterList(stats()); }
	std::vector<std::string> holders() const override { return mountpoints(); }
	/// close() with the default timeout.
	ResultMsg<void> close(bool force) override { return close(std::chrono::seconds(10), force); }

	const std::string &devicePath() const;
	unsigned index() const;
	nbd::kernel::AttachMethod method() const;
	nbd::kernel::ReadyMethod readyMethod() const;
	/// From the start of the kernel attach until the device was usable.
	std::chrono::microseconds timeToReady() const;
	nbd::Stats stats() const { return server_->stats(); }
	/// False once every connection from the kernel has ended for good (disconnected from
	/// outside, or dropped and not replaced): the device no longer reaches the backend.
	bool serving() const override;

	/// Where filesystems on the device are mounted (none after close()).
	std::vector<std::string> mountpoints() const;

	/// fsync of the device (dirty pages and a FLUSH reach the backend), disconnect, wait
	/// until the device is free, stop the server, sync the backend. Idempotent. Fails with
	/// EBUSY if the device is still held open (mounted) after `timeout`.
	/// Without `force`, a device that is still mounted (or opened exclusively) is left
	/// connected and close() fails with EBUSY: disconnecting would throw away the
	/// filesystem's unwritten data. With `force` (and in the destructor) it is
	/// disconnected anyway, but first every filesystem mounted from it is synced
	/// (syncfs), so what was written to it is in the backend; the mount itself sees I/O
	/// errors afterwards.
	ResultMsg<void> close(std::chrono::milliseconds timeout = std::chrono::seconds(10), bool force = false);

private:
	DirectMount(std::shared_ptr<ReadWriterAt> backend, const DirectMountOptions &options);
	void stopServing();
	/// One connection from the kernel, served until it ends; if the kernel dropped it
	/// (a request timed out on it) rather than disconnecting, a new one replaces it.
	void serveKernel(UniqueFd serverEnd);
	/// A new socketpair, its kernel end given to the device: the server end.
	ResultMsg<UniqueFd> reconnectKernel();

	std::shared_ptr<ReadWriterAt> backend_;
	DirectMountOptions options_;
	std::unique_ptr<nbd::Server> server_;
	std::vector<std::thread> serving_;
	std::unique_ptr<nbd::kernel::KernelDevice> device_;
	std::atomic<bool> closed_{ false };
	/// device_ is set and attached through netlink: a dropped connection can be replaced.
	std::atomic<bool> reconnectable_{ false };
	std::atomic<uint64_t> reconnects_{ 0 };
	std::atomic<unsigned> kernelLoops_{ 0 }; ///< serveKernel() calls still serving or reconnecting
};

} // namespace r3d::mount
