// Epoch fencing of the two-phase handover: the seeder's arbiter and the leecher's checks,
// alone and exchanging their messages, with failures injected at every step.

#include "migration/leecher_handover.hpp"
#include "migration/seeder_handover.hpp"

#include <string>

#include <catch2/catch.hpp>

using namespace r3d::migration;
using namespace std::chrono_literals;

namespace {

const std::string kId = "mig-1";

struct FakeClock {
	std::chrono::steady_clock::time_point now{};
	SeederHandover::Clock fn()
	{
		return [this] { return now; };
	}
};

FinalizeRequest requestOf(const std::string &leecher, uint64_t epoch)
{
	return FinalizeRequest{ kId, leecher, epoch, 3 };
}

FinalizeCommit commitOf(const std::string &leecher, uint64_t epoch)
{
	return FinalizeCommit{ kId, leecher, epoch };
}

MigrationHelloReply helloOf(const SeederHandover &a, const std::string &leecher)
{
	MigrationHelloReply r;
	r.migrationId = a.migrationId();
	r.regionSize = 1 << 20;
	r.chunkSize = 4096;
	r.epoch = a.epoch();
	r.handedOver = a.handedOver() && a.owner() == leecher;
	return r;
}

DirtyList finalListOf(uint64_t epoch)
{
	return DirtyList{ 7, epoch, ChunkWindow{ 0, 256, { 3, 4, 9 } }, true };
}

} // namespace

TEST_CASE("seeder: request, lock, commit; after the commit it never writes again", "[handover]")
{
	SeederHandover a(kId);
	CHECK(a.epoch() == 1);
	CHECK(a.mayWrite());
	REQUIRE(a.checkWrite());
	CHECK(a.join("B") == LeecherStanding::Candidate);

	auto proposed = a.request(requestOf("B", 1));
	REQUIRE(proposed);
	CHECK(*proposed == 2);
	CHECK(a.proposed() == 2);
	CHECK(a.finalizing() == "B");
	CHECK(a.standing("B") == LeecherStanding::Finalizing);
	// Locked for the handover: no writes, but still the owner.
	CHECK_FALSE(a.mayWrite());
	CHECK(a.checkWrite().error().code.value() == EBUSY);
	CHECK(a.epoch() == 1);

	REQUIRE(a.commit(commitOf("B", 2)));
	CHECK(a.handedOver());
	CHECK(a.owner() == "B");
	CHECK(a.epoch() == 2);
	CHECK(a.standing("B") == LeecherStanding::Owner);

	// Nothing gives the seeder its writes back.
	CHECK_FALSE(a.abort("B", "late failure"));
	CHECK_FALSE(a.expire());
	CHECK(a.request(requestOf("B", 2)).error().code.value() == EPERM);
	CHECK_FALSE(a.mayWrite());
	auto w = a.checkWrite();
	REQUIRE_FALSE(w);
	CHECK(w.error().code.value() == EROFS);
	CHECK(w.error().message.find("never writes again") != std::string::npos);
	// The owner resending its commit (its ack was lost) is told it went through.
	REQUIRE(a.commit(commitOf("B", 2)));
	CHECK(a.commit(commitOf("C", 2)).error().code.value() == EPERM);
}

TEST_CASE("seeder: a stale or foreign request is refused and leaves the seeder the owner", "[handover]")
{
	SeederHandover a(kId, 5);
	a.join("B");
	auto stale = a.request(requestOf("B", 4));
	REQUIRE_FALSE(stale);
	CHECK(stale.error().code.value() == ESTALE);
	CHECK(stale.error().message.find("current one is 5") != std::string::npos);
	CHECK(a.request(requestOf("B", 6)).error().code.value() == ESTALE);
	CHECK(a.request(FinalizeRequest{ "other", "B", 5, 0 }).error().code.value() == ENOENT);
	CHECK(a.request(requestOf("stranger", 5)).error().code.value() == ENOTCONN);
	CHECK(a.mayWrite());
	CHECK(a.finalizing().empty());
}

