#pragma once

namespace r3ctl {

// r3ctl's exit codes, documented in r3ctl(1). A command run with --fd exits with that
// command's status instead (128+N when killed by signal N).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       ///< the daemon refused or failed the operation
inline constexpr int kExitUsage = 2;        ///< bad command line
inline constexpr int kExitUnreachable = 3;  ///< no system bus, or r3mapd is not running
inline constexpr int kExitDenied = 4;       ///< not root and not in the access group
inline constexpr int kExitNotFound = 5;     ///< no such mount or export

} // namespace r3ctl
