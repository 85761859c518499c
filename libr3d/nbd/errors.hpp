#pragma once

// The errno to NBD error mapping and the names logs and error replies use.

#include <cstdint>
#include <system_error>

namespace r3d::nbd {

/// The wire error for an errno. The protocol allows only a few values; anything else is EIO
/// (as nbdkit's nbd_errno does).
uint32_t toNbdError(std::error_code ec);

/// The message an error reply carries for a wire error.
const char *errorText(uint32_t error);

/// "READ", "WRITE", ... for a command type; "unknown" for others.
const char *commandName(uint16_t type);

} // namespace r3d::nbd
