#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <r3d/result.hpp>

namespace r3ctl {

/// One command's arguments: --name, --name VALUE, --name=VALUE, positionals, and
/// everything after "--" as a command to run.
class Args
{
public:
	struct Option {
		const char *name; ///< without the dashes
		bool takesValue;
	};

	/// Fails naming an unknown option, a missing value or a wrong number of positionals.
	static r3d::ResultMsg<Args> parse(const std::vector<std::string> &argv, const std::vector<Option> &options,
					  size_t minPositional, size_t maxPositional, bool allowCommand = false);

	bool has(const std::string &name) const { return values_.count(name) > 0; }
	std::optional<std::string> value(const std::string &name) const;
	const std::vector<std::string> &positional() const { return positional_; }
	/// After "--": the program and its arguments.
	const std::vector<std::string> &command() const { return command_; }

private:
	std::map<std::string, std::string> values_;
	std::vector<std::string> positional_;
	std::vector<std::string> command_;
};

} // namespace r3ctl
