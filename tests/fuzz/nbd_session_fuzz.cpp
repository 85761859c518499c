// libFuzzer target: arbitrary bytes from a client into a real Session over a socketpair,
// covering option haggling (first byte even) or the kernel's transmission-only mode (odd),
// there on the inline path (bit 1 clear) or the worker pool (bit 1 set).

#include <cstddef>
#include <cstdint>
#include <thread>

#include <sys/socket.h>
#include <unistd.h>

#include <r3d/log.hpp>

#include "backends/memory_backend.hpp"
#include "fault_read_writer_at.hpp"
#include "nbd/server.hpp"
#include "range_meta_source.hpp"

using namespace r3d;

namespace {

nbd::Server &server()
{
	static nbd::Server *s = [] {
		log::setLevel("off");
		nbd::ServerOptions o;
		o.maxPayload = 64 * 1024;
		o.workerThreads = 2;
		o.handshakeTimeout = std::chrono::milliseconds(2000);
		auto *srv = new nbd::Server(o);
		srv->addExport({ "", "fuzz", std::shared_ptr<ReadWriterAt>(std::move(*backends::MemoryBackend::create(1 << 20))),
				 false });
		srv->addExport({ "ro", "", std::shared_ptr<ReadWriterAt>(std::move(*backends::MemoryBackend::create(8192))),
				 true });
		// Meta contexts beyond base:allocation, inline ("meta") and on the worker pool ("slow").
		auto source = std::make_shared<r3test::RangeMetaSource>();
		source->add("x-r3map:present", { { 0, 65536 }, { 200000, 1 }, { 524288, 524288 } });
		source->add("x-r3map:dirty", { { 4096, 4096 } });
		nbd::Export meta{ "meta", "", std::shared_ptr<ReadWriterAt>(std::move(*backends::MemoryBackend::create(1 << 20))),
				  false };
		meta.meta = source;
		srv->addExport(std::move(meta));
		// Served on the worker pool like a backend that may block, to fuzz the concurrent path.
		auto slow = std::make_shared<r3test::FaultReadWriterAt>(
			std::shared_ptr<ReadWriterAt>(std::move(*backends::MemoryBackend::create(1 << 20))));
		slow->blocking();
		nbd::Export slowExport{ "slow", "", slow, false };
		slowExport.meta = source;
		srv->addExport(std::move(slowExport));
		return srv;
	}();
	return *s;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	int fds[2];
	if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
		return 0;
	UniqueFd client(fds[0]);
	bool transmissionOnly = data[0] & 1;
	std::thread writer([&] {
		size_t done = 1;
		while (done < size) {
			ssize_t n = ::send(client.get(), data + done, size - done, MSG_NOSIGNAL);
			if (n <= 0)
				break;
			done += static_cast<size_t>(n);
		}
		::shutdown(client.get(), SHUT_WR);
	});
	std::thread drainer([&] {
		char buf[65536];
		while (::recv(client.get(), buf, sizeof(buf), 0) > 0) {
		}
	});
	if (transmissionOnly)
		(void)server().serveTransmission(UniqueFd(fds[1]), (data[0] & 2) ? "slow" : "");
	else
		(void)server().serve(UniqueFd(fds[1]));
	writer.join();
	::shutdown(client.get(), SHUT_RDWR);
	drainer.join();
	return 0;
}
