// A memory region over a userfaultfd, served from a memory backend: every byte the app
// touches must be the backend's, whatever the order, the batching or the events.
#include <r3d/memory_region.hpp>

#include <algorithm>
#include <atomic>
#include <csetjmp>
#include <csignal>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "../stages/managed_rig.hpp"
#include "fault_read_writer_at.hpp"
#include "uffd/userfault_fd.hpp"

using namespace r3d;
using namespace std::chrono_literals;

// Counters move after the copy that woke the app: the checks on them wait (bounded) for
// the value, never time anything.
namespace {

const r3test::Prerequisite uffdPresent("userfaultfd is not available to this process",
				       [] { return uffd::UserfaultFd::kernelFeatures().has_value(); });

constexpr uint64_t kPage = 4096;
constexpr uint64_t kSize = 64u << 20;

std::unique_ptr<MemoryRegion> mapOrFail(std::shared_ptr<ReadWriterAt> backend, const MemoryRegionOptions &o,
					uint64_t size = 0)
{
	auto r = MemoryRegion::map(std::move(backend), size, o);
	if (!r)
		FAIL("map: " << r.error().message);
	return std::move(*r);
}

// The first offset where the region and `expected` differ, or npos.
size_t firstDifference(const std::byte *region, const std::vector<std::byte> &expected, size_t from = 0,
		       size_t length = std::string::npos)
{
	length = std::min(length, expected.size() - from);
	for (size_t off = from; off < from + length; off += kPage) {
		size_t n = std::min<size_t>(kPage, from + length - off);
		if (std::memcmp(region + off, expected.data() + off, n) != 0)
			return off;
	}
	return std::string::npos;
}

MemoryRegionOptions demandOnly(MemoryRegionOptions o = {})
{
	o.background = false;
	return o;
}

} // namespace

TEST_CASE("sequential touch of 64 MiB: every byte is the backend's", "[uffd]")
{
	auto expected = r3test::pattern(kSize, 11);
	auto region = mapOrFail(r3test::memoryDisk(kSize, 11), demandOnly());
	const std::byte *p = region->data();
	uint64_t sum = 0;
	for (uint64_t off = 0; off < kSize; off += kPage)
		sum += static_cast<uint8_t>(p[off]); // one touch per page, in order
	(void)sum;
	CHECK(firstDifference(p, expected) == std::string::npos);
	auto s = region->stats();
	CHECK(r3test::eventually([&] { return region->stats().pulledBytes == kSize; }));
	// Adaptive batching: runs grew, so far fewer faults than chunks.
	CHECK(s.faults < kSize / (64 * 1024));
	INFO("faults " << s.faults << ", via " << s.uffdOrigin);
}

TEST_CASE("random touch of 64 MiB, every batching: every byte is the backend's", "[uffd]")
{
	auto expected = r3test::pattern(kSize, 12);
	std::vector<uint64_t> pages(kSize / kPage);
	for (uint64_t i = 0; i < pages.size(); ++i)
		pages[i] = i;
	std::shuffle(pages.begin(), pages.end(), std::mt19937(5));
	struct Mode {
		const char *name;
		FaultBatching batching;
		uint64_t fixedRun;
	};
	for (auto mode : { Mode{ "adaptive", FaultBatching::Adaptive, 0 }, Mode{ "fixed 4 KiB", FaultBatching::Fixed, 4096 },
			   Mode{ "fixed 2 MiB", FaultBatching::Fixed, 2u << 20 } }) {
		SECTION(mode.name)
		{
			auto o = demandOnly();
			o.batching = mode.batching;
			o.fixedRun = mode.fixedRun;
			auto region = mapOrFail(r3test::memoryDisk(kSize, 12), o);
			const std::byte *p = region->data();
			uint64_t sum = 0;
			for (uint64_t page : pages)
				sum += static_cast<uint8_t>(p[page * kPage + page % kPage]);
			(void)sum;
			CHECK(firstDifference(p, expected) == std::string::npos);
			CHECK(r3test::eventually([&] { return region->stats().pulledBytes == kSize; }));
		}
	}
}

