// Memory regions over a userfaultfd: how fast touching a region pulls it from a backend,
// per fault batching, next to a plain copy of the same bytes from the same backend (the
// limit), and what write tracking costs (wp-async with PAGEMAP_SCAN vs wp-sync faults): the
// first write per page, and a write-back's time per GiB. Prints tables and writes JSON;
// never passes or fails on speed.
//
//   uffd_bench [--uri URI] [--size BYTES] [--json FILE] [--fill yes|no]
//
// Every page's first 8 bytes are checked against the pattern while touching, so a wrong
// byte fails the run. Fault latency is measured in a second pass of its own: each touch of a
// page mincore() says is not resident is timed (the check itself is not).
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <r3d/backend_factory.hpp>
#include <r3d/log.hpp>
#include <r3d/memory_region.hpp>
#include <r3d/size.hpp>

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kPage = 4096;

uint64_t word(uint64_t offset)
{
	return (offset * 0x9e3779b97f4a7c15ull) ^ 0x5eed;
}

struct Mode {
	const char *name;
	r3d::MemoryRegionOptions options;
};

struct Row {
	std::string mode, pattern;
	double mbps = 0, p50 = 0, p99 = 0;
	uint64_t faults = 0, faultTouches = 0, bad = 0;
};

double seconds(Clock::duration d)
{
	return std::chrono::duration<double>(d).count();
}

double percentile(std::vector<double> &v, double p)
{
	if (v.empty())
		return 0;
	size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
	std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
	return v[i];
}

int fail(const std::string &what)
{
	std::fprintf(stderr, "uffd_bench: %s\n", what.c_str());
	return 1;
}

} // namespace

