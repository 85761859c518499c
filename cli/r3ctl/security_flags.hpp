#pragma once

#include <map>
#include <string>
#include <vector>

#include <sdbus-c++/Types.h>

#include "args.hpp"

namespace r3ctl {

// --tls-cert, --tls-key, --tls-ca, --token-file (and, for NBD exports, --tls and
// --tls-psk) of export and migrate seed, sent under r3mapd's option names (tls_cert, ...).
// The daemon checks them: it reads the files as root, so it takes them from root only.

/// The flags, to add to a command's Args options.
std::vector<Args::Option> securityFlags();

/// Every security flag given, as a D-Bus option.
void addSecurityOptions(const Args &args, std::map<std::string, sdbus::Variant> &options);

} // namespace r3ctl
