#include "managed_opener.hpp"

#include <cerrno>
#include <cstring>

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "backend_opener.hpp"
#include "errors.hpp"

namespace r3mapd {

namespace {

bool validCacheName(const std::string &name)
{
	return !name.empty() && name.size() <= 128 && name.front() != '.'
	       && name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
			  == std::string::npos;
}

// LocalCache creates the directory itself; found out here, before the remote is opened,
// a directory the daemon cannot write is the caller's argument, not a backend failure.
r3d::ResultMsg<void> checkWritable(const std::string &dir)
{
	struct stat st {};
	std::string where = dir;
	if (::stat(dir.c_str(), &st) != 0) {
		if (errno != ENOENT)
			return fail(Errc::InvalidArgument, fmt::format("cache '{}': {}", dir, std::strerror(errno)));
		auto slash = dir.find_last_of('/');
		where = slash == 0 ? "/" : dir.substr(0, slash);
		if (::stat(where.c_str(), &st) != 0)
			return fail(Errc::InvalidArgument,
				    fmt::format("cache '{}': cannot create it in '{}': {}", dir, where, std::strerror(errno)));
	}
	if (!S_ISDIR(st.st_mode))
		return fail(Errc::InvalidArgument, fmt::format("cache '{}': '{}' is not a directory", dir, where));
	if (::access(where.c_str(), W_OK | X_OK) != 0)
		return fail(Errc::InvalidArgument, fmt::format("cache '{}': r3mapd cannot write {}'{}': {}", dir,
							       where == dir ? "" : "in ", where, std::strerror(errno)));
	return {};
}

Errc regionError(const std::error_code &ec)
{
	if (ec.category() != std::system_category() && ec.category() != std::generic_category())
		return classify(ec);
	switch (ec.value()) {
	case EINVAL:
	case ERANGE:
		return Errc::InvalidArgument;
	case EBUSY:
		return Errc::Busy;
	case EIO:
	case ETIMEDOUT:
	case EMEDIUMTYPE:
	case ECONNREFUSED:
		return Errc::BackendFailed;
	default:
		return Errc::Failed;
	}
}

} // namespace

r3d::ResultMsg<std::string> resolveCacheDir(const std::string &cache, const std::string &stateDir, uid_t callerUid)
{
	if (cache.empty() || cache == "memory")
		return std::string();
	if (cache.front() == '/') {
		if (callerUid != 0)
			return fail(Errc::NotPermitted,
				    fmt::format("cache '{}': uid {} may not name a directory: r3mapd runs as root and would "
						"create and write it; give a cache NAME (kept in the daemon's state directory) "
						"or ask root",
						cache, callerUid));
		return cache;
	}
	if (!validCacheName(cache))
		return fail(Errc::InvalidArgument,
			    fmt::format("cache '{}': give memory, a NAME (letters, digits, '.', '-', '_', not starting "
					"with '.'), or an absolute path",
					cache));
	if (stateDir.empty())
		return fail(Errc::InvalidArgument,
			    fmt::format("cache '{}': named caches live in the daemon's state directory, and this "
					"r3mapd has none (state_dir in r3mapd.conf(5)); give memory or an absolute path",
					cache));
	return stateDir + "/caches/" + cache;
}

r3d::ResultMsg<std::shared_ptr<r3d::mount::ManagedRegion>> openManagedRegion(const Config &config,
										 const std::string &stateDir,
										 const std::string &remoteUri,
										 std::optional<uint64_t> size,
										 const ManagedRequest &request,
										 uid_t callerUid, r3d::Runtime *runtime)
{
	r3d::mount::ManagedOptions options = request.options;
	auto dir = resolveCacheDir(options.cache, stateDir, callerUid);
	if (!dir)
		return r3d::unexpectedOf(dir.error());
	options.cache = *dir;
	if (options.order == r3d::stages::PullOrder::Hot) {
		if (callerUid != 0)
			return fail(Errc::NotPermitted, fmt::format("order hot:{}: uid {} may not name a file: r3mapd would "
								    "read it as root; only root may pass a hot list",
								    options.hotFile, callerUid));
		if (!options.hotFile.starts_with("/"))
			return fail(Errc::InvalidArgument, fmt::format("order hot:{}: the path must be absolute",
								       options.hotFile));
	}
	if (!options.cache.empty()) {
		if (options.cache.starts_with(stateDir + "/caches/") && !stateDir.empty()
		    && ::mkdir((stateDir + "/caches").c_str(), 0700) != 0 && errno != EEXIST)
			return fail(Errc::Failed, fmt::format("cannot create '{}/caches': {}", stateDir, std::strerror(errno)));
		if (auto ok = checkWritable(options.cache); !ok)
			return r3d::unexpectedOf(ok.error());
	}
	// One call to a remote that stopped answering fails within remote-timeout, too.
	auto remote = openAllowedBackend(config, remoteUri, size, callerUid, runtime,
					 r3d::OpenDefaults{ options.remoteTimeout });
	if (!remote)
		return r3d::unexpectedOf(remote.error());
	auto region = r3d::mount::ManagedRegion::open(std::move(*remote), remoteUri, std::move(options));
	if (!region)
		return fail(regionError(region.error().code), region.error().message);
	return region;
}

} // namespace r3mapd
