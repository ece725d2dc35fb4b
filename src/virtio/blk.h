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

#endif
