#include <r3d/backend_uri.hpp>

#include <fmt/format.h>

#include <r3d/duration.hpp>
#include <r3d/size.hpp>

#include "base/hex.hpp"

namespace r3d {

namespace {

ResultMsg<std::string> percentDecode(const std::string &uri, std::string_view in)
{
	std::string out;
	for (size_t i = 0; i < in.size(); ++i) {
		if (in[i] != '%') {
			out += in[i];
			continue;
		}
		if (i + 2 >= in.size() || hexValue(in[i + 1]) < 0 || hexValue(in[i + 2]) < 0)
			return fail(EINVAL, fmt::format("'{}': bad percent escape at '{}'", uri, in.substr(i)));
		out += static_cast<char>(hexValue(in[i + 1]) * 16 + hexValue(in[i + 2]));
		i += 2;
	}
	return out;
}

} // namespace

ResultMsg<BackendUri> BackendUri::parse(const std::string &uri)
{
	BackendUri u;
	u.text = uri;
	size_t colon = uri.find(':');
	if (uri.empty())
		return fail(EINVAL, "backend URI is empty");
	if (colon == std::string::npos || colon == 0)
		return fail(EINVAL, fmt::format("'{}' is not a backend URI: expected SCHEME:..., e.g. memory:256M", uri));
	u.scheme = uri.substr(0, colon);
	for (char c : u.scheme)
		if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.')
			return fail(EINVAL, fmt::format("'{}': scheme '{}' has an invalid character", uri, u.scheme));

	std::string_view rest(uri);
	rest.remove_prefix(colon + 1);
	std::string_view query;
	if (size_t q = rest.find('?'); q != std::string_view::npos) {
		query = rest.substr(q + 1);
		rest = rest.substr(0, q);
	}
	if (rest.starts_with("//")) {
		rest.remove_prefix(2);
		size_t slash = rest.find('/');
		u.authority = std::string(rest.substr(0, slash));
		rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
	}
	auto path = percentDecode(uri, rest);
	if (!path)
		return unexpectedOf(path.error());
	u.path = std::move(*path);

	while (!query.empty()) {
		size_t amp = query.find('&');
		std::string_view item = query.substr(0, amp);
		query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
		if (item.empty())
			continue;
		size_t eq = item.find('=');
		if (eq == std::string_view::npos || eq == 0)
			return fail(EINVAL, fmt::format("'{}': parameter '{}' is not KEY=VALUE", uri, item));
		auto key = percentDecode(uri, item.substr(0, eq));
		auto value = percentDecode(uri, item.substr(eq + 1));
		if (!key)
			return unexpectedOf(key.error());
		if (!value)
			return unexpectedOf(value.error());
		if (u.params.count(*key))
			return fail(EINVAL, fmt::format("'{}': parameter '{}' is given twice", uri, *key));
		u.params.emplace(std::move(*key), std::move(*value));
	}
	return u;
}

ResultMsg<void> BackendUri::onlyParams(const std::set<std::string> &allowed) const
{
	for (const auto &[key, value] : params) {
		if (allowed.count(key))
			continue;
		std::string list;
		for (const auto &a : allowed)
			list += (list.empty() ? "" : ", ") + a;
		return fail(EINVAL, fmt::format("'{}': unknown parameter '{}' for {}: (known: {})", text, key, scheme,
						list.empty() ? "none" : list));
	}
	return {};
}

ResultMsg<std::optional<uint64_t>> BackendUri::sizeParam(const std::string &key) const
{
	auto it = params.find(key);
	if (it == params.end())
		return std::optional<uint64_t>{};
	auto size = parseSize(it->second);
	if (!size)
		return fail(size.error().code, fmt::format("'{}': {}={}: {}", text, key, it->second, size.error().message));
	if (*size == 0)
		return fail(EINVAL, fmt::format("'{}': {} must be greater than 0", text, key));
	return std::optional<uint64_t>(*size);
}

ResultMsg<std::chrono::milliseconds> BackendUri::durationParam(const std::string &key,
							      std::chrono::milliseconds fallback) const
{
	auto it = params.find(key);
	if (it == params.end())
		return fallback;
	auto d = parseDuration(it->second);
	if (!d)
		return fail(d.error().code, fmt::format("'{}': {}={}: {}", text, key, it->second, d.error().message));
	if (d->count() == 0)
		return fail(EINVAL, fmt::format("'{}': {} must be greater than 0", text, key));
	return *d;
}

} // namespace r3d
