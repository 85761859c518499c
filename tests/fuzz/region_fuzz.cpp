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
	if (auto m = decodeMap(in)) {
		check(m->source.size() <= kMaxRegionSource);
		auto again = encodeMap(*m);
		check(again.size() == size && std::equal(again.begin(), again.end(), data));
	}
	if (auto r = decodeReply(in)) {
		auto again = encodeReply(*r);
		check(again.size() == size && std::equal(again.begin(), again.end(), data));
	}
	return 0;
}