TEST_CASE("background pulling fills the region with nobody touching it", "[uffd]")
{
	constexpr uint64_t size = 8u << 20;
	auto expected = r3test::pattern(size, 13);
	auto region = mapOrFail(r3test::memoryDisk(size, 13), {});
	REQUIRE(r3test::eventually([&] { return region->stats().presentBytes == size; }));
	CHECK(region->stats().faults == 0);
	CHECK(firstDifference(region->data(), expected) == std::string::npos);
}

TEST_CASE("writes stay in the region and read back, over pulled and unpulled pages", "[uffd]")
{
	constexpr uint64_t size = 8u << 20;
	auto expected = r3test::pattern(size, 14);
	auto region = mapOrFail(r3test::memoryDisk(size, 14), demandOnly());
	std::byte *p = region->data();
	(void)*static_cast<volatile std::byte *>(p + 3 * kPage); // pulled first
	auto data = r3test::pattern(3 * kPage + 100, 99);
	// Over a pulled page and into unpulled ones, and one write into the middle of a page.
	std::memcpy(p + 3 * kPage + 50, data.data(), data.size());
	std::memcpy(expected.data() + 3 * kPage + 50, data.data(), data.size());
	p[5u << 20] = std::byte{ 0x5a };
	expected[5u << 20] = std::byte{ 0x5a };
	CHECK(firstDifference(p, expected) == std::string::npos);
}

TEST_CASE("madvise(DONTNEED) drops the app's writes there: the next touch reads the backend", "[uffd]")
{
	constexpr uint64_t size = 8u << 20, chunk = 64 * 1024;
	auto backend = r3test::pattern(size, 15);
	auto region = mapOrFail(r3test::memoryDisk(size, 15), demandOnly());
	std::byte *p = region->data();
	REQUIRE(firstDifference(p, backend) == std::string::npos);
	// Scribble over two chunks and the two first pages of a third.
	std::memset(p + 2 * chunk, 0xee, 2 * chunk);
	std::memset(p + 6 * chunk, 0xdd, 2 * kPage);
	REQUIRE(::madvise(p + 2 * chunk, 2 * chunk, MADV_DONTNEED) == 0);
	// Only the first page of the third chunk: its second page keeps the app's bytes.
	REQUIRE(::madvise(p + 6 * chunk, kPage, MADV_DONTNEED) == 0);
	auto expected = backend;
	std::memset(expected.data() + 6 * chunk + kPage, 0xdd, kPage);
	CHECK(firstDifference(p, expected) == std::string::npos);
	CHECK(r3test::eventually([&] { return region->stats().removes == 2; }));
	// The whole region, including pages never written.
	REQUIRE(::madvise(p, size, MADV_DONTNEED) == 0);
	CHECK(firstDifference(p, backend) == std::string::npos);
}

TEST_CASE("threads faulting on one chunk together share one pull", "[uffd]")
{
	constexpr uint64_t size = 4u << 20, chunk = 64 * 1024;
	auto expected = r3test::pattern(size, 16);
	auto counting = std::make_shared<r3test::CountingRemote>(r3test::memoryDisk(size, 16));
	auto gate = std::make_shared<r3test::FaultReadWriterAt>(counting);
	gate->hold(r3test::FaultReadWriterAt::kReads);
	auto region = mapOrFail(gate, demandOnly());
	const std::byte *p = region->data();
	constexpr int kThreads = 6;
	std::vector<std::thread> threads;
	std::atomic<int> good{ 0 };
	for (int t = 0; t < kThreads; ++t)
		threads.emplace_back([&, t] {
			uint64_t off = 5 * chunk + static_cast<uint64_t>(t) * 2 * kPage;
			if (std::memcmp(p + off, expected.data() + off, kPage) == 0)
				good++;
		});
	gate->waitHeld();
	// Every thread faulted (or its fault is queued) before the one pull may go on.
	REQUIRE(r3test::eventually([&] { return region->stats().faults >= 4; }));
	gate->release();
	for (auto &t : threads)
		t.join();
	CHECK(good == kThreads);
	CHECK(counting->covering('r', 5 * chunk) == 1);
	CHECK(r3test::eventually([&] { return region->stats().faultPulls == 1; }));
}

