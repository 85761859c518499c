#pragma once

// Protobuf control messages of the channel services (migration, sync): serialized into a
// frame's meta, parsed back with a size cap checked before protobuf allocates anything.

#include <cstddef>
#include <span>
#include <string>

#include <fmt/format.h>

#include <r3d/result.hpp>

namespace r3d::transport {

template <class Message>
std::string serializeMessage(const Message &m)
{
	std::string out;
	m.SerializeToString(&out);
	return out;
}

template <class Message>
ResultMsg<Message> parseMessage(std::span<const std::byte> meta, size_t limit, const char *what)
{
	if (meta.size() > limit)
		return fail(EPROTO, fmt::format("{} message of {} bytes is over the limit of {}", what, meta.size(), limit));
	Message m;
	if (!m.ParseFromArray(meta.data(), static_cast<int>(meta.size())))
		return fail(EPROTO, fmt::format("malformed {} message ({} bytes)", what, meta.size()));
	return m;
}

} // namespace r3d::transport
