#include "nbd/kernel/sysfs_devices.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>

namespace r3d::nbd::kernel {

namespace {

template <class T = unsigned>
std::optional<T> parseNumber(std::string_view text)
{
	T value = 0;
	if (text.empty())
		return std::nullopt;
	auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
	if (ec != std::errc() || end != text.data() + text.size())
		return std::nullopt;
	return value;
}

/// The first line of a sysfs attribute, or nullopt when it does not exist.
std::optional<std::string> readLine(const std::string &path)
{
	std::ifstream in(path);
	if (!in)
		return std::nullopt;
	std::string line;
	std::getline(in, line);
	return line;
}

} // namespace

SysfsDevices::SysfsDevices(std::string sysRoot, std::string devRoot)
	: sysRoot_(std::move(sysRoot)), devRoot_(std::move(devRoot))
{
}

std::string SysfsDevices::blockDir(unsigned index) const
{
	return sysRoot_ + "/block/nbd" + std::to_string(index);
}

std::string SysfsDevices::devicePath(unsigned index) const
{
	return devRoot_ + "/nbd" + std::to_string(index);
}

std::optional<unsigned> SysfsDevices::parseDevice(const std::string &text)
{
	std::string_view rest = text;
	if (rest.starts_with("/dev/"))
		rest.remove_prefix(5);
	if (rest.starts_with("nbd"))
		rest.remove_prefix(3);
	return parseNumber(rest);
}

bool SysfsDevices::driverPresent() const
{
	std::error_code ec;
	return std::filesystem::exists(sysRoot_ + "/module/nbd", ec) || !list().empty();
}

std::optional<uint64_t> SysfsDevices::sizeSectors(unsigned index) const
{
	auto size = readLine(blockDir(index) + "/size");
	if (!size)
		return std::nullopt;
	return parseNumber<uint64_t>(*size).value_or(0);
}

std::optional<pid_t> SysfsDevices::pid(unsigned index) const
{
	auto pid = readLine(blockDir(index) + "/pid");
	if (!pid)
		return std::nullopt;
	if (auto n = parseNumber(*pid))
		return static_cast<pid_t>(*n);
	return std::nullopt;
}

std::optional<NbdDeviceState> SysfsDevices::state(unsigned index) const
{
	auto size = sizeSectors(index);
	if (!size)
		return std::nullopt;
	NbdDeviceState s;
	s.index = index;
	s.sizeSectors = *size;
	s.pid = pid(index);
	if (auto backend = readLine(blockDir(index) + "/backend"))
		s.backend = *backend;
	return s;
}

std::vector<NbdDeviceState> SysfsDevices::list() const
{
	std::vector<NbdDeviceState> out;
	std::error_code ec;
	for (const auto &entry : std::filesystem::directory_iterator(sysRoot_ + "/block", ec)) {
		auto name = entry.path().filename().string();
		if (!name.starts_with("nbd"))
			continue;
		auto index = parseNumber(std::string_view(name).substr(3));
		if (!index)
			continue; // a partition such as nbd0p1 lives below its disk, but be safe
		if (auto s = state(*index))
			out.push_back(*s);
	}
	std::sort(out.begin(), out.end(), [](const auto &a, const auto &b) { return a.index < b.index; });
	return out;
}

} // namespace r3d::nbd::kernel
