// The Catch2 runner, compiled once and linked into every C++ test. A binary whose
// prerequisite is missing exits 77 (SKIP) before any case runs; see r3test::Prerequisite.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "test_support.hpp"

int main(int argc, char *argv[])
{
	std::string missing = r3test::Prerequisite::firstMissing();
	if (!missing.empty()) {
		std::fprintf(stderr, "SKIP: %s\n", missing.c_str());
		return 77;
	}
	return Catch::Session().run(argc, argv);
}
