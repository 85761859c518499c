#include "unmount_on_exit.hpp"

#include <cstdio>
#include <exception>

#include <sdbus-c++/Error.h>

#include "client.hpp"
#include "exit_codes.hpp"

namespace r3ctl {

UnmountOnExit::UnmountOnExit(std::function<void()> unmount, std::string what, bool armed)
	: unmount_(std::move(unmount)), what_(std::move(what)), armed_(armed)
{
}

UnmountOnExit::~UnmountOnExit()
{
	(void)unmount();
}

int UnmountOnExit::finish(int status)
{
	int failed = unmount();
	return status == kExitOk ? failed : status;
}

int UnmountOnExit::unmount() noexcept
{
	if (!armed_)
		return kExitOk;
	armed_ = false;
	try {
		unmount_();
		return kExitOk;
	} catch (const sdbus::Error &e) {
		Failure f = describe(e);
		std::fprintf(stderr, "r3ctl: --rm: cannot unmount %s: %s\n", what_.c_str(), f.message.c_str());
		return f.exitCode;
	} catch (const std::exception &e) {
		std::fprintf(stderr, "r3ctl: --rm: cannot unmount %s: %s\n", what_.c_str(), e.what());
		return kExitFailed;
	}
}

} // namespace r3ctl
