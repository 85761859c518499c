#include "context.hpp"

namespace r3ctl {

namespace {

// "No timeout" for sd-bus: long enough for any push, short of overflowing its microseconds.
constexpr std::chrono::seconds kUnbounded = std::chrono::hours(24 * 365);

std::unique_ptr<Client> connect(std::chrono::seconds timeout)
{
	try {
		return std::make_unique<Client>(timeout);
	} catch (const sdbus::Error &e) {
		// Whatever sd-bus called it, the bus itself is out of reach.
		throw sdbus::Error(kNoBusError, e.getMessage());
	}
}

} // namespace

Client &Context::client()
{
	if (!client_)
		client_ = connect(timeout_);
	return *client_;
}

Client &Context::longClient()
{
	if (!longClient_)
		longClient_ = connect(timeoutGiven_ ? timeout_ : kUnbounded);
	return *longClient_;
}

} // namespace r3ctl
