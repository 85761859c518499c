// The C ABI of <r3d/region.h> over r3d::DaemonRegion; no exception crosses it.

#include <r3d/region.h>

#include <cerrno>
#include <exception>
#include <new>
#include <string>

#include <r3d/daemon_region.hpp>

struct r3d_region {
	std::unique_ptr<r3d::DaemonRegion> region;
};

namespace {

thread_local std::string lastError;

int failWith(int errnum, std::string message)
{
	lastError = std::move(message);
	return -(errnum > 0 ? errnum : EIO);
}

} // namespace

extern "C" {

int r3d_region_map(const char *uri, uint64_t size, const char *socket_path, r3d_region **out)
{
	return r3d_region_map_flags(uri, size, socket_path, 0, out);
}

int r3d_region_map_flags(const char *uri, uint64_t size, const char *socket_path, uint32_t flags, r3d_region **out)
{
	if (!uri || !out)
		return failWith(EINVAL, "r3d_region_map: no uri or no out pointer");
	if (flags & ~(R3D_REGION_TRACK | R3D_REGION_TRACK_WP_SYNC | R3D_REGION_NO_BACKGROUND))
		return failWith(EINVAL, "r3d_region_map_flags: unknown flags");
	try {
		r3d::DaemonRegionOptions options;
		if (socket_path)
			options.socketPath = socket_path;
		if (flags & R3D_REGION_TRACK_WP_SYNC)
			options.tracking = r3d::RegionTracking::WpSync;
		else if (flags & R3D_REGION_TRACK)
			options.tracking = r3d::RegionTracking::Auto;
		options.background = !(flags & R3D_REGION_NO_BACKGROUND);
		auto region = r3d::DaemonRegion::map(uri, size, options);
		if (!region)
			return failWith(region.error().code.value(), region.error().message);
		*out = new r3d_region{ std::move(*region) };
		return 0;
	} catch (const std::bad_alloc &) {
		return failWith(ENOMEM, "out of memory");
	} catch (const std::exception &e) {
		return failWith(EIO, e.what());
	}
}

void *r3d_region_data(const r3d_region *region)
{
	return region ? region->region->data() : nullptr;
}

uint64_t r3d_region_size(const r3d_region *region)
{
	return region ? region->region->size() : 0;
}

const char *r3d_region_id(const r3d_region *region)
{
	return region ? region->region->id().c_str() : "";
}

int r3d_region_sync(r3d_region *region)
{
	if (!region)
		return failWith(EINVAL, "r3d_region_sync: no region");
	try {
		auto r = region->region->sync();
		if (!r)
			return failWith(r.error().code.value(), r.error().message);
		return 0;
	} catch (const std::exception &e) {
		return failWith(EIO, e.what());
	}
}

int r3d_region_unmap(r3d_region *region)
{
	if (!region)
		return 0;
	try {
		region->region->unmap();
	} catch (const std::exception &e) {
		delete region;
		return failWith(EIO, e.what());
	}
	delete region;
	return 0;
}

const char *r3d_region_last_error(void)
{
	return lastError.c_str();
}

} // extern "C"
