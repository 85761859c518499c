// r3todo: a TODO list server whose whole state is one file, so that the file's region can be
// migrated between hosts while the server runs. It uses nothing of r3map: plain pread,
// pwrite and fdatasync on a file (here a file of an nbdfuse mount of an r3migrate export).
//
//   r3todo serve STATE SOCKET      serve the list kept in STATE on the UNIX socket SOCKET
//   r3todo SOCKET add TEXT | done ID | list | pause | quit
//
// pause flushes the state and refuses changes from then on (the migration's finalize hook);
// the server on the new host is started against its copy of the file and goes on.

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

constexpr char kMagic[8] = { 'R', '3', 'T', 'O', 'D', 'O', '1', '\0' };
constexpr off_t kItemsAt = 4096;

/// Block 0 of the state file. Zeroes (a fresh region) mean an empty list.
struct Header {
	char magic[8];
	uint32_t count;
	uint32_t nextId;
};

/// One record per item after the header; an item's record is written before the header
/// that counts it, so a torn update never shows a half-written item.
struct Item {
	uint32_t id;
	uint32_t done;
	char text[120];
};

[[noreturn]] void die(const char *what)
{
	std::fprintf(stderr, "r3todo: %s: %s\n", what, std::strerror(errno));
	std::exit(1);
}

bool readAll(int fd, void *p, size_t n, off_t at)
{
	auto *b = static_cast<char *>(p);
	while (n > 0) {
		ssize_t r = pread(fd, b, n, at);
		if (r <= 0)
			return false;
		b += r, n -= static_cast<size_t>(r), at += r;
	}
	return true;
}

bool writeAll(int fd, const void *p, size_t n, off_t at)
{
	const auto *b = static_cast<const char *>(p);
	while (n > 0) {
		ssize_t r = pwrite(fd, b, n, at);
		if (r <= 0)
			return false;
		b += r, n -= static_cast<size_t>(r), at += r;
	}
	return true;
}

class TodoList {
public:
	explicit TodoList(const char *path)
	{
		fd_ = open(path, O_RDWR);
		if (fd_ < 0)
			die(path);
		off_t size = lseek(fd_, 0, SEEK_END);
		capacity_ = size > kItemsAt ? static_cast<uint32_t>((size - kItemsAt) / sizeof(Item)) : 0;
		if (!readAll(fd_, &header_, sizeof header_, 0))
			die("reading the header");
		if (std::memcmp(header_.magic, kMagic, sizeof kMagic) != 0) {
			header_ = {};
			std::memcpy(header_.magic, kMagic, sizeof kMagic);
			header_.nextId = 1;
			if (!writeAll(fd_, &header_, sizeof header_, 0) || fdatasync(fd_) != 0)
				die("writing the header");
		}
	}

	std::string add(const std::string &text)
	{
		if (header_.count >= capacity_)
			return "error: the list is full\n";
		Item it{};
		it.id = header_.nextId;
		std::snprintf(it.text, sizeof it.text, "%s", text.c_str());
		Header h = header_;
		h.count++, h.nextId++;
		if (!writeAll(fd_, &it, sizeof it, itemAt(header_.count)) || !writeAll(fd_, &h, sizeof h, 0) ||
		    fdatasync(fd_) != 0)
			return "error: " + std::string(std::strerror(errno)) + "\n";
		header_ = h;
		return "added " + std::to_string(it.id) + "\n";
	}

	std::string done(uint32_t id)
	{
		for (uint32_t i = 0; i < header_.count; ++i) {
			Item it;
			if (!readAll(fd_, &it, sizeof it, itemAt(i)))
				return "error: read\n";
			if (it.id != id)
				continue;
			it.done = 1;
			if (!writeAll(fd_, &it, sizeof it, itemAt(i)) || fdatasync(fd_) != 0)
				return "error: " + std::string(std::strerror(errno)) + "\n";
			return "ok\n";
		}
		return "error: no item " + std::to_string(id) + "\n";
	}

