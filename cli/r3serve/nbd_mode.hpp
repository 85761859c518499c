#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <thread>

#include "base/runtime.hpp"
#include "nbd/listener.hpp"
#include "nbd/server.hpp"
#include "serve_mode.hpp"

namespace r3serve {

struct ServeOptions;

/// r3serve --socket/--listen: the exports over NBD. The accept loop runs on a thread of
/// its own; request workers come from the mode's Runtime.
class NbdMode final : public ServeMode
{
public:
	NbdMode(const ServeOptions &options, r3d::Runtime &runtime);
	~NbdMode() override;

	r3d::ResultMsg<void> start() override;
	std::string address() const override;
	Counters counters() const override;
	std::string failure() const override;
	Stop stop(bool force) override;
	bool sync() override;

private:
	const ServeOptions &o_;
	// Owned here until RpcServer and DirectMount take one too; then it moves up to
	// runServe(), one per process. Declared first, so it outlives the server.
	r3d::Runtime &runtime_;
	std::optional<r3d::nbd::Server> server_;
	std::vector<OpenedExport> exports_;
	std::unique_ptr<r3d::nbd::Listener> listener_;
	std::thread acceptThread_;
	std::atomic<bool> acceptEnded_{ false };
	bool stopped_ = false;
};

} // namespace r3serve
