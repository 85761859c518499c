#include "managed_flags.hpp"

#include <cerrno>

#include <fmt/format.h>

#include "mount/managed_options.hpp"

namespace r3ctl {

namespace {

bool takesValue(const std::string &key)
{
	return key != "discard-local";
}

} // namespace

std::vector<Args::Option> managedFlags()
{
	std::vector<Args::Option> flags{ { "managed", false } };
	for (const auto &key : r3d::mount::managedOptionKeys())
		if (key != "chunk-size")
			flags.push_back({ key.c_str(), takesValue(key) });
	return flags;
}

r3d::ResultMsg<bool> addManagedOptions(const Args &args, std::map<std::string, sdbus::Variant> &options)
{
	bool managed = args.has("managed");
	r3d::mount::ManagedOptions check;
	for (const auto &key : r3d::mount::managedOptionKeys()) {
		auto value = args.value(key);
		if (!value || (key == "chunk-size" && !managed))
			continue;
		if (!managed)
			return r3d::fail(EINVAL, fmt::format("--{} goes with --managed", key));
		std::string text = takesValue(key) ? *value : "true";
		if (auto ok = r3d::mount::setManagedOption(check, key, text); !ok)
			return r3d::fail(EINVAL, "--" + ok.error().message);
		options[key] = sdbus::Variant(text);
	}
	if (managed)
		options["managed"] = sdbus::Variant(true);
	return managed;
}

} // namespace r3ctl
