#include "args.hpp"

#include <cerrno>

#include <fmt/format.h>

namespace r3ctl {

r3d::ResultMsg<Args> Args::parse(const std::vector<std::string> &argv, const std::vector<Option> &options,
				 size_t minPositional, size_t maxPositional, bool allowCommand)
{
	Args a;
	for (size_t i = 0; i < argv.size(); ++i) {
		const std::string &arg = argv[i];
		if (arg == "--") {
			if (!allowCommand)
				return r3d::fail(EINVAL, "unexpected '--': this command runs no program");
			a.command_.assign(argv.begin() + static_cast<long>(i) + 1, argv.end());
			if (a.command_.empty())
				return r3d::fail(EINVAL, "'--' must be followed by a program to run");
			break;
		}
		if (!arg.starts_with("--") || arg == "-") {
			if (arg.starts_with("-") && arg != "-")
				return r3d::fail(EINVAL, fmt::format("unknown option '{}'", arg));
			a.positional_.push_back(arg);
			continue;
		}
		std::string name = arg.substr(2);
		std::optional<std::string> inlineValue;
		if (auto eq = name.find('='); eq != std::string::npos) {
			inlineValue = name.substr(eq + 1);
			name = name.substr(0, eq);
		}
		const Option *spec = nullptr;
		for (const auto &o : options)
			if (name == o.name)
				spec = &o;
		if (!spec)
			return r3d::fail(EINVAL, fmt::format("unknown option '--{}'", name));
		if (!spec->takesValue) {
			if (inlineValue)
				return r3d::fail(EINVAL, fmt::format("option '--{}' takes no value", name));
			a.values_[name] = "";
		} else if (inlineValue) {
			a.values_[name] = *inlineValue;
		} else if (i + 1 < argv.size()) {
			a.values_[name] = argv[++i];
		} else {
			return r3d::fail(EINVAL, fmt::format("option '--{}' needs a value", name));
		}
	}
	if (a.positional_.size() < minPositional)
		return r3d::fail(EINVAL, "missing argument");
	if (a.positional_.size() > maxPositional)
		return r3d::fail(EINVAL, fmt::format("unexpected argument '{}'", a.positional_[maxPositional]));
	return a;
}

std::optional<std::string> Args::value(const std::string &name) const
{
	auto it = values_.find(name);
	if (it == values_.end())
		return std::nullopt;
	return it->second;
}

} // namespace r3ctl
