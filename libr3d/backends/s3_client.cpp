#include "backends/s3_client.hpp"

#include <cstring>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <mutex>

#include <curl/curl.h>
#include <fmt/format.h>
#include <openssl/evp.h>

#include <r3d/log.hpp>

#include "base/hex.hpp"
#include "base/runtime.hpp"
#include "base/thread_pool.hpp"

namespace r3d::backends {

namespace {

constexpr const char *kComponent = "s3";
constexpr size_t kMaxErrorBody = 16 * 1024;

struct CurlDeleter {
	void operator()(CURL *c) const { curl_easy_cleanup(c); }
};

// One handle per worker thread, so each keeps its connection alive between requests.
CURL *threadHandle()
{
	thread_local std::unique_ptr<CURL, CurlDeleter> handle(curl_easy_init());
	return handle.get();
}

std::string sha256Hex(std::span<const std::byte> data)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int length = 0;
	EVP_Digest(data.data(), data.size(), md, &length, EVP_sha256(), nullptr);
	return toHex({md, length});
}

std::string xmlField(const std::string &xml, const char *tag)
{
	std::string open = fmt::format("<{}>", tag), close = fmt::format("</{}>", tag);
	auto a = xml.find(open);
	auto b = xml.find(close);
	if (a == std::string::npos || b == std::string::npos || b < a)
		return {};
	return xml.substr(a + open.size(), b - a - open.size());
}

const char *methodName(S3Request::Method m)
{
	switch (m) {
	case S3Request::Method::Get:
		return "GET";
	case S3Request::Method::Put:
		return "PUT";
	case S3Request::Method::Delete:
		return "DELETE";
	}
	return "?";
}

// Where a response body goes: the request's buffer on success, `error` otherwise.
struct Sink {
	S3Request *request;
	CURL *curl;
	std::string error;
	bool overflow = false;
};

size_t onBody(char *data, size_t size, size_t count, void *user)
{
	auto *sink = static_cast<Sink *>(user);
	size_t n = size * count;
	long status = 0;
	curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 300) {
		sink->error.append(data, std::min(n, kMaxErrorBody - std::min(kMaxErrorBody, sink->error.size())));
		return n;
	}
	S3Request &r = *sink->request;
	if (r.method != S3Request::Method::Get)
		return n;
	if (r.text) {
		if (r.text->size() + n > S3Client::kMaxText) {
			sink->overflow = true;
			return 0;
		}
		r.text->append(data, n);
		return n;
	}
	if (r.received + n > r.into.size()) {
		sink->overflow = true;
		return 0; // aborts the transfer
	}
	std::memcpy(r.into.data() + r.received, data, n);
	r.received += n;
	return n;
}

// Failures of the link or the server that a later attempt may not meet; the rest (a bad
// URL, a certificate that does not verify, an option curl lacks) would fail the same way.
bool curlTransient(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_AGAIN:
		return true;
	default:
		return false;
	}
}

int curlErrno(CURLcode rc)
{
	switch (rc) {
	case CURLE_OUT_OF_MEMORY:
		return ENOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_BAD_FUNCTION_ARGUMENT:
		return EINVAL;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_LOGIN_DENIED:
		return EACCES;
	default:
		return EIO;
	}
}

