#include "service/request_options.hpp"

#include <array>
#include <cstdint>

#include <fmt/format.h>

#include <r3d/duration.hpp>
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

// One file of an R3Security inside the request.
template <class Request, R3Security Request::*Security, std::string R3Security::*Field>
r3d::ResultMsg<void> setSecurity(Request &request, const std::string &key, const sdbus::Variant &value)
{
	auto parsed = stringOption(key, value);
	if (!parsed)
		return r3d::unexpectedOf(parsed.error());
	(request.*Security).*Field = std::move(*parsed);
	return {};
}

// The options of an r3 listener with TLS and a token (r3serve --r3's flags): one table for
// every request that has an R3Security, after the request's own rows.
template <class Request, R3Security Request::*Security>
constexpr std::array<OptionSpec<Request>, 4> withR3Security()
{
	return { { { "tls_cert", setSecurity<Request, Security, &R3Security::tlsCert> },
		   { "tls_key", setSecurity<Request, Security, &R3Security::tlsKey> },
		   { "tls_ca", setSecurity<Request, Security, &R3Security::tlsCa> },
		   { "token_file", setSecurity<Request, Security, &R3Security::tokenFile> } } };
}

template <class Request, R3Security Request::*Security, size_t N>
constexpr std::array<OptionSpec<Request>, N + 4> withR3Security(const OptionSpec<Request> (&rows)[N])
{
	std::array<OptionSpec<Request>, N + 4> all{};
	for (size_t i = 0; i < N; ++i)
		all[i] = rows[i];
	auto security = withR3Security<Request, Security>();
	for (size_t i = 0; i < security.size(); ++i)
		all[N + i] = security[i];
	return all;
}

template <class Request, class Specs>
r3d::ResultMsg<void> applyOptions(Request &request, const OptionMap &options, const Specs &specs,
				  const std::string &moreKnown = "")
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
			return fail(Errc::InvalidArgument,
				    fmt::format("unknown option '{}' (known: {}{})", key, known, moreKnown));
		}
		if (auto ok = spec->apply(request, key, value); !ok)
			return ok;
	}
	return {};
}

// A managed option as the text setManagedOption() parses: s as it is; b, t and u as what
// they say (so pull-workers may be a number and background a boolean).
r3d::ResultMsg<std::string> managedText(const std::string &key, const sdbus::Variant &v)
{
	std::string type = v.peekValueType();
	if (type == "s")
		return v.get<std::string>();
	if (type == "b")
		return std::string(v.get<bool>() ? "true" : "false");
	if (type == "t")
		return std::to_string(v.get<uint64_t>());
	if (type == "u")
		return std::to_string(v.get<uint32_t>());
	return wrongType(key, v, "s (text as r3ctl takes it), or b, t, u");
}

// For "unknown option" messages of Mount and Export.
std::string managedKnown()
{
	std::string text = ", managed, and with it";
	for (const auto &key : r3d::mount::managedOptionKeys())
		text += " " + key + ",";
	text.pop_back();
	return text;
}

// Takes "managed" and the managed options out of `options`: the request when managed is
// true, nothing when it is not given or false (then no managed option may be either).
r3d::ResultMsg<std::optional<ManagedRequest>> takeManaged(OptionMap &options)
{
	bool managed = false;
	if (auto it = options.find("managed"); it != options.end()) {
		auto b = boolOption("managed", it->second);
		if (!b)
			return r3d::unexpectedOf(b.error());
		managed = *b;
		options.erase(it);
	}
	ManagedRequest request;
	for (const auto &key : r3d::mount::managedOptionKeys()) {
		auto it = options.find(key);
		if (it == options.end())
			continue;
		if (!managed)
			return fail(Errc::InvalidArgument, fmt::format("option '{}' goes with managed (b true)", key));
		auto text = managedText(key, it->second);
		if (!text)
			return r3d::unexpectedOf(text.error());
		if (auto ok = request.set(key, *text); !ok)
			return r3d::unexpectedOf(ok.error());
		options.erase(it);
	}
	if (!managed)
		return std::optional<ManagedRequest>();
	return std::optional<ManagedRequest>(std::move(request));
}

// Mount's and Export's options into `r`: "managed" and the managed options, then `specs`.
template <class Request, size_t N>
r3d::ResultMsg<Request> withManaged(Request r, const OptionMap &options, const OptionSpec<Request> (&specs)[N])
{
	OptionMap rest = options;
	auto managed = takeManaged(rest);
	if (!managed)
		return r3d::unexpectedOf(managed.error());
	r.managed = std::move(*managed);
	if (auto ok = applyOptions(r, rest, specs, managedKnown()); !ok)
		return r3d::unexpectedOf(ok.error());
	return r;
}

// Unmount's and Stop's options, which are the same: discard-dirty alone.
template <class Options>
r3d::ResultMsg<Options> discardDirtyOptions(const OptionMap &options)
{
	static constexpr OptionSpec<Options> kOptions[] = {
		{ "discard-dirty", set<Options, &Options::discardDirty, boolOption> },
	};
	Options r;
	if (auto ok = applyOptions(r, options, kOptions); !ok)
		return r3d::unexpectedOf(ok.error());
	return r;
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
	return withManaged(std::move(r), options, kOptions);
}

