#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "client.hpp"

namespace r3ctl {

/// Where r3ctl's results and errors go: text for people, or JSON (--json) on stdout,
/// errors included, for scripts.
class Output
{
public:
	explicit Output(bool json) : json_(json) {}

	bool json() const { return json_; }
	/// Pretty JSON, or one object per line once stream() was called.
	void print(const nlohmann::json &value) const;
	/// From now on --json output is a stream: one compact object per line (progress
	/// events, then the result or the error).
	void stream() { streaming_ = true; }
	void line(const std::string &text) const;
	/// Columns padded to their widest cell.
	void table(const std::vector<std::string> &header, const std::vector<std::vector<std::string>> &rows) const;
	/// Reports a failure and returns its exit code.
	int failure(const Failure &f) const;
	/// Reports a command line mistake with the command's usage; returns kExitUsage.
	int usage(const std::string &message, const char *usageText) const;

private:
	bool json_;
	bool streaming_ = false;
};

} // namespace r3ctl
