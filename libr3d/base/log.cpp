#include <r3d/log.hpp>

#include <cstdlib>
#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace r3d::log {

namespace {

// Maps spdlog levels onto syslog priorities so journald files each line correctly.
class SyslogPriorityFlag final : public spdlog::custom_flag_formatter
{
public:
	void format(const spdlog::details::log_msg &msg, const std::tm &, spdlog::memory_buf_t &dest) override
	{
		static constexpr char kPriority[] = { '7', '7', '6', '4', '3', '2', '6' };
		dest.push_back('<');
		dest.push_back(kPriority[static_cast<int>(msg.level)]);
		dest.push_back('>');
	}
	std::unique_ptr<custom_flag_formatter> clone() const override
	{
		return std::make_unique<SyslogPriorityFlag>();
	}
};

struct Registry {
	std::mutex mutex;
	spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
	spdlog::level::level_enum level = spdlog::level::info;
	bool configured = false;
};

Registry &registry()
{
	static Registry r;
	return r;
}

void applyFormat(Registry &r)
{
	auto formatter = std::make_unique<spdlog::pattern_formatter>();
	if (std::getenv("JOURNAL_STREAM")) {
		formatter->add_flag<SyslogPriorityFlag>('*');
		formatter->set_pattern("%*%n: %v");
	} else {
		formatter->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%n] %v");
	}
	r.sink->set_formatter(std::move(formatter));
	r.configured = true;
}

} // namespace

std::shared_ptr<spdlog::logger> get(const std::string &component)
{
	auto &r = registry();
	std::lock_guard lock(r.mutex);
	if (auto existing = spdlog::get(component))
		return existing;
	if (!r.configured)
		applyFormat(r);
	auto logger = std::make_shared<spdlog::logger>(component, r.sink);
	logger->set_level(r.level);
	spdlog::register_logger(logger);
	return logger;
}

bool setLevel(const std::string &level)
{
	auto parsed = spdlog::level::from_str(level);
	// from_str maps unknown names to "off"; only accept "off" when asked for.
	if (parsed == spdlog::level::off && level != "off")
		return false;
	auto &r = registry();
	std::lock_guard lock(r.mutex);
	r.level = parsed;
	spdlog::apply_all([parsed](const std::shared_ptr<spdlog::logger> &l) { l->set_level(parsed); });
	return true;
}

void setup()
{
	auto &r = registry();
	std::lock_guard lock(r.mutex);
	applyFormat(r);
}

} // namespace r3d::log
