#pragma once

// Faults on purpose, for tests, benchmarks and users who want to see how their setup
// behaves against a bad disk or link: `fault+URI` opens URI and puts this stage in front
// of it, configured by the `fault-*` parameters of the URI's query (which the inner
// backend never sees). Every fault is drawn from one seeded generator, so a run can be
// repeated: the seed is logged when the stage is opened.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include <r3d/backend_uri.hpp>
#include <r3d/result.hpp>

#include "stages/forwarding_read_writer_at.hpp"

namespace r3d::stages {

struct FaultOptions {
	enum Ops : unsigned { kReads = 1, kWrites = 2, kAll = 3 };
	unsigned ops = kAll;        ///< fault-ops=read|write|all: the calls faults apply to
	double eioRate = 0;         ///< fault-eio=P: a call fails with EIO with probability P
	uint64_t eioFrom = 0;       ///< fault-eio-range=START-END: a call touching [START, END)
	uint64_t eioTo = 0;         ///<   fails with EIO, always
	double shortRate = 0;       ///< fault-short=P: a call moves only its first half, then EIO
	enum class Dist { Fixed, Uniform, Exponential };
	std::chrono::microseconds latency{ 0 }; ///< fault-latency=D: added to each call (mean)
	Dist dist = Dist::Fixed;                ///< fault-latency-dist=fixed|uniform|exp
	std::chrono::microseconds seek{ 0 };    ///< fault-seek=D: added when a call does not
						///<   start where the previous one ended (a tape)
	uint64_t hangAfter = 0;                 ///< fault-hang-after=N: calls after the Nth hang...
	std::chrono::milliseconds hangFor{ 0 }; ///< fault-hang-for=D: ...that long (0: until closed)
	uint64_t hangCount = 0;                 ///< fault-hang-count=N: only N calls hang (0: all)
	uint64_t seed = 0;                      ///< fault-seed=N (0: from the clock)

	/// Takes the fault-* parameters of `uri` (any other parameter is left alone). EINVAL
	/// with a message naming the parameter when one is malformed or out of range.
	static ResultMsg<FaultOptions> fromUri(const BackendUri &uri);
	/// One line for logs: what is faulted, and the seed.
	std::string describe() const;
};

class FaultingReadWriterAt final : public ForwardingReadWriterAt
{
public:
	FaultingReadWriterAt(std::shared_ptr<ReadWriterAt> next, FaultOptions options);
	~FaultingReadWriterAt() override;

	Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override;
	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override;
	/// Latency and hangs make every call slow: servers must run it on their worker pool.
	bool isFast() const override { return false; }

	/// How many calls each fault hit, for tests and the stats of a run.
	struct Counters {
		uint64_t calls = 0, eio = 0, shortCalls = 0, seeks = 0, hangs = 0;
	};
	Counters counters() const;

private:
	enum class Verdict { Pass, Eio, Short };
	/// Waits as the options say (latency, seek, hang), then says what the call gets.
	Verdict enter(unsigned op, uint64_t offset, uint64_t length);

	FaultOptions options_;
	std::mutex mutex_; ///< the generator and the position of the last call
	std::mt19937_64 random_;
	uint64_t lastEnd_ = UINT64_MAX;
	std::mutex hangMutex_;
	std::condition_variable hangCv_;
	bool closing_ = false;
	std::atomic<uint64_t> calls_{ 0 }, eio_{ 0 }, short_{ 0 }, seeks_{ 0 }, hangs_{ 0 };
};

} // namespace r3d::stages
