#pragma once

// The app's side of a region served by r3mapd, once the uffd has been handed over: it keeps
// the app's copy of the uffd and the connection to r3mapd, and watches the connection.
//
// Why keep a copy: when the last fd of a userfaultfd closes, the kernel unregisters its
// ranges and wakes the waiting faults, which are then resolved like any anonymous memory:
// with zero pages. If the app let go of its copy, a kill -9 of r3mapd would turn every page
// not pulled yet into zeros. With the copy kept, the registration outlives r3mapd, and its
// faults would wait for ever, hence the watch: when the connection closes (r3mapd died, or
// the region was unmapped on D-Bus) this class becomes the handler. It wakes the whole
// range, so faults r3mapd had read but not answered come again, and answers every fault
// with UFFDIO_POISON (or SIGBUS to the faulting thread before kernel 6.6): SIGBUS, never
// zeros, never a hang. Events (REMOVE, UNMAP, REMAP) are read so the causing calls return.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>

#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

#include "uffd/userfault_fd.hpp"

namespace r3d::uffd {

class OrphanGuard
{
public:
	OrphanGuard(UserfaultFd uffd, UniqueFd connection, uintptr_t base, uint64_t size);
	/// stop().
	~OrphanGuard();
	OrphanGuard(const OrphanGuard &) = delete;
	OrphanGuard &operator=(const OrphanGuard &) = delete;

	int connection() const { return connection_.get(); }
	/// Held while a request and its reply are on the connection.
	std::mutex &requestMutex() { return requestMutex_; }
	/// True once the connection closed and this guard answers the faults.
	bool orphaned() const { return orphaned_.load(std::memory_order_acquire); }
	/// Ends the watch (and the fault answering); closes nothing.
	void stop();

private:
	void watch();
	void serveOrphaned();

	UserfaultFd uffd_;
	UniqueFd connection_;
	UniqueFd stop_; ///< eventfd
	uintptr_t base_;
	uint64_t size_;
	uint64_t page_;
	std::mutex requestMutex_;
	std::atomic<bool> orphaned_{ false };
	std::thread thread_;
};

} // namespace r3d::uffd
