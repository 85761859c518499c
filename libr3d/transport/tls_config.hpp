#pragma once

#include <string>

namespace r3d::transport {

/// TLS of a server: its certificate chain and key; with a CA file, clients must present a
/// certificate signed by it (mutual TLS). Or, instead of certificates, pre-shared keys.
struct TlsServerConfig {
	std::string certFile;
	std::string keyFile;
	std::string caFile;
	/// psktool's format, one "identity:hexkey" a line; the client names its identity.
	std::string pskFile;
	/// TLS 1.3 only by default (r3map's own transport); NBD's spec makes 1.2 a MUST.
	bool allowTls12 = false;

	bool enabled() const { return !certFile.empty() || !pskFile.empty(); }
};

/// Whether a client uses TLS: Auto turns it on as soon as any TLS setting is given.
enum class TlsMode { Auto, On, Off };

/// TLS of a client: the server certificate is always verified, against caFile or the
/// system's trust store; certFile/keyFile present a client certificate (mutual TLS).
struct TlsClientConfig {
	TlsMode mode = TlsMode::Auto;
	std::string caFile;
	std::string certFile;
	std::string keyFile;
	std::string serverName; ///< name or IP checked against the certificate; default: the host

	bool enabled() const
	{
		return mode == TlsMode::On || (mode == TlsMode::Auto && (!caFile.empty() || !certFile.empty() ||
									  !keyFile.empty() || !serverName.empty()));
	}
};

} // namespace r3d::transport
