#include "errors.hpp"

#include <cerrno>

namespace r3mapd {

namespace {

struct Entry {
	Errc errc;
	const char *name;
};

constexpr Entry kNames[] = {
	{ Errc::InvalidArgument, "InvalidArgument" },
	{ Errc::BadUri, "BadUri" },
	{ Errc::SchemeNotAllowed, "SchemeNotAllowed" },
	{ Errc::BackendFailed, "BackendFailed" },
	{ Errc::NoFreeDevice, "NoFreeDevice" },
	{ Errc::NotSupported, "NotSupported" },
	{ Errc::AttachFailed, "AttachFailed" },
	{ Errc::NotPermitted, "NotPermitted" },
	{ Errc::NotFound, "NotFound" },
	{ Errc::Busy, "Busy" },
	{ Errc::ReadOnly, "ReadOnly" },
	{ Errc::AddressInUse, "AddressInUse" },
	{ Errc::ShuttingDown, "ShuttingDown" },
	{ Errc::Failed, "Failed" },
};

class Category final : public std::error_category
{
public:
	const char *name() const noexcept override { return "r3mapd"; }
	std::string message(int value) const override { return errorName(static_cast<Errc>(value)); }
};

} // namespace

const std::error_category &errorCategory()
{
	static const Category category;
	return category;
}

const char *errorName(Errc e)
{
	for (const auto &entry : kNames)
		if (entry.errc == e)
			return entry.name;
	return "Failed";
}

Errc classify(const std::error_code &ec)
{
	if (ec.category() == errorCategory())
		return static_cast<Errc>(ec.value());
	if (ec.category() != std::system_category() && ec.category() != std::generic_category())
		return Errc::Failed;
	switch (ec.value()) {
	case EINVAL:
	case ERANGE:
		return Errc::InvalidArgument;
	case EPERM:
	case EACCES:
		return Errc::NotPermitted;
	case ENOENT:
		return Errc::NotFound;
	case EBUSY:
		return Errc::Busy;
	case EROFS:
		return Errc::ReadOnly;
	case EADDRINUSE:
		return Errc::AddressInUse;
	case ENOTSUP:
	case ENOSYS:
	case ENODEV:
		return Errc::NotSupported;
	case EIO:
		return Errc::BackendFailed;
	default:
		return Errc::Failed;
	}
}

} // namespace r3mapd
