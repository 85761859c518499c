#include "managed_request.hpp"

#include <fmt/format.h>

#include "errors.hpp"

namespace r3mapd {

r3d::ResultMsg<void> ManagedRequest::set(const std::string &key, const std::string &value)
{
	if (auto ok = r3d::mount::setManagedOption(options, key, value); !ok)
		return fail(Errc::InvalidArgument, ok.error().message);
	given[key] = value;
	return {};
}

nlohmann::json ManagedRequest::spec(uint64_t resolvedChunk) const
{
	nlohmann::json out = nlohmann::json::object();
	for (const auto &[key, value] : given)
		if (key != "discard-local")
			out[key] = value;
	if (resolvedChunk)
		out["chunk-size"] = std::to_string(resolvedChunk);
	return out;
}

r3d::ResultMsg<ManagedRequest> ManagedRequest::fromSpec(const nlohmann::json &spec)
{
	if (!spec.is_object())
		return fail(Errc::InvalidArgument, "managed: not a JSON object");
	ManagedRequest r;
	for (const auto &[key, value] : spec.items()) {
		if (!value.is_string())
			return fail(Errc::InvalidArgument, fmt::format("managed: '{}' is not a string", key));
		if (key == "discard-local")
			continue;
		if (auto ok = r.set(key, value.get<std::string>()); !ok)
			return r3d::unexpectedOf(ok.error());
	}
	return r;
}

r3d::Unexpected<r3d::Error> notASpec(const char *what, const char *why)
{
	return fail(Errc::InvalidArgument, fmt::format("not {} spec: {}", what, why));
}

} // namespace r3mapd
