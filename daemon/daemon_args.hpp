#pragma once

#include <optional>
#include <string>

#include <r3d/result.hpp>

namespace r3mapd {

/// r3mapd's command line; see r3mapd(8).
struct DaemonArgs {
	std::string configPath;
	bool configGiven = false; ///< then a missing file is an error
	std::optional<std::string> logLevel;
	bool help = false;
	bool version = false;

	static r3d::ResultMsg<DaemonArgs> parse(int argc, char **argv);
	static const char *usage();
};

} // namespace r3mapd
