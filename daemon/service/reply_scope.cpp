#include "service/reply_scope.hpp"

namespace r3mapd::service {

namespace {

thread_local ReplyScope *innermost = nullptr;

} // namespace

ReplyScope::ReplyScope() : outer_(innermost)
{
	innermost = this;
}

ReplyScope::~ReplyScope()
{
	innermost = outer_;
	for (auto &object : kept_)
		object.reset();
}

void ReplyScope::keep(std::shared_ptr<void> object)
{
	if (innermost)
		innermost->kept_.push_back(std::move(object));
}

} // namespace r3mapd::service
