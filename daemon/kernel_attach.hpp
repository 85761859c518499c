#pragma once

#include "mount_device.hpp"

namespace r3d {
class Runtime;
}

namespace r3mapd {

/// The AttachFn of the real daemon: kernel ⇄ socketpair ⇄ our NBD server ⇄ backend.
/// Request workers and network backends run on `runtime` (r3mapd's) when given.
AttachFn kernelAttach(r3d::Runtime *runtime = nullptr);

} // namespace r3mapd
