/*
 * virtio-blk (virtio 1.2 §5.2) on a raw image file: read, write, flush, get-id, discard
 * and write-zeroes, through io_uring with a synchronous fallback.
 */
#ifndef SKIFF_VIRTIO_BLK_H
#define SKIFF_VIRTIO_BLK_H

#include "mmio.h"

#include <stdbool.h>
#include <stdint.h>

#define BLK_ID_MAX 20 /* VIRTIO_BLK_ID_BYTES */

/* One --disk PATH[,readonly][,id=NAME]. */
struct blk_config {
	const char *path;
	bool readonly;
	char id[BLK_ID_MAX + 1]; /* "" : none given */
};

struct virtio_blk;

extern const struct virtio_device_ops virtio_blk_ops;

/*
 * Opens and locks the image (a second skiff writing the same file is refused) and sets
 * up the back-end on loop. I/O goes through io_uring, or synchronously on the event thread
 * where io_uring is unavailable, loop is NULL, or the environment has SKIFF_BLK_SYNC=1
 * (read here, for tests). Logs one line naming the file and returns NULL on failure.
 */
struct virtio_blk *virtio_blk_create(const struct blk_config *cfg, struct event_loop *loop);
void virtio_blk_free(struct virtio_blk *blk);
/* What virtio_mmio_init() takes for blk: virtio_blk_ops, or its variant offering F_RO. */
const struct virtio_device_ops *virtio_blk_device_ops(const struct virtio_blk *blk);
/*
 * Moves the device to another image (Firecracker's PATCH /drives), on the event thread, once
 * virtio_mmio_init() has attached blk. Opens and locks path as create does, in the same mode;
 * lets the requests the device has taken finish on the old image, and syncs it; switches,
 * closes the old image (dropping its lock), and tells the driver of the new capacity with a
 * configuration change. Requests still in the ring go to the new image. Giving the same file
 * again just reads its size anew. On failure (one log line naming the file) the device stays
 * on the old image. Returns 0 or -errno.
 */
int virtio_blk_swap(struct virtio_blk *blk, const char *path);
/* Live migration moves disks in chunks of this size. */
#define BLK_CHUNK_SHIFT 20
#define BLK_CHUNK	(1ULL << BLK_CHUNK_SHIFT)

/* The disk's size as the guest sees it, in bytes. */
uint64_t virtio_blk_size(const struct virtio_blk *blk);
/* Starts recording which chunks the guest writes (event thread). 0 or -ENOMEM. */
int virtio_blk_track_writes(struct virtio_blk *blk);
/*
 * The chunks written since the last call (a calloc'd bitmap; NULL when out of memory), and
 * a new interval. Any thread.
 */
uint64_t *virtio_blk_collect_writes(struct virtio_blk *blk);
/* Puts chunks back (a bitmap collect gave; NULL is none), for the next collect. */
void virtio_blk_merge_writes(struct virtio_blk *blk, const uint64_t *bitmap);
/*
 * Live migration with shared storage: drops the image's lock (after syncing it) so that the
 * destination can open it, or takes it back when the migration failed. Event thread, with
 * the device idle (the VM paused and its state saved). 0 or -errno, logged.
 */
int virtio_blk_hold(struct virtio_blk *blk, bool hold);
/* The image's path, as created or last swapped; valid until the next swap (event thread). */
const char *virtio_blk_path(const struct virtio_blk *blk);

#endif
