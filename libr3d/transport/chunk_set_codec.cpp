#include "transport/chunk_set_codec.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "chunk_set.pb.h"

namespace r3d::transport {

namespace {

size_t varintSize(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		++n;
	}
	return n;
}

/// Runs of `w` as (gap, length) pairs; the gap of the first is from w.first.
std::vector<uint64_t> toRuns(const ChunkWindow &w)
{
	std::vector<uint64_t> runs;
	uint64_t prevEnd = w.first;
	for (size_t i = 0; i < w.chunks.size();) {
		size_t j = i + 1;
		while (j < w.chunks.size() && w.chunks[j] == w.chunks[j - 1] + 1)
			++j;
		runs.push_back(w.chunks[i] - prevEnd);
		runs.push_back(j - i);
		prevEnd = w.chunks[j - 1] + 1;
		i = j;
	}
	return runs;
}

} // namespace

void fillChunkSet(r3::v1::ChunkSet &pb, const ChunkWindow &w)
{
	pb.set_window_first(w.first);
	pb.set_window_end(w.end);
	if (w.chunks.empty())
		return;
	auto runs = toRuns(w);
	size_t runBytes = 0;
	for (uint64_t v : runs)
		runBytes += varintSize(v);
	size_t bitmapBytes = static_cast<size_t>((w.end - w.first + 7) / 8);
	if (runs.size() / 2 <= kMaxRuns && runBytes <= bitmapBytes) {
		for (uint64_t v : runs)
			pb.add_runs(v);
		return;
	}
	std::string bitmap(bitmapBytes, '\0');
	for (uint64_t c : w.chunks) {
		uint64_t bit = c - w.first;
		bitmap[static_cast<size_t>(bit / 8)] = static_cast<char>(
			static_cast<unsigned char>(bitmap[static_cast<size_t>(bit / 8)]) | (1u << (bit % 8)));
	}
	pb.set_bitmap(std::move(bitmap));
}

ResultMsg<ChunkWindow> readChunkSet(const r3::v1::ChunkSet &pb, uint64_t chunkCount, const char *what)
{
	ChunkWindow w;
	w.first = pb.window_first();
	w.end = pb.window_end();
	if (w.first >= w.end || w.end > chunkCount)
		return fail(EPROTO, fmt::format("{}: window [{}, {}) is empty or outside the region's {} chunks", what,
						w.first, w.end, chunkCount));
	const uint64_t span = w.end - w.first;
	if (span > kWindowChunks)
		return fail(EPROTO, fmt::format("{}: window of {} chunks is over the limit of {}", what, span,
						kWindowChunks));
	if (pb.runs_size() > 0 && !pb.bitmap().empty())
		return fail(EPROTO, fmt::format("{}: carries both runs and a bitmap", what));
	if (pb.runs_size() > 0) {
		if (pb.runs_size() % 2 != 0)
			return fail(EPROTO, fmt::format("{}: {} run values, not (gap, length) pairs", what, pb.runs_size()));
		if (static_cast<size_t>(pb.runs_size()) / 2 > kMaxRuns)
			return fail(EPROTO, fmt::format("{}: {} runs, over the limit of {}", what, pb.runs_size() / 2,
							kMaxRuns));
		uint64_t pos = w.first;
		for (int i = 0; i < pb.runs_size(); i += 2) {
			uint64_t gap = pb.runs(i), length = pb.runs(i + 1);
			// Canonical form: runs never touch, so a set has one encoding (and no run repeats a chunk).
			if (length == 0 || (i > 0 && gap == 0))
				return fail(EPROTO, fmt::format("{}: run {} has gap {} and length {}", what, i / 2, gap,
								length));
			if (gap > w.end - pos || length > w.end - pos - gap)
				return fail(EPROTO, fmt::format("{}: run {} ends past the window end {}", what, i / 2, w.end));
			pos += gap;
			for (uint64_t k = 0; k < length; ++k)
				w.chunks.push_back(pos + k);
			pos += length;
		}
		return w;
	}
	const std::string &bitmap = pb.bitmap();
	if (bitmap.empty())
		return w;
	if (bitmap.size() != (span + 7) / 8)
		return fail(EPROTO, fmt::format("{}: bitmap of {} bytes for a window of {} chunks (needs {})", what,
						bitmap.size(), span, (span + 7) / 8));
	for (uint64_t bit = 0; bit < bitmap.size() * 8; ++bit) {
		if (!((static_cast<unsigned char>(bitmap[static_cast<size_t>(bit / 8)]) >> (bit % 8)) & 1))
			continue;
		if (bit >= span)
			return fail(EPROTO, fmt::format("{}: bitmap sets bit {} past the window's {} chunks", what, bit,
							span));
		w.chunks.push_back(w.first + bit);
	}
	return w;
}

std::vector<ChunkWindow> splitWindows(const std::vector<uint64_t> &chunks, uint64_t chunkCount)
{
	std::vector<ChunkWindow> out;
	if (chunks.empty()) {
		out.push_back(ChunkWindow{ 0, std::min(chunkCount, kWindowChunks), {} });
		return out;
	}
	for (uint64_t c : chunks) {
		uint64_t first = c - c % kWindowChunks;
		if (out.empty() || out.back().first != first)
			out.push_back(ChunkWindow{ first, std::min(chunkCount, first + kWindowChunks), {} });
		out.back().chunks.push_back(c);
	}
	return out;
}

} // namespace r3d::transport
