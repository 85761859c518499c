#pragma once

// Result<T>: shaped like std::expected<T, std::error_code> (C++23), which gcc 12 lacks.
// Errors in the data path are errno values in std::system_category so they survive
// end to end, e.g. a backend EIO becomes an NBD EIO reply.

#include <cerrno>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace r3d {

template <class E = std::error_code>
class Unexpected
{
public:
	explicit Unexpected(E e) : error_(std::move(e)) {}
	const E &error() const & { return error_; }
	E &&error() && { return std::move(error_); }

private:
	E error_;
};

inline std::error_code errnoCode(int errnum)
{
	return { errnum, std::system_category() };
}

/// The errno of the last failed libc call as an error code.
inline std::error_code lastErrno()
{
	return errnoCode(errno);
}

inline Unexpected<> unexpected(std::error_code ec)
{
	return Unexpected<>(ec);
}

inline Unexpected<> unexpected(int errnum)
{
	return Unexpected<>(errnoCode(errnum));
}

template <class E>
Unexpected<E> unexpectedOf(E e)
{
	return Unexpected<E>(std::move(e));
}

template <class T, class E = std::error_code>
class [[nodiscard]] Result
{
public:
	using value_type = T;
	using error_type = E;

	Result() requires std::is_default_constructible_v<T> : v_(std::in_place_index<0>) {}
	Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
	template <class U>
	requires(std::is_constructible_v<T, U &&> && !std::is_same_v<std::remove_cvref_t<U>, Result>
		 && !std::is_same_v<std::remove_cvref_t<U>, Unexpected<E>>)
	Result(U &&value) : v_(std::in_place_index<0>, std::forward<U>(value)) {}
	Result(Unexpected<E> u) : v_(std::in_place_index<1>, std::move(u).error()) {}

	bool has_value() const { return v_.index() == 0; }
	explicit operator bool() const { return has_value(); }

	T &value() & { return std::get<0>(v_); }
	const T &value() const & { return std::get<0>(v_); }
	T &&value() && { return std::get<0>(std::move(v_)); }
	T &operator*() & { return value(); }
	const T &operator*() const & { return value(); }
	T &&operator*() && { return std::move(*this).value(); }
	T *operator->() { return &value(); }
	const T *operator->() const { return &value(); }

	const E &error() const { return std::get<1>(v_); }

	template <class U>
	T value_or(U &&fallback) const &
	{
		return has_value() ? value() : static_cast<T>(std::forward<U>(fallback));
	}

private:
	std::variant<T, E> v_;
};

template <class E>
class [[nodiscard]] Result<void, E>
{
public:
	using value_type = void;
	using error_type = E;

	Result() = default;
	Result(Unexpected<E> u) : error_(std::move(u).error()), ok_(false) {}

	bool has_value() const { return ok_; }
	explicit operator bool() const { return ok_; }
	void value() const {}
	const E &error() const { return error_; }

private:
	E error_{};
	bool ok_ = true;
};

/// An error with a human readable message, for configuration and URI parsing where
/// "EINVAL" alone would not tell the user what to fix.
struct Error {
	std::error_code code;
	std::string message;
};

template <class T>
using ResultMsg = Result<T, Error>;

inline Unexpected<Error> fail(std::error_code code, std::string message)
{
	return Unexpected<Error>(Error{ code, std::move(message) });
}

inline Unexpected<Error> fail(int errnum, std::string message)
{
	return fail(errnoCode(errnum), std::move(message));
}

} // namespace r3d

/// Propagate the error of a Result-returning expression out of the current function.
#define R3D_TRY(expr)                                              \
	do {                                                       \
		auto r3dTryResult_ = (expr);                       \
		if (!r3dTryResult_)                                \
			return ::r3d::unexpected(r3dTryResult_.error()); \
	} while (0)
