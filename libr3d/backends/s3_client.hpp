#pragma once

#include <chrono>
#include <memory>
#include <semaphore>
#include <span>
#include <string>
#include <vector>

#include <r3d/result.hpp>

#include "backends/chunk_store.hpp"

namespace r3d {
class Runtime;
class ThreadPool;
}

namespace r3d::backends {

struct S3Config {
	std::string endpoint; ///< "http://127.0.0.1:4568"; path-style requests
	std::string region = "us-east-1";
	std::string bucket;
	std::string accessKey;
	std::string secretKey;
	std::string sessionToken;
	unsigned parallel = 16; ///< requests in flight at most, over all callers
	std::chrono::milliseconds timeout{ 30000 }; ///< connecting, and a transfer without progress
	RetryPolicy retry;
	/// Requests run on its blocking pool (the caller's process's); without one, on a pool of
	/// `parallel` threads of the client's own.
	Runtime *runtime = nullptr;
};

/// One object request; the results are filled in by S3Client::run().
struct S3Request {
	enum class Method { Get, Put, Delete };

	Method method = Method::Get;
	std::string key;                 ///< empty: the bucket itself (a listing)
	std::string query;               ///< after '?', already escaped, names in sorted order
	std::span<std::byte> into;       ///< GET: the object, which must fill it exactly
	std::string *text = nullptr;     ///< GET: the body goes here instead (up to kMaxText)
	std::span<const std::byte> body; ///< PUT
	bool exact = true;               ///< GET: false accepts an object shorter than `into`

	bool missing = false; ///< GET: no such object (`into` is zero-filled)
	size_t received = 0;
	int error = 0;
};

/// An object of a listing.
struct S3Object {
	std::string key;
	uint64_t size = 0;
};

/// S3 over libcurl: SigV4 signing (CURLOPT_AWS_SIGV4) with the payload's SHA-256 in
/// x-amz-content-sha256, path-style URLs, a bounded set of threads each keeping its own
/// connection. Transient failures (no connection, 5xx, SlowDown) are retried until the
/// deadline; other HTTP errors map to an errno, with the S3 error code in the log.
class S3Client
{
public:
	static ResultMsg<std::unique_ptr<S3Client>> create(S3Config config);
	~S3Client();
	S3Client(const S3Client &) = delete;
	S3Client &operator=(const S3Client &) = delete;

	/// Runs the requests in parallel and waits for all; returns the first error. The
	/// calling thread takes requests of its own batch too, so a caller that is itself a
	/// thread of the shared pool never waits on a pool that is full of callers.
	Result<void> run(std::span<S3Request> requests);
	/// Every object whose key starts with `prefix` (ListObjectsV2, page by page).
	ResultMsg<std::vector<S3Object>> list(const std::string &prefix);

	/// The most a listing page (or any `text` body) may hold.
	static constexpr size_t kMaxText = 8 * 1024 * 1024;

	/// "s3://BUCKET (ENDPOINT)", for messages.
	const std::string &where() const { return where_; }

private:
	explicit S3Client(S3Config config);
	struct Batch;
	Attempt perform(S3Request &r);
	/// Takes requests of `batch` until none is left; each in one of `parallel` slots.
	void work(Batch &batch);
	ThreadPool &pool();

	S3Config config_;
	std::string where_;
	std::string userPassword_;
	std::string sigv4_;
	std::unique_ptr<ThreadPool> pool_; ///< only without config_.runtime
	std::counting_semaphore<> slots_;  ///< `parallel` requests in flight, over all callers
};

} // namespace r3d::backends
