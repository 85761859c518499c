#pragma once

// Helpers for tests that open backends from URIs.

#include <string>

#include <catch2/catch.hpp>

#include <r3d/backend_factory.hpp>

namespace r3test {

/// The message of opening `uri`, which must fail.
inline std::string openError(const std::string &uri)
{
	auto r = r3d::openBackend(uri);
	REQUIRE_FALSE(r);
	return r.error().message;
}

} // namespace r3test
