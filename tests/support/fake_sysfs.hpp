#pragma once

// A fake /sys and /dev for the kernel attach code: nbd devices are directories with
// size/pid/backend files, device nodes are regular files (flock works on them).

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "test_support.hpp"

namespace r3test {

class FakeSysfs
{
public:
	FakeSysfs()
	{
		std::filesystem::create_directories(sys() + "/block");
		std::filesystem::create_directories(dev());
	}

	std::string sys() const { return dir_ / "sys"; }
	std::string dev() const { return dir_ / "dev"; }

	void loadModule() { std::filesystem::create_directories(sys() + "/module/nbd"); }

	/// An nbd device; `pid` present means connected.
	void addDevice(unsigned index, uint64_t sectors = 0, std::optional<int> pid = std::nullopt,
		       const std::string &backend = "")
	{
		std::filesystem::create_directories(block(index));
		std::ofstream(dev() + "/nbd" + std::to_string(index)) << "";
		setSize(index, sectors);
		if (pid)
			write(block(index) + "/pid", std::to_string(*pid));
		if (!backend.empty())
			write(block(index) + "/backend", backend);
	}
	void setSize(unsigned index, uint64_t sectors) { write(block(index) + "/size", std::to_string(sectors)); }
	void disconnect(unsigned index)
	{
		std::filesystem::remove(block(index) + "/pid");
		setSize(index, 0);
	}

private:
	std::string block(unsigned index) const { return sys() + "/block/nbd" + std::to_string(index); }
	static void write(const std::string &path, const std::string &text)
	{
		// sysfs attributes end with a newline.
		std::ofstream(path, std::ios::trunc) << text << "\n";
	}

	TempDir dir_;
};

} // namespace r3test
