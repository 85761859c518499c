#include "transport/drain.hpp"

#include <utility>

namespace r3d::transport {

Drain::Token::Token(State &state) : state_(&state)
{
	std::lock_guard lock(state_->mutex);
	state_->holders++;
}

Drain::Token::Token(const Token &other) : state_(other.state_)
{
	if (!state_)
		return;
	std::lock_guard lock(state_->mutex);
	state_->holders++;
}

Drain::Token::Token(Token &&other) noexcept : state_(std::exchange(other.state_, nullptr)) {}

Drain::Token &Drain::Token::operator=(Token other) noexcept
{
	std::swap(state_, other.state_);
	return *this;
}

Drain::Token::~Token()
{
	if (!state_)
		return;
	// Notify under the lock: once holders reaches 0 the waiter may destroy the state.
	std::lock_guard lock(state_->mutex);
	if (--state_->holders == 0)
		state_->idle.notify_all();
}

void Drain::wait()
{
	std::unique_lock lock(state_.mutex);
	state_.idle.wait(lock, [&] { return state_.holders == 0; });
}

} // namespace r3d::transport
