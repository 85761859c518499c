#pragma once

// What still runs on behalf of an object whose io_context it does not own: coroutines,
// posted handlers, jobs on the blocking pool. Each holds a Token; the owner's stop() waits
// until every token is gone before the owner may be destroyed, since the Runtime's
// io_context outlives it and would otherwise run handlers into freed memory.

#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace r3d::transport {

class Drain
{
	struct State {
		std::mutex mutex;
		std::condition_variable idle;
		size_t holders = 0;
	};

public:
	/// Keeps the drain from completing while it exists; copies count too.
	class Token
	{
	public:
		Token() = default;
		explicit Token(State &state);
		Token(const Token &other);
		Token(Token &&other) noexcept;
		Token &operator=(Token other) noexcept;
		~Token();

	private:
		State *state_ = nullptr;
	};

	Drain() = default;
	Drain(const Drain &) = delete;
	Drain &operator=(const Drain &) = delete;

	Token hold() { return Token(state_); }
	/// Blocks until no token is left. Never call it from a thread the tokens need to finish
	/// (the io thread): it would wait for itself.
	void wait();

private:
	State state_;
};

} // namespace r3d::transport
