#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include "manager1_adaptor.h"
#include "service/service_state.hpp"

namespace r3mapd::service {

/// /org/r3map: org.r3map.Manager1 and org.freedesktop.DBus.ObjectManager.
class ManagerObject final : public sdbus::AdaptorInterfaces<org::r3map::Manager1_adaptor, sdbus::ObjectManager_adaptor>
{
public:
	static constexpr const char *kInterface = org::r3map::Manager1_adaptor::INTERFACE_NAME;

	ManagerObject(sdbus::IConnection &connection, ServiceState &state);
	~ManagerObject();

private:
	void Mount(sdbus::Result<sdbus::ObjectPath> &&result, std::string backend_uri,
		   std::map<std::string, sdbus::Variant> options) override;
	std::vector<sdbus::ObjectPath> ListMounts() override;
	void Export(sdbus::Result<sdbus::ObjectPath> &&result, std::string backend_uri, std::string listen,
		    std::map<std::string, sdbus::Variant> options) override;
	std::vector<sdbus::ObjectPath> ListExports() override;
	void Seed(sdbus::Result<sdbus::ObjectPath> &&result, std::string backend_uri, std::string listen,
		  std::map<std::string, sdbus::Variant> options) override;
	void Pull(sdbus::Result<sdbus::ObjectPath> &&result, std::string source, std::string export_listen,
		  std::map<std::string, sdbus::Variant> options) override;
	std::vector<sdbus::ObjectPath> ListMigrations() override;
	void StartSync(sdbus::Result<sdbus::ObjectPath> &&result, std::string source, std::vector<std::string> destinations,
		       std::map<std::string, sdbus::Variant> options) override;
	void ServeSync(sdbus::Result<sdbus::ObjectPath> &&result, std::string listen, std::string dir,
		       std::map<std::string, sdbus::Variant> options) override;
	void StartSyncHub(sdbus::Result<sdbus::ObjectPath> &&result, std::string listen, std::string cache_dir,
			  std::vector<std::string> destinations, std::map<std::string, sdbus::Variant> options) override;
	std::vector<sdbus::ObjectPath> ListSyncs() override;
	std::string GetVersion() override;
	void SetLogLevel(const std::string &level) override;
	std::string Version() override;
	std::string LogLevel() override;

	ServiceState &state_;
};

} // namespace r3mapd::service
