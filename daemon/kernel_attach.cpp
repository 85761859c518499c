#include "kernel_attach.hpp"

#include "errors.hpp"

namespace r3mapd {

AttachFn kernelAttach()
{
	// libr3d/mount/direct_mount is not in this tree yet; say so instead of pretending.
	return [](AttachParams) -> r3d::ResultMsg<std::unique_ptr<MountDevice>> {
		return fail(Errc::NotSupported, "this r3mapd was built without kernel NBD attach (libr3d/mount)");
	};
}

} // namespace r3mapd
