#include "args.hpp"
#include "commands.hpp"
#include "managed_flags.hpp"
#include "security_flags.hpp"
#include "views.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage =
	"usage: r3ctl export URI --listen ADDR [--protocol nbd|r3] [--name NAME] [--description TEXT]\n"
	"                        [--read-only] [--tls-cert F --tls-key F [--tls-ca F]] [--tls off|on|require]\n"
	"                        [--tls-psk F] [--token-file F (r3)]\n"
	"       r3ctl export URI --listen ADDR [...] --managed [--cache memory|NAME|DIR] [--chunk-size S]\n"
	"                        [--pull-workers N] [--push-interval D] [--order ...] [--pull-first S|N%]\n"
	"                        [--pull-rate R] [--push-rate R] [--remote-timeout D] [--background yes|no]\n"
	"                        [--discard-local]\n"
	"Serves the backend from r3mapd over NBD (default; ADDR is HOST:PORT, port 0 picks one, or\n"
	"unix:PATH) or over r3map's transport (r3; ADDR is a loopback HOST:PORT, clients use\n"
	"r3://ADDR/NAME). With --managed, a local cache in front of URI is served (as for mount\n"
	"--managed). Prints the address it listens on.\n";

int exportBackend(Context &ctx, const std::vector<std::string> &argv)
{
	std::vector<Args::Option> flags{ { "listen", true },   { "name", true },	{ "description", true },
					 { "protocol", true }, { "read-only", false }, { "chunk-size", true } };
	for (const auto &f : managedFlags())
		flags.push_back(f);
	for (const auto &f : securityFlags())
		flags.push_back(f);
	auto args = Args::parse(argv, flags, 1, 1);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	if (args->has("chunk-size") && !args->has("managed"))
		return ctx.out.usage("--chunk-size goes with --managed", kUsage);
	auto listen = args->value("listen");
	if (!listen)
		return ctx.out.usage("--listen ADDR is required", kUsage);
	std::map<std::string, sdbus::Variant> options;
	auto managed = addManagedOptions(*args, options);
	if (!managed)
		return ctx.out.usage(managed.error().message, kUsage);
	if (auto name = args->value("name"))
		options["name"] = sdbus::Variant(*name);
	if (auto description = args->value("description"))
		options["description"] = sdbus::Variant(*description);
	if (auto protocol = args->value("protocol"))
		options["protocol"] = sdbus::Variant(*protocol);
	if (args->has("read-only"))
		options["read_only"] = sdbus::Variant(true);
	addSecurityOptions(*args, options);

	auto &client = ctx.client();
	// A managed Export with pull-first returns once that much is local: no timeout of ours.
	auto &caller = *managed ? ctx.longClient() : client;
	std::string path = caller.manager().Export(args->positional()[0], *listen, options);
	auto e = exportJson(path, client.exportAt(path)->GetAll(org::r3map::Export1_proxy::INTERFACE_NAME));
	if (*managed)
		e["managed"] = managedJson(client.managed(path)->GetAll(org::r3map::Managed1_proxy::INTERFACE_NAME));
	if (ctx.out.json())
		ctx.out.print(e);
	else
		ctx.out.line(e["listen"].get<std::string>());
	return kExitOk;
}

} // namespace

const Command kExportCommand{ "export", "serve a backend over NBD or r3 from the daemon", kUsage, exportBackend };

} // namespace r3ctl
