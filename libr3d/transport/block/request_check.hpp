#pragma once

#include <cstdint>

#include "transport/block/messages.hpp"

namespace r3d::transport {

/// What a server knows about the export a connection talks to.
struct ExportGeometry {
	uint64_t size = 0;
	uint64_t chunkSize = 0; ///< 0: byte ranges; else each range must be one aligned chunk
	uint32_t maxPayload = FrameLimits::kDefaultMaxPayload;
	bool readOnly = false;
};

/// Validates a request before the server acts on it or allocates for it: the rules every
/// request obeys, then its op's own (ops.hpp). Returns 0 or the errno to answer with:
/// EINVAL (bad range for a read, misaligned chunk, payload that does not match), ENOSPC
/// (write past the end), EOVERFLOW (over maxPayload), EROFS, EOPNOTSUPP.
int checkRequest(const Request &r, uint32_t payloadLength, const ExportGeometry &g);

} // namespace r3d::transport
