#include "backend_opener.hpp"

#include <cerrno>

#include <fmt/format.h>

#include <r3d/backend_factory.hpp>
#include <r3d/backend_uri.hpp>
#include <r3d/size.hpp>

#include "config.hpp"
#include "errors.hpp"

namespace r3mapd {

std::set<std::string> knownSchemeSet()
{
	std::set<std::string> out;
	std::string all = r3d::knownSchemes();
	for (size_t pos = 0; pos <= all.size();) {
		size_t comma = all.find(", ", pos);
		out.insert(all.substr(pos, comma - pos));
		if (comma == std::string::npos)
			break;
		pos = comma + 2;
	}
	return out;
}

bool namesLocalFile(const std::string &param)
{
	return param.ends_with("-file") || param == "tls-ca" || param == "tls-cert" || param == "tls-key";
}

namespace {

// What a caller other than root may not ask of the daemon, which would do it as root.
r3d::ResultMsg<void> checkUnprivileged(const Config &config, const r3d::BackendUri &uri, uid_t callerUid)
{
	if (!config.schemeUnprivileged(uri.scheme)) {
		std::string usable;
		for (const auto &s : config.unprivilegedSchemes)
			if (config.schemeAllowed(s))
				usable += (usable.empty() ? "" : ", ") + s;
		return fail(Errc::NotPermitted,
			    fmt::format("'{}': uid {} may not use scheme '{}': r3mapd runs as root and would open local "
					"paths for you, so callers other than root may use only {} (unprivileged_schemes "
					"in r3mapd.conf(5)); ask root to mount or export it",
					uri.text, callerUid, uri.scheme, usable.empty() ? "no scheme at all" : usable));
	}
	for (const auto &[key, value] : uri.params)
		if (namesLocalFile(key))
			return fail(Errc::NotPermitted,
				    fmt::format("'{}': uid {} may not use parameter '{}': it names a local file, which "
						"r3mapd would read as root; only root may pass it (ask root to mount or "
						"export it)",
						uri.text, callerUid, key));
	return {};
}

} // namespace

r3d::ResultMsg<std::shared_ptr<r3d::ReadWriterAt>> openAllowedBackend(const Config &config, const std::string &uri,
								      std::optional<uint64_t> size, uid_t callerUid,
								      r3d::Runtime *runtime, const r3d::OpenDefaults &defaults)
{
	auto parsed = r3d::BackendUri::parse(uri);
	if (!parsed)
		return rename(Errc::BadUri, parsed.error());
	if (parsed->scheme.starts_with(r3d::kFaultPrefix)) {
		if (callerUid != 0)
			return fail(Errc::NotPermitted, fmt::format("'{}': uid {} may not use fault+: the fault stage can "
								    "hold the daemon's workers in its hangs; only root "
								    "may put it in front of a backend",
								    uri, callerUid));
		// The rules below are the inner backend's.
		parsed = r3d::BackendUri::parse(r3d::faultInnerUri(uri));
		if (!parsed)
			return rename(Errc::BadUri, parsed.error());
	}
	// An unknown scheme is a bad URI, whatever the configuration allows: openBackend says so.
	bool known = knownSchemeSet().count(parsed->scheme) > 0;
	if (known && !config.schemeAllowed(parsed->scheme))
		return fail(Errc::SchemeNotAllowed, fmt::format("'{}': scheme '{}' is not in allowed_schemes of the "
								"daemon's configuration",
								uri, parsed->scheme));
	// Relative to the daemon's working directory, which is not the caller's.
	if ((parsed->scheme == "file" || parsed->scheme == "dir") && !parsed->path.starts_with("/"))
		return fail(Errc::InvalidArgument, fmt::format("'{}': path must be absolute", uri));
	if (known && callerUid != 0) {
		if (auto ok = checkUnprivileged(config, *parsed, callerUid); !ok)
			return r3d::unexpectedOf(ok.error());
	}
	if (size && *size == 0)
		return fail(Errc::InvalidArgument, "size must not be 0");

	// memory: carries its size in the path and r3:// takes the export's.
	std::string effective = uri;
	bool takesSize = parsed->scheme != "memory" && parsed->scheme != "r3";
	if (size && takesSize && !parsed->params.count("size"))
		effective += fmt::format("{}size={}", uri.find('?') == std::string::npos ? '?' : '&', *size);

	auto backend = r3d::openBackend(effective, runtime, defaults);
	if (!backend) {
		int err = backend.error().code.value();
		bool uriProblem = backend.error().code.category() == std::system_category()
				  && (err == EINVAL || err == EPROTONOSUPPORT || err == ERANGE || err == EOVERFLOW);
		return rename(uriProblem ? Errc::BadUri : Errc::BackendFailed, backend.error());
	}
	if (size && (*backend)->size() != *size)
		return fail(Errc::InvalidArgument, fmt::format("size {} was asked but backend '{}' has {}",
							       r3d::formatSize(*size), uri,
							       r3d::formatSize((*backend)->size())));
	return backend;
}

} // namespace r3mapd
