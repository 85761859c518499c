#pragma once

#include "context.hpp"

namespace r3ctl {

// One file per command.
extern const Command kMountCommand;
extern const Command kOpenCommand;
extern const Command kUnmountCommand;
extern const Command kLsCommand;
extern const Command kStatusCommand;
extern const Command kSyncCommand;
extern const Command kExportCommand;
extern const Command kExportsCommand;
extern const Command kUnexportCommand;
extern const Command kLogLevelCommand;
extern const Command kVersionCommand;
extern const Command kMapCommand;
extern const Command kMigrateCommand;

/// The r3ctl program: global options, command dispatch, error reporting.
int run(int argc, char **argv);

} // namespace r3ctl
