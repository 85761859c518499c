#include "nbd/kernel/owner_tag.hpp"

#include <charconv>
#include <fstream>
#include <sstream>

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace r3d::nbd::kernel {

namespace {

constexpr std::string_view kPrefix = "r3map:";
constexpr size_t kMaxName = 64;

template <class T>
std::optional<T> number(std::string_view text)
{
	T value{};
	auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
	if (text.empty() || ec != std::errc() || end != text.data() + text.size())
		return std::nullopt;
	return value;
}

} // namespace

OwnerTag OwnerTag::self(std::string_view name, const std::string &procRoot)
{
	OwnerTag tag;
	tag.pid = ::getpid();
	tag.startTime = startTimeOf(tag.pid, procRoot).value_or(0);
	tag.pidNamespace = pidNamespaceOf(procRoot);
	tag.name = std::string(name.substr(0, kMaxName));
	return tag;
}

std::string OwnerTag::format() const
{
	return fmt::format("{}{}:{}:{}:{}", kPrefix, pid, startTime, pidNamespace, name);
}

std::optional<OwnerTag> OwnerTag::parse(std::string_view text)
{
	if (!text.starts_with(kPrefix))
		return std::nullopt;
	text.remove_prefix(kPrefix.size());
	std::string_view fields[3];
	for (auto &field : fields) {
		auto colon = text.find(':');
		if (colon == std::string_view::npos)
			return std::nullopt;
		field = text.substr(0, colon);
		text.remove_prefix(colon + 1);
	}
	auto pid = number<pid_t>(fields[0]);
	auto start = number<uint64_t>(fields[1]);
	auto ns = number<uint64_t>(fields[2]);
	if (!pid || *pid <= 0 || !start || !ns)
		return std::nullopt;
	return OwnerTag{ *pid, *start, *ns, std::string(text) };
}

std::optional<uint64_t> OwnerTag::startTimeOf(pid_t pid, const std::string &procRoot)
{
	std::ifstream in(fmt::format("{}/{}/stat", procRoot, pid));
	std::string line;
	if (!in || !std::getline(in, line))
		return std::nullopt;
	// The command name (field 2) may contain spaces and parentheses: skip to its last ')'.
	auto close = line.rfind(')');
	if (close == std::string::npos)
		return std::nullopt;
	std::istringstream rest(line.substr(close + 1));
	std::string field;
	// Fields 3..22; starttime is the 20th after the name.
	for (int i = 3; i <= 22; ++i)
		if (!(rest >> field))
			return std::nullopt;
	return number<uint64_t>(field);
}

uint64_t OwnerTag::pidNamespaceOf(const std::string &procRoot)
{
	struct stat st {};
	if (::stat((procRoot + "/self/ns/pid").c_str(), &st) != 0)
		return 0;
	return static_cast<uint64_t>(st.st_ino);
}

bool OwnerTag::alive(const std::string &procRoot) const
{
	if (pidNamespace != pidNamespaceOf(procRoot))
		return true;
	auto start = startTimeOf(pid, procRoot);
	return start && *start == startTime;
}

} // namespace r3d::nbd::kernel
