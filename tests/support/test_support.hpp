#pragma once

// Helpers shared by the C++ tests.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace r3test {

/// Meson reports exit code 77 as SKIP: use it when a prerequisite is missing, never pass.
[[noreturn]] inline void skip(const std::string &why)
{
	std::fprintf(stderr, "SKIP: %s\n", why.c_str());
	std::fflush(stderr);
	std::_Exit(77);
}

/// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir
{
public:
	TempDir()
	{
		std::string tmpl = (std::filesystem::temp_directory_path() / "r3test-XXXXXX").string();
		if (!::mkdtemp(tmpl.data()))
			std::abort();
		path_ = tmpl;
	}
	~TempDir()
	{
		std::error_code ec;
		std::filesystem::remove_all(path_, ec);
	}
	TempDir(const TempDir &) = delete;
	TempDir &operator=(const TempDir &) = delete;

	const std::filesystem::path &path() const { return path_; }
	std::string operator/(const std::string &name) const { return (path_ / name).string(); }

private:
	std::filesystem::path path_;
};

/// Deterministic pseudo-random bytes: the same seed gives the same pattern.
inline std::vector<std::byte> pattern(size_t length, uint32_t seed)
{
	std::vector<std::byte> out(length);
	std::mt19937 rng(seed);
	for (auto &b : out)
		b = static_cast<std::byte>(rng() & 0xff);
	return out;
}

inline bool allZero(const std::vector<std::byte> &v)
{
	for (auto b : v)
		if (b != std::byte{ 0 })
			return false;
	return true;
}

} // namespace r3test
