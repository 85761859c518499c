#include "migration/dirty_fanout.hpp"

#include <algorithm>

namespace r3d::migration {

class DirtyFanout::View final : public DirtySource
{
public:
	explicit View(std::shared_ptr<DirtyFanout> fanout)
		: fanout_(std::move(fanout)), dirty_(fanout_->source_->chunkCount())
	{
	}
	~View() override { stop(); }

	uint64_t regionSize() const override { return fanout_->source_->regionSize(); }
	uint64_t chunkSize() const override { return fanout_->source_->chunkSize(); }
	Result<void> start() override { return fanout_->startView(*this); }
	void stop() override { fanout_->stopView(*this); }
	bool started() const override
	{
		std::lock_guard lock(fanout_->mutex_);
		return started_;
	}
	Result<DirtyRound> take() override { return fanout_->takeView(*this); }
	Result<void> requeue(const std::vector<uint64_t> &chunks) override { return fanout_->requeueView(*this, chunks); }
	uint64_t pendingChunks() const override { return fanout_->pendingView(*this); }
	uint64_t round() const override
	{
		std::lock_guard lock(fanout_->mutex_);
		return round_;
	}

	std::shared_ptr<DirtyFanout> fanout_;
	stages::Bitmap dirty_;
	bool started_ = false;
	uint64_t round_ = 0;
};

std::shared_ptr<DirtyFanout> DirtyFanout::create(std::shared_ptr<DirtySource> source)
{
	return std::shared_ptr<DirtyFanout>(new DirtyFanout(std::move(source)));
}

std::shared_ptr<DirtySource> DirtyFanout::addView()
{
	return std::make_shared<View>(shared_from_this());
}

size_t DirtyFanout::activeViews() const
{
	std::lock_guard lock(mutex_);
	return views_.size();
}

Result<void> DirtyFanout::drainLocked()
{
	if (views_.empty() || !source_->started())
		return {};
	auto taken = source_->take();
	if (!taken)
		return unexpected(taken.error());
	for (View *v : views_)
		for (uint64_t c : taken->chunks)
			v->dirty_.set(c);
	return {};
}

Result<void> DirtyFanout::startView(View &view)
{
	std::lock_guard lock(mutex_);
	if (view.started_)
		return unexpected(EALREADY);
	if (!source_->started()) {
		R3D_TRY(source_->start());
	} else {
		// What was written before this view started belongs to the views already running.
		R3D_TRY(drainLocked());
	}
	view.dirty_.clearAll();
	view.round_ = 0;
	view.started_ = true;
	views_.push_back(&view);
	return {};
}

void DirtyFanout::stopView(View &view)
{
	std::lock_guard lock(mutex_);
	if (!view.started_)
		return;
	// The others must not lose what the source holds when it stops.
	(void)drainLocked();
	view.started_ = false;
	view.dirty_.clearAll();
	views_.erase(std::remove(views_.begin(), views_.end(), &view), views_.end());
	if (views_.empty())
		source_->stop();
}

Result<DirtyRound> DirtyFanout::takeView(View &view)
{
	std::lock_guard lock(mutex_);
	if (!view.started_)
		return unexpected(ENOTCONN);
	R3D_TRY(drainLocked());
	DirtyRound r;
	r.round = ++view.round_;
	r.chunks = view.dirty_.take();
	r.bytes = chunkBytes(r.chunks, source_->regionSize(), source_->chunkSize());
	return r;
}

Result<void> DirtyFanout::requeueView(View &view, const std::vector<uint64_t> &chunks)
{
	std::lock_guard lock(mutex_);
	if (!view.started_)
		return unexpected(ENOTCONN);
	// Only this view's leecher lacks them; the others keep their own rounds.
	for (uint64_t c : chunks)
		if (c < view.dirty_.size())
			view.dirty_.set(c);
	return {};
}

uint64_t DirtyFanout::pendingView(const View &view) const
{
	std::lock_guard lock(mutex_);
	if (!view.started_)
		return 0;
	// Racy upper bound: the source's pending chunks may overlap the view's own.
	return view.dirty_.count() + source_->pendingChunks();
}

} // namespace r3d::migration