// HTTP status and S3 code to errno, for failures a retry cannot cure.
int errnoFor(long status, const std::string &code)
{
	if (status == 403 || code == "AccessDenied" || code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch")
		return EACCES;
	if (status == 404)
		return ENOENT;
	if (status == 409)
		return EBUSY;
	if (status == 413 || code == "EntityTooLarge")
		return EFBIG;
	if (status == 400)
		return EINVAL;
	return EIO;
}

// RFC 3986 unreserved characters stay, the rest is %XX, as SigV4's canonical query wants.
std::string queryEscape(const std::string &text)
{
	std::string out;
	for (unsigned char c : text) {
		if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
			out += static_cast<char>(c);
		else
			out += fmt::format("%{:02X}", c);
	}
	return out;
}

std::string xmlUnescape(std::string text)
{
	static const std::pair<const char *, char> entities[] = {
		{ "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' }, { "&amp;", '&' },
	};
	for (const auto &[entity, c] : entities)
		for (size_t at = 0; (at = text.find(entity, at)) != std::string::npos; ++at)
			text.replace(at, std::strlen(entity), 1, c);
	return text;
}

} // namespace

S3Client::S3Client(S3Config config)
	: config_(std::move(config)), slots_(static_cast<std::ptrdiff_t>(config_.parallel))
{
	where_ = fmt::format("s3://{} ({})", config_.bucket, config_.endpoint);
	userPassword_ = config_.accessKey + ":" + config_.secretKey;
	sigv4_ = fmt::format("aws:amz:{}:s3", config_.region);
}

S3Client::~S3Client() = default;

ResultMsg<std::unique_ptr<S3Client>> S3Client::create(S3Config config)
{
	static std::once_flag curlInit;
	std::call_once(curlInit, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
	if (config.parallel == 0 || config.parallel > 256)
		return fail(EINVAL, "s3: parallel must be in 1 .. 256");
	if (config.accessKey.empty() || config.secretKey.empty())
		return fail(EACCES, "s3: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
	std::unique_ptr<S3Client> client(new S3Client(std::move(config)));
	if (!client->config_.runtime)
		client->pool_ = std::make_unique<ThreadPool>(client->config_.parallel);
	return client;
}

Attempt S3Client::perform(S3Request &r)
{
	CURL *c = threadHandle();
	if (!c)
		return Attempt::failed(ENOMEM);
	curl_easy_reset(c);
	r.received = 0;
	r.missing = false;
	Sink sink{ &r, c, {}, false };
	if (r.text)
		r.text->clear();
	std::string url = r.key.empty() ? fmt::format("{}/{}", config_.endpoint, config_.bucket)
					: fmt::format("{}/{}/{}", config_.endpoint, config_.bucket, r.key);
	if (!r.query.empty())
		url += "?" + r.query;
	auto payload = r.method == S3Request::Method::Put ? r.body : std::span<const std::byte>{};
	std::string shaHeader = "x-amz-content-sha256: " + sha256Hex(payload);
	curl_slist *headers = curl_slist_append(nullptr, shaHeader.c_str());
	headers = curl_slist_append(headers, "Expect:");
	std::string tokenHeader = "x-amz-security-token: " + config_.sessionToken;
	if (!config_.sessionToken.empty())
		headers = curl_slist_append(headers, tokenHeader.c_str());

	curl_easy_setopt(c, CURLOPT_URL, url.c_str());
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4_.c_str());
	curl_easy_setopt(c, CURLOPT_USERPWD, userPassword_.c_str());
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config_.timeout.count()));
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(std::max<int64_t>(1, config_.timeout.count() / 1000)));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, onBody);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	switch (r.method) {
	case S3Request::Method::Get:
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
		break;
	case S3Request::Method::Put:
		headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload.empty() ? "" : reinterpret_cast<const char *>(payload.data()));
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
		break;
	case S3Request::Method::Delete:
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
		break;
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	CURLcode rc = curl_easy_perform(c);
	curl_slist_free_all(headers);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	std::string what = fmt::format("{} {}", methodName(r.method), r.key);

	if (sink.overflow) {
		log::get(kComponent)->error("{}: {}: the object is larger than {} bytes", where_, what,
					    r.text ? kMaxText : r.into.size());
		return Attempt::failed(EIO);
	}
	if (rc != CURLE_OK) {
		if (curlTransient(rc))
			return Attempt::transient(fmt::format("{}: {}", what, curl_easy_strerror(rc)));
		log::get(kComponent)->error("{}: {}: {}", where_, what, curl_easy_strerror(rc));
		return Attempt::failed(curlErrno(rc));
	}
	std::string code = xmlField(sink.error, "Code");
	if (status >= 200 && status < 300) {
		if (r.method == S3Request::Method::Get && !r.text && r.exact && r.received != r.into.size()) {
			log::get(kComponent)->error("{}: {}: the object has {} bytes, expected {}", where_, what, r.received,
						    r.into.size());
			return Attempt::failed(EIO);
		}
		return Attempt::done();
	}
	if (status == 404 && code == "NoSuchKey" && r.method != S3Request::Method::Put) {
		if (r.method == S3Request::Method::Get && !r.text)
			std::memset(r.into.data(), 0, r.into.size());
		r.missing = true;
		return Attempt::done();
	}
	std::string message = xmlField(sink.error, "Message");
	if (status >= 500 || code == "SlowDown" || code == "RequestTimeout")
		return Attempt::transient(fmt::format("{}: HTTP {} {} {}", what, status, code, message));
	log::get(kComponent)->error("{}: {}: HTTP {} {}: {}", where_, what, status, code.empty() ? "(no code)" : code,
				    message);
	return Attempt::failed(errnoFor(status, code));
}

