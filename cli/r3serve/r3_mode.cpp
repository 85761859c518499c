#include "r3_mode.hpp"

#include "serve_options.hpp"

namespace r3serve {

R3Mode::R3Mode(const ServeOptions &options, r3d::Runtime &runtime) : o_(options), runtime_(runtime) {}

R3Mode::~R3Mode()
{
	(void)stop(true);
}

r3d::ResultMsg<void> R3Mode::start()
{
	r3d::transport::RpcServerOptions so;
	so.tls = r3d::transport::TlsServerConfig{ o_.tlsCert, o_.tlsKey, o_.tlsCa };
	so.tokenFile = o_.tokenFile;
	so.maxPayload = o_.maxRequest;
	auto server = r3d::transport::RpcServer::create(runtime_, so);
	if (!server)
		return r3d::unexpectedOf(server.error());
	server_ = std::move(*server);
	auto exports = openExports(o_, "r3 export", runtime_);
	if (!exports)
		return r3d::unexpectedOf(exports.error());
	exports_ = std::move(*exports);
	for (const auto &exp : exports_)
		server_->addExport({ exp.name, exp.backend, 0, o_.readOnly });
	auto address = server_->listen(o_.listenAddress);
	if (!address)
		return r3d::unexpectedOf(address.error());
	address_ = *address;
	server_->start();
	started_ = true;
	return {};
}

Counters R3Mode::counters() const
{
	return server_ ? r3d::transport::counterList(server_->stats()) : Counters{};
}

ServeMode::Stop R3Mode::stop(bool)
{
	if (started_)
		server_->stop();
	started_ = false;
	return Stop::Stopped;
}

bool R3Mode::sync()
{
	return syncExports(o_, exports_);
}

} // namespace r3serve
