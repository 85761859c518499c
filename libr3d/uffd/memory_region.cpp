#include <r3d/memory_region.hpp>

#include <fmt/format.h>

#include <r3d/backend_factory.hpp>

#include "uffd/uffd_region.hpp"

namespace r3d {

const char *trackingName(RegionTracking tracking)
{
	switch (tracking) {
	case RegionTracking::None: return "none";
	case RegionTracking::Auto: return "auto";
	case RegionTracking::WpAsync: return "wp-async";
	case RegionTracking::WpSync: return "wp-sync";
	}
	return "none";
}

std::optional<RegionTracking> parseTracking(std::string_view name)
{
	for (auto t : { RegionTracking::None, RegionTracking::Auto, RegionTracking::WpAsync, RegionTracking::WpSync })
		if (name == trackingName(t))
			return t;
	return std::nullopt;
}

RegionTracking resolveTracking(RegionTracking tracking)
{
	if (tracking != RegionTracking::Auto)
		return tracking;
	auto features = uffd::UserfaultFd::kernelFeatures();
	bool async = features && (*features & uffd::kFeaturesWpAsync) == uffd::kFeaturesWpAsync;
	return async ? RegionTracking::WpAsync : RegionTracking::WpSync;
}

MemoryRegion::MemoryRegion(std::unique_ptr<uffd::UffdRegion> region) : region_(std::move(region)) {}

MemoryRegion::~MemoryRegion()
{
	unmap();
}

ResultMsg<std::unique_ptr<MemoryRegion>> MemoryRegion::map(const std::string &uri, uint64_t size,
							   const MemoryRegionOptions &options)
{
	auto backend = openBackend(uri);
	if (!backend)
		return unexpectedOf(backend.error());
	return map(std::move(*backend), size, options);
}

ResultMsg<std::unique_ptr<MemoryRegion>> MemoryRegion::map(std::shared_ptr<ReadWriterAt> source, uint64_t size,
							   const MemoryRegionOptions &options)
{
	if (!source)
		return fail(EINVAL, "memory region: no backend");
	auto fitted = uffd::UffdRegion::fit(std::move(source), options);
	if (!fitted)
		return unexpectedOf(fitted.error());
	auto &[top, o] = *fitted;
	auto server = uffd::FaultServer::shared();
	if (!server)
		return unexpectedOf(server.error());
	auto region = uffd::UffdRegion::create(top, size, o, std::move(*server));
	if (!region)
		return unexpectedOf(region.error());
	return std::unique_ptr<MemoryRegion>(new MemoryRegion(std::move(*region)));
}

std::byte *MemoryRegion::data() const
{
	return region_->data();
}

uint64_t MemoryRegion::size() const
{
	return region_->size();
}

MemoryRegionStats MemoryRegion::stats() const
{
	return region_->stats();
}

ResultMsg<void> MemoryRegion::sync()
{
	auto r = region_->writeBack();
	if (!r)
		return fail(r.error(), fmt::format("memory region: writing back: {}", r.error().message()));
	return {};
}

void MemoryRegion::unmap()
{
	if (region_)
		region_->close();
}

} // namespace r3d
