#include "sync_managed.hpp"

#include <r3d/log.hpp>
#include <r3d/size.hpp>

#include "errors.hpp"

namespace r3mapd {

r3d::ResultMsg<void> syncManaged(r3d::mount::ManagedRegion &region, PushProgress &pushed, const std::string &kind,
				 const std::string &id)
{
	auto log = r3d::log::get(kind);
	log->info("{} {}: pushing {} of dirty data", kind, id, r3d::formatSize(region.status().dirtyBytes));
	if (auto ok = region.syncAll(pushed.callback()); !ok) {
		log->error("{} {}: sync failed: {}", kind, id, ok.error().message);
		return fail(Errc::BackendFailed, ok.error().message);
	}
	log->info("{} {}: synced", kind, id);
	return {};
}

} // namespace r3mapd
