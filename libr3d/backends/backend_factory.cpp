#include <r3d/backend_factory.hpp>

#include <fmt/format.h>

#include <r3d/backend_uri.hpp>
#include <r3d/size.hpp>

#include "backends/directory_backend.hpp"
#include "backends/file_backend.hpp"
#include "backends/memory_backend.hpp"
#include "backends/redis_backend.hpp"
#include "backends/remote_backend.hpp"
#include "backends/s3_backend.hpp"
#include "stages/faulting_read_writer_at.hpp"

namespace r3d {

namespace {

template <class T>
ResultMsg<std::shared_ptr<ReadWriterAt>> shared(ResultMsg<std::unique_ptr<T>> r)
{
	if (!r)
		return unexpectedOf(r.error());
	return std::shared_ptr<ReadWriterAt>(std::move(*r));
}

ResultMsg<std::shared_ptr<ReadWriterAt>> openMemory(const BackendUri &u, Runtime *)
{
	auto ok = u.onlyParams({});
	if (!ok)
		return unexpectedOf(ok.error());
	if (!u.authority.empty() || u.path.empty())
		return fail(EINVAL, fmt::format("'{}': expected memory:SIZE, e.g. memory:256M", u.text));
	auto size = parseSize(u.path);
	if (!size)
		return fail(size.error().code, fmt::format("'{}': {}", u.text, size.error().message));
	return shared(backends::MemoryBackend::create(*size));
}

ResultMsg<std::shared_ptr<ReadWriterAt>> openFile(const BackendUri &u, Runtime *)
{
	auto ok = u.onlyParams({ "size" });
	if (!ok)
		return unexpectedOf(ok.error());
	if (!u.authority.empty() && u.authority != "localhost")
		return fail(EINVAL, fmt::format("'{}': file URIs name a local path (file:PATH or file:///PATH)", u.text));
	auto size = u.sizeParam("size");
	if (!size)
		return unexpectedOf(size.error());
	if (u.path.empty())
		return fail(EINVAL, fmt::format("'{}': expected file:PATH", u.text));
	return shared(backends::FileBackend::open(u.path, *size));
}

ResultMsg<std::shared_ptr<ReadWriterAt>> openDirectory(const BackendUri &u, Runtime *)
{
	auto ok = u.onlyParams({ "size", "chunk", "max-open" });
	if (!ok)
		return unexpectedOf(ok.error());
	if (!u.authority.empty() && u.authority != "localhost")
		return fail(EINVAL, fmt::format("'{}': dir URIs name a local path (dir:PATH)", u.text));
	auto size = u.sizeParam("size");
	if (!size)
		return unexpectedOf(size.error());
	auto chunk = u.sizeParam("chunk");
	if (!chunk)
		return unexpectedOf(chunk.error());
	auto maxOpen = u.sizeParam("max-open");
	if (!maxOpen)
		return unexpectedOf(maxOpen.error());
	if (u.path.empty())
		return fail(EINVAL, fmt::format("'{}': expected dir:PATH?size=SIZE", u.text));
	return shared(backends::DirectoryBackend::open(
		u.path, *size, *chunk, static_cast<size_t>(maxOpen->value_or(backends::DirectoryBackend::kDefaultMaxOpenFiles))));
}

struct Scheme {
	const char *name;
	ResultMsg<std::shared_ptr<ReadWriterAt>> (*open)(const BackendUri &, Runtime *);
};

constexpr Scheme kSchemes[] = {
	{ "memory", openMemory },
	{ "file", openFile },
	{ "dir", openDirectory },
	{ "r3",
	  [](const BackendUri &u, Runtime *rt) {
		  return rt ? backends::openRemoteUri(u, *rt) : backends::openRemoteUri(u);
	  } },
	{ "redis", [](const BackendUri &u, Runtime *) { return backends::openRedisUri(u); } },
	{ "s3", [](const BackendUri &u, Runtime *rt) { return backends::openS3Uri(u, rt); } },
};

} // namespace

void applyOpenDefaults(BackendUri &uri, const OpenDefaults &defaults)
{
	bool network = uri.scheme == "r3" || uri.scheme == "redis" || uri.scheme == "s3";
	if (network && defaults.callDeadline.count() > 0 && !uri.params.contains("deadline"))
		uri.params["deadline"] = fmt::format("{}ms", defaults.callDeadline.count());
}

std::string faultInnerUri(const std::string &uri)
{
	std::string_view rest(uri);
	if (!rest.starts_with(kFaultPrefix))
		return uri;
	rest.remove_prefix(kFaultPrefix.size());
	auto q = rest.find('?');
	std::string out(rest.substr(0, q));
	if (q == std::string_view::npos)
		return out;
	char sep = '?';
	for (std::string_view query = rest.substr(q + 1); !query.empty();) {
		auto amp = query.find('&');
		auto item = query.substr(0, amp);
		if (!item.starts_with("fault-") && !item.empty()) {
			out += sep;
			out += item;
			sep = '&';
		}
		query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
	}
	return out;
}

ResultMsg<std::shared_ptr<ReadWriterAt>> openBackend(const std::string &uri, Runtime *runtime,
						     const OpenDefaults &defaults)
{
	auto parsed = BackendUri::parse(uri);
	if (!parsed)
		return unexpectedOf(parsed.error());
	if (parsed->scheme.starts_with(kFaultPrefix)) {
		auto options = stages::FaultOptions::fromUri(*parsed);
		if (!options)
			return unexpectedOf(options.error());
		auto inner = openBackend(faultInnerUri(uri), runtime, defaults);
		if (!inner)
			return inner;
		return std::shared_ptr<ReadWriterAt>(std::make_shared<stages::FaultingReadWriterAt>(std::move(*inner), *options));
	}
	applyOpenDefaults(*parsed, defaults);
	for (const auto &s : kSchemes)
		if (parsed->scheme == s.name)
			return s.open(*parsed, runtime);
	return fail(EPROTONOSUPPORT,
		    fmt::format("'{}': unknown backend scheme '{}' (known: {})", uri, parsed->scheme, knownSchemes()));
}

std::string knownSchemes()
{
	std::string out;
	for (const auto &s : kSchemes)
		out += (out.empty() ? "" : ", ") + std::string(s.name);
	return out;
}

} // namespace r3d
