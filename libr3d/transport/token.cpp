#include "transport/token.hpp"

#include <cstring>
#include <fstream>

#include <sys/stat.h>

#include <fmt/format.h>
#include <openssl/crypto.h>

#include <r3d/log.hpp>

namespace r3d::transport {

namespace {

constexpr size_t kMaxTokenLength = 4096;

} // namespace

ResultMsg<std::string> readTokenFile(const std::string &path)
{
	std::ifstream in(path);
	if (!in) {
		int err = errno ? errno : EACCES;
		return fail(err, fmt::format("token file '{}': {}", path, std::strerror(err)));
	}
	std::string line;
	std::getline(in, line);
	auto first = line.find_first_not_of(" \t\r\n");
	auto last = line.find_last_not_of(" \t\r\n");
	if (first == std::string::npos)
		return fail(EINVAL, fmt::format("token file '{}' holds no token on its first line", path));
	line = line.substr(first, last - first + 1);
	if (line.size() > kMaxTokenLength)
		return fail(EINVAL, fmt::format("token file '{}': the token is longer than {} bytes", path, kMaxTokenLength));
	struct stat st {};
	if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
		log::get("transport")->warn("token file '{}' is readable by other users (chmod 600 it)", path);
	return line;
}

bool tokensEqual(std::string_view a, std::string_view b)
{
	if (a.size() != b.size())
		return false;
	return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

} // namespace r3d::transport
