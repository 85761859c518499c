#include "transport/tls.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <r3d/log.hpp>

#include "base/hex.hpp"

namespace r3d::transport {

namespace {

using Context = asio::ssl::context;

ResultMsg<void> readable(const char *what, const std::string &path)
{
	if (::access(path.c_str(), R_OK) != 0) {
		int err = errno;
		return fail(err, fmt::format("{} '{}': {}", what, path, std::strerror(err)));
	}
	return {};
}

std::string sslReason(const ErrorCode &ec)
{
	std::string text = ec.message();
	unsigned long queued = ERR_get_error();
	if (queued != 0) {
		char buf[256];
		ERR_error_string_n(queued, buf, sizeof(buf));
		text = buf;
	}
	ERR_clear_error();
	return text;
}

// The keys of a tls-psk file by identity, hung on the SSL_CTX for the callback.
struct PskTable {
	std::string file;
	std::map<std::string, std::vector<unsigned char>, std::less<>> keys;
};

// A context that owns its PSK table: the shared_ptr handed out aliases `ctx`.
struct PskContext {
	explicit PskContext(Context::method method) : ctx(method) {}
	Context ctx;
	PskTable table;
};

int pskIndex()
{
	static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
	return index;
}

ResultMsg<void> configure(Context &ctx, bool allowTls12)
{
	int min = allowTls12 ? TLS1_2_VERSION : TLS1_3_VERSION;
	if (SSL_CTX_set_min_proto_version(ctx.native_handle(), min) != 1)
		return fail(EPROTO, "TLS: this OpenSSL cannot restrict itself to TLS 1.2 and later");
	ctx.set_options(Context::default_workarounds | Context::no_compression);
	return {};
}

ResultMsg<std::shared_ptr<Context>> tls13Context(Context::method method)
{
	auto ctx = std::make_shared<Context>(method);
	auto ok = configure(*ctx, false);
	if (!ok)
		return unexpectedOf(ok.error());
	return ctx;
}

ResultMsg<void> loadPsk(PskTable &table, const std::string &path)
{
	auto ok = readable("tls-psk", path);
	if (!ok)
		return ok;
	std::ifstream in(path);
	std::string line;
	for (unsigned number = 1; std::getline(in, line); ++number) {
		if (!line.empty() && line.back() == '\r')
			line.pop_back();
		if (line.empty())
			continue;
		size_t colon = line.rfind(':');
		std::string hex = colon == std::string::npos ? "" : line.substr(colon + 1);
		std::vector<unsigned char> key;
		bool valid = colon != 0 && !hex.empty() && hex.size() % 2 == 0 && hex.size() / 2 <= PSK_MAX_PSK_LEN;
		for (size_t i = 0; valid && i < hex.size(); i += 2) {
			int hi = hexValue(hex[i]), lo = hexValue(hex[i + 1]);
			valid = hi >= 0 && lo >= 0;
			key.push_back(static_cast<unsigned char>(hi * 16 + lo));
		}
		if (!valid)
			return fail(EINVAL, fmt::format("tls-psk '{}' line {}: expected IDENTITY:HEXKEY (as psktool writes)",
							path, number));
		table.keys[line.substr(0, colon)] = std::move(key);
	}
	if (table.keys.empty())
		return fail(EINVAL, fmt::format("tls-psk '{}' holds no keys", path));
	table.file = path;
	return {};
}

// OpenSSL's PSK callback; in TLS 1.3 it stands for an external PSK with SHA-256, which is
// what GnuTLS clients (libnbd, qemu) offer.
unsigned int pskServerCallback(SSL *ssl, const char *identity, unsigned char *psk, unsigned int maxLength)
{
	auto *table = static_cast<const PskTable *>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), pskIndex()));
	if (!table || !identity)
		return 0;
	auto it = table->keys.find(std::string_view(identity));
	if (it == table->keys.end()) {
		log::get("tls")->warn("TLS-PSK: the client's identity '{}' is not in '{}'", identity, table->file);
		return 0;
	}
	if (it->second.size() > maxLength)
		return 0;
	std::memcpy(psk, it->second.data(), it->second.size());
	return static_cast<unsigned int>(it->second.size());
}

ResultMsg<std::shared_ptr<Context>> pskServerContext(const TlsServerConfig &config)
{
	auto holder = std::make_shared<PskContext>(Context::tls_server);
	auto ok = configure(holder->ctx, config.allowTls12);
	if (!ok)
		return unexpectedOf(ok.error());
	ok = loadPsk(holder->table, config.pskFile);
	if (!ok)
		return unexpectedOf(ok.error());
	SSL_CTX *native = holder->ctx.native_handle();
	SSL_CTX_set_ex_data(native, pskIndex(), &holder->table);
	SSL_CTX_set_psk_server_callback(native, pskServerCallback);
	// TLS 1.2 has no certificate here, so only the PSK suites can work.
	if (SSL_CTX_set_cipher_list(native, "ECDHE-PSK:DHE-PSK:PSK:!aNULL:!eNULL") != 1) {
		ERR_clear_error();
		return fail(EPROTO, "TLS: this OpenSSL has no PSK cipher suites");
	}
	return std::shared_ptr<Context>(holder, &holder->ctx);
}

