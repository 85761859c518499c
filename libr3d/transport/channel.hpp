#pragma once

// A connected byte stream, plain TCP or TLS over TCP, with a small read buffer so a frame
// header and its message usually cost one receive. Internal to the transport: it is the
// only place besides the server and client that sees Asio types.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility> // before Asio 1.18, whose awaitable.hpp uses std::exchange without it
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <r3d/result.hpp>

#include "transport/frame.hpp"

namespace r3d::transport {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;
using Clock = std::chrono::steady_clock;
/// What a client or server runs on: its own strand of the Runtime's io_context, so its
/// coroutines never run at once even when the io_context has several threads.
using Strand = asio::strand<asio::io_context::executor_type>;

/// Maps an Asio/OpenSSL error onto an errno for Result<>: system errors keep their value,
/// end of stream becomes ECONNRESET, TLS failures EPROTO.
int toErrno(const ErrorCode &ec);
/// Whether `ec` comes from OpenSSL (a handshake or record failure).
bool isTlsError(const ErrorCode &ec);
/// Whether the peer ended the stream (EOF, TLS truncation, reset).
bool isPeerClose(const ErrorCode &ec);

class Channel
{
public:
	explicit Channel(tcp::socket socket);
	/// TLS over `socket`; call handshake() before anything else.
	Channel(tcp::socket socket, asio::ssl::context &tls);
	Channel(const Channel &) = delete;
	Channel &operator=(const Channel &) = delete;

	bool isTls() const { return tls_.has_value(); }
	tcp::socket &socket() { return tls_ ? tls_->next_layer() : plain_; }
	/// The OpenSSL handle for error details; nullptr when plain.
	SSL *sslHandle() { return tls_ ? tls_->native_handle() : nullptr; }
	/// "127.0.0.1:5512", for log lines.
	const std::string &peer() const { return peer_; }

	/// Client side: check the server certificate against `name` (DNS name or IP address)
	/// and send it as SNI when it is a name.
	void verifyPeerName(const std::string &name);
	asio::awaitable<ErrorCode> handshake(asio::ssl::stream_base::handshake_type type);
	/// Reads exactly dst.size() bytes.
	asio::awaitable<ErrorCode> readExact(std::span<std::byte> dst);
	/// Reads and drops n bytes (the payload of a refused request).
	asio::awaitable<ErrorCode> skip(size_t n);
	/// Writes all of `buffers`, as many bytes per system call as the socket takes.
	asio::awaitable<ErrorCode> write(const std::vector<asio::const_buffer> &buffers);
	asio::awaitable<ErrorCode> write(const std::string &bytes);

	/// When bytes last arrived, or the channel was made.
	Clock::time_point readProgress() const { return readProgress_; }
	/// When a write last moved bytes into the socket, or began.
	Clock::time_point writeProgress() const { return writeProgress_; }
	/// Whether a write is under way (its bytes not all taken by the socket yet).
	bool writing() const { return writing_; }

	/// Reads one frame header of `kind` and its message into `meta`; the payload is left
	/// for the caller. Sets `reason` when the peer broke the framing rules.
	asio::awaitable<ErrorCode> readFrame(FrameKind kind, const FrameLimits &limits, FrameHeader &header,
					     std::vector<std::byte> &meta, std::string &reason);

	/// Closes the socket; pending operations complete with operation_aborted.
	void close();
	/// Closes with a reset (SO_LINGER 0): what the kernel still holds unsent is dropped
	/// instead of delivered, so requests given up on cannot reach the peer later.
	void abort();

private:
	asio::awaitable<size_t> readSome(asio::mutable_buffer buffer, ErrorCode &ec);
	asio::awaitable<size_t> writeSome(const std::vector<asio::const_buffer> &buffers, ErrorCode &ec);

	tcp::socket plain_;
	std::optional<asio::ssl::stream<tcp::socket>> tls_;
	std::string peer_;
	std::vector<std::byte> inbox_;
	size_t inboxPos_ = 0;
	size_t inboxEnd_ = 0;
	Clock::time_point readProgress_ = Clock::now();
	Clock::time_point writeProgress_ = Clock::now();
	bool writing_ = false;
	std::vector<asio::const_buffer> unsent_;
};

/// The deadline of one step (connect, handshake, hello): runs `onExpire` (typically
/// Channel::close) when it passes, unless destroyed first.
class StepDeadline
{
public:
	StepDeadline(asio::any_io_executor executor, std::chrono::milliseconds timeout, std::function<void()> onExpire);
	~StepDeadline();
	StepDeadline(const StepDeadline &) = delete;
	StepDeadline &operator=(const StepDeadline &) = delete;

	bool expired() const { return state_->expired; }

private:
	struct State {
		bool armed = true;
		bool expired = false;
		std::function<void()> onExpire;
	};
	std::shared_ptr<State> state_;
	asio::steady_timer timer_;
};

/// A condition variable for one coroutine on a single-threaded executor (a strand): the waiter
/// checks its condition, then wait()s; notify() wakes it. No wake-up is lost because
/// nothing runs between the check and the wait.
class Wakeup
{
public:
	explicit Wakeup(asio::any_io_executor executor) : timer_(std::move(executor)) {}
	asio::awaitable<void> wait();
	/// wait(), but for at most `d`.
	asio::awaitable<void> waitFor(std::chrono::milliseconds d);
	void notify() { timer_.cancel(); }

private:
	asio::steady_timer timer_;
};

/// Sleeps for `d` (returns early when the timer is cancelled).
asio::awaitable<void> sleepFor(std::chrono::milliseconds d);

std::string describePeer(const tcp::socket &socket);

/// Sets FD_CLOEXEC: Asio opens and accepts sockets without it.
void setCloexec(tcp::socket &socket);

/// Frames and payloads queued for one gathered write. Messages and small payloads are
/// copied into one buffer (TLS then makes few records); large payloads are sent from
/// where they are, without a copy.
class SendBatch
{
public:
	/// Where to append frame headers and messages (appendFrame).
	std::string &text() { return text_; }
	/// Adds payload bytes after what text() holds; a large span must stay valid until the
	/// write completes.
	void addPayload(std::span<const std::byte> payload);
	/// The buffers to write; valid until the next change.
	const std::vector<asio::const_buffer> &buffers();
	bool empty() const { return text_.empty() && pieces_.empty(); }
	void clear();

private:
	struct Piece {
		size_t textEnd; ///< text_ up to here goes before `external`
		std::span<const std::byte> external;
	};
	std::string text_;
	std::vector<Piece> pieces_;
	std::vector<asio::const_buffer> buffers_;
};

} // namespace r3d::transport