TEST_CASE("seeder: a failure before the commit returns ownership, and the dead proposal stays dead",
	  "[handover]")
{
	SeederHandover a(kId);
	a.join("B");
	REQUIRE(a.request(requestOf("B", 1)));
	REQUIRE(a.abort("B", "leecher link lost"));
	CHECK(a.mayWrite());
	REQUIRE(a.checkWrite());
	CHECK(a.epoch() == 1);
	CHECK(a.lastAbort() == "leecher link lost");
	CHECK(a.standing("B") == LeecherStanding::Candidate);

	// The commit of the aborted proposal arrives late: stale, the seeder keeps writing.
	auto late = a.commit(commitOf("B", 2));
	REQUIRE_FALSE(late);
	CHECK(late.error().code.value() == ESTALE);
	CHECK(a.mayWrite());

	// A new attempt gets a fresh epoch, so the old commit can never match it.
	auto again = a.request(requestOf("B", 1));
	REQUIRE(again);
	CHECK(*again == 3);
	CHECK(a.commit(commitOf("B", 2)).error().code.value() == ESTALE);
	CHECK_FALSE(a.handedOver());
	REQUIRE(a.commit(commitOf("B", 3)));
	CHECK(a.epoch() == 3);
}

TEST_CASE("seeder: no commit within the timeout gives ownership back", "[handover]")
{
	FakeClock clock;
	SeederHandover a(kId, 1, SeederHandoverOptions{ .commitTimeout = 10s }, clock.fn());
	a.join("B");
	REQUIRE(a.request(requestOf("B", 1)));
	clock.now += 9s;
	CHECK_FALSE(a.expire());
	CHECK_FALSE(a.mayWrite());
	clock.now += 1s;
	CHECK(a.expire());
	CHECK(a.mayWrite());
	CHECK(a.lastAbort().find("timeout") != std::string::npos);
	CHECK(a.commit(commitOf("B", 2)).error().code.value() == ESTALE);
	CHECK_FALSE(a.expire());
}

TEST_CASE("seeder: of two leechers only one can take ownership; the other ends a read-only copy",
	  "[handover][fork-many]")
{
	SeederHandover a(kId);
	a.join("B1");
	a.join("B2");
	CHECK(a.leechers() == 2);
	REQUIRE(a.request(requestOf("B1", 1)));

	auto second = a.request(requestOf("B2", 1));
	REQUIRE_FALSE(second);
	CHECK(second.error().code.value() == EBUSY);
	CHECK(second.error().message.find("B1 is finalizing") != std::string::npos);
	CHECK(a.request(requestOf("B1", 1)).error().code.value() == EALREADY);
	// B2's commit cannot steal the proposal either.
	CHECK(a.commit(commitOf("B2", 2)).error().code.value() == ESTALE);

	REQUIRE(a.commit(commitOf("B1", 2)));
	CHECK(a.standing("B1") == LeecherStanding::Owner);
	CHECK(a.standing("B2") == LeecherStanding::ReadOnlyCopy);
	auto late = a.request(requestOf("B2", 2));
	REQUIRE_FALSE(late);
	CHECK(late.error().code.value() == EPERM);
	CHECK(late.error().message.find("read-only copy") != std::string::npos);
	// A leecher arriving after the handover can only be a copy; a reconnect keeps its standing.
	CHECK(a.join("B3") == LeecherStanding::ReadOnlyCopy);
	CHECK(a.join("B1") == LeecherStanding::Owner);
	a.leave("B1");
	CHECK(a.standing("B1") == LeecherStanding::Owner);
}

TEST_CASE("seeder: once the first leecher's finalize fails, another may take ownership", "[handover][fork-many]")
{
	SeederHandover a(kId);
	a.join("B1");
	a.join("B2");
	REQUIRE(a.request(requestOf("B1", 1)));
	REQUIRE(a.abort("B1", "suspend hook failed"));
	auto p = a.request(requestOf("B2", 1));
	REQUIRE(p);
	REQUIRE(a.commit(commitOf("B2", *p)));
	CHECK(a.owner() == "B2");
	CHECK(a.standing("B1") == LeecherStanding::ReadOnlyCopy);
}

