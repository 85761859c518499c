#include "service/service_state.hpp"

#include <fmt/format.h>
#include <sdbus-c++/IObject.h>
#include <sdbus-c++/Message.h>

#include <r3d/log.hpp>

#include "errors.hpp"

namespace r3mapd::service {

namespace {

// Only the uid the bus daemon took from the sender's socket when it connected
// (SO_PEERCRED) is trusted. sd-bus fills what the bus does not report from /proc at call
// time (groups, with dbus-daemon): the sender could have changed those since, or its pid
// could belong to another process by now. The AccessPolicy looks groups up by uid.
r3d::ResultMsg<Caller> callerOf(const sdbus::Message &message)
{
	Caller c;
	try {
		c.busName = message.getSender();
		c.uid = message.getCredsUid();
	} catch (const sdbus::Error &e) {
		return fail(Errc::NotPermitted, fmt::format("cannot identify the caller: {}", e.getMessage()));
	}
	try {
		c.pid = message.getCredsPid();
	} catch (const sdbus::Error &e) {
		r3d::log::get("dbus")->debug("caller {} uid {}: no pid: {}", c.busName, c.uid, e.getMessage());
	}
	return c;
}

} // namespace

r3d::ResultMsg<Caller> ServiceState::admit(const sdbus::IObject &object, std::string_view action) const
{
	auto log = r3d::log::get("dbus");
	const sdbus::Message *message = object.getCurrentlyProcessedMessage();
	if (!message)
		return fail(Errc::Failed, "no message being processed");
	auto caller = callerOf(*message);
	if (!caller)
		return caller;
	if (!accepting.load())
		return fail(Errc::ShuttingDown, "r3mapd is shutting down and accepts no new calls");
	if (auto ok = context.access.check(*caller, action); !ok) {
		log->warn("{} refused for uid {} (pid {}, {})", action, caller->uid, caller->pid, caller->busName);
		return r3d::unexpectedOf(ok.error());
	}
	log->info("{} by uid {} (pid {}, {})", action, caller->uid, caller->pid, caller->busName);
	return caller;
}

} // namespace r3mapd::service
