#include "finalize_gate.hpp"

#include <cerrno>
#include <thread>

#include <catch2/catch.hpp>

using r3mapd::FinalizeGate;
using namespace std::chrono_literals;

TEST_CASE("an answer to proceed lets the handover go on; a refusal names its reason", "[finalize-gate]")
{
	FinalizeGate gate(10s);
	CHECK_FALSE(gate.answer(true, "")); // nobody asked yet
	std::thread app;
	auto proceed = gate.await([&] { app = std::thread([&] { REQUIRE(gate.answer(true, "")); }); });
	app.join();
	CHECK(proceed);
	CHECK_FALSE(gate.answer(true, "")); // that request was answered

	auto refused = gate.await([&] { app = std::thread([&] { REQUIRE(gate.answer(false, "busy")); }); });
	app.join();
	REQUIRE_FALSE(refused);
	CHECK(refused.error().code.value() == ECANCELED);
	CHECK(refused.error().message.find("busy") != std::string::npos);
}

TEST_CASE("no answer in time aborts; close ends a wait and every later one", "[finalize-gate]")
{
	FinalizeGate gate(50ms);
	auto late = gate.await([] {});
	REQUIRE_FALSE(late);
	CHECK(late.error().code.value() == ETIMEDOUT);

	FinalizeGate closing(10s);
	std::thread stopper;
	auto closed = closing.await([&] { stopper = std::thread([&] { closing.close(); }); });
	stopper.join();
	REQUIRE_FALSE(closed);
	CHECK(closed.error().code.value() == ECANCELED);
	auto after = closing.await([] { FAIL("a closed gate announced"); });
	CHECK_FALSE(after);
}