TEST_CASE("leecher: writes only after the commit ack", "[handover]")
{
	SeederHandover a(kId);
	LeecherHandover b(kId, "B");
	a.join("B");
	REQUIRE(b.welcomed(helloOf(a, "B")));
	CHECK(b.epoch() == 1);

	auto req = b.request(3);
	REQUIRE(req);
	CHECK(req->epoch == 1);
	auto proposed = a.request(*req);
	REQUIRE(proposed);
	REQUIRE(b.acked(FinalizeAck{ 0, "", *proposed, 3 }));
	CHECK(b.step() == LeecherHandover::Step::Receiving);
	CHECK_FALSE(b.commit()); // not before the whole final list
	REQUIRE(b.finalList(DirtyList{ 7, *proposed, ChunkWindow{ 0, 256, { 1 } }, false }));
	REQUIRE(b.finalList(finalListOf(*proposed)));
	auto commit = b.commit();
	REQUIRE(commit);
	CHECK_FALSE(b.mayWrite());
	REQUIRE(a.commit(*commit));
	CHECK_FALSE(b.mayWrite()); // still waiting for the ack
	REQUIRE(b.commitAcked(FinalizeCommitAck{ 0, "", a.epoch() }));
	CHECK(b.mayWrite());
	CHECK(b.epoch() == 2);
	CHECK_FALSE(a.mayWrite());
}

TEST_CASE("leecher: stale epochs are rejected", "[handover]")
{
	LeecherHandover b(kId, "B");
	CHECK(b.request(0).error().code.value() == ENOTCONN); // no epoch known yet
	MigrationHelloReply hello{ 0, "", kId, 1 << 20, 4096, 4, 0, false };
	REQUIRE(b.welcomed(hello));

	SECTION("an ack not newer than the known epoch")
	{
		REQUIRE(b.request(0));
		auto r = b.acked(FinalizeAck{ 0, "", 4, 0 });
		REQUIRE_FALSE(r);
		CHECK(r.error().code.value() == ESTALE);
		CHECK(b.step() == LeecherHandover::Step::Idle);
	}
	SECTION("a final list of another proposal")
	{
		REQUIRE(b.request(0));
		REQUIRE(b.acked(FinalizeAck{ 0, "", 5, 0 }));
		auto r = b.finalList(finalListOf(6));
		REQUIRE_FALSE(r);
		CHECK(r.error().code.value() == ESTALE);
		CHECK_FALSE(b.commit());
	}
	SECTION("a commit ack of another epoch")
	{
		REQUIRE(b.request(0));
		REQUIRE(b.acked(FinalizeAck{ 0, "", 5, 0 }));
		REQUIRE(b.finalList(finalListOf(5)));
		REQUIRE(b.commit());
		CHECK(b.commitAcked(FinalizeCommitAck{ 0, "", 6 }).error().code.value() == ESTALE);
		CHECK_FALSE(b.mayWrite());
	}
	SECTION("a seeder older than the known epoch")
	{
		hello.epoch = 3;
		CHECK(b.welcomed(hello).error().code.value() == ESTALE);
	}
	SECTION("a hello for another migration")
	{
		hello.migrationId = "other";
		CHECK(b.welcomed(hello).error().code.value() == ENOENT);
	}
	SECTION("a refused finalize comes back as the seeder's error")
	{
		REQUIRE(b.request(0));
		auto r = b.acked(FinalizeAck{ EBUSY, "leecher C is finalizing", 0, 0 });
		REQUIRE_FALSE(r);
		CHECK(r.error().code.value() == EBUSY);
		CHECK(r.error().message.find("leecher C") != std::string::npos);
		REQUIRE(b.request(0)); // may ask again
	}
}

