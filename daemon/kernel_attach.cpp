#include "kernel_attach.hpp"

#include <algorithm>
#include <cerrno>

#include "mount/direct_mount.hpp"
#include "mount/managed_mount.hpp"
#include "errors.hpp"
#include "stages/pipeline.hpp"

namespace r3mapd {

namespace {

constexpr uint64_t kMaxBlockSize = 4096; // the kernel's limit: one page

// What went wrong, for the caller: the driver missing, no device left, or the attach.
Errc attachError(const std::error_code &ec)
{
	if (ec.category() != std::system_category())
		return classify(ec);
	switch (ec.value()) {
	case ENODEV:
		return Errc::NotSupported;
	case EBUSY:
		return Errc::NoFreeDevice;
	case EINVAL:
		return Errc::InvalidArgument;
	default:
		return Errc::AttachFailed;
	}
}

} // namespace

AttachFn kernelAttach(r3d::Runtime *runtime)
{
	return [runtime](AttachParams params) -> r3d::ResultMsg<std::unique_ptr<r3d::mount::Mount>> {
		r3d::mount::DirectMountOptions options;
		options.readOnly = params.readOnly;
		options.attach.blockSize = static_cast<uint32_t>(std::min(params.chunkSize, kMaxBlockSize));
		options.attach.name = params.name;
		options.maxRequest = params.maxRequest;
		options.runtime = runtime;
		if (params.region) {
			// The region takes any offset and length itself: no pipeline in front of
			// `backend` (its top, or a stage in front of that).
			auto mount = r3d::mount::ManagedMount::open(std::move(params.region), options, std::move(params.backend));
			if (!mount)
				return rename(attachError(mount.error().code), mount.error());
			return std::unique_ptr<r3d::mount::Mount>(std::move(*mount));
		}
		r3d::stages::PipelineSpec spec;
		spec.chunk = params.chunkSize;
		spec.callerBlock = options.attach.blockSize;
		auto pipeline = r3d::stages::buildPipeline(params.backend, spec);
		if (!pipeline)
			return rename(Errc::InvalidArgument, pipeline.error());
		auto mount = r3d::mount::DirectMount::open(std::move(pipeline->top), options);
		if (!mount)
			return rename(attachError(mount.error().code), mount.error());
		return std::unique_ptr<r3d::mount::Mount>(std::move(*mount));
	};
}

} // namespace r3mapd
