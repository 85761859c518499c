#include "migration/seeder.hpp"

#include <fmt/format.h>

#include "base/hex.hpp"
#include "base/runtime.hpp"
#include "migration/seeder_core.hpp"
#include "migration/seeder_session.hpp"
#include "stages/chunk_geometry.hpp"

namespace r3d::migration {

ResultMsg<std::unique_ptr<Seeder>> Seeder::create(Runtime &runtime, std::shared_ptr<ReadWriterAt> source,
						  SeederOptions options)
{
	if (!source)
		return fail(EINVAL, "seeder: no source");
	if (options.migrationId.empty())
		options.migrationId = randomHexId();
	if (options.migrationId.size() > kMaxIdLength)
		return fail(EINVAL, fmt::format("seeder: the migration id is over {} bytes", kMaxIdLength));
	if (auto ok = checkRegion({ source->size(), options.chunkSize }); !ok)
		return fail(ok.error().code, "seeder: " + ok.error().message);
	SeederCoreOptions co;
	co.migrationId = options.migrationId;
	co.chunkSize = options.chunkSize;
	co.handover = options.handover;
	co.onSuspend = options.onSuspend;
	co.onResume = options.onResume;
	co.onProgress = options.onProgress;
	auto core = std::make_shared<SeederCore>(std::move(source), std::move(co));
	if (auto ok = core->start(); !ok)
		return unexpectedOf(ok.error());
	return std::unique_ptr<Seeder>(new Seeder(runtime, std::move(core), std::move(options)));
}

Seeder::Seeder(Runtime &runtime, std::shared_ptr<SeederCore> core, SeederOptions options)
	: runtime_(runtime), core_(std::move(core)), options_(std::move(options))
{
}

Seeder::~Seeder()
{
	stop();
}

const std::string &Seeder::migrationId() const
{
	return core_->migrationId();
}

std::shared_ptr<ReadWriterAt> Seeder::front() const
{
	return core_->front();
}

void Seeder::addTo(transport::RpcServer &server)
{
	transport::RpcExport exp;
	exp.name = core_->migrationId();
	exp.backend = core_->source();
	exp.readOnly = true;
	server.addExport(std::move(exp));
	server.addService(kMigrationService,
			  [core = core_, rt = &runtime_](const transport::Hello &hello)
				  -> ResultMsg<std::shared_ptr<transport::ChannelService>> {
				  if (hello.exportName != core->migrationId())
					  return fail(ENOENT, fmt::format("no migration '{}' here (serving '{}')",
									  hello.exportName, core->migrationId()));
				  return std::shared_ptr<transport::ChannelService>(std::make_shared<SeederSession>(
					  core, *rt, hello.clientName.empty() ? "leecher" : hello.clientName));
			  });
}

ResultMsg<std::string> Seeder::listen(const std::string &hostPort)
{
	if (server_)
		return fail(EALREADY, "seeder: already listening");
	auto server = transport::RpcServer::create(runtime_, options_.server);
	if (!server)
		return unexpectedOf(server.error());
	addTo(**server);
	auto address = (*server)->listen(hostPort);
	if (!address)
		return unexpectedOf(address.error());
	server_ = std::move(*server);
	core_->setServedBytes([s = server_.get()] { return s->stats().bytesRead; });
	server_->start();
	return address;
}

void Seeder::stop()
{
	if (server_)
		server_->stop();
	core_->setServedBytes({});
	core_->stop();
}

MigrationProgress Seeder::progress() const
{
	return core_->progress();
}

bool Seeder::handedOver() const
{
	return core_->handedOver();
}

bool Seeder::waitComplete(std::chrono::milliseconds timeout)
{
	return core_->waitOwnerComplete(timeout);
}

} // namespace r3d::migration
