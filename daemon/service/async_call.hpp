#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <sdbus-c++/IObject.h>
#include <sdbus-c++/MethodResult.h>

#include <r3d/log.hpp>

#include "errors.hpp"
#include "service/dbus_errors.hpp"
#include "service/reply_scope.hpp"
#include "service/service_state.hpp"
#include "work_queue.hpp"

namespace r3mapd::service {

/// Sends an error reply. Never throws: the bus may be gone, and then the caller sees the
/// connection drop instead.
template <class... Out>
void replyError(const sdbus::Result<Out...> &reply, const sdbus::Error &error) noexcept
{
	try {
		reply.returnError(error);
	} catch (const std::exception &e) {
		r3d::log::get("dbus")->error("cannot reply: {}", e.what());
	}
}

/// Completes an asynchronous method call with what `work` returned: a ResultMsg<T> whose
/// value is the single out argument (ResultMsg<void> for none). Never throws.
template <class... Out, class Work>
void complete(const sdbus::Result<Out...> &reply, Work &work) noexcept
{
	// Objects the work removes from the bus go after the reply (see ReplyScope).
	ReplyScope scope;
	try {
		auto result = work();
		if (!result)
			replyError(reply, toDbusError(result.error()));
		else if constexpr (sizeof...(Out) == 0)
			reply.returnResults();
		else
			reply.returnResults(*result);
	} catch (const std::exception &e) {
		replyError(reply, sdbus::Error(std::string(kErrorPrefix) + errorName(Errc::Failed), e.what()));
	}
}

/// Admits a mutating call on the bus thread (see ServiceState::admit) and returns the
/// caller, or replies with the error and returns nothing.
template <class... Out>
std::optional<Caller> admit(ServiceState &state, const sdbus::IObject &object, const sdbus::Result<Out...> &reply,
			    std::string_view action)
{
	auto admitted = state.admit(object, action);
	if (!admitted) {
		replyError(reply, toDbusError(admitted.error()));
		return std::nullopt;
	}
	return std::move(*admitted);
}

/// Runs admitted, blocking work on a worker, which sends the reply.
template <class... Out, class Work>
void runAsync(ServiceState &state, sdbus::Result<Out...> &&result, Work work)
{
	// std::function wants a copyable callable; sdbus::Result is move-only.
	auto reply = std::make_shared<sdbus::Result<Out...>>(std::move(result));
	auto job = std::make_shared<Work>(std::move(work));
	if (!state.context.work.post([reply, job] { complete(*reply, *job); }))
		replyError(*reply, toDbusError({ make_error_code(Errc::ShuttingDown),
						 "r3mapd is shutting down and accepts no new calls" }));
}

} // namespace r3mapd::service
