#include "transport/channel.hpp"

#include <cstring>

#include <boost/asio/read.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <r3d/unique_fd.hpp>

namespace r3d::transport {

namespace {

constexpr size_t kInboxSize = 64 * 1024;
// Reads at least this large go straight into the caller's buffer, skipping the inbox copy.
constexpr size_t kDirectReadSize = 16 * 1024;
// Payloads below this are copied next to their frame header instead of sent by reference.
constexpr size_t kCoalesceLimit = 16 * 1024;

} // namespace

int toErrno(const ErrorCode &ec)
{
	if (!ec)
		return 0;
	if (ec.category() == boost::system::system_category() || ec.category() == boost::system::generic_category())
		return ec.value();
	if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)
		return ECONNRESET;
	if (ec.category() == asio::error::get_ssl_category() || ec.category() == asio::ssl::error::get_stream_category())
		return EPROTO;
	return EIO;
}

bool isTlsError(const ErrorCode &ec)
{
	return ec.category() == asio::error::get_ssl_category();
}

bool isPeerClose(const ErrorCode &ec)
{
	return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated || ec == asio::error::connection_reset;
}

std::string describePeer(const tcp::socket &socket)
{
	ErrorCode ec;
	auto ep = socket.remote_endpoint(ec);
	if (ec)
		return "unknown peer";
	if (ep.address().is_v6())
		return fmt::format("[{}]:{}", ep.address().to_string(), ep.port());
	return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

void setCloexec(tcp::socket &socket)
{
	r3d::setCloexec(socket.native_handle());
}

void SendBatch::addPayload(std::span<const std::byte> payload)
{
	if (payload.size() < kCoalesceLimit) {
		text_.append(reinterpret_cast<const char *>(payload.data()), payload.size());
		return;
	}
	pieces_.push_back(Piece{ text_.size(), payload });
}

const std::vector<asio::const_buffer> &SendBatch::buffers()
{
	buffers_.clear();
	size_t pos = 0;
	for (const auto &p : pieces_) {
		if (p.textEnd > pos)
			buffers_.emplace_back(text_.data() + pos, p.textEnd - pos);
		buffers_.emplace_back(p.external.data(), p.external.size());
		pos = p.textEnd;
	}
	if (text_.size() > pos)
		buffers_.emplace_back(text_.data() + pos, text_.size() - pos);
	return buffers_;
}

void SendBatch::clear()
{
	text_.clear();
	pieces_.clear();
	buffers_.clear();
}

Channel::Channel(tcp::socket socket) : plain_(std::move(socket)), peer_(describePeer(plain_)), inbox_(kInboxSize) {}

Channel::Channel(tcp::socket socket, asio::ssl::context &tls)
	: plain_(socket.get_executor()), peer_(describePeer(socket)), inbox_(kInboxSize)
{
	tls_.emplace(std::move(socket), tls);
}

void Channel::verifyPeerName(const std::string &name)
{
	// OpenSSL's own check, not Asio's callback: a mismatch then has a verdict of its own
	// ("hostname mismatch", "IP address mismatch") and the server hears "bad certificate".
	ErrorCode ec;
	asio::ip::make_address(name, ec);
	SSL *ssl = tls_->native_handle();
	if (ec) {
		SSL_set_tlsext_host_name(ssl, name.c_str());
		SSL_set1_host(ssl, name.c_str());
	} else {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
	}
}

asio::awaitable<ErrorCode> Channel::handshake(asio::ssl::stream_base::handshake_type type)
{
	ErrorCode ec;
	co_await tls_->async_handshake(type, asio::redirect_error(asio::use_awaitable, ec));
	co_return ec;
}

asio::awaitable<size_t> Channel::readSome(asio::mutable_buffer buffer, ErrorCode &ec)
{
	size_t n = tls_ ? co_await tls_->async_read_some(buffer, asio::redirect_error(asio::use_awaitable, ec))
			: co_await plain_.async_read_some(buffer, asio::redirect_error(asio::use_awaitable, ec));
	if (n > 0)
		readProgress_ = Clock::now();
	co_return n;
}

asio::awaitable<size_t> Channel::writeSome(const std::vector<asio::const_buffer> &buffers, ErrorCode &ec)
{
	size_t n = tls_ ? co_await tls_->async_write_some(buffers, asio::redirect_error(asio::use_awaitable, ec))
			: co_await plain_.async_write_some(buffers, asio::redirect_error(asio::use_awaitable, ec));
	if (n > 0)
		writeProgress_ = Clock::now();
	co_return n;
}

asio::awaitable<ErrorCode> Channel::readExact(std::span<std::byte> dst)
{
	size_t done = std::min(dst.size(), inboxEnd_ - inboxPos_);
	std::memcpy(dst.data(), inbox_.data() + inboxPos_, done);
	inboxPos_ += done;
	ErrorCode ec;
	while (done < dst.size()) {
		size_t want = dst.size() - done;
		if (want >= kDirectReadSize) {
			done += co_await readSome(asio::buffer(dst.data() + done, want), ec);
		} else {
			inboxPos_ = 0;
			inboxEnd_ = co_await readSome(asio::buffer(inbox_), ec);
			size_t n = std::min(want, inboxEnd_);
			std::memcpy(dst.data() + done, inbox_.data(), n);
			inboxPos_ = n;
			done += n;
		}
		if (ec)
			co_return ec;
	}
	co_return ec;
}

asio::awaitable<ErrorCode> Channel::skip(size_t n)
{
	std::vector<std::byte> sink(std::min(n, kInboxSize));
	while (n > 0) {
		size_t step = std::min(n, sink.size());
		if (auto ec = co_await readExact(std::span(sink.data(), step)))
			co_return ec;
		n -= step;
	}
	co_return ErrorCode{};
}

asio::awaitable<ErrorCode> Channel::write(const std::vector<asio::const_buffer> &buffers)
{
	// Not asio::async_write: it hands the socket at most 64 KiB per call and reports
	// progress only at the end, while timeouts here count every partial write.
	unsent_.assign(buffers.begin(), buffers.end());
	std::erase_if(unsent_, [](const asio::const_buffer &b) { return b.size() == 0; });
	writing_ = true;
	writeProgress_ = Clock::now();
	ErrorCode ec;
	while (!unsent_.empty()) {
		size_t n = co_await writeSome(unsent_, ec);
		if (!ec && n == 0)
			ec = asio::error::broken_pipe;
		if (ec)
			break;
		size_t done = 0;
		while (done < unsent_.size() && n >= unsent_[done].size())
			n -= unsent_[done++].size();
		unsent_.erase(unsent_.begin(), unsent_.begin() + static_cast<std::ptrdiff_t>(done));
		if (n > 0)
			unsent_.front() += n;
	}
	writing_ = false;
	co_return ec;
}

asio::awaitable<ErrorCode> Channel::write(const std::string &bytes)
{
	// A named vector: gcc 12 miscompiles a braced temporary inside co_await.
	std::vector<asio::const_buffer> buffers{ asio::buffer(bytes) };
	co_return co_await write(buffers);
}

asio::awaitable<ErrorCode> Channel::readFrame(FrameKind kind, const FrameLimits &limits, FrameHeader &header,
					      std::vector<std::byte> &meta, std::string &reason)
{
	std::array<std::byte, kFrameHeaderSize> bytes;
	if (auto ec = co_await readExact(bytes))
		co_return ec;
	auto decoded = decodeFrameHeader(bytes, kind, limits);
	if (!decoded) {
		reason = decoded.error().message;
		co_return ErrorCode(decoded.error().code.value(), boost::system::system_category());
	}
	header = *decoded;
	meta.resize(header.metaLength);
	co_return co_await readExact(meta);
}

void Channel::close()
{
	ErrorCode ignored;
	socket().shutdown(tcp::socket::shutdown_both, ignored);
	socket().close(ignored);
}

void Channel::abort()
{
	ErrorCode ignored;
	socket().set_option(asio::socket_base::linger(true, 0), ignored);
	socket().close(ignored);
}

StepDeadline::StepDeadline(asio::any_io_executor executor, std::chrono::milliseconds timeout, std::function<void()> onExpire)
	: state_(std::make_shared<State>()), timer_(executor, timeout)
{
	state_->onExpire = std::move(onExpire);
	timer_.async_wait([state = state_](const ErrorCode &ec) {
		if (ec || !state->armed)
			return;
		state->expired = true;
		state->onExpire();
	});
}

StepDeadline::~StepDeadline()
{
	state_->armed = false;
	timer_.cancel();
}

asio::awaitable<void> Wakeup::wait()
{
	timer_.expires_at(asio::steady_timer::time_point::max());
	ErrorCode ignored;
	co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

asio::awaitable<void> Wakeup::waitFor(std::chrono::milliseconds d)
{
	timer_.expires_after(d);
	ErrorCode ignored;
	co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

asio::awaitable<void> sleepFor(std::chrono::milliseconds d)
{
	asio::steady_timer timer(co_await asio::this_coro::executor, d);
	ErrorCode ignored;
	co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

} // namespace r3d::transport
