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
	uint64_t pushed = 0, dirty = start.dirty;
	report.update(0, dirty, 0);
	while (!done) {
		std::this_thread::sleep_for(report.interval());
		if (done)
			break;
		try {
			auto s = pushSample(ctx.client(), path);
			pushed = s.pushed >= start.pushed ? s.pushed - start.pushed : 0;
			dirty = s.dirty;
			report.update(pushed, pushed + dirty, s.rate);
		} catch (const sdbus::Error &) {
			// An unmounted object goes away before the reply comes.
		}
	}
	worker.join();
	if (error) {
		report.finish();
		std::rethrow_exception(error);
	}
	report.update(pushed + dirty, pushed + dirty, 0);
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
