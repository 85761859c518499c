#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

#include "mount/managed_region.hpp"
#include "mount/mount.hpp"

namespace r3mapd {

/// What the daemon asks of an attach.
struct AttachParams {
	std::shared_ptr<r3d::ReadWriterAt> backend;
	/// Resolved against the backend's own (stages::resolveChunk()).
	uint64_t chunkSize = 4096;
	bool readOnly = false;
	/// For logs and /sys/block/nbdN/backend: the backend URI.
	std::string name;
	/// A managed mount: `backend` is its top() (or a stage in front of it, served as it is),
	/// and the attach makes a ManagedMount.
	std::shared_ptr<r3d::mount::ManagedRegion> region;
	/// The configuration's max_request_size: for the device's server and the kernel.
	uint32_t maxRequest = 32u << 20;
};

/// Attaches a backend to a free kernel NBD device and returns once it is ready for I/O.
/// Blocks; fails with NoFreeDevice, NotSupported or AttachFailed.
using AttachFn = std::function<r3d::ResultMsg<std::unique_ptr<r3d::mount::Mount>>(AttachParams params)>;

} // namespace r3mapd
