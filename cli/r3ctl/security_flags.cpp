#include "security_flags.hpp"

namespace r3ctl {

namespace {

constexpr const char *kFlags[][2] = {
	{ "tls", "tls" },	    { "tls-cert", "tls_cert" }, { "tls-key", "tls_key" },
	{ "tls-ca", "tls_ca" },	    { "tls-psk", "tls_psk" },	{ "token-file", "token_file" },
};

} // namespace

std::vector<Args::Option> securityFlags()
{
	std::vector<Args::Option> flags;
	for (const auto &f : kFlags)
		flags.push_back({ f[0], true });
	return flags;
}

void addSecurityOptions(const Args &args, std::map<std::string, sdbus::Variant> &options)
{
	for (const auto &f : kFlags)
		if (auto v = args.value(f[0]))
			options[f[1]] = sdbus::Variant(*v);
}

} // namespace r3ctl
