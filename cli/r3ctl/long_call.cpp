#include "long_call.hpp"

#include <atomic>
#include <exception>
#include <thread>

#include <fmt/format.h>

#include "progress_report.hpp"

namespace r3ctl {

namespace {

struct PushSample {
	uint64_t pushed = 0, dirty = 0, rate = 0;
};

PushSample pushSample(Client &client, const std::string &path)
{
	auto p = client.managed(path)->GetAll(org::r3map::Managed1_proxy::INTERFACE_NAME);
	return { p.at("PushedBytes").get<uint64_t>(), p.at("DirtyBytes").get<uint64_t>(), p.at("PushRate").get<uint64_t>() };
}

} // namespace

void runPushing(Context &ctx, const std::string &operation, const std::string &id, const std::string &path,
		const std::function<void(Client &client)> &call)
{
	ProgressReport report(ctx.out, operation, id);
	PushSample start;
	try {
		start = pushSample(ctx.client(), path);
	} catch (const sdbus::Error &) {
		// Not there (any more): the call itself says what is wrong.
	}
	Client &longClient = ctx.longClient();
	std::atomic<bool> done{ false };
	std::exception_ptr error;
	std::thread worker([&] {
		try {
			call(longClient);
		} catch (...) {
			error = std::current_exception();
		}
		done = true;
	});
	// Against what was dirty at the start: the daemon's DirtyBytes drops only when a round
	// is committed, and writes during the call would move the goal.
	uint64_t pushed = 0, total = start.dirty;
	double rate = 0;
	auto last = std::chrono::steady_clock::now();
	report.update(0, total, 0);
	while (!done) {
		std::this_thread::sleep_for(report.interval());
		if (done)
			break;
		try {
			auto s = pushSample(ctx.client(), path);
			uint64_t now = s.pushed >= start.pushed ? s.pushed - start.pushed : 0;
			auto t = std::chrono::steady_clock::now();
			double dt = std::chrono::duration<double>(t - last).count();
			double measured = dt > 0 ? static_cast<double>(now - std::min(now, pushed)) / dt : 0;
			rate = rate == 0 ? measured : 0.7 * rate + 0.3 * measured;
			last = t;
			pushed = now;
			total = std::max(total, pushed);
			report.update(pushed, total, rate > 0 ? static_cast<uint64_t>(rate) : s.rate);
		} catch (const sdbus::Error &) {
			// An unmounted object goes away before the reply comes.
		}
	}
	worker.join();
	if (error) {
		report.finish();
		std::rethrow_exception(error);
	}
	report.update(total, total, 0);
	report.finish();
}

void waitLocal(Context &ctx, const std::string &id, const std::string &path, uint64_t size)
{
	ProgressReport report(ctx.out, "pull", id);
	auto deadline = ctx.longTimeout() ? std::chrono::steady_clock::now() + *ctx.longTimeout()
					  : std::chrono::steady_clock::time_point::max();
	std::string lastError;
	for (;;) {
		auto p = ctx.client().managed(path)->GetAll(org::r3map::Managed1_proxy::INTERFACE_NAME);
		uint64_t local = std::min(size, p.at("LocalBytes").get<uint64_t>());
		report.update(local, size, p.at("PullRate").get<uint64_t>());
		if (local >= size)
			break;
		lastError = p.at("LastError").get<std::string>();
		if (std::chrono::steady_clock::now() >= deadline)
			throw sdbus::Error("org.r3map.r3ctl.Error.Timeout",
					   fmt::format("{} of {} bytes local after --timeout{}", local, size,
						       lastError.empty() ? "" : " (the remote: " + lastError + ")"));
		std::this_thread::sleep_for(report.interval());
	}
	report.finish();
}

} // namespace r3ctl
