#include "unmount_on_exit.hpp"

#include <stdexcept>

#include <catch2/catch.hpp>
#include <sdbus-c++/Error.h>

#include "exit_codes.hpp"

using r3ctl::UnmountOnExit;

namespace {

struct Calls {
	int unmounts = 0;
	bool fail = false;

	std::function<void()> unmount()
	{
		return [this] {
			++unmounts;
			if (fail)
				throw sdbus::Error("org.r3map.Error.Busy", "mount 1 is unmounting");
		};
	}
};

} // namespace

TEST_CASE("--rm unmounts once after the program, and keeps the program's status", "[r3ctl]")
{
	Calls calls;
	{
		UnmountOnExit rm(calls.unmount(), "mount 1 (/dev/nbd0)", true);
		CHECK(rm.finish(3) == 3);
		CHECK(calls.unmounts == 1);
	}
	CHECK(calls.unmounts == 1);
}

TEST_CASE("--rm unmounts when the run is cut short by an exception (OpenFd refused)", "[r3ctl]")
{
	Calls calls;
	try {
		UnmountOnExit rm(calls.unmount(), "mount 1 (/dev/nbd0)", true);
		throw sdbus::Error("org.r3map.Error.NotPermitted", "OpenFd refused");
	} catch (const sdbus::Error &) {
	}
	CHECK(calls.unmounts == 1);
}

TEST_CASE("a failed unmount is reported without hiding the program's failure", "[r3ctl]")
{
	Calls calls;
	calls.fail = true;
	UnmountOnExit failedProgram(calls.unmount(), "mount 1 (/dev/nbd0)", true);
	CHECK(failedProgram.finish(7) == 7);
	// A program that succeeded: then the unmount's failure is the status.
	UnmountOnExit okProgram(calls.unmount(), "mount 2 (/dev/nbd1)", true);
	CHECK(okProgram.finish(r3ctl::kExitOk) == r3ctl::kExitFailed);
	CHECK(calls.unmounts == 2);
}

TEST_CASE("without --rm nothing is unmounted", "[r3ctl]")
{
	Calls calls;
	{
		UnmountOnExit rm(calls.unmount(), "mount 1 (/dev/nbd0)", false);
		CHECK(rm.finish(0) == 0);
	}
	CHECK(calls.unmounts == 0);
}
