#pragma once

#include <memory>
#include <string>

#include <r3d/read_writer_at.hpp>

namespace r3d {

class Runtime;

/// Opens a backend from its URI, the project's contract used by every command:
///   memory:SIZE                         sparse RAM disk, e.g. memory:256M
///   file:PATH  file:PATH?size=1G        file or block device; with size: create/extend
///   dir:PATH?size=1G&chunk=64K          one file per chunk
///   r3://HOST[:PORT]/NAME?tls-ca=..     an r3serve --r3 export over r3map's transport
///   redis://HOST[:PORT]/PREFIX?size=1G  one Redis key per chunk
///   s3://BUCKET/PREFIX?endpoint=URL&size=1G  one S3 object per chunk
/// A malformed URI, an unknown scheme or parameter, size 0 or a size that does not fit
/// fails with a message naming the problem. Network clients (r3://) run on `runtime`, which
/// must outlive the backend; without one, on a small process-wide runtime (for tools and
/// tests: r3mapd and r3serve pass their own).
ResultMsg<std::shared_ptr<ReadWriterAt>> openBackend(const std::string &uri, Runtime *runtime = nullptr);

/// The schemes openBackend() knows, for usage messages.
std::string knownSchemes();

} // namespace r3d
