#include "uffd/uffd_region.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>

#include <sys/mman.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include "r3d/log.hpp"
#include "stages/pipeline.hpp"

namespace r3d::uffd {
namespace {

auto logger()
{
	return r3d::log::get("uffd");
}

uint64_t pageSize()
{
	return static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

} // namespace

uint64_t UffdRegion::chunkFor(const MemoryRegionOptions &options)
{
	return options.batching == FaultBatching::Fixed ? options.fixedRun : options.chunk;
}

ResultMsg<std::pair<std::shared_ptr<ReadWriterAt>, MemoryRegionOptions>>
UffdRegion::fit(std::shared_ptr<ReadWriterAt> source, const MemoryRegionOptions &options)
{
	if (!source)
		return fail(EINVAL, "memory region: no backend");
	// Pulls are whole chunks; a backend of a coarser granularity gets its own (the pipeline
	// reconciles the two or says why not).
	stages::PipelineSpec spec;
	spec.chunk = chunkFor(options);
	spec.callerBlock = spec.chunk;
	auto pipeline = stages::buildPipeline(std::move(source), spec);
	if (!pipeline)
		return unexpectedOf(pipeline.error());
	MemoryRegionOptions o = options;
	if (pipeline->chunk > spec.chunk) {
		if (o.batching == FaultBatching::Fixed)
			o.fixedRun = pipeline->chunk;
		else {
			o.chunk = pipeline->chunk;
			o.maxRun = std::max(o.maxRun, o.chunk);
		}
	}
	return std::make_pair(pipeline->top, o);
}

ResultMsg<std::unique_ptr<UffdRegion>> UffdRegion::create(std::shared_ptr<ReadWriterAt> remote, uint64_t size,
							  const MemoryRegionOptions &options,
							  std::shared_ptr<FaultServer> server)
{
	if (!remote || !server)
		return fail(EINVAL, "memory region: no backend");
	const uint64_t page = pageSize();
	if (size == 0)
		size = remote->size();
	if (size == 0 || size % page != 0)
		return fail(EINVAL, fmt::format("memory region: the size {} is not a positive multiple of the page size {}",
						size, page));
	if (size > remote->size())
		return fail(EINVAL, fmt::format("memory region: {} bytes asked for, the backend has {}", size, remote->size()));
	uint64_t chunk = chunkFor(options);
	if (chunk == 0 || chunk % page != 0 || chunk > (64u << 20))
		return fail(EINVAL, fmt::format("memory region: the pull unit {} is not a page multiple up to 64 MiB", chunk));
	if (options.batching == FaultBatching::Adaptive && options.maxRun < chunk)
		return fail(EINVAL, "memory region: maxRun is smaller than chunk");

	MemoryRegionOptions o = options;
	o.tracking = resolveTracking(options.tracking);
	UserfaultFd::OpenOptions uo;
	uo.wanted = UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_THREAD_ID
		    | kFeaturePoison;
	uo.required = (options.followFork ? UFFD_FEATURE_EVENT_FORK : 0)
		      | (o.tracking == RegionTracking::WpAsync ? kFeaturesWpAsync : 0);
	uo.kernelFaults = options.kernelFaults;
	auto uffd = UserfaultFd::open(uo);
	if (!uffd)
		return unexpectedOf(uffd.error());

	void *base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return fail(lastErrno(), fmt::format("memory region: mmap of {} bytes: {}", size, std::strerror(errno)));
	// A child must never see this memory as zero pages: without EVENT_FORK it gets none.
	if (!options.followFork && ::madvise(base, size, MADV_DONTFORK) != 0) {
		auto e = lastErrno();
		::munmap(base, size);
		return fail(e, fmt::format("memory region: MADV_DONTFORK: {}", e.message()));
	}
	if (auto r = uffd->registerMissing(base, size, o.tracking != RegionTracking::None); !r) {
		::munmap(base, size);
		return fail(r.error(), fmt::format("memory region: UFFDIO_REGISTER: {}", r.error().message()));
	}
	std::optional<PagemapScanner> scanner;
	if (o.tracking == RegionTracking::WpAsync) {
		auto sc = PagemapScanner::open(0);
		if (!sc) {
			::munmap(base, size);
			return fail(sc.error().code, "memory region: wp-async tracking: " + sc.error().message);
		}
		scanner = std::move(*sc);
	}
	std::unique_ptr<UffdRegion> region(new UffdRegion(std::move(remote), size, chunk, o, std::move(server),
							  std::move(*uffd), static_cast<std::byte *>(base),
							  { SegmentMap::Segment{ reinterpret_cast<uintptr_t>(base), size, 0 } }));
	region->scanner_ = std::move(scanner);
	if (auto r = region->start(); !r)
		return fail(r.error(), fmt::format("memory region: cannot serve it: {}", r.error().message()));
	logger()->debug("mapped {} bytes at {} ({}, chunk {}, features {:#x}, tracking {})", size, base,
			region->uffd_.origin(), chunk, region->uffd_.features(), trackingName(o.tracking));
	return region;
}

ResultMsg<std::unique_ptr<UffdRegion>> UffdRegion::adopt(std::shared_ptr<ReadWriterAt> remote, uintptr_t base,
							 uint64_t size, const MemoryRegionOptions &options,
							 std::shared_ptr<FaultServer> server, UserfaultFd uffd, pid_t pid)
{
	if (!remote || !server || uffd.fd() < 0)
		return fail(EINVAL, "memory region: no backend or no userfaultfd");
	const uint64_t page = pageSize();
	if (size == 0 || size % page != 0 || base % page != 0)
		return fail(EINVAL, fmt::format("memory region: address {:#x} and size {} must be page multiples, the size "
						"not 0",
						base, size));
	if (size > remote->size())
		return fail(EINVAL, fmt::format("memory region: {} bytes asked for, the backend has {}", size, remote->size()));
	uint64_t chunk = chunkFor(options);
	if (chunk == 0 || chunk % page != 0 || chunk > (64u << 20))
		return fail(EINVAL, fmt::format("memory region: the pull unit {} is not a page multiple up to 64 MiB", chunk));
	MemoryRegionOptions o = options;
	o.followFork = false; // the app maps it MADV_DONTFORK
	// The app's handshake decided: WP_ASYNC there means its writes never fault.
	std::optional<PagemapScanner> scanner;
	if (o.tracking != RegionTracking::None)
		o.tracking = uffd.has(kFeatureWpAsync) ? RegionTracking::WpAsync : RegionTracking::WpSync;
	if (o.tracking == RegionTracking::WpAsync) {
		auto sc = PagemapScanner::open(pid);
		if (!sc)
			return fail(sc.error().code, "memory region: wp-async tracking needs the app's pagemap: "
							     + sc.error().message);
		scanner = std::move(*sc);
	}
	// The write-back reads the app's pages here: ptrace access (the same uid, or
	// CAP_SYS_PTRACE). The fd holds the app's mm, not a pid that could be reused.
	UniqueFd mem;
	if (o.tracking != RegionTracking::None) {
		auto path = fmt::format("/proc/{}/mem", pid);
		mem = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
		if (!mem)
			return fail(lastErrno(), fmt::format("memory region: tracking writes needs to read the app's "
							     "memory: {}: {}",
							     path, std::strerror(errno)));
	}
	std::unique_ptr<UffdRegion> region(new UffdRegion(std::move(remote), size, chunk, o, std::move(server),
							  std::move(uffd), reinterpret_cast<std::byte *>(base),
							  { SegmentMap::Segment{ base, size, 0 } }));
	region->foreignPid_ = pid;
	region->cache_->setForeign();
	region->scanner_ = std::move(scanner);
	region->memFd_ = std::move(mem);
	if (auto r = region->start(); !r)
		return fail(r.error(), fmt::format("memory region: cannot serve it: {}", r.error().message()));
	logger()->debug("serving {} bytes at {:#x} of pid {} (chunk {}, features {:#x}, tracking {})", size, base, pid,
			chunk, region->uffd_.features(), trackingName(o.tracking));
	return region;
}

UffdRegion::UffdRegion(std::shared_ptr<ReadWriterAt> remote, uint64_t size, uint64_t chunk,
		       const MemoryRegionOptions &options, std::shared_ptr<FaultServer> server, UserfaultFd uffd,
		       std::byte *base, std::vector<SegmentMap::Segment> segments)
	: options_(options), server_(std::move(server)), uffd_(std::move(uffd)), base_(base), page_(pageSize()),
	  segments_(std::move(segments)), ctx_(std::move(remote), { size, chunk })
{
	origin_ = uffd_.origin();
	cache_ = std::make_shared<UffdCache>(uffd_, segments_, closing_, size);
	ctx_.cache = cache_;
	tracking_ = options_.tracking == RegionTracking::Auto ? resolveTracking(options_.tracking) : options_.tracking;
	if (tracking_ != RegionTracking::None) {
		cache_->setWriteProtect();
		unwritten_.assign(ctx_.geometry.count(), false);
	}
	if (tracking_ == RegionTracking::WpSync) {
		dirtyWords_ = (size / page_ + 63) / 64;
		dirty_ = std::make_unique<std::atomic<uint64_t>[]>(dirtyWords_);
		for (uint64_t i = 0; i < dirtyWords_; ++i)
			dirty_[i].store(0, std::memory_order_relaxed);
	}
	stages::PullerOptions po;
	po.workers = std::max(1u, options_.pullWorkers);
	po.background = options_.background;
	po.remoteTimeout = options_.remoteTimeout;
	po.maxBatch = options_.batching == FaultBatching::Fixed ? chunk : std::max(options_.maxRun, chunk);
	po.maxWindow = std::max<uint64_t>(po.maxBatch * 4, 8u << 20);
	puller_ = std::make_unique<stages::Puller>(ctx_, std::move(po));
}

Result<void> UffdRegion::start()
{
	R3D_TRY(server_->add(uffd_.fd(), this));
	if (options_.background || options_.readahead)
		puller_->start();
	if (tracking_ != RegionTracking::None && options_.writeBackInterval.count() > 0 && !child_)
		intervalThread_ = std::thread([this] { writeBackLoop(); });
	return {};
}

UffdRegion::~UffdRegion()
{
	close();
}

void UffdRegion::close()
{
	{
		std::lock_guard lock(closeMutex_);
		if (closed_)
			return;
		closed_ = true;
	}
	if (intervalThread_.joinable()) {
		{
			std::lock_guard lock(intervalMutex_);
			intervalStop_ = true;
		}
		intervalWake_.notify_all();
		intervalThread_.join();
	}
	{
		// A write-back under way reads the mapping: let it finish before it goes.
		std::lock_guard lock(writeBackMutex_);
		closing_.store(true, std::memory_order_release);
	}
	auto segments = segments_.segments();
	if (foreignPid_ == 0 && !child_)
		// Unmapped while the server still reads this uffd: munmap waits for its UNMAP event
		// to be read. Threads waiting on a fault are woken below and fault again on no
		// mapping at all (SIGSEGV), never on zero pages.
		for (const auto &s : segments)
			::munmap(reinterpret_cast<void *>(s.addr), s.len);
	for (const auto &s : foreignPid_ != 0 ? decltype(segments){} : segments) {
		if (child_)
			(void)uffd_.unregister(reinterpret_cast<void *>(s.addr), s.len);
		(void)uffd_.wake(reinterpret_cast<void *>(s.addr), s.len);
	}
	// No more messages: then no job can be posted, and children_ is ours.
	server_->remove(this);
	puller_->stop();
	{
		std::unique_lock lock(pendingMutex_);
		pendingDone_.wait(lock, [&] { return pending_ == 0; });
	}
	for (auto &c : children_)
		c->close();
	children_.clear();
	segments_.unmap(0, UINTPTR_MAX);
	// Closing the uffd lets go of anything still waiting on it (a forked child's faults).
	uffd_ = UserfaultFd();
}

MemoryRegionStats UffdRegion::stats() const
{
	MemoryRegionStats s;
	s.faults = faults_.load(std::memory_order_relaxed);
	s.faultPulls = faultPulls_.load(std::memory_order_relaxed);
	s.pulledBytes = puller_->stats().pulledBytes;
	auto c = ctx_.state.census();
	s.presentBytes = std::min(ctx_.geometry.size, (c.local + c.dirty + c.pushing) * ctx_.geometry.chunk);
	s.poisonedPages = poisoned_.load(std::memory_order_relaxed);
	s.removes = removes_.load(std::memory_order_relaxed);
	s.unmaps = unmaps_.load(std::memory_order_relaxed);
	s.remaps = remaps_.load(std::memory_order_relaxed);
	s.forks = forks_.load(std::memory_order_relaxed);
	s.uffdOrigin = origin_;
	s.trackingMode = trackingName(tracking_);
	s.writtenBackBytes = writtenBack_.load(std::memory_order_relaxed);
	s.writeBacks = writeBacks_.load(std::memory_order_relaxed);
	uint64_t dirty = unwrittenChunks_.load(std::memory_order_relaxed) * ctx_.geometry.chunk;
	if (tracking_ == RegionTracking::WpSync)
		for (uint64_t i = 0; i < dirtyWords_; ++i)
			dirty += static_cast<uint64_t>(__builtin_popcountll(dirty_[i].load(std::memory_order_relaxed))) * page_;
	else if (tracking_ == RegionTracking::WpAsync && scanner_ && !closing_.load(std::memory_order_acquire))
		for (const auto &seg : segments_.segments())
			(void)scanner_->scan(seg.addr, seg.addr + seg.len, false,
					     [&](uintptr_t a, uintptr_t b) { dirty += b - a; });
	s.dirtyBytes = std::min(dirty, ctx_.geometry.size);
	return s;
}

void UffdRegion::onReadable()
{
	for (;;) {
		auto m = uffd_.read();
		if (!m) {
			logger()->error("reading the userfaultfd: {}", m.error().message());
			return;
		}
		if (!*m)
			return;
		const uffd_msg &msg = **m;
		switch (msg.event) {
		case UFFD_EVENT_PAGEFAULT: {
			uintptr_t addr = msg.arg.pagefault.address & ~(page_ - 1);
			if (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
				onWriteFault(addr);
				break;
			}
			uint32_t tid = msg.arg.pagefault.feat.ptid;
			{
				std::lock_guard lock(pendingMutex_);
				++pending_;
			}
			server_->post([this, addr, tid] {
				handleFault(addr, tid);
				std::lock_guard lock(pendingMutex_);
				if (--pending_ == 0)
					pendingDone_.notify_all();
			});
			break;
		}
		case UFFD_EVENT_REMOVE:
			removes_.fetch_add(1, std::memory_order_relaxed);
			onRemove(msg.arg.remove.start, msg.arg.remove.end);
			break;
		case UFFD_EVENT_UNMAP:
			unmaps_.fetch_add(1, std::memory_order_relaxed);
			onUnmap(msg.arg.remove.start, msg.arg.remove.end);
			break;
		case UFFD_EVENT_REMAP:
			remaps_.fetch_add(1, std::memory_order_relaxed);
			segments_.remap(msg.arg.remap.from, msg.arg.remap.to, msg.arg.remap.len);
			break;
		case UFFD_EVENT_FORK:
			forks_.fetch_add(1, std::memory_order_relaxed);
			onFork(static_cast<int>(msg.arg.fork.ufd));
			break;
		default:
			logger()->warn("unexpected userfaultfd event {:#x}", msg.event);
		}
	}
}

std::pair<uint64_t, uint64_t> UffdRegion::runFor(uint64_t c)
{
	const uint64_t chunks = ctx_.geometry.count();
	if (options_.batching == FaultBatching::Fixed)
		return { c, c }; // the chunk is the fixed run
	const uint64_t maxRun = std::max<uint64_t>(1, options_.maxRun / ctx_.geometry.chunk);
	std::lock_guard lock(runMutex_);
	// Inside or right after the last run: the app reads on, so double the run; anywhere
	// else, start again at one chunk.
	bool sequential = runEnd_ != UINT64_MAX && c >= runStart_ && c <= runEnd_;
	run_ = sequential ? std::min(run_ * 2, maxRun) : 1;
	uint64_t last = std::min(chunks - 1, c + run_ - 1);
	runStart_ = c;
	runEnd_ = last + 1;
	return { c, last };
}

void UffdRegion::handleFault(uintptr_t addr, uint32_t tid)
{
	if (closing_.load(std::memory_order_acquire)) {
		// Let it fault again: on no mapping once close() has unmapped it.
		(void)uffd_.wake(reinterpret_cast<void *>(addr), page_);
		return;
	}
	faults_.fetch_add(1, std::memory_order_relaxed);
	auto off = segments_.offsetAt(addr);
	if (!off) {
		// Unmapped or moved since the fault was queued: let it fault again.
		(void)uffd_.wake(reinterpret_cast<void *>(addr), page_);
		return;
	}
	uint64_t c = *off / ctx_.geometry.chunk;
	auto w = ctx_.state.load(c);
	if (w.present() && foreignPid_ != 0) {
		refillPage(addr, c);
		return;
	}
	if (w.present()) {
		unsigned char resident = 0;
		if (::mincore(reinterpret_cast<void *>(addr), page_, &resident) == 0 && (resident & 1)) {
			(void)uffd_.wake(reinterpret_cast<void *>(addr), page_);
			return;
		}
		// Discarded while its pull was in flight (REMOVE raced the copy): pull it again.
		ctx_.state.dropLocal(c);
	}
	auto [first, last] = runFor(c);
	if (ctx_.state.load(c).phase() == stages::ChunkPhase::Remote)
		faultPulls_.fetch_add(1, std::memory_order_relaxed);
	if (options_.readahead)
		puller_->noteRead(first, last);
	auto r = puller_->demand(first, last);
	if (r || ctx_.state.load(c).present())
		return; // the copy woke the thread (only the run's tail may have failed)
	if (r.error().value() == ECANCELED || closing_.load(std::memory_order_acquire))
		return;
	giveUp(addr, tid, r.error());
}

void UffdRegion::giveUp(uintptr_t page, uint32_t tid, const std::error_code &error)
{
	poisoned_.fetch_add(1, std::memory_order_relaxed);
	if (uffd_.has(kFeaturePoison)) {
		auto r = uffd_.poison(reinterpret_cast<void *>(page), page_);
		if (r) {
			logger()->error("page {:#x} of the region could not be pulled ({}): the app gets SIGBUS there", page,
					error.message());
			return;
		}
		logger()->warn("UFFDIO_POISON: {}", r.error().message());
	}
	// No UFFDIO_POISON (before 6.6): signal the faulting thread itself; if it returns from
	// a handler, its next touch faults again and is retried.
	logger()->error("page {:#x} of the region could not be pulled ({}): SIGBUS to thread {}", page, error.message(), tid);
	if (tid == 0 || ::syscall(SYS_tgkill, foreignPid_ != 0 ? foreignPid_ : ::getpid(), tid, SIGBUS) != 0)
		logger()->critical("cannot signal the faulting thread; it waits until the backend answers");
}

void UffdRegion::refillPage(uintptr_t addr, uint64_t chunk)
{
	std::vector<std::byte> buf(ctx_.geometry.lengthOf(chunk));
	const uint64_t start = chunk * ctx_.geometry.chunk;
	auto r = ctx_.remote->readAt(buf, start);
	if (!r) {
		giveUp(addr, 0, r.error());
		return;
	}
	auto off = segments_.offsetAt(addr);
	if (!off || *off < start || *off + page_ > start + buf.size()) {
		(void)uffd_.wake(reinterpret_cast<void *>(addr), page_);
		return;
	}
	auto c = uffd_.copy(reinterpret_cast<void *>(addr), buf.data() + (*off - start), page_,
			    tracking_ != RegionTracking::None);
	if (c.error != 0)
		// EEXIST: the page is there (copied by the pull that raced this fault, or written).
		(void)uffd_.wake(reinterpret_cast<void *>(addr), page_);
}

void UffdRegion::onRemove(uintptr_t start, uintptr_t end)
{
	const uint64_t chunk = ctx_.geometry.chunk;
	for (auto [off, len] : segments_.offsetsIn(start, end))
		for (uint64_t i = off / chunk; i <= (off + len - 1) / chunk; ++i)
			ctx_.state.dropLocal(i);
}

void UffdRegion::onUnmap(uintptr_t start, uintptr_t end)
{
	auto gone = segments_.offsetsIn(start, end);
	segments_.unmap(start, end);
	const uint64_t chunk = ctx_.geometry.chunk;
	for (auto [off, len] : gone)
		for (uint64_t i = off / chunk; i <= (off + len - 1) / chunk; ++i) {
			bool mapped = false;
			segments_.forEachMapped(i * chunk, ctx_.geometry.lengthOf(i),
						[&](uintptr_t, uint64_t, uint64_t) { mapped = true; });
			// Nothing left to fill: settle it so no pull fetches it for nobody.
			if (!mapped && ctx_.state.claimPull(i))
				ctx_.state.finishPull(i, true);
		}
}

void UffdRegion::onFork(int ufd)
{
	UniqueFd fd(ufd);
	setCloexec(fd.get());
	MemoryRegionOptions o = options_;
	o.background = false;
	o.readahead = false;
	o.pullWorkers = 1;
	// The child's writes are its own: they only get their protection lifted (onWriteFault).
	o.tracking = RegionTracking::None;
	std::unique_ptr<UffdRegion> child(new UffdRegion(ctx_.remote, ctx_.geometry.size, ctx_.geometry.chunk, o, server_,
							 UserfaultFd(std::move(fd), uffd_.features()), base_,
							 segments_.segments()));
	child->child_ = true;
	if (auto r = child->start(); !r) {
		logger()->error("cannot serve a forked child's copy of the region: {}", r.error().message());
		return;
	}
	children_.push_back(std::move(child));
}

} // namespace r3d::uffd

namespace r3d::uffd {

void UffdRegion::onWriteFault(uintptr_t addr)
{
	writeFaults_.fetch_add(1, std::memory_order_relaxed);
	if (tracking_ == RegionTracking::WpSync)
		if (auto off = segments_.offsetAt(addr)) {
			uint64_t p = *off / page_;
			dirty_[p / 64].fetch_or(uint64_t{ 1 } << (p % 64), std::memory_order_relaxed);
		}
	// Marked before the protection goes: a write-back that takes the mark protects again.
	auto r = uffd_.writeProtect(reinterpret_cast<void *>(addr), page_, false);
	if (r || r.error().value() != EAGAIN) {
		if (!r && r.error().value() != ENOENT)
			logger()->warn("lifting the write protection at {:#x}: {}", addr, r.error().message());
		return;
	}
	// The layout is changing and this thread must read the event that settles it.
	{
		std::lock_guard lock(pendingMutex_);
		++pending_;
	}
	server_->post([this, addr] {
		(void)protect(addr, page_, false);
		std::lock_guard lock(pendingMutex_);
		if (--pending_ == 0)
			pendingDone_.notify_all();
	});
}

Result<void> UffdRegion::protect(uintptr_t addr, uint64_t len, bool on)
{
	auto sleep = std::chrono::microseconds(20);
	for (int i = 0; i < 2000; ++i) {
		auto r = uffd_.writeProtect(reinterpret_cast<void *>(addr), len, on);
		if (r || r.error().value() != EAGAIN)
			return r;
		std::this_thread::sleep_for(sleep);
		sleep = std::min(sleep * 2, std::chrono::microseconds(1000));
	}
	return unexpected(EAGAIN);
}

Result<void> UffdRegion::collectDirty()
{
	const uint64_t chunk = ctx_.geometry.chunk;
	auto mark = [&](uint64_t off, uint64_t len) {
		for (uint64_t c = off / chunk; c <= (off + len - 1) / chunk && c < unwritten_.size(); ++c)
			if (!unwritten_[c]) {
				unwritten_[c] = true;
				unwrittenChunks_.fetch_add(1, std::memory_order_relaxed);
			}
	};
	if (tracking_ == RegionTracking::WpAsync) {
		// One walk reports and re-protects: a write after it faults into the next round.
		for (const auto &seg : segments_.segments()) {
			auto r = scanner_->scan(seg.addr, seg.addr + seg.len, true, [&](uintptr_t a, uintptr_t b) {
				mark(seg.offset + (a - seg.addr), b - a);
			});
			if (!r)
				return r;
		}
		return {};
	}
	// wp-sync: take the marks, then protect those pages again before anything reads them.
	std::vector<uint64_t> pages;
	for (uint64_t w = 0; w < dirtyWords_; ++w)
		for (uint64_t bits = dirty_[w].exchange(0, std::memory_order_acq_rel); bits; bits &= bits - 1)
			pages.push_back(w * 64 + static_cast<uint64_t>(__builtin_ctzll(bits)));
	Result<void> result;
	for (size_t i = 0; i < pages.size();) {
		size_t j = i + 1;
		while (j < pages.size() && pages[j] == pages[j - 1] + 1)
			++j;
		const uint64_t off = pages[i] * page_, len = (j - i) * page_;
		mark(off, len);
		segments_.forEachMapped(off, len, [&](uintptr_t addr, uint64_t, uint64_t n) {
			auto r = protect(addr, n, true);
			if (!r && r.error().value() != ENOENT && result)
				result = r;
		});
		i = j;
	}
	return result;
}

Result<void> UffdRegion::readChunk(uint64_t c, std::span<std::byte> buf)
{
	const uint64_t start = c * ctx_.geometry.chunk;
	Result<void> result;
	uint64_t covered = 0;
	segments_.forEachMapped(start, buf.size(), [&](uintptr_t addr, uint64_t off, uint64_t len) {
		if (!result)
			return;
		std::byte *dst = buf.data() + (off - start);
		if (foreignPid_ == 0) {
			// A page discarded since faults in and is served like any other.
			std::memcpy(dst, reinterpret_cast<const void *>(addr), len);
		} else {
			uint64_t done = 0;
			while (done < len) {
				ssize_t n = ::pread(memFd_.get(), dst + done, len - done, static_cast<off_t>(addr + done));
				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0) {
					result = unexpected(n < 0 ? errno : EFAULT);
					break;
				}
				done += static_cast<uint64_t>(n);
			}
		}
		covered += len;
	});
	if (result && covered != buf.size())
		return unexpected(EFAULT); // part of the chunk is unmapped: nothing to take from there
	return result;
}

Result<void> UffdRegion::writeBack()
{
	if (tracking_ == RegionTracking::None)
		return ctx_.remote->sync();
	std::lock_guard lock(writeBackMutex_);
	if (closing_.load(std::memory_order_acquire))
		return unexpected(ECANCELED);
	R3D_TRY(collectDirty());
	std::vector<std::byte> buf;
	Result<void> result;
	for (uint64_t c = 0; c < unwritten_.size(); ++c) {
		if (!unwritten_[c])
			continue;
		// The rest of the chunk comes from the backend first (copies skip the app's pages).
		if (!ctx_.state.load(c).present())
			if (auto r = puller_->demand(c, c); !r) {
				result = r;
				continue;
			}
		buf.resize(ctx_.geometry.lengthOf(c));
		auto r = readChunk(c, buf);
		if (r)
			r = ctx_.remote->writeAt(buf, c * ctx_.geometry.chunk);
		if (!r) {
			if (result)
				result = r;
			continue; // stays pending
		}
		unwritten_[c] = false;
		unwrittenChunks_.fetch_sub(1, std::memory_order_relaxed);
		writtenBack_.fetch_add(buf.size(), std::memory_order_relaxed);
	}
	R3D_TRY(result);
	writeBacks_.fetch_add(1, std::memory_order_relaxed);
	return ctx_.remote->sync();
}

void UffdRegion::writeBackLoop()
{
	std::unique_lock lock(intervalMutex_);
	while (!intervalWake_.wait_for(lock, options_.writeBackInterval, [&] { return intervalStop_; })) {
		lock.unlock();
		if (auto r = writeBack(); !r)
			logger()->warn("writing the region back: {}", r.error().message());
		lock.lock();
	}
}

} // namespace r3d::uffd
