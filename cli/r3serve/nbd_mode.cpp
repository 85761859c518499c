#include "nbd_mode.hpp"

#include <r3d/log.hpp>

#include "mount/managed_region.hpp"
#include "serve_options.hpp"
#include "transport/tls.hpp"

namespace r3serve {

NbdMode::NbdMode(const ServeOptions &options, r3d::Runtime &runtime) : o_(options), runtime_(runtime) {}

NbdMode::~NbdMode()
{
	(void)stop(true);
}

r3d::ResultMsg<void> NbdMode::start()
{
	auto exports = openExports(o_, "export", runtime_);
	if (!exports)
		return r3d::unexpectedOf(exports.error());
	exports_ = std::move(*exports);

	r3d::nbd::ServerOptions serverOptions;
	serverOptions.maxPayload = o_.maxRequest;
	serverOptions.runtime = &runtime_;
	serverOptions.tls = o_.tls;
	if (o_.tls != r3d::nbd::TlsPolicy::Off) {
		r3d::transport::TlsServerConfig tls{ o_.tlsCert, o_.tlsKey, o_.tlsCa, o_.tlsPsk };
		tls.allowTls12 = true; // NBD's spec: TLS 1.2 MUST work
		auto ctx = r3d::transport::makeServerTlsContext(tls);
		if (!ctx)
			return r3d::unexpectedOf(ctx.error());
		serverOptions.tlsContext = std::move(*ctx);
	}
	server_.emplace(serverOptions);
	for (const auto &exp : exports_)
		server_->addExport({ exp.name, o_.description, exp.backend, o_.readOnly,
				     exp.managed ? exp.managed->meta() : nullptr });

	auto listener = o_.socketPath.empty() ? r3d::nbd::Listener::listenTcp(*server_, o_.listenAddress)
					      : r3d::nbd::Listener::listenUnix(*server_, o_.socketPath);
	if (!listener)
		return r3d::unexpectedOf(listener.error());
	listener_ = std::move(*listener);
	r3d::log::get("r3serve")->info("listening on {}{}", listener_->address(),
				       o_.tls == r3d::nbd::TlsPolicy::Off ? ""
				       : o_.tls == r3d::nbd::TlsPolicy::On ? " (TLS optional)"
									   : " (TLS required)");
	r3d::nbd::warnIfServedInClear(listener_->address(), o_.tls, "give --tls-cert/--tls-key or --tls-psk");
	acceptThread_ = std::thread([this] {
		listener_->run();
		acceptEnded_ = true;
	});
	return {};
}

std::string NbdMode::address() const
{
	return listener_->address();
}

Counters NbdMode::counters() const
{
	return withManagedCounters(server_ ? nbdCounters(server_->stats()) : Counters{}, exports_);
}

std::string NbdMode::failure() const
{
	return acceptEnded_ && !stopped_ ? "the accept loop ended; stopping" : "";
}

ServeMode::Stop NbdMode::stop(bool)
{
	if (stopped_ || !server_)
		return Stop::Stopped;
	stopped_ = true;
	// Refuse new connections and wind down live ones (in-flight requests finish and
	// backends are flushed); stop() then joins the connection threads.
	server_->shutdown();
	if (listener_)
		listener_->stop();
	if (acceptThread_.joinable())
		acceptThread_.join();
	return Stop::Stopped;
}

bool NbdMode::sync()
{
	return syncExports(o_, exports_);
}

} // namespace r3serve
