#include "service/migration_object.hpp"

#include <fmt/format.h>

#include "service/async_call.hpp"

namespace r3mapd::service {

MigrationObject::MigrationObject(sdbus::IConnection &connection, ServiceState &state, MigrationInfo info)
	: AdaptorInterfaces(connection, kMigrationsPath + info.id), state_(state), info_(std::move(info))
{
	registerAdaptor();
	emitInterfacesAddedSignal({ kInterface });
}

MigrationObject::~MigrationObject()
{
	withdraw(*this, { kInterface });
}

r3d::migration::MigrationProgress MigrationObject::progress() const
{
	// A migration being cancelled answers with defaults until its object goes.
	return state_.context.migrations->progress(info_.id).value_or(r3d::migration::MigrationProgress{});
}

std::string MigrationObject::Phase()
{
	return r3d::migration::phaseName(progress().phase);
}

int64_t MigrationObject::PredictedDowntimeUs()
{
	auto d = progress().predictedDowntime;
	if (d == std::chrono::nanoseconds::max())
		return -1;
	return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

uint64_t MigrationObject::MeasuredDowntimeUs()
{
	return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(progress().downtime).count());
}

void MigrationObject::Finalize(sdbus::Result<> &&result)
{
	if (!admit(state_, getObject(), result, fmt::format("Finalize migration {}", info_.id)))
		return;
	runAsync(state_, std::move(result),
		 [migrations = state_.context.migrations, id = info_.id] { return migrations->finalize(id); });
}

void MigrationObject::AnswerFinalize(sdbus::Result<> &&result, bool proceed, std::string reason)
{
	auto caller = admit(state_, getObject(), result, fmt::format("AnswerFinalize {} on migration {}", proceed, info_.id));
	if (!caller)
		return;
	runAsync(state_, std::move(result),
		 [migrations = state_.context.migrations, id = info_.id, proceed, reason = std::move(reason), uid = caller->uid] {
			 return migrations->answerFinalize(id, proceed, reason, uid);
		 });
}

void MigrationObject::Cancel(sdbus::Result<> &&result)
{
	if (!admit(state_, getObject(), result, fmt::format("Cancel migration {}", info_.id)))
		return;
	runAsync(state_, std::move(result),
		 [migrations = state_.context.migrations, id = info_.id] { return migrations->cancel(id); });
}

} // namespace r3mapd::service
