#pragma once

#include <memory>

#include "serve_mode.hpp"
#include "base/runtime.hpp"
#include "transport/block/rpc_server.hpp"

namespace r3serve {

struct ServeOptions;

/// r3serve --r3: the exports over r3map's own transport, for r3:// clients.
class R3Mode final : public ServeMode
{
public:
	R3Mode(const ServeOptions &options, r3d::Runtime &runtime);
	~R3Mode() override;

	r3d::ResultMsg<void> start() override;
	std::string address() const override { return address_; }
	Counters counters() const override;
	Stop stop(bool force) override;
	bool sync() override;

private:
	const ServeOptions &o_;
	r3d::Runtime &runtime_;
	std::unique_ptr<r3d::transport::RpcServer> server_;
	std::vector<OpenedExport> exports_;
	std::string address_;
	bool started_ = false;
};

} // namespace r3serve
