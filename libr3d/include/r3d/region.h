/*
 * The C ABI of regions served by r3mapd (see <r3d/daemon_region.hpp> for what they are and
 * what the app sees when the backend or r3mapd fails): a backend mapped as plain memory,
 * pulled on first touch.
 *
 *     r3d_region *r;
 *     if (r3d_region_map("memory:?size=64M", 64 << 20, NULL, &r) != 0) ...
 *     char *p = r3d_region_data(r);
 *     ...
 *     r3d_region_unmap(r);
 *
 * Every function returning int returns 0 or a negative errno; r3d_region_last_error()
 * gives the calling thread's message of its last failure.
 */
#ifndef R3D_REGION_H
#define R3D_REGION_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct r3d_region r3d_region;

/* Maps `size` bytes (a positive page multiple) of backend `uri`, served by r3mapd at
 * `socket_path` (NULL: $R3MAP_REGION_SOCKET, else /run/r3map/regions.sock). `uri`
 * mount:ID or export:ID maps a mount or export of that r3mapd, through its pipeline. */
int r3d_region_map(const char *uri, uint64_t size, const char *socket_path, r3d_region **out);

/* Flags of r3d_region_map_flags(). */
/* Track writes; r3mapd writes them back every 5 s and on r3d_region_sync() (wp-async where
 * the kernel has WP_ASYNC, else wp-sync). */
#define R3D_REGION_TRACK 1u
/* Track writes with synchronous write-protect faults even where WP_ASYNC exists. */
#define R3D_REGION_TRACK_WP_SYNC 2u
/* Pull only what faults ask for, not the rest of the region in the background. */
#define R3D_REGION_NO_BACKGROUND 4u

/* r3d_region_map() with R3D_REGION_* flags (0: the same as r3d_region_map()). */
int r3d_region_map_flags(const char *uri, uint64_t size, const char *socket_path, uint32_t flags, r3d_region **out);
void *r3d_region_data(const r3d_region *region);
uint64_t r3d_region_size(const r3d_region *region);
/* r3mapd's id of the region: its D-Bus object is /org/r3map/regions/ID. */
const char *r3d_region_id(const r3d_region *region);
/* Writes the pages written since the last write-back to the backend (with tracking) and
 * syncs it; returns once they are durable there. */
int r3d_region_sync(r3d_region *region);
/* Unmaps, tells r3mapd and frees `region` (NULL is fine). */
int r3d_region_unmap(r3d_region *region);
const char *r3d_region_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
