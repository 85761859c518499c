#include "output.hpp"

#include <algorithm>
#include <cstdio>

#include "exit_codes.hpp"

namespace r3ctl {

void Output::print(const nlohmann::json &value) const
{
	std::printf("%s\n", value.dump(streaming_ ? -1 : 2).c_str());
	if (streaming_)
		std::fflush(stdout);
}

void Output::line(const std::string &text) const
{
	std::printf("%s\n", text.c_str());
}

void Output::table(const std::vector<std::string> &header, const std::vector<std::vector<std::string>> &rows) const
{
	std::vector<size_t> width(header.size());
	for (size_t c = 0; c < header.size(); ++c) {
		width[c] = header[c].size();
		for (const auto &row : rows)
			width[c] = std::max(width[c], row[c].size());
	}
	auto emit = [&](const std::vector<std::string> &cells) {
		std::string text;
		for (size_t c = 0; c < cells.size(); ++c) {
			text += cells[c];
			if (c + 1 < cells.size())
				text += std::string(width[c] - cells[c].size() + 2, ' ');
		}
		line(text);
	};
	emit(header);
	for (const auto &row : rows)
		emit(row);
}

int Output::failure(const Failure &f) const
{
	if (json_)
		print({ { "error", f.name }, { "message", f.message } });
	else
		std::fprintf(stderr, "r3ctl: %s\n", f.message.c_str());
	return f.exitCode;
}

int Output::usage(const std::string &message, const char *usageText) const
{
	if (json_)
		print({ { "error", "usage" }, { "message", message } });
	std::fprintf(stderr, "r3ctl: %s\n%s", message.c_str(), usageText);
	return kExitUsage;
}

} // namespace r3ctl
