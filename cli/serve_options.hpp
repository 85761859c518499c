#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <r3d/result.hpp>

namespace r3cli {

/// Everything r3serve was asked to do, parsed and checked before anything starts.
struct ServeOptions {
	std::string socketPath;                                   ///< --socket
	std::string listenAddress;                                ///< --listen
	std::vector<std::pair<std::string, std::string>> exports; ///< name, backend URI
	std::string description;
	bool readOnly = false;
	uint32_t maxRequest = 32 * 1024 * 1024;
	unsigned workers = 16;
	std::string pidFile;
	std::string statsFile;
	std::string logLevel = "info";
	bool help = false;
};

/// Parses the command line; the error message is ready to print after "r3serve: ".
r3d::ResultMsg<ServeOptions> parseServeOptions(int argc, char **argv);

const char *serveUsage();

} // namespace r3cli
