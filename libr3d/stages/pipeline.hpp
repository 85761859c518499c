#pragma once

// The one place a chain of stages is assembled. Every entry point (daemon mounts and
// exports, r3serve's modes, and next managed mounts, migration and regions) describes what
// it needs in a PipelineSpec and gets the chain back, so no entry point wraps stages of its
// own and no backend wraps itself.

#include <memory>
#include <string>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

namespace r3d {
class Runtime;
}

namespace r3d::stages {

class LockableReadWriterAt;
class TrackingReadWriterAt;

struct PipelineSpec {
	/// The granularity the backend should be read and written at; 0: the backend's own
	/// (preferredChunk()). A backend with a granularity of its own is read and written at
	/// the larger of the two, which must then be a multiple of the smaller.
	uint64_t chunk = 0;
	/// The smallest aligned unit callers send: 1 for NBD and r3 clients, the block size for
	/// the kernel. Callers finer than the chunk get an ArbitraryReadWriterAt in front.
	uint64_t callerBlock = 1;
	/// Record written chunks (a migration source).
	bool tracking = false;
	/// A gate that can hold all I/O (migration finalize).
	bool lockable = false;
};

/// The chain, top first: [Lockable →] [Tracking →] [Arbitrary(chunk) →] backend.
struct Pipeline {
	std::shared_ptr<ReadWriterAt> top;
	std::shared_ptr<ReadWriterAt> backend;
	/// The granularity the backend is really read and written at (what Mount1.ChunkSize
	/// reports); 0 when the backend takes any offset and no chunk was asked for.
	uint64_t chunk = 0;
	std::shared_ptr<TrackingReadWriterAt> tracking;
	std::shared_ptr<LockableReadWriterAt> lock;
	/// "lockable → tracking → arbitrary(64 KiB) → backend", for logs.
	std::string description;
};

/// The chunk a backend of granularity `own` (0: any) is read and written at when `asked`
/// (0: no preference) is asked for: the larger, if it is a multiple of the smaller.
ResultMsg<uint64_t> resolveChunk(uint64_t asked, uint64_t own);

/// EINVAL when the asked-for chunk and the backend's cannot be reconciled.
ResultMsg<Pipeline> buildPipeline(std::shared_ptr<ReadWriterAt> backend, const PipelineSpec &spec);

/// openBackend(uri, runtime), then buildPipeline().
ResultMsg<Pipeline> openPipeline(const std::string &uri, const PipelineSpec &spec, Runtime *runtime = nullptr);

} // namespace r3d::stages
