#pragma once

// Big-endian field access for the NBD wire format.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include <endian.h>

namespace r3d::nbd::wire {

inline uint16_t get16(const std::byte *p)
{
	uint16_t v;
	std::memcpy(&v, p, 2);
	return be16toh(v);
}

inline uint32_t get32(const std::byte *p)
{
	uint32_t v;
	std::memcpy(&v, p, 4);
	return be32toh(v);
}

inline uint64_t get64(const std::byte *p)
{
	uint64_t v;
	std::memcpy(&v, p, 8);
	return be64toh(v);
}

inline void put16(std::byte *p, uint16_t v)
{
	v = htobe16(v);
	std::memcpy(p, &v, 2);
}

inline void put32(std::byte *p, uint32_t v)
{
	v = htobe32(v);
	std::memcpy(p, &v, 4);
}

inline void put64(std::byte *p, uint64_t v)
{
	v = htobe64(v);
	std::memcpy(p, &v, 8);
}

/// Appends big-endian fields to a growing message.
class Writer
{
public:
	explicit Writer(std::vector<std::byte> &out) : out_(out) {}
	Writer &u16(uint16_t v) { return append(v, put16); }
	Writer &u32(uint32_t v) { return append(v, put32); }
	Writer &u64(uint64_t v) { return append(v, put64); }
	Writer &bytes(const void *p, size_t n)
	{
		auto *b = static_cast<const std::byte *>(p);
		out_.insert(out_.end(), b, b + n);
		return *this;
	}
	Writer &str(std::string_view s) { return bytes(s.data(), s.size()); }

private:
	template <class T>
	Writer &append(T v, void (*put)(std::byte *, T))
	{
		size_t at = out_.size();
		out_.resize(at + sizeof(T));
		put(out_.data() + at, v);
		return *this;
	}
	std::vector<std::byte> &out_;
};

} // namespace r3d::nbd::wire