TEST_CASE("leecher: a lost commit ack is settled by the next hello", "[handover]")
{
	for (bool acceptedBeforeLoss : { true, false }) {
		INFO("seeder accepted the commit: " << acceptedBeforeLoss);
		SeederHandover a(kId);
		LeecherHandover b(kId, "B");
		a.join("B");
		REQUIRE(b.welcomed(helloOf(a, "B")));
		auto p = a.request(*b.request(0));
		REQUIRE(b.acked(FinalizeAck{ 0, "", *p, 0 }));
		REQUIRE(b.finalList(finalListOf(*p)));
		auto commit = b.commit();
		REQUIRE(commit);
		if (acceptedBeforeLoss)
			REQUIRE(a.commit(*commit));
		else
			REQUIRE(a.abort("B", "leecher link lost")); // the commit never arrived
		// The link goes; the leecher cannot know which it was, so it does not write.
		b.abort();
		CHECK(b.step() == LeecherHandover::Step::Committing);
		CHECK_FALSE(b.mayWrite());
		CHECK_FALSE((a.mayWrite() && b.mayWrite()));
		// The reconnect's hello tells.
		a.join("B");
		REQUIRE(b.welcomed(helloOf(a, "B")));
		CHECK(b.mayWrite() == acceptedBeforeLoss);
		CHECK(a.mayWrite() == !acceptedBeforeLoss);
	}
}

TEST_CASE("leecher: a restarted owner learns from the hello that it owns", "[handover]")
{
	SeederHandover a(kId);
	a.join("B");
	REQUIRE(a.request(requestOf("B", 1)));
	REQUIRE(a.commit(commitOf("B", 2)));
	LeecherHandover restarted(kId, "B");
	REQUIRE(restarted.welcomed(helloOf(a, "B")));
	CHECK(restarted.mayWrite());
	CHECK(restarted.epoch() == 2);
	// Another leecher is not told so, and stays read-only.
	LeecherHandover other(kId, "C");
	REQUIRE(other.welcomed(helloOf(a, "C")));
	CHECK_FALSE(other.mayWrite());
	// An owner told it does not own refuses the seeder.
	MigrationHelloReply denial = helloOf(a, "C");
	CHECK(restarted.welcomed(denial).error().code.value() == ESTALE);
	CHECK(restarted.mayWrite());
}

TEST_CASE("handover with a failure at every step: never two writers, always one owner", "[handover]")
{
	// Where the link breaks: 0 never, 1 before the request reaches A, 2 after A locked but
	// before B got the ack, 3 during the final list, 4 before A got the commit, 5 after A
	// accepted the commit but before B got the ack.
	for (int cut = 0; cut <= 5; ++cut) {
		INFO("cut at step " << cut);
		FakeClock clock;
		SeederHandover a(kId, 1, SeederHandoverOptions{ .commitTimeout = 5s }, clock.fn());
		LeecherHandover b(kId, "B");
		auto neverTwo = [&] { REQUIRE_FALSE((a.mayWrite() && b.mayWrite())); };
		a.join("B");
		REQUIRE(b.welcomed(helloOf(a, "B")));
		neverTwo();

		auto req = b.request(2);
		REQUIRE(req);
		bool broken = false;
		if (cut == 1) {
			broken = true;
		} else {
			auto p = a.request(*req);
			REQUIRE(p);
			neverTwo();
			if (cut == 2) {
				broken = true;
			} else {
				REQUIRE(b.acked(FinalizeAck{ 0, "", *p, 2 }));
				REQUIRE(b.finalList(DirtyList{ 2, *p, ChunkWindow{ 0, 256, { 5 } }, false }));
				if (cut == 3) {
					broken = true;
				} else {
					REQUIRE(b.finalList(finalListOf(*p)));
					auto c = b.commit();
					REQUIRE(c);
					neverTwo();
					if (cut == 4) {
						broken = true;
					} else {
						REQUIRE(a.commit(*c));
						neverTwo();
						if (cut == 5)
							broken = true;
						else
							REQUIRE(b.commitAcked(FinalizeCommitAck{ 0, "", a.epoch() }));
					}
				}
			}
		}
		if (broken) {
			b.abort();
			neverTwo();
			// A learns nothing; its commit timeout (or the link loss) gives it its writes back
			// if it had not accepted the commit.
			clock.now += 6s;
			(void)a.expire();
			neverTwo();
			REQUIRE(b.welcomed(helloOf(a, "B")));
			neverTwo();
		}
		// Exactly one owner in the end.
		CHECK((a.mayWrite() != b.mayWrite()));
		CHECK(b.mayWrite() == (cut == 0 || cut == 5));
	}
}

