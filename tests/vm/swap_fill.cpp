// swap_fill MIB
//
// The program of the swap guest test: maps MIB MiB of anonymous memory, fills every 8-byte
// word from a seeded generator, then reads it all back and checks each word against the
// generator again. Given more than the guest's RAM, it completes only if what went out to
// swap comes back intact. The check runs from the last word to the first: the pages written
// last are still in RAM, so each page that went out comes back once, instead of a forward
// scan evicting every page just before it is needed (the LRU worst case). Prints "OK MIB MiB checksum HEX fill S s verify S s"; exit 1 on
// the first wrong word.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <sys/mman.h>

namespace {

/// splitmix64: cheap enough that the time goes to the memory and the swap, not to this.
uint64_t word(uint64_t i)
{
	uint64_t z = i * 0x9e3779b97f4a7c15ull + 0x5eed;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

double since(std::chrono::steady_clock::time_point t)
{
	return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

} // namespace

int main(int argc, char **argv)
{
	if (argc != 2) {
		std::fprintf(stderr, "usage: swap_fill MIB\n");
		return 2;
	}
	uint64_t mib = std::strtoull(argv[1], nullptr, 10);
	uint64_t words = (mib << 20) / sizeof(uint64_t);
	void *m = mmap(nullptr, mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) {
		std::perror("swap_fill: mmap");
		return 1;
	}
	auto *p = static_cast<uint64_t *>(m);
	auto t0 = std::chrono::steady_clock::now();
	uint64_t sum = 0;
	for (uint64_t i = 0; i < words; ++i) {
		p[i] = word(i);
		sum += p[i];
	}
	double fill = since(t0);
	asm volatile("" ::: "memory"); // the checks below read the memory, not what was just computed
	auto t1 = std::chrono::steady_clock::now();
	uint64_t check = 0;
	for (uint64_t i = words; i-- > 0;) {
		if (p[i] != word(i)) {
			std::fprintf(stderr, "swap_fill: word %llu (MiB %llu) is %016llx, not %016llx\n",
				     static_cast<unsigned long long>(i), static_cast<unsigned long long>(i * 8 >> 20),
				     static_cast<unsigned long long>(p[i]), static_cast<unsigned long long>(word(i)));
			return 1;
		}
		check += p[i];
	}
	if (check != sum) {
		std::fprintf(stderr, "swap_fill: checksum %016llx, wrote %016llx\n", static_cast<unsigned long long>(check),
			     static_cast<unsigned long long>(sum));
		return 1;
	}
	std::printf("OK %llu MiB checksum %016llx fill %.1f s verify %.1f s\n", static_cast<unsigned long long>(mib),
		    static_cast<unsigned long long>(sum), fill, since(t1));
	return 0;
}
