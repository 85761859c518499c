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

r3d::ResultMsg<std::shared_ptr<r3d::ReadWriterAt>> openAllowedBackend(const Config &config, const std::string &uri,
								      std::optional<uint64_t> size)
{
	auto parsed = r3d::BackendUri::parse(uri);
	if (!parsed)
		return rename(Errc::BadUri, parsed.error());
	// An unknown scheme is a bad URI, whatever the configuration allows.
	if (knownSchemeSet().count(parsed->scheme) && !config.schemeAllowed(parsed->scheme))
		return fail(Errc::SchemeNotAllowed, fmt::format("'{}': scheme '{}' is not in allowed_schemes of the "
								"daemon's configuration",
								uri, parsed->scheme));
	if (size && *size == 0)
		return fail(Errc::InvalidArgument, "size must not be 0");

	std::string effective = uri;
	if (size && parsed->scheme != "memory" && !parsed->params.count("size"))
		effective += fmt::format("{}size={}", uri.find('?') == std::string::npos ? '?' : '&', *size);

	auto backend = r3d::openBackend(effective);
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
