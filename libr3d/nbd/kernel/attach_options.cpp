#include "nbd/kernel/attach_options.hpp"

#include <unistd.h>

#include <fmt/format.h>

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

ResultMsg<void> checkBlockSize(uint32_t bytes)
{
	long page = ::sysconf(_SC_PAGESIZE);
	if (bytes < 512 || bytes > static_cast<uint64_t>(page) || (bytes & (bytes - 1)) != 0)
		return fail(EINVAL, fmt::format("block size {} is not a power of two between 512 and {}", bytes, page));
	return {};
}

} // namespace r3d::nbd::kernel
