#pragma once

// Meta contexts an export offers besides base:allocation (NBD_OPT_SET_META_CONTEXT and
// BLOCK_STATUS). A managed backend offers "x-r3map:present" (the range is in the local cache)
// and "x-r3map:dirty" (written here, not yet pushed); `nbdinfo --map=x-r3map:present` shows
// them. The x- prefix stays until the namespace is registered with the NBD project.

#include <cstdint>
#include <string>
#include <vector>

#include <r3d/result.hpp>

namespace r3d::nbd {

/// A run of the export with the same flags in one meta context.
struct MetaExtent {
	uint64_t length = 0;
	uint32_t flags = 0;
};

class MetaSource
{
public:
	virtual ~MetaSource() = default;

	/// The full context names, e.g. "x-r3map:present". Fixed for the source's lifetime.
	virtual std::vector<std::string> contexts() const = 0;
	/// The map of context `index` (into contexts()) over [offset, offset+length): at least
	/// one extent, covering at most the range; adjacent extents have different flags.
	virtual Result<std::vector<MetaExtent>> metaExtents(size_t index, uint64_t offset, uint64_t length) = 0;
};

} // namespace r3d::nbd
