#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

#include "stages/lockable_read_writer_at.hpp"

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
	/// The gate in front of the lender's backend, under everything that reads and writes
	/// it (device or clients, regions, `pipeline` itself). Replacing what it leads to
	/// diverts the lender's I/O (a migration seeder's tracking front).
	std::shared_ptr<r3d::stages::LockableReadWriterAt> diverter;
};

/// Lends the pipeline of the lender's object ID (MountManager::lease, ExportManager::lease).
using PipelineLender = std::function<r3d::ResultMsg<PipelineLease>(const std::string &id)>;

} // namespace r3mapd
