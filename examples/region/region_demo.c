/*
 * r3map-region-demo: maps the region `r3ctl map URI --size S -- r3map-region-demo MODE`
 * describes (R3MAP_REGION_URI, R3MAP_REGION_SIZE, R3MAP_REGION_SOCKET) through the C ABI
 * of <r3d/region.h>, and uses it as plain memory.
 *
 * MODE:
 *   pattern  every 4 KiB page holds its number + 1 (8 bytes, little endian) then 0xa5
 *            bytes (tests/integration/region/ writes such files): check every page, write,
 *            read back, MADV_DONTNEED a page and see the backend's bytes again, sync.
 *   zeros    the backend is zeros (memory:SIZE): check, write a pattern, read it back.
 *   slow [FIRST]  check the pattern page by page from page FIRST, 20 ms apart, printing
 *            "touched N"; a SIGBUS
 *            prints "SIGBUS at page N" and exits 42, a zero page prints "ZEROS" and exits 43.
 *   hold     map, print "mapped ID", wait until stdin closes.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <r3d/region.h>

#define PAGE 4096u

static volatile uint64_t current_page;

static void on_sigbus(int sig)
{
	(void)sig;
	char msg[64];
	int n = snprintf(msg, sizeof msg, "SIGBUS at page %llu\n", (unsigned long long)current_page);
	(void)!write(1, msg, (size_t)n);
	_exit(42);
}

static int page_ok(const unsigned char *p, uint64_t page)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v == page + 1 && p[8] == 0xa5 && p[PAGE - 1] == 0xa5;
}

static int all_zero(const unsigned char *p)
{
	for (unsigned i = 0; i < PAGE; ++i)
		if (p[i])
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "pattern";
	const char *uri = getenv("R3MAP_REGION_URI");
	const char *size_text = getenv("R3MAP_REGION_SIZE");
	if (!uri || !size_text) {
		fprintf(stderr, "r3map-region-demo: run me with r3ctl map URI --size SIZE -- %s MODE\n", argv[0]);
		return 2;
	}
	uint64_t size = strtoull(size_text, NULL, 10);
	r3d_region *region;
	int rc = r3d_region_map(uri, size, NULL, &region);
	if (rc != 0) {
		fprintf(stderr, "r3map-region-demo: %s (%s)\n", r3d_region_last_error(), strerror(-rc));
		return 1;
	}
	unsigned char *p = r3d_region_data(region);
	uint64_t pages = size / PAGE;
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGBUS, on_sigbus);
	printf("mapped %s\n", r3d_region_id(region));

	if (strcmp(mode, "pattern") == 0) {
		for (uint64_t i = 0; i < pages; ++i)
			if (!page_ok(p + i * PAGE, i)) {
				printf("page %llu is wrong%s\n", (unsigned long long)i, all_zero(p + i * PAGE) ? " (zeros)" : "");
				return 1;
			}
		memset(p, 0x11, PAGE);
		memset(p + PAGE, 0x22, PAGE);
		if (p[0] != 0x11 || p[PAGE] != 0x22) {
			printf("writes did not stick\n");
			return 1;
		}
		/* Thrown away: the next touch pulls the backend's bytes again, not zeros. */
		if (madvise(p + PAGE, PAGE, MADV_DONTNEED) != 0 || !page_ok(p + PAGE, 1)) {
			printf("after MADV_DONTNEED page 1 is not the backend's\n");
			return 1;
		}
		if ((rc = r3d_region_sync(region)) != 0) {
			printf("sync: %s\n", r3d_region_last_error());
			return 1;
		}
		printf("OK %llu pages\n", (unsigned long long)pages);
	} else if (strcmp(mode, "zeros") == 0) {
		for (uint64_t i = 0; i < pages; i += 7)
			if (!all_zero(p + i * PAGE)) {
				printf("page %llu is not zeros\n", (unsigned long long)i);
				return 1;
			}
		for (uint64_t i = 0; i < pages; ++i)
			memcpy(p + i * PAGE, &i, sizeof i);
		for (uint64_t i = 0; i < pages; ++i) {
			uint64_t v;
			memcpy(&v, p + i * PAGE, sizeof v);
			if (v != i) {
				printf("page %llu lost its write\n", (unsigned long long)i);
				return 1;
			}
		}
		printf("OK %llu pages\n", (unsigned long long)pages);
	} else if (strcmp(mode, "slow") == 0) {
		struct timespec pause = { 0, 20 * 1000 * 1000 };
		uint64_t first = argc > 2 ? strtoull(argv[2], NULL, 10) : 0;
		for (uint64_t i = first; i < pages; ++i) {
			current_page = i;
			if (!page_ok(p + i * PAGE, i)) {
				printf(all_zero(p + i * PAGE) ? "ZEROS at page %llu\n" : "wrong page %llu\n",
				       (unsigned long long)i);
				return 43;
			}
			printf("touched %llu\n", (unsigned long long)i + 1);
			nanosleep(&pause, NULL);
		}
		printf("OK %llu pages\n", (unsigned long long)pages);
	} else if (strcmp(mode, "hold") == 0) {
		char buf[64];
		while (read(0, buf, sizeof buf) > 0) {
		}
	} else {
		fprintf(stderr, "r3map-region-demo: unknown mode %s\n", mode);
		return 2;
	}
	return r3d_region_unmap(region) == 0 ? 0 : 1;
}
