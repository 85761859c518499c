#pragma once

#include <map>
#include <string>

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <r3d/result.hpp>

#include "mount/managed_options.hpp"

namespace r3mapd {

/// The managed part of a Mount or Export request (managed=true): the options under the
/// keys of r3d::mount::managedOptionKeys(), parsed by r3d::mount::setManagedOption() as
/// everywhere else, and kept as given so that the state store can replay them.
struct ManagedRequest {
	/// key → value as given, in text form.
	std::map<std::string, std::string> given;
	r3d::mount::ManagedOptions options;

	/// Parses and records one option; InvalidArgument naming the key and the problem.
	r3d::ResultMsg<void> set(const std::string &key, const std::string &value);

	/// What the state store keeps: `given` as a JSON object of strings, without
	/// discard-local (a restore resumes the cache, it never throws it away) and with
	/// chunk-size set to `resolvedChunk` when given (so the cache's journal matches).
	nlohmann::json spec(uint64_t resolvedChunk = 0) const;
	/// The request a spec() comes from; InvalidArgument when it is not one.
	static r3d::ResultMsg<ManagedRequest> fromSpec(const nlohmann::json &spec);
};

/// InvalidArgument "not WHAT spec: WHY", for requestFromSpec().
r3d::Unexpected<r3d::Error> notASpec(const char *what, const char *why);

/// The request (a MountRequest or an ExportRequest) a managed mount's or export's spec was
/// made from, read in this order: "backend", the request's own keys by `readOwn(request)`,
/// "caller_uid", "managed". A key missing or of the wrong type is notASpec(what, …).
template <class Request, class ReadOwn>
r3d::ResultMsg<Request> requestFromSpec(const nlohmann::json &spec, const char *what, ReadOwn readOwn)
{
	try {
		Request r;
		r.backendUri = spec.at("backend").get<std::string>();
		readOwn(r);
		r.callerUid = spec.at("caller_uid").get<uid_t>();
		auto managed = ManagedRequest::fromSpec(spec.at("managed"));
		if (!managed)
			return r3d::unexpectedOf(managed.error());
		r.managed = std::move(*managed);
		return r;
	} catch (const nlohmann::json::exception &e) {
		return notASpec(what, e.what());
	}
}

} // namespace r3mapd
