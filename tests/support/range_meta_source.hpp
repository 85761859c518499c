#pragma once

// The MetaSource double, standing in for the managed cache until it exists: each context
// marks fixed ranges with flag 1 and the rest with 0, and every call can be made to fail
// with an errno. Configure it before serving; failWith() may change later. No Catch2 here:
// the fuzz target and the integration test's server use it too.

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nbd/meta_source.hpp"

namespace r3test {

class RangeMetaSource final : public r3d::nbd::MetaSource
{
public:
	struct Range {
		uint64_t offset = 0;
		uint64_t length = 0;
	};

	/// Adds context `name`, flag 1 on `marked` (any order; overlaps and neighbours merge).
	RangeMetaSource &add(std::string name, std::vector<Range> marked)
	{
		std::sort(marked.begin(), marked.end(), [](const Range &a, const Range &b) { return a.offset < b.offset; });
		std::vector<Range> merged;
		for (const auto &r : marked) {
			if (r.length == 0)
				continue;
			if (!merged.empty() && r.offset <= merged.back().offset + merged.back().length)
				merged.back().length = std::max(merged.back().length, r.offset + r.length - merged.back().offset);
			else
				merged.push_back(r);
		}
		contexts_.push_back(Context{ std::move(name), std::move(merged) });
		return *this;
	}
	/// Every later metaExtents() fails with `error` (0: works again).
	RangeMetaSource &failWith(int error)
	{
		error_ = error;
		return *this;
	}
	uint64_t calls() const { return calls_.load(); }

	std::vector<std::string> contexts() const override
	{
		std::vector<std::string> names;
		for (const auto &c : contexts_)
			names.push_back(c.name);
		return names;
	}

	r3d::Result<std::vector<r3d::nbd::MetaExtent>> metaExtents(size_t index, uint64_t offset,
								    uint64_t length) override
	{
		calls_++;
		if (int e = error_.load())
			return r3d::unexpected(e);
		if (index >= contexts_.size() || length == 0)
			return r3d::unexpected(EINVAL);
		std::vector<r3d::nbd::MetaExtent> out;
		uint64_t pos = offset, end = offset + length;
		for (const auto &r : contexts_[index].marked) {
			if (r.offset + r.length <= pos)
				continue;
			if (r.offset >= end)
				break;
			if (r.offset > pos)
				out.push_back({ r.offset - pos, 0 });
			uint64_t stop = std::min(r.offset + r.length, end);
			out.push_back({ stop - std::max(pos, r.offset), 1 });
			pos = stop;
		}
		if (pos < end)
			out.push_back({ end - pos, 0 });
		return out;
	}

private:
	struct Context {
		std::string name;
		std::vector<Range> marked; ///< sorted, disjoint, not touching
	};
	std::vector<Context> contexts_;
	std::atomic<int> error_{ 0 };
	std::atomic<uint64_t> calls_{ 0 };
};

} // namespace r3test
