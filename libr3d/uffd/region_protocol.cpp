#include "uffd/region_protocol.hpp"

#include <cerrno>
#include <cstring>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

namespace r3d::uffd {
namespace {

class Writer
{
public:
	template <class T>
	void put(T v)
	{
		for (size_t i = 0; i < sizeof(T); ++i)
			out_.push_back(static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i)));
	}
	void bytes(const std::string &s) { out_.insert(out_.end(), s.begin(), s.end()); }
	std::vector<uint8_t> finish(RegionMessage type)
	{
		std::vector<uint8_t> m;
		Writer h;
		h.put<uint32_t>(kRegionMagic);
		h.put<uint16_t>(kRegionVersion);
		h.put<uint16_t>(static_cast<uint16_t>(type));
		h.put<uint32_t>(static_cast<uint32_t>(out_.size()));
		m = std::move(h.out_);
		m.insert(m.end(), out_.begin(), out_.end());
		return m;
	}

private:
	std::vector<uint8_t> out_;
};

class Reader
{
public:
	explicit Reader(std::span<const uint8_t> in) : in_(in) {}
	template <class T>
	bool get(T &v)
	{
		if (in_.size() - pos_ < sizeof(T))
			return false;
		uint64_t x = 0;
		for (size_t i = 0; i < sizeof(T); ++i)
			x |= uint64_t{ in_[pos_ + i] } << (8 * i);
		v = static_cast<T>(x);
		pos_ += sizeof(T);
		return true;
	}
	bool bytes(std::string &s, size_t n)
	{
		if (in_.size() - pos_ < n)
			return false;
		s.assign(reinterpret_cast<const char *>(in_.data() + pos_), n);
		pos_ += n;
		return true;
	}
	bool done() const { return pos_ == in_.size(); }

private:
	std::span<const uint8_t> in_;
	size_t pos_ = 0;
};

auto malformed(const char *what)
{
	return fail(EBADMSG, fmt::format("malformed region message: {}", what));
}

} // namespace

std::vector<uint8_t> encodeHeaderOnly(RegionMessage type)
{
	return Writer().finish(type);
}

std::vector<uint8_t> encodeMap(const RegionMapRequest &request)
{
	Writer w;
	w.put<uint64_t>(request.base);
	w.put<uint64_t>(request.size);
	w.put<uint64_t>(request.features);
	w.put<int32_t>(request.clientFd);
	w.put<uint32_t>(request.flags);
	w.put<uint32_t>(request.remoteTimeoutMs);
	w.put<uint32_t>(request.writeBackMs);
	w.put<uint32_t>(static_cast<uint32_t>(request.source.size()));
	w.bytes(request.source);
	return w.finish(RegionMessage::Map);
}

std::vector<uint8_t> encodeReply(const RegionReply &reply)
{
	Writer w;
	// Messages are for people: a long one is cut, never the datagram refused.
	std::string message = reply.message.substr(0, kMaxRegionSource);
	w.put<int32_t>(reply.status);
	w.put<uint32_t>(static_cast<uint32_t>(reply.id.size()));
	w.put<uint32_t>(static_cast<uint32_t>(message.size()));
	w.bytes(reply.id);
	w.bytes(message);
	return w.finish(RegionMessage::Reply);
}

ResultMsg<RegionMessage> decodeType(std::span<const uint8_t> message)
{
	if (message.size() > kMaxRegionMessage)
		return malformed("longer than the largest message");
	Reader r(message);
	uint32_t magic = 0, length = 0;
	uint16_t version = 0, type = 0;
	if (!r.get(magic) || !r.get(version) || !r.get(type) || !r.get(length))
		return malformed("shorter than its header");
	if (magic != kRegionMagic)
		return malformed("bad magic");
	if (version < kRegionMinVersion || version > kRegionVersion)
		return fail(EPROTONOSUPPORT, fmt::format("region protocol version {} is not {}..{}", version,
							 kRegionMinVersion, kRegionVersion));
	if (length != message.size() - kRegionHeaderSize)
		return malformed("its length field disagrees with its size");
	if (type < static_cast<uint16_t>(RegionMessage::Map) || type > static_cast<uint16_t>(RegionMessage::Reply))
		return malformed("unknown type");
	return static_cast<RegionMessage>(type);
}

