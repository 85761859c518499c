#pragma once

// One dirty source, N leechers (fork-many): each leecher needs its own rounds, so a chunk
// one leecher has taken must stay dirty for the others. The fanout owns the source; a view's
// take() first drains the source into every started view's bitmap and then takes its own,
// under one mutex, so no write is lost to any view and none is reported twice to one view.
// A view started later sees only the writes from its start on (its first pass reads the rest).

#include <memory>
#include <mutex>
#include <vector>

#include "migration/dirty_source.hpp"
#include "stages/bitmap.hpp"

namespace r3d::migration {

class DirtyFanout : public std::enable_shared_from_this<DirtyFanout>
{
public:
	static std::shared_ptr<DirtyFanout> create(std::shared_ptr<DirtySource> source);

	/// A new view, not started; it keeps the fanout alive.
	std::shared_ptr<DirtySource> addView();
	/// Views started now.
	size_t activeViews() const;

private:
	class View;
	explicit DirtyFanout(std::shared_ptr<DirtySource> source) : source_(std::move(source)) {}

	/// Moves what the source recorded into every started view. Holds mutex_.
	Result<void> drainLocked();
	Result<void> startView(View &view);
	void stopView(View &view);
	Result<DirtyRound> takeView(View &view);
	Result<void> requeueView(View &view, const std::vector<uint64_t> &chunks);
	uint64_t pendingView(const View &view) const;

	std::shared_ptr<DirtySource> source_;
	mutable std::mutex mutex_;
	std::vector<View *> views_; ///< started views
};

} // namespace r3d::migration
