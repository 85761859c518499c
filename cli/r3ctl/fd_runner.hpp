#pragma once

#include <string>
#include <vector>

#include <r3d/unique_fd.hpp>

#include "context.hpp"

namespace r3ctl {

/// Runs `command` with `fd` inherited and its number in R3MAP_FD (R3MAP_DEVICE and
/// R3MAP_MOUNT name the device and the mount object). Waits for it and returns its exit
/// status, 128+N if signal N killed it, or 127 if it could not be started.
int runWithFd(r3d::UniqueFd fd, const std::string &device, const std::string &mountPath,
	      const std::vector<std::string> &command);

/// Mount1.OpenFd() on the mount at `path` (read-only or read-write), then runWithFd().
int openAndRun(Context &ctx, const std::string &path, bool readOnly, const std::vector<std::string> &command);

} // namespace r3ctl
