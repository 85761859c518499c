#include "hex.hpp"

#include <atomic>
#include <chrono>
#include <vector>

#include <fmt/format.h>
#include <openssl/rand.h>

namespace r3d {

int hexValue(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

std::string toHex(std::span<const unsigned char> bytes)
{
	static constexpr char digits[] = "0123456789abcdef";
	std::string hex;
	hex.reserve(bytes.size() * 2);
	for (unsigned char b : bytes) {
		hex += digits[b >> 4];
		hex += digits[b & 0xf];
	}
	return hex;
}

std::string randomHexId(size_t bytes)
{
	std::vector<unsigned char> raw(bytes);
	if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) == 1)
		return toHex(raw);
	// No entropy source: time plus a counter still keeps ids of one process apart.
	static std::atomic<unsigned> counter{0};
	return fmt::format("t{:x}{:x}", std::chrono::steady_clock::now().time_since_epoch().count(),
			   counter.fetch_add(1));
}

} // namespace r3d