r3d::ResultMsg<ExportRequest> exportRequest(std::string backendUri, std::string listen, const OptionMap &options)
{
	static constexpr OptionSpec<ExportRequest> kOptions[] = {
		{ "name", set<ExportRequest, &ExportRequest::name, stringOption> },
		{ "description", set<ExportRequest, &ExportRequest::description, stringOption> },
		{ "protocol", set<ExportRequest, &ExportRequest::protocol, stringOption> },
		{ "read_only", set<ExportRequest, &ExportRequest::readOnly, boolOption> },
		{ "tls", set<ExportRequest, &ExportRequest::tls, stringOption> },
		{ "tls_cert", set<ExportRequest, &ExportRequest::tlsCert, stringOption> },
		{ "tls_key", set<ExportRequest, &ExportRequest::tlsKey, stringOption> },
		{ "tls_ca", set<ExportRequest, &ExportRequest::tlsCa, stringOption> },
		{ "tls_psk", set<ExportRequest, &ExportRequest::tlsPsk, stringOption> },
		{ "token_file", set<ExportRequest, &ExportRequest::tokenFile, stringOption> },
	};
	ExportRequest r;
	r.backendUri = std::move(backendUri);
	r.listen = std::move(listen);
	return withManaged(std::move(r), options, kOptions);
}

r3d::ResultMsg<UnmountOptions> unmountOptions(const OptionMap &options)
{
	return discardDirtyOptions<UnmountOptions>(options);
}

r3d::ResultMsg<StopOptions> stopOptions(const OptionMap &options)
{
	return discardDirtyOptions<StopOptions>(options);
}

namespace {

r3d::ResultMsg<std::chrono::nanoseconds> downtimeOption(const std::string &key, const sdbus::Variant &v)
{
	std::string type = v.peekValueType();
	std::chrono::nanoseconds d{ 0 };
	if (type == "t") {
		d = std::chrono::microseconds(v.get<uint64_t>());
	} else if (type == "s") {
		auto parsed = r3d::parseDuration(v.get<std::string>());
		if (!parsed)
			return fail(Errc::InvalidArgument, fmt::format("option '{}': {}", key, parsed.error().message));
		d = *parsed;
	} else {
		return wrongType(key, v, "s (e.g. \"50ms\") or t (microseconds)");
	}
	if (d.count() <= 0)
		return fail(Errc::InvalidArgument, fmt::format("option '{}' must be more than 0", key));
	return d;
}

r3d::ResultMsg<unsigned> roundsOption(const std::string &key, const sdbus::Variant &v)
{
	std::string type = v.peekValueType();
	uint64_t n = 0;
	if (type == "u")
		n = v.get<uint32_t>();
	else if (type == "t")
		n = v.get<uint64_t>();
	else
		return wrongType(key, v, "u or t (a count)");
	if (n == 0 || n > 10000)
		return fail(Errc::InvalidArgument, fmt::format("option '{}': {} is not within 1..10000", key, n));
	return static_cast<unsigned>(n);
}

r3d::ResultMsg<bool> finalizeOption(const std::string &key, const sdbus::Variant &v)
{
	auto text = stringOption(key, v);
	if (!text)
		return r3d::unexpectedOf(text.error());
	if (*text != "auto" && *text != "manual")
		return fail(Errc::InvalidArgument, fmt::format("option '{}': '{}': expected auto or manual", key, *text));
	return *text == "auto";
}

} // namespace

r3d::ResultMsg<SeedRequest> seedRequest(std::string backendUri, std::string listen, const OptionMap &options)
{
	static constexpr auto kOptions = withR3Security<SeedRequest, &SeedRequest::security>({
		{ "export_listen", set<SeedRequest, &SeedRequest::exportListen, stringOption> },
		{ "id", set<SeedRequest, &SeedRequest::migrationId, stringOption> },
		{ "on_finalize", set<SeedRequest, &SeedRequest::onFinalize, stringOption> },
		{ "finalize_signal", set<SeedRequest, &SeedRequest::finalizeSignal, boolOption> },
	});
	SeedRequest r;
	r.backendUri = std::move(backendUri);
	r.listen = std::move(listen);
	if (r.listen.empty())
		return fail(Errc::InvalidArgument, "listen is empty: give the seeder's HOST:PORT");
	if (auto ok = applyOptions(r, options, kOptions); !ok)
		return r3d::unexpectedOf(ok.error());
	if (options.count("on_finalize") && r.onFinalize.empty())
		return fail(Errc::InvalidArgument, "option 'on_finalize': the hook command is empty");
	return r;
}

