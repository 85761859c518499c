#include "transport/block/rpc_client.hpp"

#include <future>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include <fmt/format.h>
#include <openssl/rand.h>

#include <r3d/log.hpp>

#include "transport/block/rpc_client_impl.hpp"
#include "transport/tls.hpp"

namespace r3d::transport {

RpcClient::Impl::Impl(Runtime &rt, RpcClientOptions o)
	: runtime(rt), strand(asio::make_strand(rt.io())), options(std::move(o)), log(log::get("transport"))
{
}

void RpcClient::Impl::spawn(asio::awaitable<void> work)
{
	asio::co_spawn(strand, std::move(work), [alive = drain.hold()](std::exception_ptr) {});
}

Result<uint64_t> RpcClient::Impl::runOne(Op op, uint64_t offset, uint64_t length)
{
	Call call;
	call.request = Request{ 0, op, offset, length, {} };
	submit(call);
	R3D_TRY(wait(call));
	return call.size;
}

Result<void> RpcClient::Impl::runSplit(Op op, uint64_t offset, uint64_t length, std::span<std::byte> in,
				       std::span<const std::byte> out)
{
	uint64_t piece = maxPayload;
	if (length <= piece) {
		Call call;
		call.request = Request{ 0, op, offset, length, {} };
		call.in = in;
		call.out = out;
		submit(call);
		return wait(call);
	}
	std::deque<Call> calls;
	for (uint64_t pos = 0; pos < length; pos += piece) {
		uint64_t n = std::min(piece, length - pos);
		auto &call = calls.emplace_back();
		call.request = Request{ 0, op, offset + pos, n, {} };
		if (!in.empty())
			call.in = in.subspan(pos, n);
		if (!out.empty())
			call.out = out.subspan(pos, n);
		submit(call);
	}
	Result<void> result;
	for (auto &call : calls) {
		auto r = wait(call);
		if (!r && result)
			result = r;
	}
	return result;
}

void RpcClient::Impl::stop()
{
	if (!started)
		return;
	started = false;
	asio::post(strand, [this, alive = drain.hold()] {
		stopping = true;
		for (auto &slot : slots) {
			if (slot->cancelConnect)
				slot->cancelConnect();
			// Reset: what the callers gave up on must not reach the server later.
			if (slot->connection)
				slot->connection->close("client closed", true);
			slot->wake.notify();
		}
		sweepWake->notify();
	});
	drain.wait();
	auto cancel = [this](std::deque<Call *> &queue) {
		for (Call *call : queue)
			complete(call, ECANCELED, 0);
		queue.clear();
	};
	cancel(pendingWrites);
	cancel(pendingOthers);
	for (auto &slot : slots)
		cancel(slot->resend);
}

ResultMsg<std::unique_ptr<RpcClient>> RpcClient::connect(Runtime &runtime, RpcClientOptions options)
{
	if (options.connections == 0 || options.maxInFlight == 0 || options.maxPayload == 0)
		return fail(EINVAL, "r3: connections, in-flight and payload limits must be at least 1");
	auto where = fmt::format("{}:{}/{}", options.host, options.port, options.exportName);
	std::shared_ptr<asio::ssl::context> tlsContext;
	if (options.tls.enabled()) {
		auto tls = makeClientTlsContext(options.tls);
		if (!tls)
			return unexpectedOf(tls.error());
		tlsContext = *tls;
	}
	auto impl = std::make_unique<Impl>(runtime, std::move(options));
	impl->where = std::move(where);
	impl->tls = std::move(tlsContext);
	auto *i = impl.get();
	i->sessionId.resize(kSessionIdSize);
	if (RAND_bytes(reinterpret_cast<unsigned char *>(i->sessionId.data()), static_cast<int>(kSessionIdSize)) != 1)
		return fail(EIO, "r3: no random bytes for the session id");
	for (unsigned n = 0; n < i->options.connections; ++n)
		i->slots.push_back(std::make_unique<Slot>(i->strand, n));
	i->sweepWake.emplace(i->strand);
	i->started = true;

	// The first connection is made here, so a wrong address, certificate or token is
	// reported to the caller at once instead of being retried.
	std::promise<ResultMsg<std::shared_ptr<Connection>>> first;
	asio::co_spawn(i->strand, i->establish(*i->slots[0]),
		       [&first, alive = i->drain.hold()](std::exception_ptr e, ResultMsg<std::shared_ptr<Connection>> r) {
			       if (e)
				       r = fail(EIO, "connection setup failed unexpectedly");
			       first.set_value(std::move(r));
		       });
	auto connected = first.get_future().get();
	if (!connected) {
		i->stop();
		return unexpectedOf(connected.error());
	}
	asio::post(i->strand, [i, c = std::move(*connected), alive = i->drain.hold()] {
		i->slots[0]->connection = c;
		for (auto &slot : i->slots)
			i->spawn(i->slotLoop(*slot));
		i->spawn(i->sweepLoop());
	});
	return std::unique_ptr<RpcClient>(new RpcClient(std::move(impl)));
}

RpcClient::RpcClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RpcClient::~RpcClient()
{
	impl_->stop();
}

const RemoteExportInfo &RpcClient::info() const
{
	return impl_->info;
}

Result<void> RpcClient::read(std::span<std::byte> buf, uint64_t offset)
{
	return impl_->runSplit(Op::Read, offset, buf.size(), buf, {});
}

Result<void> RpcClient::write(std::span<const std::byte> buf, uint64_t offset)
{
	return impl_->runSplit(Op::Write, offset, buf.size(), {}, buf);
}

Result<void> RpcClient::readRanges(std::span<const IoRange> ranges, std::span<std::byte> out)
{
	uint64_t total = 0;
	for (const auto &r : ranges)
		total += r.length;
	if (total != out.size())
		return unexpected(EINVAL);
	// Ranges are grouped into requests of at most kMaxRanges ranges and maxPayload bytes;
	// a range larger than that travels as plain reads.
	std::deque<Call> calls;
	Result<void> result;
	size_t pos = 0;
	for (size_t i = 0; i < ranges.size();) {
		if (ranges[i].length > impl_->maxPayload) {
			auto r = read(out.subspan(pos, ranges[i].length), ranges[i].offset);
			if (!r && result)
				result = r;
			pos += ranges[i].length;
			++i;
			continue;
		}
		auto &call = calls.emplace_back();
		call.request.op = Op::ReadRanges;
		uint64_t bytes = 0;
		while (i < ranges.size() && call.request.ranges.size() < kMaxRanges &&
		       bytes + ranges[i].length <= impl_->maxPayload) {
			call.request.ranges.push_back(ranges[i]);
			bytes += ranges[i].length;
			++i;
		}
		call.in = out.subspan(pos, bytes);
		pos += bytes;
		impl_->submit(call);
	}
	for (auto &call : calls) {
		auto r = impl_->wait(call);
		if (!r && result)
			result = r;
	}
	return result;
}

Result<void> RpcClient::trim(uint64_t offset, uint64_t length)
{
	R3D_TRY(impl_->runOne(Op::Trim, offset, length));
	return {};
}

Result<void> RpcClient::writeZeroes(uint64_t offset, uint64_t length)
{
	R3D_TRY(impl_->runOne(Op::WriteZeroes, offset, length));
	return {};
}

Result<void> RpcClient::sync()
{
	R3D_TRY(impl_->runOne(Op::Sync, 0, 0));
	return {};
}

Result<uint64_t> RpcClient::remoteSize()
{
	return impl_->runOne(Op::Size, 0, 0);
}

RpcClientStats RpcClient::stats() const
{
	std::lock_guard lock(impl_->lastErrorMutex);
	return RpcClientStats{ impl_->reconnects, impl_->resent, impl_->expired, impl_->lastError };
}

} // namespace r3d::transport

