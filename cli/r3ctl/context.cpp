#include "context.hpp"

namespace r3ctl {

Client &Context::client()
{
	if (!client_)
		client_ = std::make_unique<Client>(timeout_);
	return *client_;
}

} // namespace r3ctl
