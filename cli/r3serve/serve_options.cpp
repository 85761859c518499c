#include "serve_options.hpp"

#include <charconv>
#include <cstring>

#include <getopt.h>

#include <fmt/format.h>

#include <r3d/size.hpp>

namespace r3serve {

namespace {

enum Opt : int {
	kSocket = 256,
	kListen,
	kName,
	kDescription,
	kReadOnly,
	kMaxRequest,
	kWorkers,
	kPidFile,
	kStatsFile,
	kLogLevel,
	kSwap,
	kHelp,
	kR3,
	kTlsCert,
	kTlsKey,
	kTlsCa,
	kTls,
	kTlsPsk,
	kTokenFile,
	kDevice,
	kConnections,
	kNetlink,
	kIoctl,
	kReady,
	kBlockSize,
	kTimeout,
	kDeadConnTimeout,
	kManaged,
	kManagedKey, // --cache, --pull-workers, ...: the option's name is the managed key
};

// A count is a plain decimal number: "1K" is a size, not 1024 workers.
r3d::ResultMsg<unsigned> parseCount(const char *option, const char *text, unsigned min, unsigned max)
{
	unsigned n = 0;
	const char *end = text + std::strlen(text);
	auto [ptr, ec] = std::from_chars(text, end, n);
	if (ec != std::errc() || ptr != end || ptr == text || n < min || n > max)
		return r3d::fail(EINVAL, fmt::format("{} {} is not a number in {} .. {}", option, text, min, max));
	return n;
}

r3d::ResultMsg<unsigned> parseSizeIn(const char *option, const char *text, unsigned min, unsigned max)
{
	auto n = r3d::parseSize(text);
	if (!n || *n < min || *n > max)
		return r3d::fail(EINVAL, fmt::format("{} {} is not a size in {} .. {}", option, text, min, max));
	return static_cast<unsigned>(*n);
}

// "NAME=URI" names an export; a URI itself never has '=' before its scheme's ':'.
std::pair<std::string, std::string> splitExport(const std::string &arg, const std::string &defaultName)
{
	size_t eq = arg.find('=');
	size_t colon = arg.find(':');
	if (eq != std::string::npos && (colon == std::string::npos || eq < colon))
		return { arg.substr(0, eq), arg.substr(eq + 1) };
	return { defaultName, arg };
}

} // namespace

const char *serveUsage()
{
	return "usage: r3serve (--socket PATH | --listen HOST:PORT) [--name NAME] [--description TEXT]\n"
	       "               [--read-only] [--max-request BYTES] [--workers N] [--pid-file FILE]\n"
	       "               [--stats-file FILE] [--log-level LEVEL] [--swap] [--tls=off|on|require]\n"
	       "               [--tls-cert FILE --tls-key FILE [--tls-ca FILE] | --tls-psk FILE]\n"
	       "               BACKEND_URI [NAME=BACKEND_URI ...]\n"
	       "       r3serve --device auto|/dev/nbdN [--connections N] [--netlink|--ioctl]\n"
	       "               [--ready udev|sysfs] [--block-size BYTES] [--timeout SECONDS]\n"
	       "               [--dead-conn-timeout SECONDS] [--read-only] [...] BACKEND_URI\n"
	       "       r3serve --managed [--cache DIR] [--pull-workers N] [--push-interval DURATION]\n"
	       "               [--order linear|reverse|hot:FILE] [--pull-first SIZE|N%] [--pull-rate RATE]\n"
	       "               [--push-rate RATE] [--remote-timeout DURATION] [--chunk-size SIZE]\n"
	       "               [--background yes|no] [--discard-local] (--socket PATH | --listen HOST:PORT |\n"
	       "               --device ...) [...] REMOTE_URI\n"
	       "       r3serve --r3 --listen HOST:PORT [--tls-cert FILE --tls-key FILE [--tls-ca FILE]]\n"
	       "               [--token-file FILE] [...] BACKEND_URI [NAME=BACKEND_URI ...]\n"
	       "\n"
	       "Serves backends over NBD. BACKEND_URI is memory:SIZE, file:PATH[?size=SIZE],\n"
	       "dir:PATH?size=SIZE[&chunk=SIZE], r3://HOST:PORT/NAME, redis://HOST:PORT/PREFIX?size=SIZE\n"
	       "or s3://BUCKET/PREFIX?endpoint=URL&size=SIZE. The first export is also the default\n"
	       "export \"\". With --device, the backend becomes a kernel block device: its path is\n"
	       "printed once it is ready, and SIGTERM flushes, disconnects and frees it. With --r3, the\n"
	       "exports are served over r3map's own transport, for r3:// clients. Over NBD, --tls-cert or\n"
	       "--tls-psk turn on NBD_OPT_STARTTLS (TLS 1.2 or later), required unless --tls=on. With\n"
	       "--managed, a local cache (memory, or --cache DIR, resumable) is served and pulled from\n"
	       "and pushed to the remote in the background; SIGTERM pushes every dirty chunk before\n"
	       "r3serve exits.\n"
	       "See r3serve(1).\n";
}

r3d::ResultMsg<ServeOptions> parseServeOptions(int argc, char **argv)
{
	static const option kLong[] = {
		{ "socket", required_argument, nullptr, kSocket },
		{ "listen", required_argument, nullptr, kListen },
		{ "name", required_argument, nullptr, kName },
		{ "description", required_argument, nullptr, kDescription },
		{ "read-only", no_argument, nullptr, kReadOnly },
		{ "max-request", required_argument, nullptr, kMaxRequest },
		{ "workers", required_argument, nullptr, kWorkers },
		{ "pid-file", required_argument, nullptr, kPidFile },
		{ "stats-file", required_argument, nullptr, kStatsFile },
		{ "log-level", required_argument, nullptr, kLogLevel },
		{ "swap", no_argument, nullptr, kSwap },
		{ "help", no_argument, nullptr, kHelp },
		{ "r3", no_argument, nullptr, kR3 },
		{ "tls-cert", required_argument, nullptr, kTlsCert },
		{ "tls-key", required_argument, nullptr, kTlsKey },
		{ "tls-ca", required_argument, nullptr, kTlsCa },
		{ "tls", required_argument, nullptr, kTls },
		{ "tls-psk", required_argument, nullptr, kTlsPsk },
		{ "token-file", required_argument, nullptr, kTokenFile },
		{ "device", required_argument, nullptr, kDevice },
		{ "connections", required_argument, nullptr, kConnections },
		{ "netlink", no_argument, nullptr, kNetlink },
		{ "ioctl", no_argument, nullptr, kIoctl },
		{ "ready", required_argument, nullptr, kReady },
		{ "block-size", required_argument, nullptr, kBlockSize },
		{ "timeout", required_argument, nullptr, kTimeout },
		{ "dead-conn-timeout", required_argument, nullptr, kDeadConnTimeout },
		{ "managed", no_argument, nullptr, kManaged },
		{ "cache", required_argument, nullptr, kManagedKey },
		{ "chunk-size", required_argument, nullptr, kManagedKey },
		{ "pull-workers", required_argument, nullptr, kManagedKey },
		{ "push-interval", required_argument, nullptr, kManagedKey },
		{ "order", required_argument, nullptr, kManagedKey },
		{ "pull-first", required_argument, nullptr, kManagedKey },
		{ "pull-rate", required_argument, nullptr, kManagedKey },
		{ "push-rate", required_argument, nullptr, kManagedKey },
		{ "remote-timeout", required_argument, nullptr, kManagedKey },
		{ "background", required_argument, nullptr, kManagedKey },
		{ "discard-local", no_argument, nullptr, kManagedKey },
		{ nullptr, 0, nullptr, 0 },
	};
	ServeOptions o;
	std::string name;
	std::optional<r3d::nbd::TlsPolicy> tls;
	optind = 1;
	opterr = 0;
	for (;;) {
		int index = -1;
		int c = ::getopt_long(argc, argv, "+h", kLong, &index);
		if (c == -1)
			break;
		switch (c) {
		case kSocket:
			o.socketPath = optarg;
			break;
		case kListen:
			o.listenAddress = optarg;
			break;
		case kName:
			name = optarg;
			break;
		case kDescription:
			o.description = optarg;
			break;
		case kReadOnly:
			o.readOnly = true;
			break;
		case kMaxRequest: {
			auto size = r3d::parseSize(optarg);
			if (!size)
				return r3d::fail(EINVAL, "--max-request: " + size.error().message);
			if (*size < r3d::limits::kMinMaxPayload || *size > r3d::limits::kMaxMaxPayload)
				return r3d::fail(EINVAL, fmt::format("--max-request {} is outside {} .. {}", optarg,
								     r3d::formatSize(r3d::limits::kMinMaxPayload),
								     r3d::formatSize(r3d::limits::kMaxMaxPayload)));
			o.maxRequest = static_cast<uint32_t>(*size);
			break;
		}
		case kWorkers: {
			auto n = parseCount("--workers", optarg, 1, 1024);
			if (!n)
				return r3d::unexpectedOf(n.error());
			o.workers = *n;
			break;
		}
		case kPidFile:
			o.pidFile = optarg;
			break;
		case kStatsFile:
			o.statsFile = optarg;
			break;
		case kLogLevel:
			o.logLevel = optarg;
			break;
		case kSwap:
			o.swap = true;
			break;
		case kR3:
			o.r3 = true;
			break;
		case kTlsCert:
			o.tlsCert = optarg;
			break;
		case kTlsKey:
			o.tlsKey = optarg;
			break;
		case kTlsCa:
			o.tlsCa = optarg;
			break;
		case kTls:
			tls = r3d::nbd::parseTlsPolicy(optarg);
			if (!tls)
				return r3d::fail(EINVAL, fmt::format("--tls={}: expected off, on or require", optarg));
			break;
		case kTlsPsk:
			o.tlsPsk = optarg;
			break;
		case kTokenFile:
			o.tokenFile = optarg;
			break;
		case kDevice:
			o.device = optarg;
			break;
		case kNetlink:
		case kIoctl:
			if (!o.attachMethod.empty())
				return r3d::fail(EINVAL, "give at most one of --netlink or --ioctl");
			o.attachMethod = c == kNetlink ? "netlink" : "ioctl";
			break;
		case kReady:
			if (std::string(optarg) != "udev" && std::string(optarg) != "sysfs")
				return r3d::fail(EINVAL, fmt::format("--ready {}: expected udev or sysfs", optarg));
			o.ready = optarg;
			break;
		case kConnections:
		case kBlockSize:
		case kTimeout:
		case kDeadConnTimeout: {
			struct Count {
				const char *name;
				unsigned min, max;
			};
			Count limits = c == kConnections ? Count{ "--connections", 1, 64 }
				     : c == kBlockSize   ? Count{ "--block-size", 512, 65536 }
				     : c == kTimeout     ? Count{ "--timeout", 0, 86400 }
							 : Count{ "--dead-conn-timeout", 0, 86400 };
			auto n = c == kBlockSize ? parseSizeIn(limits.name, optarg, limits.min, limits.max)
						 : parseCount(limits.name, optarg, limits.min, limits.max);
			if (!n)
				return r3d::unexpectedOf(n.error());
			if (c == kConnections)
				o.connections = *n;
			else if (c == kBlockSize)
				o.blockSize = *n;
			else
				(c == kTimeout ? o.timeout : o.deadConnTimeout) = *n;
			break;
		}
		case kManaged:
			o.managed = true;
			break;
		case kManagedKey: {
			std::string key = kLong[index].name;
			auto set = r3d::mount::setManagedOption(o.managedOptions, key, optarg ? optarg : "true");
			if (!set)
				return r3d::fail(EINVAL, "--" + set.error().message);
			o.managedOptionGiven = true;
			break;
		}
		case 'h':
		case kHelp:
			o.help = true;
			return o;
		case ':':
			return r3d::fail(EINVAL, fmt::format("option '{}' needs a value", argv[optind - 1]));
		default:
			return r3d::fail(EINVAL, fmt::format("unknown option '{}'", argv[optind - 1]));
		}
	}
	for (int i = optind; i < argc; ++i) {
		auto exp = splitExport(argv[i], i == optind ? name : "");
		if (i > optind && exp.first.empty())
			return r3d::fail(EINVAL, fmt::format("'{}': further exports need a name (NAME=BACKEND_URI)", argv[i]));
		for (const auto &e : o.exports)
			if (e.first == exp.first)
				return r3d::fail(EINVAL, fmt::format("export name '{}' is used twice", exp.first));
		o.exports.push_back(std::move(exp));
	}
	if (o.exports.empty())
		return r3d::fail(EINVAL, "no BACKEND_URI given");
	if (o.managedOptionGiven && !o.managed)
		return r3d::fail(EINVAL, "--cache, --pull-workers, --push-interval, --order, --pull-first, --pull-rate, "
					 "--push-rate, --remote-timeout, --chunk-size, --background and --discard-local "
					 "go with --managed");
	if (o.managed && o.exports.size() > 1)
		return r3d::fail(EINVAL, "--managed serves exactly one BACKEND_URI (one cache)");
	if (o.managed && o.readOnly)
		return r3d::fail(EINVAL, "--managed with --read-only: serve the remote directly instead");
	bool tlsGiven = !o.tlsCert.empty() || !o.tlsKey.empty() || !o.tlsCa.empty() || !o.tlsPsk.empty() || tls;
	if (!o.device.empty()) {
		if (tlsGiven)
			return r3d::fail(EINVAL, "--device serves the kernel: it does not take the --tls options");
		if (o.r3)
			return r3d::fail(EINVAL, "--r3 exports over the network: it does not take --device");
		if (!o.socketPath.empty() || !o.listenAddress.empty())
			return r3d::fail(EINVAL, "--device serves the kernel only: it does not take --socket or --listen");
		if (o.exports.size() > 1)
			return r3d::fail(EINVAL, "--device attaches exactly one BACKEND_URI");
		return o;
	}
	if (o.connections != 1 || !o.attachMethod.empty() || !o.ready.empty() || o.timeout || o.deadConnTimeout ||
	    o.blockSize != 4096)
		return r3d::fail(EINVAL, "--connections, --netlink, --ioctl, --ready, --block-size and the timeouts need --device");
	if (o.socketPath.empty() == o.listenAddress.empty())
		return r3d::fail(EINVAL, "give exactly one of --socket PATH, --listen HOST:PORT or --device");
	if (!o.tokenFile.empty() && !o.r3)
		return r3d::fail(EINVAL, "--token-file goes with --r3");
	if (o.r3 && (tls || !o.tlsPsk.empty()))
		return r3d::fail(EINVAL, "--tls and --tls-psk are for NBD: --r3 uses TLS (1.3) whenever --tls-cert is given");
	if (o.r3 && o.listenAddress.empty())
		return r3d::fail(EINVAL, "--r3 serves TCP: give --listen HOST:PORT");
	if (o.tlsCert.empty() != o.tlsKey.empty())
		return r3d::fail(EINVAL, "TLS needs both --tls-cert and --tls-key");
	if (!o.tlsCa.empty() && o.tlsCert.empty())
		return r3d::fail(EINVAL, "--tls-ca (client certificates) needs --tls-cert and --tls-key");
	if (!o.tlsPsk.empty() && !o.tlsCert.empty())
		return r3d::fail(EINVAL, "give --tls-cert or --tls-psk, not both");
	if (!o.r3) {
		bool credentials = !o.tlsCert.empty() || !o.tlsPsk.empty();
		o.tls = tls.value_or(credentials ? r3d::nbd::TlsPolicy::Require : r3d::nbd::TlsPolicy::Off);
		if (o.tls != r3d::nbd::TlsPolicy::Off && !credentials)
			return r3d::fail(EINVAL, fmt::format("--tls={} needs --tls-cert and --tls-key, or --tls-psk",
							     r3d::nbd::tlsPolicyName(o.tls)));
		if (o.tls == r3d::nbd::TlsPolicy::Off && credentials)
			return r3d::fail(EINVAL, "--tls=off does not take --tls-cert or --tls-psk");
	}
	return o;
}

} // namespace r3serve
