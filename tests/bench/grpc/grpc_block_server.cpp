// The gRPC baseline's server: serves one file through block.proto's Block service with
// gRPC's synchronous server (its own thread pool), pread/pwrite per call.
//
//   r3-grpc-block-server --listen HOST:PORT FILE
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include "block.grpc.pb.h"

namespace {

// Bigger than any request nbdcopy or fio sends (nbdkit caps a request at 64 MiB).
constexpr int kMaxMessage = 80 << 20;

class BlockService final : public r3bench::v1::Block::Service {
public:
	explicit BlockService(int fd, uint64_t size) : fd_(fd), size_(size) {}

	grpc::Status Size(grpc::ServerContext *, const r3bench::v1::SizeRequest *,
			  r3bench::v1::SizeReply *reply) override
	{
		reply->set_size(size_);
		return grpc::Status::OK;
	}

	grpc::Status Read(grpc::ServerContext *, const r3bench::v1::ReadRequest *request,
			  r3bench::v1::ReadReply *reply) override
	{
		if (!inRange(request->offset(), request->length()))
			return {grpc::StatusCode::OUT_OF_RANGE, "read past the end"};
		std::string *data = reply->mutable_data();
		data->resize(request->length());
		return io(pread(fd_, data->data(), data->size(), static_cast<off_t>(request->offset())),
			  data->size());
	}

	grpc::Status Write(grpc::ServerContext *, const r3bench::v1::WriteRequest *request,
			   r3bench::v1::WriteReply *) override
	{
		const std::string &data = request->data();
		if (!inRange(request->offset(), data.size()))
			return {grpc::StatusCode::OUT_OF_RANGE, "write past the end"};
		return io(pwrite(fd_, data.data(), data.size(), static_cast<off_t>(request->offset())),
			  data.size());
	}

	grpc::Status Flush(grpc::ServerContext *, const r3bench::v1::FlushRequest *,
			   r3bench::v1::FlushReply *) override
	{
		return io(fdatasync(fd_) == 0 ? 0 : -1, 0);
	}

private:
	bool inRange(uint64_t offset, uint64_t length) const
	{
		return offset <= size_ && length <= size_ - offset;
	}

	static grpc::Status io(ssize_t done, size_t want)
	{
		if (done < 0)
			return {grpc::StatusCode::INTERNAL, strerror(errno)};
		if (static_cast<size_t>(done) != want)
			return {grpc::StatusCode::INTERNAL, "short transfer"};
		return grpc::Status::OK;
	}

	int fd_;
	uint64_t size_;
};

} // namespace

int main(int argc, char **argv)
{
	if (argc != 4 || std::string(argv[1]) != "--listen") {
		std::fprintf(stderr, "usage: %s --listen HOST:PORT FILE\n", argv[0]);
		return 2;
	}
	int fd = open(argv[3], O_RDWR | O_CLOEXEC);
	struct stat st {};
	if (fd < 0 || fstat(fd, &st) != 0) {
		std::fprintf(stderr, "%s: %s\n", argv[3], strerror(errno));
		return 1;
	}
	BlockService service(fd, static_cast<uint64_t>(st.st_size));
	grpc::ServerBuilder builder;
	builder.AddListeningPort(argv[2], grpc::InsecureServerCredentials());
	builder.SetMaxReceiveMessageSize(kMaxMessage);
	builder.SetMaxSendMessageSize(kMaxMessage);
	builder.RegisterService(&service);
	std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
	if (!server) {
		std::fprintf(stderr, "cannot listen on %s\n", argv[2]);
		return 1;
	}
	server->Wait();
	return 0;
}
