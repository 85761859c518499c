#pragma once

// The block service's operations as one table: what a request of each op may carry, the
// rules it is checked against before anything is allocated for it, and how it runs on the
// export's backend. Adding an op is one entry in ops.cpp (plus its value in Op and
// rpc.proto); the server's session, checkRequest and the client all go through the table.

#include <cstdint>
#include <span>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

#include "transport/block/messages.hpp"
#include "transport/block/request_check.hpp"

namespace r3d::transport {

/// A request about to run against an export.
struct OpCall {
	ReadWriterAt &backend; ///< behind a chunk guard when the export is chunked
	const ExportGeometry &geometry;
	const Request &request;
	/// The write data for an op that carries a payload, else room for the reply data.
	std::span<std::byte> payload;
};

struct OpHandler {
	Op op;
	const char *name;
	/// Changes the export: a copy of it must never land after a newer call (fencing, resends).
	bool changesData;
	/// The request carries `length` bytes of payload (write data).
	bool carriesPayload;
	/// The request carries ranges (Request::ranges).
	bool takesRanges;
	/// Answered from the geometry on the network thread, without calling the backend.
	bool local;
	/// The op's own rules, after the common ones (payload and ranges only where the op takes
	/// them): 0 or the errno to answer with.
	int (*check)(const Request &r, uint32_t payloadLength, const ExportGeometry &g);
	/// Bytes a successful reply carries (read data).
	uint64_t (*replyPayload)(const Request &r);
	/// Runs the request; the value is the reply's size field.
	Result<uint64_t> (*execute)(const OpCall &call);
};

/// The handler of `op`; nullptr for an op this side does not know.
const OpHandler *findOp(Op op);

const char *opName(Op op);
/// Whether `op` changes the export: a copy of it must never land after a newer call.
bool changesData(Op op);
/// Bytes of payload a successful reply to `r` carries (read data), 0 for the others.
uint64_t replyPayloadLength(const Request &r);

} // namespace r3d::transport
