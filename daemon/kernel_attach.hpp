#pragma once

#include "mount_device.hpp"

namespace r3mapd {

/// The AttachFn of the real daemon: kernel ⇄ socketpair ⇄ our NBD server ⇄ backend.
AttachFn kernelAttach();

} // namespace r3mapd