namespace {
thread_local sigjmp_buf *busJump = nullptr;
void onBus(int)
{
	if (busJump)
		siglongjmp(*busJump, 1);
	std::abort();
}
} // namespace

TEST_CASE("a backend that keeps failing: the touching thread gets SIGBUS after remoteTimeout, never zeros",
	  "[uffd]")
{
	constexpr uint64_t size = 4u << 20;
	auto feats = uffd::UserfaultFd::kernelFeatures();
	if (!(*feats & uffd::kFeaturePoison)) {
		WARN("this kernel has no UFFDIO_POISON: the tgkill fallback is not tested here");
		return;
	}
	auto failing = std::make_shared<r3test::FaultReadWriterAt>(r3test::memoryDisk(size, 17));
	failing->failAfter(r3test::FaultReadWriterAt::kReads, 0, EIO);
	auto o = demandOnly();
	o.remoteTimeout = 200ms;
	auto region = mapOrFail(failing, o);
	struct sigaction sa {}, old{};
	sa.sa_handler = onBus;
	sigemptyset(&sa.sa_mask);
	REQUIRE(::sigaction(SIGBUS, &sa, &old) == 0);
	int outcome = 0; // 1: SIGBUS, 2: read something
	std::thread t([&] {
		sigjmp_buf jump;
		busJump = &jump;
		if (sigsetjmp(jump, 1) == 0) {
			(void)*static_cast<volatile const std::byte *>(region->data() + 12345);
			outcome = 2;
		} else
			outcome = 1;
		busJump = nullptr;
	});
	t.join();
	::sigaction(SIGBUS, &old, nullptr);
	CHECK(outcome == 1);
	CHECK(r3test::eventually([&] { return region->stats().poisonedPages == 1; }));
	CHECK(r3test::eventually([&] { return region->stats().presentBytes == 0; }));
}

TEST_CASE("munmap of part of the region: the rest is still served", "[uffd]")
{
	constexpr uint64_t size = 8u << 20;
	auto expected = r3test::pattern(size, 18);
	auto region = mapOrFail(r3test::memoryDisk(size, 18), demandOnly());
	std::byte *p = region->data();
	REQUIRE(::munmap(p + (2u << 20), 2u << 20) == 0);
	CHECK(r3test::eventually([&] { return region->stats().unmaps == 1; }));
	CHECK(firstDifference(p, expected, 0, 2u << 20) == std::string::npos);
	CHECK(firstDifference(p, expected, 4u << 20) == std::string::npos);
	// The unmapped part is settled: nothing pulls it.
	CHECK(r3test::eventually([&] { return region->stats().presentBytes == size; }));
	CHECK(r3test::eventually([&] { return region->stats().pulledBytes == size - (2u << 20); }));
}

TEST_CASE("mremap moving the region: faults at the new address are served", "[uffd]")
{
	constexpr uint64_t size = 8u << 20;
	auto expected = r3test::pattern(size, 19);
	auto region = mapOrFail(r3test::memoryDisk(size, 19), demandOnly());
	std::byte *p = region->data();
	(void)*static_cast<volatile std::byte *>(p + kPage); // one chunk present before the move
	void *q = ::mremap(p, size, size, MREMAP_MAYMOVE | MREMAP_FIXED,
			   static_cast<void *>(static_cast<std::byte *>(
				   ::mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))));
	REQUIRE(q != MAP_FAILED);
	CHECK(r3test::eventually([&] { return region->stats().remaps == 1; }));
	CHECK(firstDifference(static_cast<std::byte *>(q), expected) == std::string::npos);
	region->unmap(); // unmaps it at its new place
	unsigned char v = 0;
	CHECK(::mincore(q, kPage, &v) != 0); // gone (ENOMEM)
}