int main(int argc, char **argv)
{
	std::string uri = "memory:1G", json = "uffd_bench.json";
	uint64_t size = 1ull << 30;
	bool fill = true;
	for (int i = 1; i + 1 < argc; i += 2) {
		std::string a = argv[i], v = argv[i + 1];
		if (a == "--uri")
			uri = v;
		else if (a == "--size") {
			auto s = r3d::parseSize(v);
			if (!s)
				return fail("bad --size " + v);
			size = *s;
		} else if (a == "--json")
			json = v;
		else if (a == "--fill")
			fill = v == "yes";
		else
			return fail("unknown option " + a);
	}
	r3d::log::setLevel("warn");
	auto backend = r3d::openBackend(uri);
	if (!backend)
		return fail(backend.error().message);
	std::shared_ptr<r3d::ReadWriterAt> be = *backend;
	size = std::min(size, be->size()) / kPage * kPage;
	const uint64_t block = 8u << 20;
	std::vector<uint64_t> buf(block / 8);
	if (fill) {
		std::printf("filling %s with %" PRIu64 " MiB\n", uri.c_str(), size >> 20);
		for (uint64_t off = 0; off < size; off += block) {
			uint64_t n = std::min(block, size - off);
			for (uint64_t w = 0; w < n / 8; ++w)
				buf[w] = word(off + w * 8);
			if (!be->writeAt(std::span(reinterpret_cast<const std::byte *>(buf.data()), n), off))
				return fail("cannot fill the backend");
		}
	}

	// The limit: the same bytes read from the backend in 2 MiB calls, into fresh anonymous
	// memory (page allocation + copy, what a region pays too) and into memory already there.
	auto copyRun = [&](bool prefault) -> double {
		auto *dst = static_cast<std::byte *>(
			::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
		if (dst == MAP_FAILED)
			return 0;
		if (prefault)
			std::memset(dst, 1, size);
		auto t0 = Clock::now();
		for (uint64_t off = 0; off < size; off += 2u << 20) {
			uint64_t n = std::min<uint64_t>(2u << 20, size - off);
			if (!be->readAt(std::span(dst + off, n), off))
				return 0;
		}
		double s = seconds(Clock::now() - t0);
		::munmap(dst, size);
		return static_cast<double>(size) / s / 1e6;
	};
	double copyFresh = copyRun(false), copyWarm = copyRun(true);
	// The pull path alone: the Puller's workers copy the whole region in with nobody
	// touching it (backend read + UFFDIO_COPY, no faults).
	double fill2m = 0, touchFilled = 0;
	{
		r3d::MemoryRegionOptions o;
		o.chunk = 2u << 20;
		o.maxRun = 2u << 20;
		auto t0 = Clock::now();
		auto region = r3d::MemoryRegion::map(be, size, o);
		if (!region)
			return fail(region.error().message);
		while ((*region)->stats().presentBytes < size)
			::usleep(200);
		fill2m = static_cast<double>(size) / seconds(Clock::now() - t0) / 1e6;
		// Then the app's first touch of every page, none of which faults to the handler: what
		// a first touch costs on this machine's page tables whoever filled the page.
		const volatile auto *p = reinterpret_cast<const volatile std::byte *>((*region)->data());
		auto t1 = Clock::now();
		for (uint64_t off = 0; off < size; off += kPage)
			(void)p[off];
		touchFilled = static_cast<double>(size) / seconds(Clock::now() - t1) / 1e6;
	}

	std::vector<Mode> modes;
	{
		r3d::MemoryRegionOptions o;
		o.background = false;
		o.readahead = false;
		modes.push_back({ "adaptive", o });
		o.readahead = true;
		modes.push_back({ "adaptive+readahead", o });
		o.readahead = false;
		o.batching = r3d::FaultBatching::Fixed;
		o.fixedRun = 4096;
		modes.push_back({ "fixed-4k", o });
		o.fixedRun = 2u << 20;
		modes.push_back({ "fixed-2m", o });
	}
	const uint64_t pages = size / kPage;
	std::vector<uint64_t> seqOrder(pages), randOrder(pages);
	for (uint64_t i = 0; i < pages; ++i)
		seqOrder[i] = randOrder[i] = i;
	std::shuffle(randOrder.begin(), randOrder.end(), std::mt19937_64(42));

	std::vector<Row> rows;
	for (const auto &mode : modes)
		for (int pat = 0; pat < 2; ++pat) {
			const auto &order = pat == 0 ? seqOrder : randOrder;
			Row row{ mode.name, pat == 0 ? "sequential" : "random" };
			// Pass 1: throughput, nothing in the loop but the touch and its check.
			{
				auto region = r3d::MemoryRegion::map(be, size, mode.options);
				if (!region)
					return fail(region.error().message);
				const auto *p = reinterpret_cast<const std::byte *>((*region)->data());
				uint64_t bad = 0;
				auto t0 = Clock::now();
				for (uint64_t pg : order) {
					uint64_t v;
					std::memcpy(&v, p + pg * kPage, 8);
					bad += v != word(pg * kPage);
				}
				double s = seconds(Clock::now() - t0);
				row.mbps = static_cast<double>(size) / s / 1e6;
				row.bad = bad;
				row.faults = (*region)->stats().faults;
			}
			// Pass 2: latency of the touches that fault.
			{
				auto region = r3d::MemoryRegion::map(be, size, mode.options);
				if (!region)
					return fail(region.error().message);
				const auto *p = reinterpret_cast<const std::byte *>((*region)->data());
				std::vector<double> lat;
				lat.reserve(pages / 4);
				for (uint64_t pg : order) {
					unsigned char resident = 0;
					::mincore(const_cast<std::byte *>(p + pg * kPage), kPage, &resident);
					auto t0 = Clock::now();
					uint64_t v;
					std::memcpy(&v, p + pg * kPage, 8);
					auto t1 = Clock::now();
					row.bad += v != word(pg * kPage);
					if (!(resident & 1))
						lat.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
				}
				row.faultTouches = lat.size();
				row.p50 = percentile(lat, 0.50);
				row.p99 = percentile(lat, 0.99);
			}
			std::printf("  %-20s %-10s %9.0f MB/s  p50 %8.1f us  p99 %8.1f us  (%" PRIu64 " faults)\n",
				    row.mode.c_str(), row.pattern.c_str(), row.mbps, row.p50, row.p99, row.faults);
			std::fflush(stdout);
			rows.push_back(row);
		}

	// Dirty tracking: the first write to each of every 16th page of a filled region, then a
	// write-back of them (scan + re-protect + copy + backend write), then a write-back with
	// nothing dirty (the scan alone: PAGEMAP_SCAN's walk, or the wp-sync bitmap).
	struct TrackRow {
		std::string mode;
		double firstWriteUs = 0, syncDirtyMs = 0, scanCleanMs = 0;
		uint64_t dirtyPages = 0;
	};
	std::vector<TrackRow> trackRows;
	for (auto tracking : { r3d::RegionTracking::WpAsync, r3d::RegionTracking::WpSync }) {
		if (tracking == r3d::RegionTracking::WpAsync
		    && r3d::resolveTracking(r3d::RegionTracking::Auto) != r3d::RegionTracking::WpAsync) {
			std::printf("  wp-async: this kernel lacks WP_ASYNC/WP_UNPOPULATED, skipped\n");
			continue;
		}
		r3d::MemoryRegionOptions o;
		o.chunk = 64 * 1024;
		o.tracking = tracking;
		o.writeBackInterval = std::chrono::milliseconds(0);
		auto region = r3d::MemoryRegion::map(be, size, o);
		if (!region)
			return fail(region.error().message);
		while ((*region)->stats().presentBytes < size)
			::usleep(200);
		TrackRow row{ r3d::trackingName(tracking) };
		auto *p = reinterpret_cast<volatile std::byte *>((*region)->data());
		auto t0 = Clock::now();
		for (uint64_t off = 0; off < size; off += 16 * kPage)
			p[off] = p[off]; // the same byte back: the backend keeps the pattern
		row.dirtyPages = size / (16 * kPage);
		row.firstWriteUs = std::chrono::duration<double, std::micro>(Clock::now() - t0).count()
				   / static_cast<double>(row.dirtyPages);
		auto t1 = Clock::now();
		if (auto r = (*region)->sync(); !r)
			return fail(r.error().message);
		row.syncDirtyMs = std::chrono::duration<double, std::milli>(Clock::now() - t1).count();
		auto t2 = Clock::now();
		if (auto r = (*region)->sync(); !r)
			return fail(r.error().message);
		row.scanCleanMs = std::chrono::duration<double, std::milli>(Clock::now() - t2).count();
		std::printf("  %-20s first write %6.2f us/page, write-back of %" PRIu64 " pages %8.1f ms, clean scan %6.2f ms\n",
			    row.mode.c_str(), row.firstWriteUs, row.dirtyPages, row.syncDirtyMs, row.scanCleanMs);
		trackRows.push_back(row);
	}
	const double perGiB = static_cast<double>(1ull << 30) / static_cast<double>(size);

	std::printf("\nuffd_bench: %s, %" PRIu64 " MiB, %ld CPUs\n", uri.c_str(), size >> 20, ::sysconf(_SC_NPROCESSORS_ONLN));
	std::printf("%-20s %-10s %10s %10s %10s %9s %12s %10s\n", "mode", "touch", "MB/s", "p50 us", "p99 us", "faults",
		    "vs memcpy", "vs warm");
	for (const auto &r : rows)
		std::printf("%-20s %-10s %10.0f %10.1f %10.1f %9" PRIu64 " %11.2fx %9.2fx\n", r.mode.c_str(), r.pattern.c_str(),
			    r.mbps, r.p50, r.p99, r.faults, copyFresh / r.mbps, copyWarm / r.mbps);
	std::printf("%-20s %-10s %10.0f\n", "memcpy (fresh)", "sequential", copyFresh);
	std::printf("%-20s %-10s %10.0f\n", "memcpy (warm)", "sequential", copyWarm);
	std::printf("%-20s %-10s %10.0f\n", "background fill 2M", "no touch", fill2m);
	std::printf("%-20s %-10s %10.0f\n", "touch after fill", "sequential", touchFilled);
	std::printf("(vs memcpy: how many times slower than reading the backend into fresh memory)\n");
	std::printf("\n%-10s %16s %22s %22s\n", "tracking", "first write us", "write-back 1/16 ms/GiB", "clean scan ms/GiB");
	for (const auto &t : trackRows)
		std::printf("%-10s %16.2f %22.1f %22.2f\n", t.mode.c_str(), t.firstWriteUs, t.syncDirtyMs * perGiB,
			    t.scanCleanMs * perGiB);

	struct utsname u {};
	::uname(&u);
	FILE *f = std::fopen(json.c_str(), "w");
	if (!f)
		return fail("cannot write " + json);
	std::fprintf(f, "{\n  \"benchmark\": \"uffd\",\n  \"uri\": \"%s\",\n  \"size\": %" PRIu64 ",\n", uri.c_str(), size);
	std::fprintf(f, "  \"host\": {\"cpus\": %ld, \"kernel\": \"%s\"},\n", ::sysconf(_SC_NPROCESSORS_ONLN), u.release);
	std::fprintf(f, "  \"memcpy_MBps\": {\"fresh\": %.0f, \"warm\": %.0f},\n", copyFresh, copyWarm);
	std::fprintf(f, "  \"background_fill_2m_MBps\": %.0f,\n  \"touch_after_fill_MBps\": %.0f,\n  \"results\": [\n",
		     fill2m, touchFilled);
	for (size_t i = 0; i < rows.size(); ++i) {
		const auto &r = rows[i];
		std::fprintf(f,
			     "    {\"mode\": \"%s\", \"touch\": \"%s\", \"MBps\": %.0f, \"fault_p50_us\": %.1f, "
			     "\"fault_p99_us\": %.1f, \"faults\": %" PRIu64 ", \"fault_touches\": %" PRIu64
			     ", \"vs_memcpy\": %.2f}%s\n",
			     r.mode.c_str(), r.pattern.c_str(), r.mbps, r.p50, r.p99, r.faults, r.faultTouches, copyFresh / r.mbps,
			     i + 1 < rows.size() ? "," : "");
	}
	std::fprintf(f, "  ],\n  \"tracking\": [\n");
	for (size_t i = 0; i < trackRows.size(); ++i) {
		const auto &t = trackRows[i];
		std::fprintf(f,
			     "    {\"mode\": \"%s\", \"first_write_us\": %.2f, \"dirty_pages\": %" PRIu64
			     ", \"writeback_ms_per_GiB\": %.2f, \"scan_clean_ms_per_GiB\": %.3f}%s\n",
			     t.mode.c_str(), t.firstWriteUs, t.dirtyPages, t.syncDirtyMs * perGiB, t.scanCleanMs * perGiB,
			     i + 1 < trackRows.size() ? "," : "");
	}
	std::fprintf(f, "  ]\n}\n");
	std::fclose(f);
	std::printf("JSON: %s\n", json.c_str());
	uint64_t bad = 0;
	for (const auto &r : rows)
		bad += r.bad;
	if (bad)
		return fail(std::to_string(bad) + " pages read wrong bytes");
	return 0;
}
