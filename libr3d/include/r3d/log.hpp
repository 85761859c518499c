#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace r3d::log {

/// The logger of one component ("nbd", "backend", "kernel", ...), created on first use.
/// All loggers share one stderr sink and the global level.
std::shared_ptr<spdlog::logger> get(const std::string &component);

/// Set the level of every logger, present and future ("trace" ... "off").
/// Returns false for an unknown level name.
bool setLevel(const std::string &level);

/// Configure the output format once per process: under journald (JOURNAL_STREAM set) lines
/// carry a <N> syslog priority prefix and no timestamp.
void setup();

} // namespace r3d::log
