#include "notify.hpp"

#include <cstring>

#include <systemd/sd-daemon.h>

#include <r3d/log.hpp>

namespace r3mapd::notify {

namespace {

void send(const std::string &message)
{
	int r = ::sd_notify(0, message.c_str());
	if (r < 0)
		r3d::log::get("daemon")->warn("sd_notify({}) failed: {}", message, std::strerror(-r));
}

} // namespace

void ready()
{
	send("READY=1");
}

void stopping()
{
	send("STOPPING=1");
}

void status(const std::string &text)
{
	send("STATUS=" + text);
}

void watchdog()
{
	send("WATCHDOG=1");
}

std::optional<std::chrono::microseconds> watchdogInterval()
{
	uint64_t usec = 0;
	if (::sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return std::nullopt;
	return std::chrono::microseconds(usec);
}

} // namespace r3mapd::notify
