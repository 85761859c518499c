#include "transport/tls.hpp"

#include <cerrno>
#include <cstring>

#include <unistd.h>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

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

ResultMsg<std::shared_ptr<Context>> tls13Context(Context::method method)
{
	auto ctx = std::make_shared<Context>(method);
	if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_3_VERSION) != 1)
		return fail(EPROTO, "TLS: this OpenSSL cannot restrict itself to TLS 1.3");
	ctx->set_options(Context::default_workarounds | Context::no_compression);
	return ctx;
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
	if (config.certFile.empty() || config.keyFile.empty())
		return fail(EINVAL, "TLS needs both a certificate (--tls-cert) and its key (--tls-key)");
	auto ctx = tls13Context(Context::tls_server);
	if (!ctx)
		return ctx;
	auto ok = loadIdentity(**ctx, "server", config.certFile, config.keyFile);
	if (!ok)
		return unexpectedOf(ok.error());
	if (!config.caFile.empty()) {
		ok = loadCa(**ctx, config.caFile);
		if (!ok)
			return unexpectedOf(ok.error());
		(*ctx)->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
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
	if (ssl) {
		long verdict = SSL_get_verify_result(ssl);
		if (verdict != X509_V_OK)
			text += fmt::format(" ({})", X509_verify_cert_error_string(verdict));
	}
	return text;
}

} // namespace r3d::transport
