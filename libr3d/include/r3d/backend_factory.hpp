#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <r3d/backend_uri.hpp>
#include <r3d/read_writer_at.hpp>

namespace r3d {

class Runtime;

/// What a caller sets for the URIs it opens where they set nothing of their own.
struct OpenDefaults {
	/// deadline= of the network schemes (r3, redis, s3): how long one call may take
	/// before it fails with EIO. 0 leaves each backend's own default (60 s).
	std::chrono::milliseconds callDeadline{ 0 };
};

/// Puts `defaults` into `uri` where it has no such parameter and its scheme takes one.
/// uri.text stays as given, so messages show the user's URI.
void applyOpenDefaults(BackendUri &uri, const OpenDefaults &defaults);

/// Opens a backend from its URI, the project's contract used by every command:
///   memory:SIZE                         sparse RAM disk, e.g. memory:256M
///   file:PATH  file:PATH?size=1G        file or block device; with size: create/extend
///   dir:PATH?size=1G&chunk=64K          one file per chunk
///   r3://HOST[:PORT]/NAME?tls-ca=..     an r3serve --r3 export over r3map's transport
///   redis://HOST[:PORT]/PREFIX?size=1G  one Redis key per chunk
///   s3://BUCKET/PREFIX?endpoint=URL&size=1G  one S3 object per chunk
///   fault+URI?fault-eio=0.01&...        URI behind a stage that injects faults
///                                       (stages/faulting_read_writer_at.hpp)
/// A malformed URI, an unknown scheme or parameter, size 0 or a size that does not fit
/// fails with a message naming the problem. Network clients (r3://) run on `runtime`, which
/// must outlive the backend; without one, on a small process-wide runtime (for tools and
/// tests: r3mapd and r3serve pass their own).
ResultMsg<std::shared_ptr<ReadWriterAt>> openBackend(const std::string &uri, Runtime *runtime = nullptr,
						     const OpenDefaults &defaults = {});

/// The prefix that puts the fault stage in front of a backend.
inline constexpr std::string_view kFaultPrefix = "fault+";

/// `uri` without the fault+ prefix and its fault-* parameters: what the inner backend gets.
std::string faultInnerUri(const std::string &uri);

/// The schemes openBackend() knows, for usage messages.
std::string knownSchemes();

} // namespace r3d
