#pragma once

#include <map>
#include <string>
#include <vector>

#include <sdbus-c++/Types.h>

#include <r3d/result.hpp>

#include "args.hpp"

namespace r3ctl {

// --managed and the managed options of mount and export: one flag per key of
// r3d::mount::managedOptionKeys() (--cache, --pull-workers, ...; --discard-local takes no
// value), checked with setManagedOption(), the parser r3mapd and r3serve use, and sent as
// text under the same keys.

/// The flags, to add to a command's Args options (without chunk-size: the command has it).
std::vector<Args::Option> managedFlags();

/// With --managed: options["managed"] = true and every managed flag given, plus
/// --chunk-size as chunk-size. A bad value, or a managed flag without --managed, fails
/// with a message for the usage.
r3d::ResultMsg<bool> addManagedOptions(const Args &args, std::map<std::string, sdbus::Variant> &options);

} // namespace r3ctl
