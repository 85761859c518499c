#include "nbd/errors.hpp"

#include <cerrno>

#include "nbd/protocol.hpp"

namespace r3d::nbd {

uint32_t toNbdError(std::error_code ec)
{
	switch (ec.value()) {
	case EPERM:
	case EROFS:
		return kEperm;
	case ENOMEM:
		return kEnomem;
	case EINVAL:
		return kEinval;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return kEnospc;
	case EOVERFLOW:
		return kEoverflow;
	case ENOTSUP:
		return kEnotsup;
	case ESHUTDOWN:
		return kEshutdown;
	default:
		return kEio;
	}
}

const char *errorText(uint32_t error)
{
	switch (error) {
	case kEperm:
		return "operation not permitted (read-only export)";
	case kEinval:
		return "invalid request";
	case kEnospc:
		return "request beyond the end of the export";
	case kEoverflow:
		return "value too large";
	case kEnotsup:
		return "fast zeroing is not supported";
	case kEshutdown:
		return "server is shutting down";
	case kEnomem:
		return "out of memory";
	default:
		return "input/output error";
	}
}

const char *commandName(uint16_t type)
{
	switch (static_cast<Cmd>(type)) {
	case Cmd::Read:
		return "READ";
	case Cmd::Write:
		return "WRITE";
	case Cmd::Disc:
		return "DISC";
	case Cmd::Flush:
		return "FLUSH";
	case Cmd::Trim:
		return "TRIM";
	case Cmd::Cache:
		return "CACHE";
	case Cmd::WriteZeroes:
		return "WRITE_ZEROES";
	case Cmd::BlockStatus:
		return "BLOCK_STATUS";
	}
	return "unknown";
}

} // namespace r3d::nbd