ResultMsg<void> loadIdentity(Context &ctx, const char *role, const std::string &certFile, const std::string &keyFile)
{
	auto ok = readable("tls-cert", certFile);
	if (!ok)
		return ok;
	ok = readable("tls-key", keyFile);
	if (!ok)
		return ok;
	ErrorCode ec;
	ctx.use_certificate_chain_file(certFile, ec);
	if (ec)
		return fail(EINVAL, fmt::format("tls-cert '{}': not a usable {} certificate: {}", certFile, role, sslReason(ec)));
	ctx.use_private_key_file(keyFile, Context::pem, ec);
	if (ec) {
		std::string reason = sslReason(ec);
		if (reason.find("mismatch") != std::string::npos)
			return fail(EINVAL, fmt::format("tls-key '{}' does not belong to tls-cert '{}'", keyFile, certFile));
		return fail(EINVAL, fmt::format("tls-key '{}': not a usable private key: {}", keyFile, reason));
	}
	if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
		ERR_clear_error();
		return fail(EINVAL, fmt::format("tls-key '{}' does not belong to tls-cert '{}'", keyFile, certFile));
	}
	return {};
}

ResultMsg<void> loadCa(Context &ctx, const std::string &caFile)
{
	auto ok = readable("tls-ca", caFile);
	if (!ok)
		return ok;
	ErrorCode ec;
	ctx.load_verify_file(caFile, ec);
	if (ec)
		return fail(EINVAL, fmt::format("tls-ca '{}': no usable CA certificate: {}", caFile, sslReason(ec)));
	return {};
}

} // namespace

ResultMsg<std::shared_ptr<Context>> makeServerTlsContext(const TlsServerConfig &config)
{
	if (!config.pskFile.empty()) {
		if (!config.certFile.empty() || !config.keyFile.empty() || !config.caFile.empty())
			return fail(EINVAL, "TLS uses either pre-shared keys (--tls-psk) or certificates (--tls-cert), not both");
		return pskServerContext(config);
	}
	if (config.certFile.empty() || config.keyFile.empty())
		return fail(EINVAL, "TLS needs both a certificate (--tls-cert) and its key (--tls-key)");
	auto ctx = std::make_shared<Context>(Context::tls_server);
	if (auto ok = configure(*ctx, config.allowTls12); !ok)
		return unexpectedOf(ok.error());
	auto ok = loadIdentity(*ctx, "server", config.certFile, config.keyFile);
	if (!ok)
		return unexpectedOf(ok.error());
	if (!config.caFile.empty()) {
		ok = loadCa(*ctx, config.caFile);
		if (!ok)
			return unexpectedOf(ok.error());
		ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
	}
	return ctx;
}

ResultMsg<std::shared_ptr<Context>> makeClientTlsContext(const TlsClientConfig &config)
{
	auto ctx = tls13Context(Context::tls_client);
	if (!ctx)
		return ctx;
	ResultMsg<void> ok;
	if (config.caFile.empty())
		(*ctx)->set_default_verify_paths();
	else
		ok = loadCa(**ctx, config.caFile);
	if (!ok)
		return unexpectedOf(ok.error());
	if (config.certFile.empty() != config.keyFile.empty())
		return fail(EINVAL, "a client certificate needs both tls-cert and tls-key");
	if (!config.certFile.empty()) {
		ok = loadIdentity(**ctx, "client", config.certFile, config.keyFile);
		if (!ok)
			return unexpectedOf(ok.error());
	}
	(*ctx)->set_verify_mode(asio::ssl::verify_peer);
	return ctx;
}

std::string describeTlsError(const ErrorCode &ec, SSL *ssl)
{
	std::string text = isTlsError(ec) ? sslReason(ec) : ec.message();
	// Drop OpenSSL's "error:0A000086:SSL routines::" prefix: the reason is what users read.
	if (auto pos = text.rfind("::"); pos != std::string::npos)
		text = text.substr(pos + 2);
	// What the PSK failures mean, which OpenSSL's words leave to guess.
	if (text.find("binder does not verify") != std::string::npos)
		text += " (the client's pre-shared key differs)";
	else if (text.find("alert bad certificate") != std::string::npos ||
		 text.find("alert certificate expired") != std::string::npos ||
		 text.find("alert unknown ca") != std::string::npos)
		text += " (the peer does not accept our certificate)";
	else if (text.find("unsupported protocol") != std::string::npos)
		text += " (no TLS version both sides take)";
	else if (ssl && !SSL_get_certificate(ssl) && text.find("no suitable signature algorithm") != std::string::npos)
		text += " (this server has pre-shared keys only, and the client offered none it knows)";
	if (ssl) {
		long verdict = SSL_get_verify_result(ssl);
		if (verdict != X509_V_OK)
			text += fmt::format(" ({})", X509_verify_cert_error_string(verdict));
	}
	return text;
}

} // namespace r3d::transport
