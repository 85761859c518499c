#include "stages/bitmap.hpp"

#include <bit>

namespace r3d::stages {

Bitmap::Bitmap(uint64_t bits)
	: bits_(bits), words_(std::make_unique<std::atomic<uint64_t>[]>((bits + 63) / 64)), wordCount_((bits + 63) / 64)
{
}

void Bitmap::set(uint64_t bit)
{
	words_[bit / 64].fetch_or(uint64_t{ 1 } << (bit % 64), std::memory_order_release);
}

void Bitmap::setRange(uint64_t first, uint64_t last)
{
	for (uint64_t word = first / 64; word <= last / 64; ++word) {
		uint64_t lo = word == first / 64 ? first % 64 : 0;
		uint64_t hi = word == last / 64 ? last % 64 : 63;
		uint64_t mask = (hi == 63 ? ~uint64_t{ 0 } : ((uint64_t{ 1 } << (hi + 1)) - 1)) & ~((uint64_t{ 1 } << lo) - 1);
		words_[word].fetch_or(mask, std::memory_order_release);
	}
}

void Bitmap::clear(uint64_t bit)
{
	words_[bit / 64].fetch_and(~(uint64_t{ 1 } << (bit % 64)), std::memory_order_acq_rel);
}

bool Bitmap::test(uint64_t bit) const
{
	return (words_[bit / 64].load(std::memory_order_acquire) >> (bit % 64)) & 1;
}

uint64_t Bitmap::count() const
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < wordCount_; ++i)
		n += static_cast<uint64_t>(std::popcount(words_[i].load(std::memory_order_relaxed)));
	return n;
}

std::vector<uint64_t> Bitmap::take()
{
	std::vector<uint64_t> out;
	for (uint64_t i = 0; i < wordCount_; ++i) {
		if (words_[i].load(std::memory_order_relaxed) == 0)
			continue;
		uint64_t w = words_[i].exchange(0, std::memory_order_acq_rel);
		while (w) {
			out.push_back(i * 64 + static_cast<uint64_t>(std::countr_zero(w)));
			w &= w - 1;
		}
	}
	return out;
}

void Bitmap::clearAll()
{
	for (uint64_t i = 0; i < wordCount_; ++i)
		words_[i].store(0, std::memory_order_release);
}

} // namespace r3d::stages
