// The gRPC baseline's client: an nbdkit plugin that turns each NBD request into one unary
// call of block.proto's Block service, so nbdcopy and fio drive gRPC through the same NBD
// front end (nbdkit, --threads requests in flight) as nbdkit's own nbd plugin.
//
//   nbdkit --threads 64 ./nbdkit-r3grpc-plugin.so host=10.0.0.2 port=7800 [channels=2]
//
// channels: TCP connections (one gRPC channel each, calls spread round-robin), like r3://'s
// connections=.
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include <nbdkit-plugin.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "block.grpc.pb.h"

namespace {

constexpr int kMaxMessage = 80 << 20;

std::string host_ = "127.0.0.1";
std::string port_ = "7800";
int channels_ = 2;
std::vector<std::unique_ptr<r3bench::v1::Block::Stub>> stubs_;
std::atomic<unsigned> next_{0};

r3bench::v1::Block::Stub &stub()
{
	return *stubs_[next_.fetch_add(1, std::memory_order_relaxed) % stubs_.size()];
}

int failed(const grpc::Status &status)
{
	nbdkit_error("grpc: %s", status.error_message().c_str());
	nbdkit_set_error(EIO);
	return -1;
}

int config(const char *key, const char *value)
{
	if (std::strcmp(key, "host") == 0)
		host_ = value;
	else if (std::strcmp(key, "port") == 0)
		port_ = value;
	else if (std::strcmp(key, "channels") == 0 && std::atoi(value) > 0)
		channels_ = std::atoi(value);
	else {
		nbdkit_error("unknown or bad parameter '%s'", key);
		return -1;
	}
	return 0;
}

// gRPC's threads do not survive a fork: connect after nbdkit has forked, if it does.
int afterFork()
{
	for (int i = 0; i < channels_; i++) {
		grpc::ChannelArguments args;
		args.SetMaxReceiveMessageSize(kMaxMessage);
		args.SetMaxSendMessageSize(kMaxMessage);
		// Without this, channels to one address share one subchannel: one TCP connection.
		args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
		args.SetInt("r3bench.channel", i);
		stubs_.push_back(r3bench::v1::Block::NewStub(grpc::CreateCustomChannel(
			host_ + ":" + port_, grpc::InsecureChannelCredentials(), args)));
	}
	return 0;
}

void *open(int)
{
	static int handle;
	return &handle;
}

int64_t getSize(void *)
{
	grpc::ClientContext context;
	r3bench::v1::SizeReply reply;
	grpc::Status status = stub().Size(&context, {}, &reply);
	if (!status.ok())
		return failed(status);
	return static_cast<int64_t>(reply.size());
}

int pread(void *, void *buf, uint32_t count, uint64_t offset, uint32_t)
{
	grpc::ClientContext context;
	r3bench::v1::ReadRequest request;
	request.set_offset(offset);
	request.set_length(count);
	r3bench::v1::ReadReply reply;
	grpc::Status status = stub().Read(&context, request, &reply);
	if (!status.ok())
		return failed(status);
	if (reply.data().size() != count) {
		nbdkit_error("grpc: short read");
		nbdkit_set_error(EIO);
		return -1;
	}
	std::memcpy(buf, reply.data().data(), count);
	return 0;
}

int pwrite(void *, const void *buf, uint32_t count, uint64_t offset, uint32_t)
{
	grpc::ClientContext context;
	r3bench::v1::WriteRequest request;
	request.set_offset(offset);
	request.set_data(buf, count);
	r3bench::v1::WriteReply reply;
	grpc::Status status = stub().Write(&context, request, &reply);
	return status.ok() ? 0 : failed(status);
}

int flush(void *, uint32_t)
{
	grpc::ClientContext context;
	r3bench::v1::FlushReply reply;
	grpc::Status status = stub().Flush(&context, {}, &reply);
	return status.ok() ? 0 : failed(status);
}

int canFlush(void *)
{
	return 1;
}

int canMultiConn(void *)
{
	return 1;
}

nbdkit_plugin plugin = [] {
	nbdkit_plugin p{};
	p.name = "r3grpc";
	p.description = "the r3map benchmark's gRPC block service";
	p.config = config;
	p.config_help = "host=HOST port=PORT [channels=N]";
	p.after_fork = afterFork;
	p.open = open;
	p.get_size = getSize;
	p.pread = pread;
	p.pwrite = pwrite;
	p.flush = flush;
	p.can_flush = canFlush;
	p.can_multi_conn = canMultiConn;
	return p;
}();

} // namespace

NBDKIT_REGISTER_PLUGIN(plugin)
