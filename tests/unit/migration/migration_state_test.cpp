#include "migration/migration_state.hpp"

#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

using namespace r3d::migration;

namespace {

/// Drives a fresh state to `phase` along a legal path.
MigrationState at(Phase phase, Role role = Role::Leecher)
{
	MigrationState s(role);
	auto ok = [](auto r) { REQUIRE(r); };
	switch (phase) {
	case Phase::Tracking:
		break;
	case Phase::PreCopy:
		ok(s.firstPassDone());
		break;
	case Phase::Finalizing:
		ok(s.firstPassDone());
		ok(s.beginFinalize());
		break;
	case Phase::PostCopy:
		ok(s.firstPassDone());
		ok(s.beginFinalize());
		ok(s.commit());
		break;
	case Phase::Complete:
		ok(s.firstPassDone());
		ok(s.beginFinalize());
		ok(s.commit());
		ok(s.complete());
		break;
	case Phase::Failed:
		ok(s.fail("test"));
		break;
	case Phase::Resuming:
		ok(s.linkLost());
		break;
	}
	REQUIRE(s.phase() == phase);
	return s;
}

const std::vector<Phase> kAllPhases = { Phase::Tracking, Phase::PreCopy,  Phase::Finalizing, Phase::PostCopy,
					Phase::Complete, Phase::Failed, Phase::Resuming };

} // namespace

TEST_CASE("the leecher's full path, with every phase reported", "[state]")
{
	MigrationState s(Role::Leecher);
	std::vector<std::pair<Phase, Phase>> seen;
	s.onChange([&](Phase from, Phase to) { seen.emplace_back(from, to); });
	CHECK(s.phase() == Phase::Tracking);
	REQUIRE(s.firstPassDone());
	REQUIRE(s.roundDone());
	REQUIRE(s.roundDone());
	CHECK(s.round() == 2);
	REQUIRE(s.beginFinalize());
	REQUIRE(s.commit());
	CHECK(s.owner());
	REQUIRE(s.complete());
	CHECK(s.phase() == Phase::Complete);
	CHECK(s.terminal());
	std::vector<std::pair<Phase, Phase>> want = {
		{ Phase::Tracking, Phase::PreCopy },   { Phase::PreCopy, Phase::PreCopy },
		{ Phase::PreCopy, Phase::PreCopy },    { Phase::PreCopy, Phase::Finalizing },
		{ Phase::Finalizing, Phase::PostCopy }, { Phase::PostCopy, Phase::Complete },
	};
	CHECK(seen == want);
}

TEST_CASE("the seeder's path, and a read-only copy's", "[state]")
{
	auto s = at(Phase::Complete, Role::Seeder);
	CHECK(s.role() == Role::Seeder);

	// A fork-many leecher that did not take ownership ends complete, not owner.
	MigrationState copy(Role::Leecher);
	REQUIRE(copy.firstPassDone());
	REQUIRE(copy.beginFinalize());
	REQUIRE(copy.commit(false));
	REQUIRE(copy.complete());
	CHECK_FALSE(copy.owner());
}

TEST_CASE("finalize before the first pass: allowed by default, refused when disabled", "[state]")
{
	MigrationState s(Role::Leecher);
	REQUIRE(s.beginFinalize());
	CHECK(s.phase() == Phase::Finalizing);
	// An abort goes back to the first pass, not to pre-copy.
	REQUIRE(s.abortFinalize());
	CHECK(s.phase() == Phase::Tracking);

	MigrationState strict(Role::Leecher, MigrationStateOptions{ .finalizeBeforeFirstPass = false });
	auto r = strict.beginFinalize();
	REQUIRE_FALSE(r);
	CHECK(r.error().code.value() == EBUSY);
	CHECK(r.error().message.find("first pass") != std::string::npos);
	CHECK(strict.phase() == Phase::Tracking);
	REQUIRE(strict.firstPassDone());
	REQUIRE(strict.beginFinalize());
}

TEST_CASE("an aborted finalize goes back to pre-copy and can be retried", "[state]")
{
	auto s = at(Phase::Finalizing);
	REQUIRE(s.abortFinalize());
	CHECK(s.phase() == Phase::PreCopy);
	REQUIRE(s.roundDone());
	REQUIRE(s.beginFinalize());
	REQUIRE(s.commit());
	CHECK(s.phase() == Phase::PostCopy);
}

TEST_CASE("a second finalize while one runs is refused", "[state]")
{
	auto s = at(Phase::Finalizing);
	auto r = s.beginFinalize();
	REQUIRE_FALSE(r);
	CHECK(r.error().code.value() == EALREADY);
}

TEST_CASE("link loss in tracking and pre-copy resumes where it was", "[state]")
{
	for (Phase p : { Phase::Tracking, Phase::PreCopy }) {
		auto s = at(p);
		REQUIRE(s.linkLost());
		CHECK(s.phase() == Phase::Resuming);
		CHECK(s.resumeFrom() == p);
		// A failed reconnect attempt leaves it resuming.
		REQUIRE(s.linkLost());
		CHECK(s.resumeFrom() == p);
		auto wrong = s.resume(Phase::PostCopy);
		REQUIRE_FALSE(wrong);
		CHECK(wrong.error().message.find("cannot resume into phase post-copy") != std::string::npos);
		REQUIRE(s.resume(p));
		CHECK(s.phase() == p);
	}
	// The rounds count on after a resume.
	auto s = at(Phase::PreCopy);
	REQUIRE(s.roundDone());
	REQUIRE(s.linkLost());
	REQUIRE(s.resume(Phase::PreCopy));
	REQUIRE(s.roundDone());
	CHECK(s.round() == 2);
}

