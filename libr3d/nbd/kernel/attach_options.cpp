#include "nbd/kernel/attach_options.hpp"

namespace r3d::nbd::kernel {

const char *toString(AttachMethod method)
{
	switch (method) {
	case AttachMethod::Auto:
		return "auto";
	case AttachMethod::Netlink:
		return "netlink";
	case AttachMethod::Ioctl:
		return "ioctl";
	}
	return "?";
}

const char *toString(ReadyMethod method)
{
	switch (method) {
	case ReadyMethod::Sysfs:
		return "sysfs";
	case ReadyMethod::Udev:
		return "udev";
	}
	return "?";
}

std::optional<AttachMethod> parseAttachMethod(const std::string &text)
{
	for (auto m : { AttachMethod::Auto, AttachMethod::Netlink, AttachMethod::Ioctl })
		if (text == toString(m))
			return m;
	return std::nullopt;
}

std::optional<ReadyMethod> parseReadyMethod(const std::string &text)
{
	for (auto m : { ReadyMethod::Sysfs, ReadyMethod::Udev })
		if (text == toString(m))
			return m;
	return std::nullopt;
}

} // namespace r3d::nbd::kernel
