#include "migration/round_ledger.hpp"

#include <catch2/catch.hpp>

#include "migration/dirty_fanout.hpp"
#include "migration/tracking_dirty_source.hpp"
#include "backends/memory_backend.hpp"
#include "test_support.hpp"

using namespace r3d;
using namespace r3d::migration;

namespace {

DirtyRound roundOf(uint64_t n, std::vector<uint64_t> chunks)
{
	return DirtyRound{ n, std::move(chunks), 0 };
}

} // namespace

TEST_CASE("ledger: confirmed rounds are forgotten, unconfirmed ones come back on resume", "[ledger][resume]")
{
	RoundLedger l;
	REQUIRE(l.sent(roundOf(1, { 1, 2 })));
	REQUIRE(l.sent(roundOf(2, { 2, 5 })));
	REQUIRE(l.confirmed(1));
	CHECK(l.unconfirmed() == 1);
	REQUIRE(l.sent(roundOf(3, { 9 })));
	// The link goes; the leecher had received round 2's list but not round 3's.
	auto again = l.resume(2);
	REQUIRE(again);
	CHECK(*again == std::vector<uint64_t>{ 9 });
	CHECK(l.unconfirmed() == 0);
	CHECK(l.lastConfirmed() == 2);
	// Round numbers go on growing after the cut.
	CHECK_FALSE(l.sent(roundOf(3, { 9 })));
	REQUIRE(l.sent(roundOf(4, { 9 })));
}

TEST_CASE("ledger: a resume before any confirmation returns every list, once each chunk", "[ledger][resume]")
{
	RoundLedger l;
	REQUIRE(l.sent(roundOf(1, { 4, 1 })));
	REQUIRE(l.sent(roundOf(2, { 1, 7 })));
	auto again = l.resume(0);
	REQUIRE(again);
	CHECK(*again == std::vector<uint64_t>{ 1, 4, 7 });
}

TEST_CASE("ledger: refusals", "[ledger]")
{
	RoundLedger l(2);
	REQUIRE(l.sent(roundOf(1, {})));
	REQUIRE(l.sent(roundOf(2, {})));
	auto full = l.sent(roundOf(3, {}));
	REQUIRE_FALSE(full);
	CHECK(full.error().code.value() == EBUSY);
	CHECK(l.confirmed(5).error().code.value() == ESTALE);
	CHECK(l.resume(5).error().code.value() == ESTALE);
	REQUIRE(l.confirmed(2));
	REQUIRE(l.confirmed(1)); // an older, repeated confirmation changes nothing
	CHECK(l.lastConfirmed() == 2);
	CHECK(l.resume(1).error().code.value() == ESTALE); // it had confirmed 2
	CHECK(l.sent(roundOf(2, {})).error().code.value() == EINVAL);
}

TEST_CASE("ledger and view: a list lost with the link is not lost", "[ledger][resume]")
{
	auto memory = std::shared_ptr<ReadWriterAt>(std::move(backends::MemoryBackend::create(16 * 4096).value()));
	auto tracker = std::make_shared<stages::TrackingReadWriterAt>(memory, 4096);
	auto fanout = DirtyFanout::create(std::make_shared<TrackingDirtySource>(tracker));
	auto view = fanout->addView();
	REQUIRE(view->start());
	RoundLedger l;
	auto data = r3test::pattern(10, 1);
	REQUIRE(tracker->writeAt(data, 3 * 4096));
	auto r1 = view->take();
	REQUIRE(l.sent(*r1)); // ... and the link drops before the leecher gets it
	REQUIRE(tracker->writeAt(data, 6 * 4096));
	auto lost = l.resume(0);
	REQUIRE(lost);
	REQUIRE(view->requeue(*lost));
	auto r2 = view->take();
	CHECK(r2->chunks == std::vector<uint64_t>{ 3, 6 });
	CHECK(r2->round > r1->round);
	REQUIRE(l.sent(*r2));
}
