#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "client.hpp"
#include "context.hpp"

namespace r3ctl {

// How mounts and exports look in r3ctl's JSON: snake_case keys named after the
// properties of org.r3map.Mount1 and org.r3map.Export1, plus the object path.

nlohmann::json mountJson(const std::string &path, const PropertyMap &properties);
nlohmann::json exportJson(const std::string &path, const PropertyMap &properties);
/// org.r3map.Region1: a memory region an app maps, served by r3mapd.
nlohmann::json regionJson(const std::string &path, const PropertyMap &properties);
/// org.r3map.Sync1: a push, a receiver or a hub of push sync.
nlohmann::json syncJson(const std::string &path, const PropertyMap &properties);
/// org.r3map.Managed1 of a managed mount or export: its "managed" member.
nlohmann::json managedJson(const PropertyMap &properties);

/// Every object implementing `interface`, as JSON via `view`, in id order; managed ones
/// with their "managed" member.
std::vector<nlohmann::json> objectsOf(const ManagedObjects &objects, const std::string &interface,
				      nlohmann::json (*view)(const std::string &, const PropertyMap &));

/// ls and exports: every object of `interface` as a JSON array, or as a table with
/// `header` and one row per object.
int listObjects(Context &ctx, const std::string &interface,
		nlohmann::json (*view)(const std::string &, const PropertyMap &), const std::vector<std::string> &header,
		std::vector<std::string> (*row)(const nlohmann::json &object));

} // namespace r3ctl
