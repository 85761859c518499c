#include "service/request_options.hpp"

#include <cstdint>
#include <initializer_list>

#include <fmt/format.h>

#include <r3d/size.hpp>

#include "errors.hpp"

namespace r3mapd::service {

namespace {

std::string known(std::initializer_list<const char *> keys)
{
	std::string out;
	for (const char *k : keys)
		out += (out.empty() ? "" : ", ") + std::string(k);
	return out;
}

r3d::Unexpected<r3d::Error> wrongType(const std::string &key, const sdbus::Variant &v, const char *expected)
{
	return fail(Errc::InvalidArgument,
		    fmt::format("option '{}': expected {}, got type {}", key, expected, v.peekValueType()));
}

// Sizes come as bytes (t, u) or as text such as "128M" (s).
r3d::ResultMsg<uint64_t> sizeOption(const std::string &key, const sdbus::Variant &v)
{
	std::string type = v.peekValueType();
	uint64_t bytes = 0;
	if (type == "t") {
		bytes = v.get<uint64_t>();
	} else if (type == "u") {
		bytes = v.get<uint32_t>();
	} else if (type == "s") {
		auto parsed = r3d::parseSize(v.get<std::string>());
		if (!parsed)
			return fail(Errc::InvalidArgument, fmt::format("option '{}': {}", key, parsed.error().message));
		bytes = *parsed;
	} else {
		return wrongType(key, v, "t (bytes) or s (e.g. \"128M\")");
	}
	if (bytes == 0)
		return fail(Errc::InvalidArgument, fmt::format("option '{}' must not be 0", key));
	return bytes;
}

r3d::ResultMsg<bool> boolOption(const std::string &key, const sdbus::Variant &v)
{
	if (v.peekValueType() != "b")
		return wrongType(key, v, "b (boolean)");
	return v.get<bool>();
}

r3d::ResultMsg<std::string> stringOption(const std::string &key, const sdbus::Variant &v)
{
	if (v.peekValueType() != "s")
		return wrongType(key, v, "s (string)");
	return v.get<std::string>();
}

} // namespace

r3d::ResultMsg<MountRequest> mountRequest(std::string backendUri, const OptionMap &options)
{
	MountRequest r;
	r.backendUri = std::move(backendUri);
	for (const auto &[key, value] : options) {
		if (key == "size" || key == "chunk_size") {
			auto size = sizeOption(key, value);
			if (!size)
				return r3d::unexpectedOf(size.error());
			(key == "size" ? r.size : r.chunkSize) = *size;
		} else if (key == "read_only") {
			auto b = boolOption(key, value);
			if (!b)
				return r3d::unexpectedOf(b.error());
			r.readOnly = *b;
		} else {
			return fail(Errc::InvalidArgument, fmt::format("unknown option '{}' (known: {})", key,
								       known({ "size", "chunk_size", "read_only" })));
		}
	}
	return r;
}

r3d::ResultMsg<ExportRequest> exportRequest(std::string backendUri, std::string listen, const OptionMap &options)
{
	ExportRequest r;
	r.backendUri = std::move(backendUri);
	r.listen = std::move(listen);
	for (const auto &[key, value] : options) {
		if (key == "name" || key == "description") {
			auto s = stringOption(key, value);
			if (!s)
				return r3d::unexpectedOf(s.error());
			(key == "name" ? r.name : r.description) = *s;
		} else if (key == "read_only") {
			auto b = boolOption(key, value);
			if (!b)
				return r3d::unexpectedOf(b.error());
			r.readOnly = *b;
		} else {
			return fail(Errc::InvalidArgument, fmt::format("unknown option '{}' (known: {})", key,
								       known({ "name", "description", "read_only" })));
		}
	}
	return r;
}

} // namespace r3mapd::service
