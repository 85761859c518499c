// r3-nfq-delay QUEUE DELAY_MS: holds every packet of netfilter queue QUEUE for DELAY_MS,
// then lets it pass. A latency emulator for kernels without netem: put it on the
// RECEIVING side (iptables -t raw -A PREROUTING -i IF -j NFQUEUE --queue-num QUEUE
// --queue-bypass), where skbs are orphaned, so TCP small queues do not throttle the sender.
//
// The delay is constant, so packets leave in arrival order: a FIFO of (id, due time), a
// ppoll() with nanosecond timeout until the head is due, and one batch verdict that
// accepts every due packet at once.

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <string>

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <sys/socket.h>

#include <libnetfilter_queue/libnetfilter_queue.h>

namespace {

constexpr size_t kMaxHeld = 1 << 16;

struct Held {
	uint32_t id;
	uint64_t due;
};

struct State {
	uint64_t delayNs = 0;
	std::deque<Held> held;
	uint64_t passed = 0;
	uint64_t overflow = 0;
};

volatile sig_atomic_t stopRequested = 0;

uint64_t nowNs()
{
	timespec t{};
	clock_gettime(CLOCK_MONOTONIC, &t);
	return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
}

int onPacket(nfq_q_handle *queue, nfgenmsg *, nfq_data *packet, void *data)
{
	auto &s = *static_cast<State *>(data);
	uint32_t id = ntohl(nfq_get_msg_packet_hdr(packet)->packet_id);
	if (s.held.size() >= kMaxHeld) {
		s.overflow++; // better late than never: pass it undelayed
		return nfq_set_verdict(queue, id, NF_ACCEPT, 0, nullptr);
	}
	s.held.push_back(Held{ id, nowNs() + s.delayNs });
	return 0;
}

// Accepts every held packet that is due (all of them when `all`).
void release(State &s, nfq_q_handle *queue, bool all)
{
	uint64_t now = nowNs();
	uint32_t last = 0;
	size_t n = 0;
	while (!s.held.empty() && (all || s.held.front().due <= now)) {
		last = s.held.front().id;
		s.held.pop_front();
		n++;
	}
	if (n > 0) {
		nfq_set_verdict_batch(queue, last, NF_ACCEPT);
		s.passed += n;
	}
}

bool parseNumber(const char *text, double &out)
{
	char *end = nullptr;
	errno = 0;
	out = std::strtod(text, &end);
	return errno == 0 && end != text && *end == '\0' && out >= 0;
}

} // namespace

int main(int argc, char **argv)
{
	double queueNum = 0, delayMs = 0;
	if (argc != 3 || !parseNumber(argv[1], queueNum) || !parseNumber(argv[2], delayMs) || queueNum > 65535 ||
	    delayMs > 10000) {
		std::fprintf(stderr, "usage: r3-nfq-delay QUEUE DELAY_MS   (QUEUE 0..65535, DELAY_MS 0..10000, may be fractional)\n");
		return 2;
	}
	State s;
	s.delayNs = static_cast<uint64_t>(delayMs * 1e6);
	struct sigaction sa {};
	sa.sa_handler = [](int) { stopRequested = 1; };
	sigaction(SIGTERM, &sa, nullptr);
	sigaction(SIGINT, &sa, nullptr);

	nfq_handle *h = nfq_open();
	if (!h) {
		std::fprintf(stderr, "r3-nfq-delay: nfq_open: %s (needs CAP_NET_ADMIN)\n", std::strerror(errno));
		return 1;
	}
	nfq_q_handle *queue = nfq_create_queue(h, static_cast<uint16_t>(queueNum), onPacket, &s);
	if (!queue) {
		std::fprintf(stderr, "r3-nfq-delay: queue %u: %s\n", static_cast<unsigned>(queueNum), std::strerror(errno));
		nfq_close(h);
		return 1;
	}
	nfq_set_mode(queue, NFQNL_COPY_META, 0);
	nfq_set_queue_maxlen(queue, kMaxHeld);
	nfnl_rcvbufsiz(nfq_nfnlh(h), 64 << 20);
	int fd = nfq_fd(h);
	std::fprintf(stderr, "r3-nfq-delay: queue %u, delay %.3f ms\n", static_cast<unsigned>(queueNum), delayMs);

	alignas(8) static char buf[1 << 16];
	while (!stopRequested) {
		timespec timeout{};
		timespec *wait = nullptr;
		if (!s.held.empty()) {
			uint64_t now = nowNs(), due = s.held.front().due;
			uint64_t left = due > now ? due - now : 0;
			timeout.tv_sec = static_cast<time_t>(left / 1000000000ull);
			timeout.tv_nsec = static_cast<long>(left % 1000000000ull);
			wait = &timeout;
		}
		pollfd p{ fd, POLLIN, 0 };
		int ready = ppoll(&p, 1, wait, nullptr);
		if (ready < 0 && errno != EINTR)
			break;
		if (ready > 0) {
			for (;;) {
				ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
				if (n <= 0)
					break; // ENOBUFS means the kernel dropped some: they time out upstream
				nfq_handle_packet(h, buf, static_cast<int>(n));
			}
		}
		release(s, queue, false);
	}
	release(s, queue, true);
	std::fprintf(stderr, "r3-nfq-delay: passed=%llu overflow=%llu\n", static_cast<unsigned long long>(s.passed),
		     static_cast<unsigned long long>(s.overflow));
	nfq_destroy_queue(queue);
	nfq_close(h);
	return 0;
}