ResultMsg<RegionMapRequest> decodeMap(std::span<const uint8_t> message)
{
	auto type = decodeType(message);
	if (!type)
		return unexpectedOf(type.error());
	if (*type != RegionMessage::Map)
		return malformed("not a Map request");
	const uint16_t version = static_cast<uint16_t>(message[4] | message[5] << 8);
	Reader r(message.subspan(kRegionHeaderSize));
	RegionMapRequest q;
	uint32_t n = 0;
	if (!r.get(q.base) || !r.get(q.size) || !r.get(q.features) || !r.get(q.clientFd) || !r.get(q.flags) || !r.get(q.remoteTimeoutMs)
	    || (version >= 2 && !r.get(q.writeBackMs)) || !r.get(n))
		return malformed("truncated Map request");
	if (q.flags & ~(kRegionNoBackground | kRegionTrackWrites))
		return malformed("unknown flags");
	if (q.remoteTimeoutMs > kMaxRegionRemoteTimeoutMs)
		return malformed("remote timeout above 10 minutes");
	if (q.writeBackMs > kMaxRegionWriteBackMs && q.writeBackMs != RegionMapRequest::kNoInterval)
		return malformed("write-back interval above an hour");
	if (n > kMaxRegionSource)
		return malformed("source longer than 4096 bytes");
	if (!r.bytes(q.source, n) || !r.done())
		return malformed("source length disagrees with the message");
	if (q.source.find('\0') != std::string::npos)
		return malformed("NUL in the source");
	return q;
}

ResultMsg<RegionReply> decodeReply(std::span<const uint8_t> message)
{
	auto type = decodeType(message);
	if (!type)
		return unexpectedOf(type.error());
	if (*type != RegionMessage::Reply)
		return malformed("not a reply");
	Reader r(message.subspan(kRegionHeaderSize));
	RegionReply reply;
	uint32_t idLen = 0, msgLen = 0;
	if (!r.get(reply.status) || !r.get(idLen) || !r.get(msgLen) || idLen > kMaxRegionSource
	    || msgLen > kMaxRegionSource || !r.bytes(reply.id, idLen) || !r.bytes(reply.message, msgLen) || !r.done())
		return malformed("truncated reply");
	return reply;
}

Result<void> sendRegionMessage(int socket, const std::vector<uint8_t> &message, int fd)
{
	iovec iov{ const_cast<uint8_t *>(message.data()), message.size() };
	msghdr msg{};
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
	if (fd >= 0) {
		msg.msg_control = control;
		msg.msg_controllen = sizeof control;
		cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
	}
	for (;;) {
		ssize_t n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
		if (n == static_cast<ssize_t>(message.size()))
			return {};
		if (n < 0 && errno == EINTR)
			continue;
		return unexpected(n < 0 ? errno : EIO);
	}
}

ResultMsg<ReceivedMessage> receiveRegionMessage(int socket, int timeoutMs)
{
	pollfd p{ socket, POLLIN, 0 };
	for (;;) {
		int n = ::poll(&p, 1, timeoutMs);
		if (n > 0)
			break;
		if (n == 0)
			return fail(ETIMEDOUT, "no message in time");
		if (errno != EINTR)
			return fail(lastErrno(), fmt::format("poll: {}", std::strerror(errno)));
	}
	ReceivedMessage out;
	out.bytes.resize(kMaxRegionMessage + 1);
	iovec iov{ out.bytes.data(), out.bytes.size() };
	msghdr msg{};
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	alignas(cmsghdr) char control[CMSG_SPACE(8 * sizeof(int))];
	msg.msg_control = control;
	msg.msg_controllen = sizeof control;
	ssize_t n;
	do
		n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail(lastErrno(), fmt::format("recvmsg: {}", std::strerror(errno)));
	// Every fd that came is ours to close, whatever else is wrong.
	std::vector<UniqueFd> fds;
	bool foreign = false;
	for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < count; ++i) {
				int fd;
				std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
				fds.emplace_back(fd);
			}
		} else
			foreign = true;
	}
	if (msg.msg_flags & MSG_CTRUNC)
		return fail(EBADMSG, "too many file descriptors with the message");
	if (msg.msg_flags & MSG_TRUNC || static_cast<size_t>(n) > kMaxRegionMessage)
		return fail(EMSGSIZE, fmt::format("message longer than {} bytes", kMaxRegionMessage));
	if (fds.size() > 1 || foreign)
		return fail(EBADMSG, "more than one file descriptor with the message");
	out.bytes.resize(static_cast<size_t>(n));
	if (!fds.empty())
		out.fd = std::move(fds[0]);
	return out;
}

} // namespace r3d::uffd
