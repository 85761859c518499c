#include "daemon_args.hpp"

#include <cerrno>
#include <string_view>

#include <fmt/format.h>

#include "config.hpp"

namespace r3mapd {

const char *DaemonArgs::usage()
{
	return "usage: r3mapd [--config PATH] [--log-level LEVEL] [--version] [--help]\n"
	       "\n"
	       "The r3map daemon: owns NBD devices and exports, serves org.r3map.r3mapd on the system bus.\n"
	       "  --config PATH      configuration file (default /etc/r3map/r3mapd.json; missing is fine)\n"
	       "  --log-level LEVEL  trace, debug, info, warning, error, critical or off (overrides the file)\n"
	       "See r3mapd(8), r3mapd.conf(5) and r3map-dbus(7).\n";
}

r3d::ResultMsg<DaemonArgs> DaemonArgs::parse(int argc, char **argv)
{
	DaemonArgs a;
	a.configPath = Config::kDefaultPath;
	for (int i = 1; i < argc; ++i) {
		std::string_view arg = argv[i];
		auto value = [&](std::string_view name) -> r3d::ResultMsg<std::string> {
			if (arg.size() > name.size() && arg.substr(0, name.size()) == name && arg[name.size()] == '=')
				return std::string(arg.substr(name.size() + 1));
			if (i + 1 >= argc)
				return r3d::fail(EINVAL, fmt::format("{} needs a value", name));
			return std::string(argv[++i]);
		};
		if (arg == "--help" || arg == "-h") {
			a.help = true;
		} else if (arg == "--version") {
			a.version = true;
		} else if (arg.starts_with("--config")) {
			auto v = value("--config");
			if (!v)
				return r3d::unexpectedOf(v.error());
			a.configPath = *v;
			a.configGiven = true;
		} else if (arg.starts_with("--log-level")) {
			auto v = value("--log-level");
			if (!v)
				return r3d::unexpectedOf(v.error());
			if (!isLogLevel(*v))
				return r3d::fail(EINVAL, fmt::format("--log-level: '{}' is not one of trace, debug, info, "
								     "warning, error, critical, off",
								     *v));
			a.logLevel = *v;
		} else {
			return r3d::fail(EINVAL, fmt::format("unknown argument '{}'", arg));
		}
	}
	return a;
}

} // namespace r3mapd
