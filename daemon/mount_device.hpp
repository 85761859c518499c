#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

#include "nbd/server.hpp"

namespace r3mapd {

/// A backend attached to a kernel NBD device (a DirectMount, later a ManagedMount).
class MountDevice
{
public:
	virtual ~MountDevice() = default;

	/// "/dev/nbd3".
	virtual std::string devicePath() const = 0;
	/// Counters of the server behind the device.
	virtual r3d::nbd::Stats stats() const = 0;
	/// False once the kernel has dropped its connections: I/O no longer reaches the
	/// backend. Cheap; polled.
	virtual bool serving() const = 0;
	/// Where filesystems on the device are mounted, for messages.
	virtual std::vector<std::string> mountpoints() const = 0;
	/// Flushes everything acknowledged to the backend and detaches the device. Blocks;
	/// idempotent. A device still mounted or opened exclusively fails with Busy and stays
	/// connected, unless `force`: then its filesystems are synced and it is detached anyway.
	virtual r3d::ResultMsg<void> close(bool force = false) = 0;
};

/// What the daemon asks of an attach.
struct AttachParams {
	std::shared_ptr<r3d::ReadWriterAt> backend;
	/// Resolved against the backend's own (stages::resolveChunk()).
	uint64_t chunkSize = 4096;
	bool readOnly = false;
	/// For logs and /sys/block/nbdN/backend: the backend URI.
	std::string name;
};

/// Attaches a backend to a free kernel NBD device and returns once it is ready for I/O.
/// Blocks; fails with NoFreeDevice, NotSupported or AttachFailed.
using AttachFn = std::function<r3d::ResultMsg<std::unique_ptr<MountDevice>>(AttachParams params)>;

} // namespace r3mapd