TEST_CASE("seeder: admit checks the hello against the region and builds the reply", "[handover]")
{
	SeederHandover a(kId);
	const RegionShape region{ 1 << 20, 4096 };
	auto hello = [](std::string id, uint64_t size, uint64_t chunk, uint64_t epoch) {
		return MigrationHello{ kMigrationVersion, std::move(id), "B", size, chunk, epoch };
	};
	auto reply = a.admit(hello(kId, 0, 0, 0), region, 0);
	REQUIRE(reply);
	CHECK(reply->epoch == 1);
	CHECK(reply->regionSize == region.size);
	CHECK(reply->chunkSize == region.chunk);
	CHECK_FALSE(reply->handedOver);
	CHECK(a.leechers() == 1);

	auto size = a.admit(hello(kId, 2 << 20, 4096, 0), region, 0);
	REQUIRE_FALSE(size);
	CHECK(size.error().code.value() == EINVAL);
	CHECK(size.error().message.find("expects a region of 2097152 bytes, the seeder's has 1048576") != std::string::npos);
	CHECK(a.admit(hello(kId, 1 << 20, 65536, 0), region, 0).error().message.find("65536-byte chunks")
	      != std::string::npos);
	CHECK(a.admit(hello("other", 0, 0, 0), region, 0).error().code.value() == ENOENT);
	CHECK(a.admit(hello(kId, 0, 0, 7), region, 0).error().code.value() == ESTALE);

	// After the handover the owner's reconnect is told it owns, at the new epoch.
	REQUIRE(a.request(requestOf("B", 1)));
	REQUIRE(a.commit(commitOf("B", 2)));
	auto again = a.admit(hello(kId, 1 << 20, 4096, 1), region, 4);
	REQUIRE(again);
	CHECK(again->handedOver);
	CHECK(again->epoch == 2);
	CHECK(again->round == 4);
}

TEST_CASE("seeder: the finalizing leecher reconnecting aborts its handover at once", "[handover]")
{
	SeederHandover a(kId);
	LeecherHandover b(kId, "B");
	a.join("B");
	REQUIRE(b.welcomed(helloOf(a, "B")));
	auto p = a.request(*b.request(0));
	REQUIRE(p);
	REQUIRE(b.acked(FinalizeAck{ 0, "", *p, 0 }));
	REQUIRE(b.finalList(finalListOf(*p)));
	auto commit = b.commit();
	REQUIRE(commit);
	// The link goes before the commit reaches A; B reconnects before A's timeout.
	CHECK(a.join("B") == LeecherStanding::Candidate);
	CHECK(a.mayWrite());
	CHECK(a.lastAbort().find("reconnected") != std::string::npos);
	REQUIRE(b.welcomed(helloOf(a, "B")));
	CHECK(b.step() == LeecherHandover::Step::Idle);
	CHECK(a.commit(*commit).error().code.value() == ESTALE); // the old commit, if it ever came
	// B may try again at once.
	auto p2 = a.request(*b.request(0));
	REQUIRE(p2);
	CHECK(*p2 > *p);
}

TEST_CASE("standing names", "[handover]")
{
	CHECK(std::string(standingName(LeecherStanding::ReadOnlyCopy)) == "read-only copy");
}
