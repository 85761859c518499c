#pragma once

#include <memory>
#include <vector>

namespace r3mapd::service {

/// While a method call's work runs, objects it removes from the bus (Cancel, Unmount, Stop
/// on the object itself) are kept until the scope ends, after the reply was sent: sd-bus
/// builds the reply from the call, which points into the method's vtable, and the vtable
/// goes with the object. Destroyed any earlier, the reply can be refused (ENOMSG, a
/// signature compared against freed memory). One scope per thread at a time, innermost wins.
class ReplyScope
{
public:
	ReplyScope();
	/// Destroys what was kept, in the order it was kept.
	~ReplyScope();
	ReplyScope(const ReplyScope &) = delete;
	ReplyScope &operator=(const ReplyScope &) = delete;

	/// Keeps `object` until the innermost scope of this thread ends; without one it is
	/// released at once.
	static void keep(std::shared_ptr<void> object);

private:
	std::vector<std::shared_ptr<void>> kept_;
	ReplyScope *outer_;
};

} // namespace r3mapd::service