r3d::ResultMsg<PullRequest> pullRequest(std::string source, std::string exportListen, const OptionMap &options)
{
	static constexpr OptionSpec<PullRequest> kOptions[] = {
		{ "downtime", set<PullRequest, &PullRequest::downtime, downtimeOption> },
		{ "max_rounds", set<PullRequest, &PullRequest::maxRounds, roundsOption> },
		{ "rate", set<PullRequest, &PullRequest::rate, sizeOption> },
		{ "finalize", set<PullRequest, &PullRequest::autoFinalize, finalizeOption> },
	};
	PullRequest r;
	r.source = std::move(source);
	r.exportListen = std::move(exportListen); // empty: a kernel device
	if (auto ok = applyOptions(r, options, kOptions); !ok)
		return r3d::unexpectedOf(ok.error());
	return r;
}

namespace {

constexpr std::chrono::milliseconds kMinSyncInterval{ 100 };
constexpr std::chrono::hours kMaxSyncInterval{ 24 };

r3d::ResultMsg<std::chrono::milliseconds> intervalOption(const std::string &key, const sdbus::Variant &v)
{
	std::string type = v.peekValueType();
	std::chrono::milliseconds d{ 0 };
	if (type == "t") {
		uint64_t ms = v.get<uint64_t>();
		if (ms > static_cast<uint64_t>(std::chrono::milliseconds(kMaxSyncInterval).count()))
			ms = static_cast<uint64_t>(std::chrono::milliseconds(kMaxSyncInterval).count()) + 1;
		d = std::chrono::milliseconds(ms);
	} else if (type == "s") {
		auto parsed = r3d::parseDuration(v.get<std::string>());
		if (!parsed)
			return fail(Errc::InvalidArgument, fmt::format("option '{}': {}", key, parsed.error().message));
		d = *parsed;
	} else {
		return wrongType(key, v, "s (e.g. \"5s\") or t (milliseconds)");
	}
	if (d < kMinSyncInterval || d > kMaxSyncInterval)
		return fail(Errc::InvalidArgument,
			    fmt::format("option '{}': {} ms is not within 100ms..24h (leave it out for rounds on SyncNow only)",
					key, d.count()));
	return d;
}

r3d::ResultMsg<bool> applyModeOption(const std::string &key, const sdbus::Variant &v)
{
	auto text = stringOption(key, v);
	if (!text)
		return r3d::unexpectedOf(text.error());
	if (*text != "journal" && *text != "rename")
		return fail(Errc::InvalidArgument, fmt::format("option '{}': '{}': expected journal or rename", key, *text));
	return *text == "rename";
}

r3d::ResultMsg<void> checkListen(const std::string &listen)
{
	if (listen.empty())
		return fail(Errc::InvalidArgument, "listen is empty: give HOST:PORT");
	return {};
}

} // namespace

r3d::ResultMsg<SyncStartRequest> syncStartRequest(std::string source, std::vector<std::string> destinations,
						  const OptionMap &options)
{
	static constexpr OptionSpec<SyncStartRequest> kOptions[] = {
		{ "interval", set<SyncStartRequest, &SyncStartRequest::interval, intervalOption> },
		{ "hub", set<SyncStartRequest, &SyncStartRequest::hub, stringOption> },
		{ "chunk_size", set<SyncStartRequest, &SyncStartRequest::chunkSize, sizeOption> },
		{ "compress", set<SyncStartRequest, &SyncStartRequest::compress, boolOption> },
	};
	SyncStartRequest r;
	r.source = std::move(source);
	r.destinations = std::move(destinations);
	if (auto ok = applyOptions(r, options, kOptions); !ok)
		return r3d::unexpectedOf(ok.error());
	return r;
}

r3d::ResultMsg<SyncServeRequest> syncServeRequest(std::string listen, std::string dir, const OptionMap &options)
{
	static constexpr auto kOptions = withR3Security<SyncServeRequest, &SyncServeRequest::security>({
		{ "apply", set<SyncServeRequest, &SyncServeRequest::renameApply, applyModeOption> },
		{ "verify", set<SyncServeRequest, &SyncServeRequest::verify, boolOption> },
	});
	SyncServeRequest r;
	r.listen = std::move(listen);
	r.dir = std::move(dir);
	if (auto ok = checkListen(r.listen); !ok)
		return r3d::unexpectedOf(ok.error());
	if (auto ok = applyOptions(r, options, kOptions); !ok)
		return r3d::unexpectedOf(ok.error());
	return r;
}

r3d::ResultMsg<SyncServeRequest> syncHubRequest(std::string listen, std::string cacheDir,
						std::vector<std::string> destinations, const OptionMap &options)
{
	static constexpr auto kOptions = withR3Security<SyncServeRequest, &SyncServeRequest::security>({
		{ "compress", set<SyncServeRequest, &SyncServeRequest::compress, boolOption> },
	});
	SyncServeRequest r;
	r.listen = std::move(listen);
	r.dir = std::move(cacheDir);
	r.destinations = std::move(destinations);
	r.hub = true;
	if (auto ok = checkListen(r.listen); !ok)
		return r3d::unexpectedOf(ok.error());
	if (r.destinations.empty())
		return fail(Errc::InvalidArgument, "a hub needs at least one destination r3://HOST:PORT");
	if (auto ok = applyOptions(r, options, kOptions); !ok)
		return r3d::unexpectedOf(ok.error());
	return r;
}

} // namespace r3mapd::service
