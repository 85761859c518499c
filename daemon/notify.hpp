#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace r3mapd::notify {

// sd_notify(3) messages to the service manager; no-ops without NOTIFY_SOCKET.

void ready();
void stopping();
void status(const std::string &text);
void watchdog();

/// WatchdogSec of the unit when the watchdog is enabled for this process.
std::optional<std::chrono::microseconds> watchdogInterval();

} // namespace r3mapd::notify
