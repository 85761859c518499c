#include "service/dbus_errors.hpp"

#include "errors.hpp"

namespace r3mapd::service {

sdbus::Error toDbusError(const r3d::Error &error)
{
	return sdbus::Error(std::string(kErrorPrefix) + errorName(classify(error.code)), error.message);
}

} // namespace r3mapd::service
