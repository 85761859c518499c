#include "stages/pipeline.hpp"

#include <algorithm>

#include <fmt/format.h>

#include <r3d/backend_factory.hpp>
#include <r3d/size.hpp>

#include "stages/arbitrary_read_writer_at.hpp"
#include "stages/lockable_read_writer_at.hpp"
#include "stages/tracking_read_writer_at.hpp"

namespace r3d::stages {

ResultMsg<uint64_t> resolveChunk(uint64_t asked, uint64_t own)
{
	if (own == 0 || asked == own)
		return asked;
	if (asked == 0)
		return own;
	uint64_t larger = std::max(asked, own), smaller = std::min(asked, own);
	if (larger % smaller != 0)
		return fail(EINVAL, fmt::format("chunk size {} does not fit the backend's chunk size {}", formatSize(asked),
						formatSize(own)));
	return larger;
}

ResultMsg<Pipeline> buildPipeline(std::shared_ptr<ReadWriterAt> backend, const PipelineSpec &spec)
{
	if (!backend)
		return fail(EINVAL, "pipeline: no backend");
	if (spec.callerBlock == 0)
		return fail(EINVAL, "pipeline: the caller block size must be at least 1");
	auto chunk = resolveChunk(spec.chunk, backend->preferredChunk());
	if (!chunk)
		return unexpectedOf(chunk.error());

	Pipeline p;
	p.backend = backend;
	p.chunk = *chunk;
	p.top = backend;
	p.description = "backend";
	if (p.chunk > spec.callerBlock) {
		// Runs of whole chunks go down as one call: chunk stores batch them (a Redis
		// pipeline, S3 in parallel, one READ_RANGES trip for r3).
		p.top = std::make_shared<ArbitraryReadWriterAt>(p.top, p.chunk, true);
		p.description = fmt::format("arbitrary({}) → {}", formatSize(p.chunk), p.description);
	}
	if (spec.tracking) {
		// Tracks at the backend's granularity, or at a page when it has none.
		p.tracking = std::make_shared<TrackingReadWriterAt>(p.top, p.chunk ? p.chunk : 4096);
		p.top = p.tracking;
		p.description = "tracking → " + p.description;
	}
	if (spec.lockable) {
		p.lock = std::make_shared<LockableReadWriterAt>(p.top);
		p.top = p.lock;
		p.description = "lockable → " + p.description;
	}
	return p;
}

ResultMsg<Pipeline> openPipeline(const std::string &uri, const PipelineSpec &spec, Runtime *runtime)
{
	auto backend = openBackend(uri, runtime);
	if (!backend)
		return unexpectedOf(backend.error());
	auto p = buildPipeline(std::move(*backend), spec);
	if (!p)
		return fail(p.error().code, fmt::format("'{}': {}", uri, p.error().message));
	return p;
}

} // namespace r3d::stages