TEST_CASE("fork with followFork: the child reads the backend's bytes too", "[uffd]")
{
	constexpr uint64_t size = 4u << 20;
	auto expected = r3test::pattern(size, 20);
	auto o = demandOnly();
	o.followFork = true;
	auto r = MemoryRegion::map(r3test::memoryDisk(size, 20), 0, o);
	if (!r) {
		WARN("no EVENT_FORK here (" << r.error().message << "): not tested");
		return;
	}
	auto region = std::move(*r);
	const std::byte *p = region->data();
	(void)*static_cast<volatile const std::byte *>(p); // the first chunk present before the fork
	pid_t pid = ::fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		// The child: only async-signal-safe work, no Catch2.
		int bad = 0;
		for (uint64_t off = 0; off < size; off += kPage)
			bad += std::memcmp(p + off, expected.data() + off, kPage) != 0;
		::_exit(bad == 0 ? 0 : 1);
	}
	int status = 0;
	REQUIRE(::waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status));
	CHECK(WEXITSTATUS(status) == 0);
	CHECK(r3test::eventually([&] { return region->stats().forks == 1; }));
	CHECK(firstDifference(p, expected) == std::string::npos);
}

TEST_CASE("bad sizes are refused with a reason", "[uffd]")
{
	auto disk = r3test::memoryDisk(1u << 20);
	auto r = MemoryRegion::map(disk, 1000);
	REQUIRE(!r);
	CHECK(r.error().code.value() == EINVAL);
	auto big = MemoryRegion::map(disk, 2u << 20);
	REQUIRE(!big);
	CHECK(big.error().message.find("backend has") != std::string::npos);
}

TEST_CASE("system calls on unpulled pages: EFAULT user-mode-only, served with kernelFaults", "[uffd]")
{
	constexpr uint64_t size = 1u << 20;
	auto expected = r3test::pattern(size, 21);
	int fds[2];
	REQUIRE(::pipe(fds) == 0);
	auto writeFromRegion = [&](const std::byte *p) { return ::write(fds[1], p + 8 * kPage, 100); };
	{
		auto region = mapOrFail(r3test::memoryDisk(size, 21), demandOnly());
		if (region->stats().uffdOrigin == std::string("syscall (user mode only)")) {
			errno = 0;
			CHECK(writeFromRegion(region->data()) == -1);
			CHECK(errno == EFAULT);
		}
	}
	auto o = demandOnly();
	o.kernelFaults = true;
	auto r = MemoryRegion::map(r3test::memoryDisk(size, 21), 0, o);
	if (!r) {
		WARN("no uffd trapping kernel faults here (" << r.error().message << "): not tested");
	} else {
		CHECK(writeFromRegion((*r)->data()) == 100);
		std::vector<std::byte> got(100);
		REQUIRE(::read(fds[0], got.data(), got.size()) == 100);
		CHECK(std::memcmp(got.data(), expected.data() + 8 * kPage, 100) == 0);
	}
	::close(fds[0]);
	::close(fds[1]);
}

TEST_CASE("unmap while a thread waits on a fault: it faults on no mapping, never reads zeros", "[uffd]")
{
	constexpr uint64_t size = 1u << 20;
	auto gate = std::make_shared<r3test::FaultReadWriterAt>(r3test::memoryDisk(size, 22));
	gate->hold(r3test::FaultReadWriterAt::kReads);
	auto region = mapOrFail(gate, demandOnly());
	struct sigaction sa {}, old{};
	sa.sa_handler = onBus;
	sigemptyset(&sa.sa_mask);
	REQUIRE(::sigaction(SIGSEGV, &sa, &old) == 0);
	std::atomic<int> outcome{ 0 }; // 1: SIGSEGV, 2: read something
	std::thread reader([&] {
		sigjmp_buf jump;
		busJump = &jump;
		if (sigsetjmp(jump, 1) == 0) {
			(void)*static_cast<volatile const std::byte *>(region->data() + 3 * kPage);
			outcome = 2;
		} else
			outcome = 1;
		busJump = nullptr;
	});
	gate->waitHeld();
	std::thread unmapper([&] { region->unmap(); });
	CHECK(r3test::eventually([&] { return outcome != 0; }));
	gate->release(); // the pull in flight ends; unmap waits for it
	unmapper.join();
	reader.join();
	::sigaction(SIGSEGV, &old, nullptr);
	CHECK(outcome == 1);
}
