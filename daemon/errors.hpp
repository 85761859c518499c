#pragma once

#include <string>
#include <system_error>

#include <r3d/result.hpp>

namespace r3mapd {

/// The failures r3mapd reports; on D-Bus each becomes org.r3map.Error.<errorName()>.
enum class Errc {
	InvalidArgument = 1, ///< malformed option, wrong type, unknown key, size 0, bad flags
	BadUri,              ///< backend URI unparsable, unknown scheme or parameter
	SchemeNotAllowed,    ///< scheme disabled by allowed_schemes in the configuration
	BackendFailed,       ///< the backend could not be opened or failed I/O
	NoFreeDevice,        ///< every /dev/nbdN is in use
	NotSupported,        ///< the kernel or this build lacks what the call needs
	AttachFailed,        ///< the kernel refused the device or it never became ready
	NotPermitted,        ///< the caller is neither root nor in the access group
	NotFound,            ///< no such mount or export
	Busy,                ///< the object is attaching, unmounting or stopping
	ReadOnly,            ///< write access asked of a read-only mount
	AddressInUse,        ///< the listen address is taken
	ShuttingDown,        ///< the daemon is stopping and accepts no new work
	Failed,              ///< anything else; the message says what
};

const std::error_category &errorCategory();

inline std::error_code make_error_code(Errc e)
{
	return { static_cast<int>(e), errorCategory() };
}

/// "InvalidArgument", "BadUri", ...
const char *errorName(Errc e);

/// The Errc for any error code: ours pass through, errno values are classified
/// (EINVAL → InvalidArgument, EBUSY → Busy, EADDRINUSE → AddressInUse, ...).
Errc classify(const std::error_code &ec);

inline r3d::Unexpected<r3d::Error> fail(Errc e, std::string message)
{
	return r3d::fail(make_error_code(e), std::move(message));
}

/// The same message under another name, for failures whose errno alone would mislead
/// (a backend's ENOENT is BackendFailed, not NotFound).
inline r3d::Unexpected<r3d::Error> rename(Errc e, r3d::Error error)
{
	return fail(e, std::move(error.message));
}

/// A listen of the daemon's own failed. The caller was admitted: EACCES or ENOENT here are
/// the daemon's (a port below 1024, a socket directory), not a refusal of the caller or a
/// missing object, so only AddressInUse and InvalidArgument pass, the rest is Failed.
inline r3d::Unexpected<r3d::Error> failListen(r3d::Error error)
{
	Errc errc = classify(error.code);
	return fail(errc == Errc::AddressInUse || errc == Errc::InvalidArgument ? errc : Errc::Failed,
		    std::move(error.message));
}

} // namespace r3mapd

namespace std {
template <>
struct is_error_code_enum<r3mapd::Errc> : true_type {
};
} // namespace std