TEST_CASE("link loss in post-copy resumes post-copy", "[state]")
{
	auto s = at(Phase::PostCopy);
	REQUIRE(s.linkLost());
	CHECK_FALSE(s.resume(Phase::PreCopy));
	REQUIRE(s.resume(Phase::PostCopy));
	CHECK(s.owner());
	REQUIRE(s.complete());
}

TEST_CASE("link loss in finalizing resumes as the peer says the handover ended", "[state]")
{
	SECTION("committed")
	{
		auto s = at(Phase::Finalizing);
		REQUIRE(s.linkLost());
		REQUIRE(s.resume(Phase::PostCopy));
		CHECK(s.owner());
	}
	SECTION("not committed")
	{
		auto s = at(Phase::Finalizing);
		REQUIRE(s.linkLost());
		CHECK_FALSE(s.resume(Phase::Tracking)); // the finalize started in pre-copy
		REQUIRE(s.resume(Phase::PreCopy));
		REQUIRE(s.beginFinalize());
	}
	SECTION("an early finalize not committed goes back to the first pass")
	{
		MigrationState s(Role::Leecher);
		REQUIRE(s.beginFinalize());
		REQUIRE(s.linkLost());
		CHECK_FALSE(s.resume(Phase::PreCopy));
		REQUIRE(s.resume(Phase::Tracking));
	}
}

TEST_CASE("every non-terminal phase can fail; the terminal ones accept nothing", "[state]")
{
	for (Phase p : kAllPhases) {
		auto s = at(p);
		if (p == Phase::Complete || p == Phase::Failed) {
			CHECK_FALSE(s.fail("again"));
			CHECK_FALSE(s.firstPassDone());
			CHECK_FALSE(s.roundDone());
			CHECK_FALSE(s.beginFinalize());
			CHECK_FALSE(s.abortFinalize());
			CHECK_FALSE(s.commit());
			CHECK_FALSE(s.complete());
			CHECK_FALSE(s.linkLost());
			CHECK_FALSE(s.resume(Phase::PreCopy));
			CHECK(s.phase() == p);
		} else {
			REQUIRE(s.fail("link gone for good"));
			CHECK(s.phase() == Phase::Failed);
			CHECK(s.failure() == "link gone for good");
		}
	}
}

TEST_CASE("illegal transitions are refused with a message naming the phase", "[state]")
{
	struct Case {
		Phase phase;
		const char *event;
		r3d::ResultMsg<void> (*run)(MigrationState &);
	};
	const std::vector<Case> cases = {
		{ Phase::Tracking, "end a pre-copy round", [](MigrationState &s) { return s.roundDone(); } },
		{ Phase::Tracking, "commit", [](MigrationState &s) { return s.commit(); } },
		{ Phase::Tracking, "complete", [](MigrationState &s) { return s.complete(); } },
		{ Phase::Tracking, "abort", [](MigrationState &s) { return s.abortFinalize(); } },
		{ Phase::Tracking, "resume", [](MigrationState &s) { return s.resume(Phase::Tracking); } },
		{ Phase::PreCopy, "end the first pass", [](MigrationState &s) { return s.firstPassDone(); } },
		{ Phase::PreCopy, "commit", [](MigrationState &s) { return s.commit(); } },
		{ Phase::PreCopy, "complete", [](MigrationState &s) { return s.complete(); } },
		{ Phase::Finalizing, "end a pre-copy round", [](MigrationState &s) { return s.roundDone(); } },
		{ Phase::Finalizing, "complete", [](MigrationState &s) { return s.complete(); } },
		{ Phase::PostCopy, "finalize", [](MigrationState &s) { return s.beginFinalize(); } },
		{ Phase::PostCopy, "end a pre-copy round", [](MigrationState &s) { return s.roundDone(); } },
		{ Phase::PostCopy, "abort", [](MigrationState &s) { return s.abortFinalize(); } },
		{ Phase::PostCopy, "commit", [](MigrationState &s) { return s.commit(); } },
		{ Phase::Resuming, "end a pre-copy round", [](MigrationState &s) { return s.roundDone(); } },
		{ Phase::Resuming, "finalize", [](MigrationState &s) { return s.beginFinalize(); } },
		{ Phase::Resuming, "complete", [](MigrationState &s) { return s.complete(); } },
		{ Phase::Resuming, "commit", [](MigrationState &s) { return s.commit(); } },
	};
	for (const auto &c : cases) {
		INFO(phaseName(c.phase) << ": " << c.event);
		auto s = at(c.phase);
		auto r = c.run(s);
		REQUIRE_FALSE(r);
		CHECK(r.error().code.value() == EINVAL);
		CHECK(r.error().message.find(c.event) != std::string::npos);
		CHECK(r.error().message.find(std::string("in phase ") + phaseName(c.phase)) != std::string::npos);
		CHECK(s.phase() == c.phase); // a refused event changes nothing
	}
}

TEST_CASE("phase and role names", "[state]")
{
	CHECK(std::string(phaseName(Phase::PreCopy)) == "pre-copy");
	CHECK(std::string(phaseName(Phase::PostCopy)) == "post-copy");
	CHECK(std::string(phaseName(Phase::Resuming)) == "resuming");
	CHECK(std::string(roleName(Role::Seeder)) == "seeder");
}
