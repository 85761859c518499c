#pragma once

// Helpers shared by the C++ tests.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace r3test {

/// Something every case of a test binary needs and a machine may lack (a program, a
/// driver). catch_main.cpp checks them all before the session starts and exits 77, which
/// meson reports as SKIP, when one is missing: never pass without testing. A skip is
/// whole-binary, so cases with a prerequisite live in a binary of their own, and no case
/// that could run is ever skipped with them. Declare one at namespace scope:
///     const r3test::Prerequisite openssl = r3test::Prerequisite::program("openssl");
class Prerequisite
{
public:
	/// `missing` says why the binary cannot run, `present` checks it.
	Prerequisite(std::string missing, std::function<bool()> present)
	{
		all().push_back(Check{ std::move(missing), std::move(present) });
	}

	/// A program that must be on $PATH.
	static Prerequisite program(const std::string &name)
	{
		return Prerequisite(name + " is not installed", [name] {
			return std::system(("command -v '" + name + "' >/dev/null 2>&1").c_str()) == 0;
		});
	}

	/// Why this binary cannot run here; empty when everything it needs is present.
	static std::string firstMissing()
	{
		for (const auto &c : all())
			if (!c.present())
				return c.missing;
		return {};
	}

private:
	struct Check {
		std::string missing;
		std::function<bool()> present;
	};
	// One list per binary: an inline function's static is shared by all its TUs.
	static std::vector<Check> &all()
	{
		static std::vector<Check> checks;
		return checks;
	}
};

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
