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
/* The image's path, as created or last swapped; valid until the next swap (event thread). */
const char *virtio_blk_path(const struct virtio_blk *blk);

#endif
