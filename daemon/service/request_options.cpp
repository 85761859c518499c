#include "service/request_options.hpp"

#include <cstdint>

#include <fmt/format.h>

#include <r3d/size.hpp>

#include "errors.hpp"

namespace r3mapd::service {

namespace {

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

// One key of an a{sv}: how its value is checked and where it lands.
template <class Request>
struct OptionSpec {
	const char *key;
	r3d::ResultMsg<void> (*apply)(Request &request, const std::string &key, const sdbus::Variant &value);
};

template <class Request, auto Member, auto Parse>
r3d::ResultMsg<void> set(Request &request, const std::string &key, const sdbus::Variant &value)
{
	auto parsed = Parse(key, value);
	if (!parsed)
		return r3d::unexpectedOf(parsed.error());
	request.*Member = std::move(*parsed);
	return {};
}

template <class Request, size_t N>
r3d::ResultMsg<void> applyOptions(Request &request, const OptionMap &options, const OptionSpec<Request> (&specs)[N])
{
	for (const auto &[key, value] : options) {
		const OptionSpec<Request> *spec = nullptr;
		for (const auto &s : specs)
			if (key == s.key)
				spec = &s;
		if (!spec) {
			std::string known;
			for (const auto &s : specs)
				known += (known.empty() ? "" : ", ") + std::string(s.key);
			return fail(Errc::InvalidArgument, fmt::format("unknown option '{}' (known: {})", key, known));
		}
		if (auto ok = spec->apply(request, key, value); !ok)
			return ok;
	}
	return {};
}

} // namespace

r3d::ResultMsg<MountRequest> mountRequest(std::string backendUri, const OptionMap &options)
{
	static constexpr OptionSpec<MountRequest> kOptions[] = {
		{ "size", set<MountRequest, &MountRequest::size, sizeOption> },
		{ "chunk_size", set<MountRequest, &MountRequest::chunkSize, sizeOption> },
		{ "read_only", set<MountRequest, &MountRequest::readOnly, boolOption> },
	};
	MountRequest r;
	r.backendUri = std::move(backendUri);
	if (auto ok = applyOptions(r, options, kOptions); !ok)
		return r3d::unexpectedOf(ok.error());
	return r;
}

r3d::ResultMsg<ExportRequest> exportRequest(std::string backendUri, std::string listen, const OptionMap &options)
{
	static constexpr OptionSpec<ExportRequest> kOptions[] = {
		{ "name", set<ExportRequest, &ExportRequest::name, stringOption> },
		{ "description", set<ExportRequest, &ExportRequest::description, stringOption> },
		{ "protocol", set<ExportRequest, &ExportRequest::protocol, stringOption> },
		{ "read_only", set<ExportRequest, &ExportRequest::readOnly, boolOption> },
	};
	ExportRequest r;
	r.backendUri = std::move(backendUri);
	r.listen = std::move(listen);
	if (auto ok = applyOptions(r, options, kOptions); !ok)
		return r3d::unexpectedOf(ok.error());
	return r;
}

} // namespace r3mapd::service