struct S3Client::Batch {
	std::span<S3Request> requests;
	std::atomic<size_t> next{ 0 };
	std::mutex mutex;
	std::condition_variable finished;
	size_t done = 0;
};

ThreadPool &S3Client::pool()
{
	return config_.runtime ? config_.runtime->blocking() : *pool_;
}

void S3Client::work(Batch &batch)
{
	for (;;) {
		// A helper that starts after the batch was taken returns here and never touches
		// the caller's requests, which may be gone by then.
		size_t i = batch.next.fetch_add(1);
		if (i >= batch.requests.size())
			return;
		S3Request &r = batch.requests[i];
		slots_.acquire();
		auto result = retry(config_.retry, kComponent, where_, [&] { return perform(r); });
		slots_.release();
		r.error = result ? 0 : result.error().value();
		std::lock_guard lock(batch.mutex);
		if (++batch.done == batch.requests.size())
			batch.finished.notify_all();
	}
}

Result<void> S3Client::run(std::span<S3Request> requests)
{
	if (requests.empty())
		return {};
	auto batch = std::make_shared<Batch>();
	batch->requests = requests;
	size_t helpers = std::min<size_t>(requests.size(), config_.parallel) - 1;
	for (size_t i = 0; i < helpers; ++i)
		pool().post([this, batch] { work(*batch); });
	work(*batch);
	{
		std::unique_lock lock(batch->mutex);
		batch->finished.wait(lock, [&] { return batch->done == requests.size(); });
	}
	for (const auto &r : requests)
		if (r.error)
			return unexpected(r.error);
	return {};
}

ResultMsg<std::vector<S3Object>> S3Client::list(const std::string &prefix)
{
	std::vector<S3Object> objects;
	std::string token, text;
	for (;;) {
		S3Request r;
		r.text = &text;
		// Query names in sorted order: continuation-token < list-type < prefix.
		if (!token.empty())
			r.query = "continuation-token=" + queryEscape(token) + "&";
		r.query += "list-type=2&prefix=" + queryEscape(prefix);
		if (auto ok = run(std::span(&r, 1)); !ok)
			return fail(ok.error(), fmt::format("{}: cannot list '{}': {} (see the log for the S3 error)", where_,
							    prefix, ok.error().message()));
		if (r.missing)
			return fail(ENOENT, fmt::format("{}: cannot list '{}': no such bucket", where_, prefix));
		for (size_t at = 0; (at = text.find("<Contents>", at)) != std::string::npos;) {
			size_t end = text.find("</Contents>", at);
			if (end == std::string::npos)
				return fail(EIO, fmt::format("{}: a listing of '{}' is cut short", where_, prefix));
			std::string entry = text.substr(at, end - at);
			S3Object o{ xmlUnescape(xmlField(entry, "Key")), 0 };
			std::string size = xmlField(entry, "Size");
			auto [p, ec] = std::from_chars(size.data(), size.data() + size.size(), o.size);
			if (o.key.empty() || ec != std::errc() || p != size.data() + size.size())
				return fail(EIO, fmt::format("{}: a listing of '{}' has an entry without key or size", where_,
							     prefix));
			objects.push_back(std::move(o));
			at = end;
		}
		if (xmlField(text, "IsTruncated") != "true")
			return objects;
		token = xmlUnescape(xmlField(text, "NextContinuationToken"));
		if (token.empty())
			return fail(EIO, fmt::format("{}: a truncated listing of '{}' has no continuation token", where_,
						     prefix));
	}
}

} // namespace r3d::backends
