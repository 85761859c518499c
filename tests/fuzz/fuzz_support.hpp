#pragma once

// What the libFuzzer targets share: the invariant check, and the R3_WRITE_SEEDS mode in
// which a target writes its seed corpus (valid inputs made by the real encoders) and exits.

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

namespace r3fuzz {

/// An invariant: libFuzzer reports the abort with the input that broke it.
inline void check(bool ok)
{
	if (!ok)
		std::abort();
}

/// Writes `prefix` then `body` to DIR/NAME: a seed whose first byte(s) pick the mode.
inline void writeSeed(const std::string &dir, const std::string &name, const std::string &prefix,
		      const std::string &body)
{
	std::ofstream(dir + "/" + name, std::ios::binary) << prefix << body;
}

/// For LLVMFuzzerInitialize: with R3_WRITE_SEEDS=DIR set, writes the seeds into DIR and exits.
template <class WriteSeeds>
int seedsOnRequest(WriteSeeds writeSeeds)
{
	if (const char *dir = std::getenv("R3_WRITE_SEEDS")) {
		writeSeeds(std::string(dir));
		std::exit(0);
	}
	return 0;
}

} // namespace r3fuzz
