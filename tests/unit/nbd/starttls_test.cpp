// NBD_OPT_STARTTLS and the three TLS policies, on the wire: what each option gets before
// TLS, and a PSK session (OpenSSL on both ends) after which nothing negotiated in clear
// is kept.

#include "nbd/server.hpp"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ssl/context.hpp>
#include <catch2/catch.hpp>
#include <openssl/ssl.h>

#include "backends/memory_backend.hpp"
#include "nbd/protocol.hpp"
#include "nbd/wire.hpp"
#include "raw_nbd_client.hpp"
#include "test_support.hpp"
#include "transport/tls.hpp"

using namespace r3d;
using namespace r3d::nbd;

namespace {

constexpr const char *kIdentity = "alice";
constexpr unsigned char kKey[] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
				   0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };

struct Fixture {
	explicit Fixture(TlsPolicy policy)
	{
		std::ofstream(dir / "keys.psk") << "alice:0123456789abcdef0123456789abcdef\n";
		ServerOptions options;
		options.tls = policy;
		options.workerThreads = 2;
		if (policy != TlsPolicy::Off) {
			transport::TlsServerConfig config;
			config.pskFile = dir / "keys.psk";
			config.allowTls12 = true;
			options.tlsContext = transport::makeServerTlsContext(config).value();
		}
		server.emplace(options);
		server->addExport({ "disk", "", std::shared_ptr<ReadWriterAt>(backends::MemoryBackend::create(1 << 20).value()),
				    false, nullptr });
		int fds[2];
		REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
		serving = std::async(std::launch::async, [this, fd = UniqueFd(fds[1])]() mutable {
			return server->serve(std::move(fd)).has_value();
		});
		client.emplace(UniqueFd(fds[0]));
		client->greet();
	}
	~Fixture()
	{
		client.reset();
		server->shutdown();
		if (serving.valid())
			serving.wait();
	}

	r3test::TempDir dir;
	std::optional<Server> server;
	std::future<bool> serving;
	std::optional<r3test::RawNbdClient> client;
};

uint32_t rep(Rep r)
{
	return static_cast<uint32_t>(r);
}

std::string text(const std::vector<std::byte> &data)
{
	return { reinterpret_cast<const char *>(data.data()), data.size() };
}

std::vector<std::byte> goData(const std::string &name)
{
	std::vector<std::byte> data;
	wire::Writer(data).u32(static_cast<uint32_t>(name.size())).str(name).u16(0);
	return data;
}

unsigned int clientPsk(SSL *, const char *, char *identity, unsigned int maxIdentity, unsigned char *psk,
		       unsigned int maxPsk)
{
	std::snprintf(identity, maxIdentity, "%s", kIdentity);
	if (maxPsk < sizeof(kKey))
		return 0;
	std::memcpy(psk, kKey, sizeof(kKey));
	return sizeof(kKey);
}

// The client end of a TLS session on `fd`, blocking, with our PSK.
struct TlsClient {
	explicit TlsClient(int fd) : ctx(SSL_CTX_new(TLS_client_method()))
	{
		SSL_CTX_set_psk_client_callback(ctx, clientPsk);
		ssl = SSL_new(ctx);
		SSL_set_fd(ssl, fd);
	}
	~TlsClient()
	{
		SSL_free(ssl);
		SSL_CTX_free(ctx);
	}
	void write(const std::vector<std::byte> &bytes) { REQUIRE(SSL_write(ssl, bytes.data(), static_cast<int>(bytes.size())) > 0); }
	std::vector<std::byte> read(size_t n)
	{
		std::vector<std::byte> out(n);
		size_t done = 0;
		while (done < n) {
			int got = SSL_read(ssl, out.data() + done, static_cast<int>(n - done));
			REQUIRE(got > 0);
			done += static_cast<size_t>(got);
		}
		return out;
	}
	void option(Opt opt, const std::vector<std::byte> &data = {})
	{
		std::vector<std::byte> msg;
		wire::Writer(msg).u64(kIHaveOpt).u32(static_cast<uint32_t>(opt)).u32(static_cast<uint32_t>(data.size()));
		msg.insert(msg.end(), data.begin(), data.end());
		write(msg);
	}
	r3test::RawNbdClient::OptReply optReply()
	{
		auto head = read(20);
		REQUIRE(wire::get64(head.data()) == kOptReplyMagic);
		r3test::RawNbdClient::OptReply r;
		r.type = wire::get32(head.data() + 12);
		r.data = read(wire::get32(head.data() + 16));
		return r;
	}

