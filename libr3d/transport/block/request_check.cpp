#include "transport/block/request_check.hpp"

#include <cerrno>

#include "transport/block/ops.hpp"

namespace r3d::transport {

int checkRequest(const Request &r, uint32_t payloadLength, const ExportGeometry &g)
{
	const OpHandler *h = findOp(r.op);
	if (!(h && h->carriesPayload) && payloadLength != 0)
		return EINVAL;
	if (!(h && h->takesRanges) && !r.ranges.empty())
		return EINVAL;
	if (!h)
		return EOPNOTSUPP;
	return h->check(r, payloadLength, g);
}

} // namespace r3d::transport
