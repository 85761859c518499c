#include "stages/faulting_read_writer_at.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <thread>

#include <fmt/format.h>

#include <r3d/size.hpp>

#include "r3d/log.hpp"

namespace r3d::stages {

namespace {

ResultMsg<double> probabilityParam(const BackendUri &uri, const std::string &key)
{
	auto it = uri.params.find(key);
	if (it == uri.params.end())
		return 0.0;
	double p = -1;
	const auto &text = it->second;
	auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), p);
	if (ec != std::errc() || end != text.data() + text.size() || p < 0 || p > 1)
		return fail(EINVAL, fmt::format("'{}': {}={} is not a probability between 0 and 1", uri.text, key, text));
	return p;
}

ResultMsg<std::chrono::microseconds> durationOrZero(const BackendUri &uri, const std::string &key)
{
	if (!uri.params.contains(key))
		return std::chrono::microseconds(0);
	auto d = uri.durationParam(key, std::chrono::milliseconds(0));
	if (!d)
		return unexpectedOf(d.error());
	return std::chrono::duration_cast<std::chrono::microseconds>(*d);
}

} // namespace

ResultMsg<FaultOptions> FaultOptions::fromUri(const BackendUri &uri)
{
	FaultOptions o;
	for (const auto &[key, value] : uri.params) {
		static const char *const kKeys[] = { "fault-ops",  "fault-eio",          "fault-eio-range",
						     "fault-short", "fault-latency",     "fault-latency-dist",
						     "fault-seek", "fault-hang-after",   "fault-hang-for",
						     "fault-hang-count", "fault-seed" };
		if (!key.starts_with("fault-"))
			continue;
		if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys))
			return fail(EINVAL, fmt::format("'{}': unknown parameter '{}' (fault+ takes fault-ops, fault-eio, "
							"fault-eio-range, fault-short, fault-latency, fault-latency-dist, "
							"fault-seek, fault-hang-after, fault-hang-for, fault-hang-count, "
							"fault-seed)",
							uri.text, key));
	}
	if (auto it = uri.params.find("fault-ops"); it != uri.params.end()) {
		if (it->second == "read")
			o.ops = kReads;
		else if (it->second == "write")
			o.ops = kWrites;
		else if (it->second == "all")
			o.ops = kAll;
		else
			return fail(EINVAL, fmt::format("'{}': fault-ops={} (use read, write or all)", uri.text, it->second));
	}
	auto eio = probabilityParam(uri, "fault-eio");
	if (!eio)
		return unexpectedOf(eio.error());
	o.eioRate = *eio;
	auto shortRate = probabilityParam(uri, "fault-short");
	if (!shortRate)
		return unexpectedOf(shortRate.error());
	o.shortRate = *shortRate;
	if (auto it = uri.params.find("fault-eio-range"); it != uri.params.end()) {
		auto dash = it->second.find('-');
		auto from = parseSize(it->second.substr(0, dash == std::string::npos ? 0 : dash));
		auto to = parseSize(dash == std::string::npos ? "" : it->second.substr(dash + 1));
		if (dash == std::string::npos || !from || !to || *to <= *from)
			return fail(EINVAL, fmt::format("'{}': fault-eio-range={} (use START-END in bytes, END > START, "
							"e.g. 1M-2M)",
							uri.text, it->second));
		o.eioFrom = *from;
		o.eioTo = *to;
	}
	auto latency = durationOrZero(uri, "fault-latency");
	if (!latency)
		return unexpectedOf(latency.error());
	o.latency = *latency;
	if (auto it = uri.params.find("fault-latency-dist"); it != uri.params.end()) {
		if (it->second == "fixed")
			o.dist = Dist::Fixed;
		else if (it->second == "uniform")
			o.dist = Dist::Uniform;
		else if (it->second == "exp")
			o.dist = Dist::Exponential;
		else
			return fail(EINVAL, fmt::format("'{}': fault-latency-dist={} (use fixed, uniform or exp)", uri.text,
							it->second));
	}
	auto seek = durationOrZero(uri, "fault-seek");
	if (!seek)
		return unexpectedOf(seek.error());
	o.seek = *seek;
	auto hangFor = durationOrZero(uri, "fault-hang-for");
	if (!hangFor)
		return unexpectedOf(hangFor.error());
	o.hangFor = std::chrono::duration_cast<std::chrono::milliseconds>(*hangFor);
	for (auto [key, field] : { std::pair{ "fault-hang-after", &o.hangAfter }, std::pair{ "fault-hang-count", &o.hangCount },
				   std::pair{ "fault-seed", &o.seed } }) {
		auto it = uri.params.find(key);
		if (it == uri.params.end())
			continue;
		const auto &text = it->second;
		auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *field);
		if (ec != std::errc() || end != text.data() + text.size() || *field == 0)
			return fail(EINVAL, fmt::format("'{}': {}={} is not a positive integer", uri.text, key, text));
	}
	if (o.hangCount > 0 && o.hangAfter == 0)
		return fail(EINVAL, fmt::format("'{}': fault-hang-count needs fault-hang-after", uri.text));
	if (o.seed == 0)
		o.seed = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) | 1;
	return o;
}

