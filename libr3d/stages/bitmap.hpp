#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace r3d::stages {

/// A fixed-size bitmap whose bits can be set and taken from many threads without a lock.
class Bitmap
{
public:
	explicit Bitmap(uint64_t bits);

	uint64_t size() const { return bits_; }
	void set(uint64_t bit);
	/// Sets bits [first, last].
	void setRange(uint64_t first, uint64_t last);
	void clear(uint64_t bit);
	bool test(uint64_t bit) const;
	uint64_t count() const;
	/// Returns the set bits in ascending order and clears them atomically per word, so a
	/// bit set concurrently is either returned now or left for the next call, never lost.
	std::vector<uint64_t> take();
	void clearAll();

private:
	uint64_t bits_;
	std::unique_ptr<std::atomic<uint64_t>[]> words_;
	uint64_t wordCount_;
};

} // namespace r3d::stages
