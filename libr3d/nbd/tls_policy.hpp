#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace r3d::nbd {

/// What an NBD server does with TLS (the modes of doc/proto.md): Off is NOTLS (STARTTLS
/// refused with NBD_REP_ERR_POLICY), On is SELECTIVETLS with no TLS-only export (clients
/// choose), Require is FORCEDTLS (every option but STARTTLS and ABORT is refused with
/// NBD_REP_ERR_TLS_REQD until TLS is on; EXPORT_NAME closes the connection).
enum class TlsPolicy { Off, On, Require };

/// "off", "on" or "require"; nullopt for anything else.
std::optional<TlsPolicy> parseTlsPolicy(std::string_view text);
const char *tlsPolicyName(TlsPolicy policy);

/// Warns when `address` (a Listener's, "HOST:PORT" or a socket path) is TCP on an address
/// other than loopback and clients may talk in clear; `howToFix` ends the message
/// ("use --tls=require").
void warnIfServedInClear(const std::string &address, TlsPolicy policy, const std::string &howToFix);

} // namespace r3d::nbd
