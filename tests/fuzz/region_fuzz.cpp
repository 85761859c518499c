// libFuzzer target for the region socket's decoding (libr3d/uffd/region_protocol): r3mapd
// decodes whatever an app sends. Invariants: nothing longer than the caps is accepted, an
// accepted Map request or reply re-encodes to the very bytes, nothing crashes (ASan/UBSan).

#include <cstdint>
#include <cstdlib>
#include <span>

#include "fuzz_support.hpp"
#include "uffd/region_protocol.hpp"

using namespace r3d::uffd;

using r3fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	std::span<const uint8_t> in(data, size);
	auto type = decodeType(in);
	if (!type)
		return 0;
	check(size <= kMaxRegionMessage);
	// Older versions are decoded too; only the current one re-encodes to the same bytes.
	const bool current = (data[4] | data[5] << 8) == kRegionVersion;
	if (auto m = decodeMap(in)) {
		check(m->source.size() <= kMaxRegionSource);
		check(m->writeBackMs <= kMaxRegionWriteBackMs || m->writeBackMs == RegionMapRequest::kNoInterval);
		auto again = encodeMap(*m);
		check(!current || (again.size() == size && std::equal(again.begin(), again.end(), data)));
	}
	if (auto r = decodeReply(in)) {
		auto again = encodeReply(*r);
		check(!current || (again.size() == size && std::equal(again.begin(), again.end(), data)));
	}
	return 0;
}