	std::string list()
	{
		std::string out;
		for (uint32_t i = 0; i < header_.count; ++i) {
			Item it;
			if (!readAll(fd_, &it, sizeof it, itemAt(i)))
				return "error: read\n";
			it.text[sizeof it.text - 1] = '\0';
			out += std::to_string(it.id) + (it.done ? " [x] " : " [ ] ") + it.text + "\n";
		}
		return out;
	}

	/// Everything written so far is on the region; nothing is written after this.
	std::string pause()
	{
		if (fdatasync(fd_) != 0)
			return "error: " + std::string(std::strerror(errno)) + "\n";
		return "paused\n";
	}

private:
	static off_t itemAt(uint32_t i) { return kItemsAt + static_cast<off_t>(i) * sizeof(Item); }

	int fd_ = -1;
	uint32_t capacity_ = 0;
	Header header_{};
};

sockaddr_un address(const char *path)
{
	sockaddr_un a{};
	a.sun_family = AF_UNIX;
	if (std::strlen(path) >= sizeof a.sun_path) {
		errno = ENAMETOOLONG;
		die(path);
	}
	std::strcpy(a.sun_path, path);
	return a;
}

/// One command per connection: a line in, the answer out, then the server closes.
int serve(const char *state, const char *path)
{
	TodoList list(state);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sockaddr_un a = address(path);
	unlink(path);
	if (s < 0 || bind(s, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 || listen(s, 16) != 0)
		die(path);
	std::printf("serving %s on %s\n", state, path);
	std::fflush(stdout);
	bool paused = false;
	for (;;) {
		int c = accept4(s, nullptr, nullptr, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			die("accept");
		}
		std::string line;
		char ch;
		while (read(c, &ch, 1) == 1 && ch != '\n')
			line += ch;
		std::string cmd = line.substr(0, line.find(' '));
		std::string arg = line.size() > cmd.size() ? line.substr(cmd.size() + 1) : "";
		std::string reply;
		bool quit = false;
		if (cmd == "list")
			reply = list.list();
		else if ((cmd == "add" || cmd == "done") && paused)
			reply = "error: paused for migration\n";
		else if (cmd == "add")
			reply = list.add(arg);
		else if (cmd == "done")
			reply = list.done(static_cast<uint32_t>(std::strtoul(arg.c_str(), nullptr, 10)));
		else if (cmd == "pause")
			paused = (reply = list.pause()) == "paused\n";
		else if (cmd == "quit")
			reply = "bye\n", quit = true;
		else
			reply = "error: unknown command '" + cmd + "'\n";
		for (size_t off = 0; off < reply.size();) {
			ssize_t n = send(c, reply.data() + off, reply.size() - off, MSG_NOSIGNAL);
			if (n <= 0)
				break;
			off += static_cast<size_t>(n);
		}
		close(c);
		if (quit)
			break;
	}
	close(s);
	unlink(path);
	return 0;
}

int client(int argc, char **argv)
{
	std::string line = argv[2];
	for (int i = 3; i < argc; ++i)
		line += std::string(" ") + argv[i];
	line += "\n";
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sockaddr_un a = address(argv[1]);
	if (s < 0 || connect(s, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0)
		die(argv[1]);
	if (send(s, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
		die("send");
	std::string reply;
	char buf[4096];
	for (ssize_t n; (n = read(s, buf, sizeof buf)) > 0;)
		reply.append(buf, static_cast<size_t>(n));
	std::fwrite(reply.data(), 1, reply.size(), stdout);
	return reply.starts_with("error:") ? 1 : 0;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc == 4 && std::string(argv[1]) == "serve")
		return serve(argv[2], argv[3]);
	if (argc >= 3)
		return client(argc, argv);
	std::fprintf(stderr, "usage: r3todo serve STATE SOCKET\n       r3todo SOCKET add TEXT|done ID|list|pause|quit\n");
	return 2;
}