std::string FaultOptions::describe() const
{
	std::string out = fmt::format("faults on {}:", ops == kAll ? "reads and writes" : ops == kReads ? "reads" : "writes");
	if (eioRate > 0)
		out += fmt::format(" EIO p={}", eioRate);
	if (eioTo > eioFrom)
		out += fmt::format(" EIO in [{}, {})", eioFrom, eioTo);
	if (shortRate > 0)
		out += fmt::format(" short p={}", shortRate);
	if (latency.count() > 0)
		out += fmt::format(" latency {} µs ({})", latency.count(),
				   dist == Dist::Fixed ? "fixed" : dist == Dist::Uniform ? "uniform" : "exp");
	if (seek.count() > 0)
		out += fmt::format(" seek {} µs", seek.count());
	if (hangAfter > 0)
		out += (hangFor.count() > 0 ? fmt::format(" hang after {} calls for {} ms", hangAfter, hangFor.count())
					    : fmt::format(" hang after {} calls until closed", hangAfter)) +
		       (hangCount > 0 ? fmt::format(" ({} calls)", hangCount) : std::string());
	if (out.ends_with(':'))
		out += " none";
	return out + fmt::format("; seed {}", seed);
}

FaultingReadWriterAt::FaultingReadWriterAt(std::shared_ptr<ReadWriterAt> next, FaultOptions options)
	: ForwardingReadWriterAt(std::move(next)), options_(std::move(options)), random_(options_.seed)
{
	log::get("fault")->info("{}", options_.describe());
}

FaultingReadWriterAt::~FaultingReadWriterAt()
{
	auto c = counters();
	log::get("fault")->info("fault stage closed: {} calls, {} EIO, {} short, {} seeks, {} hangs", c.calls, c.eio,
				c.shortCalls, c.seeks, c.hangs);
	{
		std::lock_guard lock(hangMutex_);
		closing_ = true;
	}
	hangCv_.notify_all();
}

FaultingReadWriterAt::Verdict FaultingReadWriterAt::enter(unsigned op, uint64_t offset, uint64_t length)
{
	uint64_t n = calls_.fetch_add(1) + 1;
	if ((options_.ops & op) == 0)
		return Verdict::Pass;
	std::chrono::microseconds wait{ 0 };
	bool eio = false, shortCall = false;
	{
		std::lock_guard lock(mutex_);
		std::uniform_real_distribution<double> unit(0.0, 1.0);
		if (options_.latency.count() > 0) {
			double mean = static_cast<double>(options_.latency.count());
			double us = options_.dist == FaultOptions::Dist::Fixed	 ? mean
				    : options_.dist == FaultOptions::Dist::Uniform ? 2 * mean * unit(random_)
										   : std::exponential_distribution<double>(1 / mean)(random_);
			wait += std::chrono::microseconds(static_cast<int64_t>(us));
		}
		if (options_.seek.count() > 0 && offset != lastEnd_) {
			wait += options_.seek;
			seeks_.fetch_add(1, std::memory_order_relaxed);
		}
		lastEnd_ = offset + length;
		// Always drawn, so the sequence of faults depends on the seed and the calls only.
		eio = unit(random_) < options_.eioRate;
		shortCall = unit(random_) < options_.shortRate;
	}
	if (options_.hangAfter > 0 && n > options_.hangAfter &&
	    (options_.hangCount == 0 || n <= options_.hangAfter + options_.hangCount)) {
		hangs_.fetch_add(1, std::memory_order_relaxed);
		std::unique_lock lock(hangMutex_);
		if (options_.hangFor.count() > 0)
			hangCv_.wait_for(lock, options_.hangFor, [&] { return closing_; });
		else
			hangCv_.wait(lock, [&] { return closing_; });
	}
	if (wait.count() > 0)
		std::this_thread::sleep_for(wait);
	if (options_.eioTo > options_.eioFrom && offset < options_.eioTo && offset + length > options_.eioFrom)
		eio = true;
	if (eio) {
		eio_.fetch_add(1, std::memory_order_relaxed);
		return Verdict::Eio;
	}
	if (shortCall) {
		short_.fetch_add(1, std::memory_order_relaxed);
		return length >= 2 ? Verdict::Short : Verdict::Eio;
	}
	return Verdict::Pass;
}

Result<void> FaultingReadWriterAt::readAt(std::span<std::byte> buf, uint64_t offset)
{
	switch (enter(FaultOptions::kReads, offset, buf.size())) {
	case Verdict::Pass:
		return next_->readAt(buf, offset);
	case Verdict::Short:
		// Half the bytes land in the caller's buffer, and the call still fails.
		(void)next_->readAt(buf.first(buf.size() / 2), offset);
		return unexpected(EIO);
	case Verdict::Eio:
		break;
	}
	return unexpected(EIO);
}

Result<void> FaultingReadWriterAt::writeAt(std::span<const std::byte> buf, uint64_t offset)
{
	switch (enter(FaultOptions::kWrites, offset, buf.size())) {
	case Verdict::Pass:
		return next_->writeAt(buf, offset);
	case Verdict::Short:
		// A torn write: the first half reaches the backend, the caller is told EIO.
		(void)next_->writeAt(buf.first(buf.size() / 2), offset);
		return unexpected(EIO);
	case Verdict::Eio:
		break;
	}
	return unexpected(EIO);
}

FaultingReadWriterAt::Counters FaultingReadWriterAt::counters() const
{
	return { calls_.load(), eio_.load(), short_.load(), seeks_.load(), hangs_.load() };
}

} // namespace r3d::stages
