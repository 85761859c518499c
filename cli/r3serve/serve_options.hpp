#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <r3d/result.hpp>

#include "base/limits.hpp"
#include "mount/managed_options.hpp"
#include "nbd/tls_policy.hpp"

namespace r3serve {

/// Everything r3serve was asked to do, parsed and checked before anything starts.
struct ServeOptions {
	std::string socketPath;                                   ///< --socket
	std::string listenAddress;                                ///< --listen
	std::vector<std::pair<std::string, std::string>> exports; ///< name, backend URI
	std::string description;
	bool readOnly = false;
	uint32_t maxRequest = r3d::limits::kDefaultMaxPayload;
	unsigned workers = 16;
	std::string pidFile;
	std::string statsFile;
	std::string logLevel = "info";
	bool swap = false; ///< --swap: r3serve is on a swap device's path (resident, never waits on I/O to allocate)
	bool help = false;
	// --r3: export over r3map's own transport instead of NBD.
	bool r3 = false;
	std::string tlsCert;
	std::string tlsKey;
	std::string tlsCa;
	std::string tlsPsk;   ///< NBD only: psktool's identity:hexkey file instead of a certificate
	std::string tokenFile;
	/// NBD only (--tls): require when --tls-cert or --tls-psk is given, else off.
	r3d::nbd::TlsPolicy tls = r3d::nbd::TlsPolicy::Off;

	// --device: attach to a kernel nbd device instead of listening (serve_device.cpp).
	std::string device;         ///< "auto" or /dev/nbdN; empty: not in device mode
	unsigned connections = 1;   ///< --connections
	std::string attachMethod;   ///< --netlink / --ioctl; empty: auto
	std::string ready;          ///< --ready udev|sysfs; empty: the default
	uint32_t blockSize = 4096;  ///< --block-size
	std::optional<unsigned> timeout;         ///< --timeout SECONDS
	std::optional<unsigned> deadConnTimeout; ///< --dead-conn-timeout SECONDS

	// --managed: a local cache in front of the backend, pulled and pushed in the background
	// (--cache, --pull-workers, ... set the keys of r3d::mount::setManagedOption()).
	bool managed = false;
	r3d::mount::ManagedOptions managedOptions;
	bool managedOptionGiven = false;
};

/// Parses the command line; the error message is ready to print after "r3serve: ".
r3d::ResultMsg<ServeOptions> parseServeOptions(int argc, char **argv);

const char *serveUsage();

} // namespace r3serve
