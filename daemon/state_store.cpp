#include "state_store.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "object_id.hpp"

namespace r3mapd {

namespace {

r3d::ResultMsg<void> mkdirPrivate(const std::string &path)
{
	if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
		int err = errno;
		return r3d::fail(err, fmt::format("state: cannot create '{}': {}", path, std::strerror(err)));
	}
	return {};
}

bool validKind(const std::string &kind)
{
	return !kind.empty() && kind.find_first_not_of("abcdefghijklmnopqrstuvwxyz") == std::string::npos;
}

std::optional<std::string> readFile(const std::string &path)
{
	std::ifstream in(path);
	if (!in)
		return std::nullopt;
	std::stringstream text;
	text << in.rdbuf();
	return text.str();
}

} // namespace

r3d::ResultMsg<std::unique_ptr<StateStore>> StateStore::open(const std::string &dir)
{
	if (!dir.empty()) {
		if (dir.front() != '/')
			return r3d::fail(EINVAL, fmt::format("state: '{}' is not an absolute path", dir));
		if (auto ok = mkdirPrivate(dir); !ok)
			return r3d::unexpectedOf(ok.error());
	}
	return std::unique_ptr<StateStore>(new StateStore(dir));
}

StateStore &StateStore::none()
{
	static StateStore store{ "" };
	return store;
}

r3d::ResultMsg<std::string> StateStore::kindDir(const std::string &kind)
{
	if (!validKind(kind))
		return r3d::fail(EINVAL, fmt::format("state: bad kind '{}'", kind));
	std::string path = dir_ + "/" + kind;
	if (auto ok = mkdirPrivate(path); !ok)
		return r3d::unexpectedOf(ok.error());
	return path;
}

r3d::ResultMsg<void> StateStore::writeAtomically(const std::string &kind, const std::string &name,
						 const std::string &text)
{
	auto dir = kindDir(kind);
	if (!dir)
		return r3d::unexpectedOf(dir.error());
	std::string path = *dir + "/" + name, tmp = path + ".tmp";
	auto failed = [&](const char *what) {
		int err = errno;
		::unlink(tmp.c_str());
		return r3d::fail(err, fmt::format("state: {} '{}': {}", what, tmp, std::strerror(err)));
	};
	{
		r3d::UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
		if (!fd)
			return failed("cannot create");
		size_t done = 0;
		while (done < text.size()) {
			ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return failed("cannot write");
			done += static_cast<size_t>(n);
		}
		// The data before the name: after a crash the new name never points at nothing.
		if (::fsync(fd.get()) != 0)
			return failed("cannot fsync");
	}
	if (::rename(tmp.c_str(), path.c_str()) != 0)
		return failed("cannot rename");
	r3d::UniqueFd d(::open(dir->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (!d || ::fsync(d.get()) != 0) {
		int err = errno;
		return r3d::fail(err, fmt::format("state: cannot fsync '{}': {}", *dir, std::strerror(err)));
	}
	return {};
}

uint64_t StateStore::nextId(const std::string &kind) const
{
	if (!persistent() || !validKind(kind))
		return 1;
	auto text = readFile(dir_ + "/" + kind + "/next");
	auto n = text ? parseObjectId(text->substr(0, text->find('\n'))) : std::nullopt;
	uint64_t next = n.value_or(1);
	// A spec newer than the counter (written, then killed before the counter): never reuse it.
	for (const auto &[id, spec] : load(kind))
		if (auto taken = parseObjectId(id); taken && *taken >= next)
			next = *taken + 1;
	return next;
}

r3d::ResultMsg<void> StateStore::setNextId(const std::string &kind, uint64_t next)
{
	if (!persistent())
		return {};
	return writeAtomically(kind, "next", std::to_string(next) + "\n");
}

r3d::ResultMsg<void> StateStore::save(const std::string &kind, const std::string &id, const nlohmann::json &spec)
{
	if (!persistent())
		return {};
	if (!parseObjectId(id))
		return r3d::fail(EINVAL, fmt::format("state: bad id '{}'", id));
	return writeAtomically(kind, id + ".json", spec.dump(2) + "\n");
}

r3d::ResultMsg<void> StateStore::remove(const std::string &kind, const std::string &id)
{
	if (!persistent())
		return {};
	if (!validKind(kind) || !parseObjectId(id))
		return r3d::fail(EINVAL, fmt::format("state: bad kind or id '{}/{}'", kind, id));
	std::string path = dir_ + "/" + kind + "/" + id + ".json";
	if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
		int err = errno;
		return r3d::fail(err, fmt::format("state: cannot remove '{}': {}", path, std::strerror(err)));
	}
	return {};
}

std::vector<std::pair<std::string, nlohmann::json>> StateStore::load(const std::string &kind,
								     std::vector<std::string> *bad) const
{
	std::vector<std::pair<std::string, nlohmann::json>> out;
	if (!persistent() || !validKind(kind))
		return out;
	std::string dir = dir_ + "/" + kind;
	std::unique_ptr<DIR, int (*)(DIR *)> d(::opendir(dir.c_str()), ::closedir);
	if (!d)
		return out;
	std::map<uint64_t, nlohmann::json> byId;
	while (auto *ent = ::readdir(d.get())) {
		std::string name = ent->d_name;
		if (name.size() <= 5 || name.compare(name.size() - 5, 5, ".json") != 0)
			continue;
		auto id = parseObjectId(name.substr(0, name.size() - 5));
		auto text = readFile(dir + "/" + name);
		auto spec = text ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
		if (!id || !text || spec.is_discarded() || !spec.is_object()) {
			if (bad)
				bad->push_back(fmt::format("{}/{}: {}", dir, name, !id ? "not an id" : "not a JSON object"));
			continue;
		}
		byId[*id] = std::move(spec);
	}
	for (auto &[id, spec] : byId)
		out.emplace_back(std::to_string(id), std::move(spec));
	return out;
}

} // namespace r3mapd