	SSL_CTX *ctx;
	SSL *ssl = nullptr;
};

} // namespace

TEST_CASE("tls=require: every option but STARTTLS and ABORT waits for TLS", "[nbd][tls]")
{
	Fixture f(TlsPolicy::Require);
	for (Opt opt : { Opt::List, Opt::StructuredReply, Opt::Info, Opt::Go, Opt::ExtendedHeaders }) {
		f.client->option(opt, opt == Opt::Info || opt == Opt::Go ? goData("disk") : std::vector<std::byte>{});
		auto r = f.client->optReply();
		CHECK(r.type == rep(Rep::ErrTlsReqd));
		CHECK(text(r.data).find("requires TLS") != std::string::npos);
	}
	// EXPORT_NAME has no error reply: the server closes.
	f.client->option(Opt::ExportName, { std::byte{ 'd' }, std::byte{ 'i' }, std::byte{ 's' }, std::byte{ 'k' } });
	CHECK(f.serving.get());
}

TEST_CASE("tls=off: STARTTLS is refused by policy and clear text goes on", "[nbd][tls]")
{
	Fixture f(TlsPolicy::Off);
	f.client->option(Opt::StartTls);
	auto r = f.client->optReply();
	CHECK(r.type == rep(Rep::ErrPolicy));
	CHECK(text(r.data) == "TLS is off on this server");
	CHECK(f.client->go("disk") == 1 << 20);
}

TEST_CASE("tls=on: clear text is served; STARTTLS with data is invalid", "[nbd][tls]")
{
	Fixture f(TlsPolicy::On);
	f.client->option(Opt::StartTls, { std::byte{ 1 } });
	CHECK(f.client->optReply().type == rep(Rep::ErrInvalid));
	CHECK(f.client->go("disk") == 1 << 20);
}

TEST_CASE("STARTTLS with PSK: options then go over TLS, clear-text state is dropped", "[nbd][tls]")
{
	Fixture f(TlsPolicy::On);
	f.client->option(Opt::StructuredReply);
	REQUIRE(f.client->optReply().type == rep(Rep::Ack));
	f.client->option(Opt::StartTls);
	REQUIRE(f.client->optReply().type == rep(Rep::Ack));
	// TLS runs on the raw client's socket; its reader holds nothing past the ACK.
	int fd = ::dup(f.client->fd());
	TlsClient tls(fd);
	REQUIRE(SSL_connect(tls.ssl) == 1);
	tls.option(Opt::StartTls);
	CHECK(tls.optReply().type == rep(Rep::ErrInvalid)); // TLS is on already
	// STRUCTURED_REPLY from before TLS is gone: META_CONTEXT wants it negotiated again.
	std::vector<std::byte> meta;
	wire::Writer(meta).u32(4).str("disk").u32(0);
	tls.option(Opt::ListMetaContext, meta);
	CHECK(tls.optReply().type == rep(Rep::ErrInvalid));
	tls.option(Opt::Go, goData("disk"));
	uint64_t size = 0;
	for (;;) {
		auto r = tls.optReply();
		if (r.type == rep(Rep::Ack))
			break;
		REQUIRE(r.type == rep(Rep::Info));
		if (wire::get16(r.data.data()) == static_cast<uint16_t>(Info::Export)) {
			size = wire::get64(r.data.data() + 2);
			CHECK((wire::get16(r.data.data() + 10) & kFlagSendDf) == 0); // no structured replies
		}
	}
	CHECK(size == 1 << 20);
	// A request and its reply through the relay.
	std::vector<std::byte> req;
	wire::Writer(req).u32(kRequestMagic).u16(0).u16(static_cast<uint16_t>(Cmd::Read)).u64(7).u64(0).u32(4096);
	tls.write(req);
	auto head = tls.read(16);
	CHECK(wire::get32(head.data()) == kSimpleReplyMagic);
	CHECK(wire::get32(head.data() + 4) == 0);
	CHECK(wire::get64(head.data() + 8) == 7);
	CHECK(r3test::allZero(tls.read(4096)));
	SSL_shutdown(tls.ssl);
	::close(fd);
}
