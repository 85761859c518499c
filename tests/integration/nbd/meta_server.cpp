// Test-only NBD server (built, never installed) for meta_clients_test.sh: a memory backend
// with a RangeMetaSource, on a UNIX socket, until SIGTERM or SIGINT. It stands in for
// r3serve on a managed backend, which does not exist yet, so real clients (nbdinfo, nbdsh)
// can be checked against ranges known in advance.
//
//   nbd_meta_server SOCKET SIZE [CONTEXT=OFFSET+LENGTH[,OFFSET+LENGTH...] ...]
//   nbd_meta_server /tmp/s 16M x-r3map:present=0+64K,1M+512K x-r3map:dirty=
//
// Once it accepts connections it prints the socket path on standard output.

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>

#include <r3d/log.hpp>
#include <r3d/size.hpp>

#include "backends/memory_backend.hpp"
#include "nbd/listener.hpp"
#include "nbd/server.hpp"
#include "range_meta_source.hpp"

namespace {

int usage()
{
	std::fprintf(stderr, "usage: nbd_meta_server SOCKET SIZE [CONTEXT=OFFSET+LENGTH[,OFFSET+LENGTH...] ...]\n");
	return 2;
}

// "x-r3map:present=0+64K,1M+512K" into its name and ranges, each inside the export.
r3d::ResultMsg<std::pair<std::string, std::vector<r3test::RangeMetaSource::Range>>> parseContext(
	const std::string &arg, uint64_t size)
{
	size_t eq = arg.find('=');
	if (eq == std::string::npos || eq == 0)
		return r3d::fail(EINVAL, "'" + arg + "': expected CONTEXT=RANGES");
	std::vector<r3test::RangeMetaSource::Range> ranges;
	std::string rest = arg.substr(eq + 1);
	while (!rest.empty()) {
		size_t comma = rest.find(',');
		std::string item = rest.substr(0, comma);
		rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
		size_t plus = item.find('+');
		if (plus == std::string::npos)
			return r3d::fail(EINVAL, "'" + item + "': expected OFFSET+LENGTH");
		auto offset = r3d::parseSize(item.substr(0, plus));
		auto length = r3d::parseSize(item.substr(plus + 1));
		if (!offset || !length)
			return r3d::fail(EINVAL, "'" + item + "': " + (!offset ? offset : length).error().message);
		if (*length == 0 || *offset > size || *length > size - *offset)
			return r3d::fail(EINVAL, "'" + item + "': empty or outside the export");
		ranges.push_back({ *offset, *length });
	}
	return std::pair{ arg.substr(0, eq), ranges };
}

} // namespace

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	r3d::log::setup();
	auto size = r3d::parseSize(argv[2]);
	if (!size || *size == 0)
		return usage();
	auto source = std::make_shared<r3test::RangeMetaSource>();
	for (int i = 3; i < argc; ++i) {
		auto context = parseContext(argv[i], *size);
		if (!context) {
			std::fprintf(stderr, "nbd_meta_server: %s\n", context.error().message.c_str());
			return 2;
		}
		source->add(context->first, context->second);
	}
	auto backend = r3d::backends::MemoryBackend::create(*size);
	if (!backend) {
		std::fprintf(stderr, "nbd_meta_server: %s\n", backend.error().message.c_str());
		return 1;
	}

	// Blocked before any thread starts, so only sigwait() below takes them.
	sigset_t stopSignals;
	sigemptyset(&stopSignals);
	sigaddset(&stopSignals, SIGTERM);
	sigaddset(&stopSignals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);

	r3d::nbd::Server server;
	r3d::nbd::Export exp{ "", "meta context test export", std::shared_ptr<r3d::ReadWriterAt>(std::move(*backend)),
			      false };
	exp.meta = source;
	server.addExport(std::move(exp));
	auto listener = r3d::nbd::Listener::listenUnix(server, argv[1]);
	if (!listener) {
		std::fprintf(stderr, "nbd_meta_server: %s\n", listener.error().message.c_str());
		return 1;
	}
	std::thread acceptor([&] { (*listener)->run(); });
	std::printf("%s\n", (*listener)->address().c_str());
	std::fflush(stdout);

	int signal = 0;
	sigwait(&stopSignals, &signal);
	server.shutdown();
	(*listener)->stop();
	acceptor.join();
	return 0;
}
