#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <r3d/read_writer_at.hpp>

namespace r3mapd {

/// The pipeline of a mount or export, lent to something else that reads and writes through
/// it (a memory region mapped from mount:ID or export:ID) instead of opening the backend a
/// second time. While `hold` lives the lender refuses to go away (Busy): the pipeline
/// stays open under its borrower.
struct PipelineLease {
	std::shared_ptr<r3d::ReadWriterAt> pipeline;
	std::shared_ptr<void> hold;
	std::string name; ///< "mount 3", for messages
	std::string backendUri; ///< the lender's backend, for Region1.Backend
	bool readOnly = false;  ///< nothing may be written back through it
};

} // namespace r3mapd
