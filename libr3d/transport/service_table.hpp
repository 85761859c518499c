#pragma once

// The services a server offers, by the name a hello gives ("block"). Each name maps to a
// factory that binds one connection to the service from its hello (or refuses it); a hello
// naming no known service is refused before anything else is looked up.

#include <functional>
#include <map>
#include <string>

#include <fmt/format.h>

#include <r3d/result.hpp>

namespace r3d::transport {

template <class Binding, class Hello>
class ServiceTable
{
public:
	using Factory = std::function<ResultMsg<Binding>(const Hello &hello)>;

	void add(std::string name, Factory factory) { services_[std::move(name)] = std::move(factory); }

	/// Binds a connection whose hello names `service`; EPROTONOSUPPORT when none has that name.
	ResultMsg<Binding> open(const std::string &service, const Hello &hello) const
	{
		auto it = services_.find(service);
		if (it == services_.end())
			return fail(EPROTONOSUPPORT, fmt::format("this server offers no service '{}' (it offers {})",
								 service, names()));
		return it->second(hello);
	}

	/// "'block', 'sync'", for messages.
	std::string names() const
	{
		std::string out;
		for (const auto &[name, factory] : services_)
			out += (out.empty() ? "'" : ", '") + name + "'";
		return out.empty() ? "none" : out;
	}

private:
	std::map<std::string, Factory> services_;
};

} // namespace r3d::transport
