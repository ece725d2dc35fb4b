/*
 * The image back-end of virtio-blk: io_uring through liburing, completions signalled on an
 * eventfd, or plain synchronous syscalls where io_uring is unavailable or not wanted.
 * Not thread-safe: the caller serialises every call (virtio-blk holds the transport lock).
 */
#ifndef SKIFF_VIRTIO_BLK_IO_H
#define SKIFF_VIRTIO_BLK_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

/* Largest write-zeroes request: the fallback writes it from one zero-filled mapping. */
#define BLK_IO_ZEROES_MAX (32U << 20)

enum blk_io_op { BLK_IO_READ, BLK_IO_WRITE, BLK_IO_FLUSH, BLK_IO_DISCARD, BLK_IO_WRITE_ZEROES };

struct blk_io_req {
	enum blk_io_op op;
	bool unmap;	      /* write zeroes: the range may be deallocated */
	uint64_t offset, len; /* bytes; len of write zeroes at most BLK_IO_ZEROES_MAX */
	struct iovec *iov;    /* read, write: the buffers, len bytes in all; kept until done */
	unsigned nr_iov;
	unsigned method;      /* write zeroes: the back-end's, while the request runs */
};

/*
 * A request finished: res is 0 or -errno (-EIO for a short transfer, -EOPNOTSUPP for a
 * discard the file cannot do).
 */
typedef void (*blk_io_done_fn)(void *opaque, struct blk_io_req *req, int res);

struct blk_io;

/*
 * I/O on fd (named name in messages); io_uring unless sync or unavailable. Returns NULL
 * with errno set on failure.
 */
struct blk_io *blk_io_create(int fd, const char *name, bool sync, blk_io_done_fn done,
			     void *opaque);
/* Waits for requests in flight (done() runs for each), then releases everything but fd. */
void blk_io_free(struct blk_io *io);
/*
 * Readable when requests finished asynchronously; -1 when synchronous. Requests the
 * kernel finishes during submission (page-cache hits) do not signal it: call
 * blk_io_complete() after blk_io_kick() to return those without another wake-up.
 */
int blk_io_event_fd(const struct blk_io *io);
/* Starts req: when synchronous, done() runs before this returns. */
void blk_io_submit(struct blk_io *io, struct blk_io_req *req);
/* Hands the requests submitted since the last kick to the kernel. */
void blk_io_kick(struct blk_io *io);
/* Runs done() for finished requests; with wait, until none is left in flight. */
void blk_io_complete(struct blk_io *io, bool wait);
/*
 * Moves the back-end to another file: waits for the requests in flight on the old one
 * (done() runs for each), so none lands on the new file, then sends everything after to fd.
 * What the old file could not do (zeroing methods) is forgotten. The caller closes the old fd.
 */
void blk_io_set_fd(struct blk_io *io, int fd);

#endif
