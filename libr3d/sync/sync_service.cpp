#include "sync/sync_service.hpp"

#include <fmt/format.h>

#include "sync/sync_messages.hpp"
#include "sync/sync_session.hpp"
#include "transport/block/rpc_server.hpp"

namespace r3d::sync {

SyncService::SyncService(SyncServiceOptions options, ThreadPool *pool) : options_(std::move(options)), pool_(pool) {}

void SyncService::addTo(transport::RpcServer &server)
{
	std::weak_ptr<SyncService> weak = weak_from_this();
	server.addService(kSyncService,
			  [weak](const transport::Hello &hello) -> ResultMsg<std::shared_ptr<transport::ChannelService>> {
				  auto self = weak.lock();
				  if (!self)
					  return fail(ESHUTDOWN, "the sync service is stopping");
				  return std::shared_ptr<transport::ChannelService>(std::make_shared<SyncSession>(
					  self, hello.clientName.empty() ? "sender" : hello.clientName));
			  });
}

ResultMsg<std::shared_ptr<SyncService::Copy>> SyncService::claim(const std::string &name)
{
	std::lock_guard lock(mutex_);
	// A target is one copy under any name.
	auto &copy = copies_[options_.target ? std::string() : name];
	if (!copy)
		copy = std::make_shared<Copy>();
	std::lock_guard copyLock(copy->mutex);
	if (copy->busy)
		return fail(EBUSY, fmt::format("'{}' is being pushed by another sender", name));
	copy->busy = true;
	return copy;
}

void SyncService::release(const std::shared_ptr<Copy> &copy)
{
	std::lock_guard lock(copy->mutex);
	if (copy->receiver)
		copy->receiver->abort();
	copy->busy = false;
}

} // namespace r3d::sync
