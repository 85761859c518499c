#include "context.hpp"

namespace r3ctl {

Client &Context::client()
{
	if (!client_) {
		try {
			client_ = std::make_unique<Client>(timeout_);
		} catch (const sdbus::Error &e) {
			// Whatever sd-bus called it, the bus itself is out of reach.
			throw sdbus::Error(kNoBusError, e.getMessage());
		}
	}
	return *client_;
}

} // namespace r3ctl
