#include "nbd/listener.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <sys/socket.h>
#include <sys/un.h>

#include <catch2/catch.hpp>

#include "backends/memory_backend.hpp"
#include "nbd/server.hpp"
#include "test_support.hpp"

using namespace r3d;
using namespace r3d::nbd;

namespace {

std::shared_ptr<ReadWriterAt> memory(uint64_t size)
{
	return std::shared_ptr<ReadWriterAt>(std::move(backends::MemoryBackend::create(size).value()));
}

// A socket file with nobody listening on it, as a crashed server leaves behind.
void leaveStaleSocket(const std::string &path)
{
	UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	sockaddr_un addr{};
	addr.sun_family = AF_UNIX;
	std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
	REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) == 0);
}

} // namespace

TEST_CASE("a UNIX listener never deletes a file that is not a socket", "[listener]")
{
	r3test::TempDir tmp;
	auto path = tmp / "disk.img";
	std::ofstream(path) << "precious";
	Server server;
	server.addExport({ "", "", memory(1 << 20), false });
	auto l = Listener::listenUnix(server, path);
	REQUIRE_FALSE(l);
	CHECK(l.error().code.value() == EEXIST);
	CHECK_THAT(l.error().message, Catch::Contains("not a socket"));
	std::ifstream in(path);
	std::string content;
	in >> content;
	CHECK(content == "precious");
}

TEST_CASE("a stale socket is replaced, a live one is not stolen", "[listener]")
{
	r3test::TempDir tmp;
	auto path = tmp / "s.sock";
	leaveStaleSocket(path);
	Server server;
	server.addExport({ "", "", memory(1 << 20), false });
	auto first = Listener::listenUnix(server, path);
	REQUIRE(first);
	std::thread accepting([&] { (*first)->run(); });
	auto second = Listener::listenUnix(server, path);
	REQUIRE_FALSE(second);
	CHECK(second.error().code.value() == EADDRINUSE);
	(*first)->stop();
	accepting.join();
	CHECK(std::filesystem::exists(path));
	first->reset();
	CHECK_FALSE(std::filesystem::exists(path)); // the listener removes its own socket
}

TEST_CASE("TCP addresses are parsed with clear errors and port 0 is resolved", "[listener]")
{
	Server server;
	server.addExport({ "", "", memory(1 << 20), false });
	CHECK_THAT(Listener::listenTcp(server, "localhost").error().message, Catch::Contains("expected HOST:PORT"));
	CHECK_THAT(Listener::listenTcp(server, "127.0.0.1:").error().message, Catch::Contains("port is missing"));
	CHECK_THAT(Listener::listenTcp(server, "[::1:80").error().message, Catch::Contains("[ADDRESS]:PORT"));
	auto l = Listener::listenTcp(server, "127.0.0.1:0");
	REQUIRE(l);
	CHECK((*l)->address().starts_with("127.0.0.1:"));
	CHECK((*l)->address() != "127.0.0.1:0");
}
