#include "transport/block/messages.hpp"

#include <fmt/format.h>

#include "rpc.pb.h"

namespace r3d::transport {

namespace {

template <class Message>
void appendMessage(std::string &out, FrameKind kind, const Message &m, uint32_t payloadLength)
{
	size_t metaLength = m.ByteSizeLong();
	size_t start = out.size();
	out.resize(start + kFrameHeaderSize + metaLength);
	auto *base = reinterpret_cast<std::byte *>(out.data() + start);
	encodeFrameHeader(FrameHeader{ kind, static_cast<uint32_t>(metaLength), payloadLength },
			  std::span<std::byte, kFrameHeaderSize>(base, kFrameHeaderSize));
	m.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t *>(base + kFrameHeaderSize));
}

template <class Message>
ResultMsg<Message> parse(std::span<const std::byte> meta, const char *what)
{
	Message m;
	if (!m.ParseFromArray(meta.data(), static_cast<int>(meta.size())))
		return fail(EPROTO, fmt::format("malformed {} message ({} bytes)", what, meta.size()));
	return m;
}

} // namespace

void appendFrame(std::string &out, const Hello &m)
{
	r3::v1::Hello pb;
	pb.set_version(m.version);
	pb.set_export_name(m.exportName);
	pb.set_token(m.token);
	pb.set_client_name(m.clientName);
	pb.set_session(m.session);
	pb.set_slot(m.slot);
	pb.set_incarnation(m.incarnation);
	pb.set_service(m.service);
	appendMessage(out, FrameKind::Hello, pb, 0);
}

void appendFrame(std::string &out, const HelloReply &m)
{
	r3::v1::HelloReply pb;
	pb.set_error(m.error);
	pb.set_message(m.message);
	pb.set_size(m.size);
	pb.set_chunk_size(m.chunkSize);
	pb.set_max_payload(m.maxPayload);
	pb.set_max_in_flight(m.maxInFlight);
	pb.set_read_only(m.readOnly);
	pb.set_server(m.server);
	pb.set_fenced(m.fenced);
	appendMessage(out, FrameKind::HelloReply, pb, 0);
}

void appendFrame(std::string &out, const Request &m, uint32_t payloadLength)
{
	r3::v1::Request pb;
	pb.set_id(m.id);
	pb.set_op(static_cast<r3::v1::Op>(m.op));
	pb.set_offset(m.offset);
	pb.set_length(m.length);
	for (const auto &r : m.ranges) {
		auto *range = pb.add_ranges();
		range->set_offset(r.offset);
		range->set_length(r.length);
	}
	appendMessage(out, FrameKind::Request, pb, payloadLength);
}

void appendFrame(std::string &out, const Response &m, uint32_t payloadLength)
{
	r3::v1::Response pb;
	pb.set_id(m.id);
	pb.set_error(m.error);
	pb.set_size(m.size);
	appendMessage(out, FrameKind::Response, pb, payloadLength);
}

ResultMsg<Hello> decodeHello(std::span<const std::byte> meta)
{
	auto pb = parse<r3::v1::Hello>(meta, "hello");
	if (!pb)
		return unexpectedOf(pb.error());
	if (!pb->session().empty() && pb->session().size() != kSessionIdSize)
		return fail(EPROTO, fmt::format("hello carries a {}-byte session id, not {}", pb->session().size(),
						kSessionIdSize));
	return Hello{ pb->version(), pb->export_name(), pb->token(), pb->client_name(),
		      pb->session(), pb->slot(), pb->incarnation(), pb->service() };
}

ResultMsg<HelloReply> decodeHelloReply(std::span<const std::byte> meta)
{
	auto pb = parse<r3::v1::HelloReply>(meta, "hello reply");
	if (!pb)
		return unexpectedOf(pb.error());
	HelloReply m;
	m.error = pb->error();
	m.message = pb->message();
	m.size = pb->size();
	m.chunkSize = pb->chunk_size();
	m.maxPayload = pb->max_payload();
	m.maxInFlight = pb->max_in_flight();
	m.readOnly = pb->read_only();
	m.server = pb->server();
	m.fenced = pb->fenced();
	return m;
}

ResultMsg<Request> decodeRequest(std::span<const std::byte> meta)
{
	auto pb = parse<r3::v1::Request>(meta, "request");
	if (!pb)
		return unexpectedOf(pb.error());
	if (static_cast<size_t>(pb->ranges_size()) > kMaxRanges)
		return fail(EPROTO, fmt::format("request {} carries {} ranges, over the limit of {}", pb->id(),
						pb->ranges_size(), kMaxRanges));
	Request m;
	m.id = pb->id();
	m.op = static_cast<Op>(pb->op());
	m.offset = pb->offset();
	m.length = pb->length();
	m.ranges.reserve(static_cast<size_t>(pb->ranges_size()));
	for (const auto &r : pb->ranges())
		m.ranges.push_back(IoRange{ r.offset(), r.length() });
	return m;
}

ResultMsg<Response> decodeResponse(std::span<const std::byte> meta)
{
	auto pb = parse<r3::v1::Response>(meta, "response");
	if (!pb)
		return unexpectedOf(pb.error());
	return Response{ pb->id(), pb->error(), pb->size() };
}

} // namespace r3d::transport
