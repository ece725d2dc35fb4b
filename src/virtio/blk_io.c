#include "blk_io.h"

#include "../log.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#define RING_ENTRIES 256 /* no fewer than virtio-blk keeps in flight */

/* Ways to zero a range, in the order tried: each falls back to the next where unsupported. */
enum zero_method { ZERO_PUNCH_HOLE, ZERO_RANGE, ZERO_WRITE };

struct blk_io {
	int fd;
	bool sync;
	struct io_uring ring;
	int event_fd; /* signalled by the ring on each completion */
	unsigned in_flight;
	unsigned unsupported; /* zero methods the file refused, as bits */
	void *zeroes;	      /* BLK_IO_ZEROES_MAX bytes of read-only zeroes */
	blk_io_done_fn done;
	void *opaque;
};

static unsigned next_zero_method(const struct blk_io *io, unsigned method)
{
	while (method < ZERO_WRITE && (io->unsupported & (1U << method)))
		method++;
	return method;
}

static int zero_mode(unsigned method)
{
	return FALLOC_FL_KEEP_SIZE |
	       (method == ZERO_PUNCH_HOLE ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE);
}

#define DISCARD_MODE (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)

/* Turns a syscall's result into 0 or -errno: a short transfer is an I/O error. */
static int result(const struct blk_io_req *req, long long res)
{
	bool transfer = req->op == BLK_IO_READ || req->op == BLK_IO_WRITE ||
			(req->op == BLK_IO_WRITE_ZEROES && req->method == ZERO_WRITE);

	if (res < 0)
		return res;
	return transfer && (uint64_t)res != req->len ? -EIO : 0;
}

/* After a write-zeroes attempt the file refused: true if req is to be retried another way. */
static bool zero_fallback(struct blk_io *io, struct blk_io_req *req, int res)
{
	if (req->op != BLK_IO_WRITE_ZEROES || res != -EOPNOTSUPP || req->method == ZERO_WRITE)
		return false;
	io->unsupported |= 1U << req->method;
	req->method = next_zero_method(io, req->method + 1);
	return true;
}

static long long sync_once(struct blk_io *io, const struct blk_io_req *req)
{
	switch (req->op) {
	case BLK_IO_READ:
		return preadv(io->fd, req->iov, req->nr_iov, req->offset);
	case BLK_IO_WRITE:
		return pwritev(io->fd, req->iov, req->nr_iov, req->offset);
	case BLK_IO_FLUSH:
		return fdatasync(io->fd);
	case BLK_IO_DISCARD:
		return fallocate(io->fd, DISCARD_MODE, req->offset, req->len);
	case BLK_IO_WRITE_ZEROES:
		break;
	}
	if (req->method == ZERO_WRITE)
		return pwrite(io->fd, io->zeroes, req->len, req->offset);
	return fallocate(io->fd, zero_mode(req->method), req->offset, req->len);
}

static void run_sync(struct blk_io *io, struct blk_io_req *req)
{
	long long n;
	int res;

	do {
		do
			n = sync_once(io, req);
		while (n < 0 && errno == EINTR);
		res = result(req, n < 0 ? -errno : n);
	} while (zero_fallback(io, req, res));
	io->done(io->opaque, req, res);
}

static void queue_uring(struct blk_io *io, struct blk_io_req *req)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);

	if (!sqe) {
		io_uring_submit(&io->ring);
		sqe = io_uring_get_sqe(&io->ring);
	}
	if (!sqe) {
		io->done(io->opaque, req, -EBUSY);
		return;
	}
	switch (req->op) {
	case BLK_IO_READ:
		io_uring_prep_readv(sqe, io->fd, req->iov, req->nr_iov, req->offset);
		break;
	case BLK_IO_WRITE:
		io_uring_prep_writev(sqe, io->fd, req->iov, req->nr_iov, req->offset);
		break;
	case BLK_IO_FLUSH:
		io_uring_prep_fsync(sqe, io->fd, IORING_FSYNC_DATASYNC);
		/* Starts once everything submitted before it has completed: it covers them. */
		io_uring_sqe_set_flags(sqe, IOSQE_IO_DRAIN);
		break;
	case BLK_IO_DISCARD:
		io_uring_prep_fallocate(sqe, io->fd, DISCARD_MODE, req->offset, req->len);
		break;
	case BLK_IO_WRITE_ZEROES:
		if (req->method == ZERO_WRITE)
			io_uring_prep_write(sqe, io->fd, io->zeroes, req->len, req->offset);
		else
			io_uring_prep_fallocate(sqe, io->fd, zero_mode(req->method), req->offset,
						req->len);
		break;
	}
	io_uring_sqe_set_data(sqe, req);
	io->in_flight++;
}

void blk_io_submit(struct blk_io *io, struct blk_io_req *req)
{
	if (req->op == BLK_IO_WRITE_ZEROES)
		req->method = next_zero_method(io, req->unmap ? ZERO_PUNCH_HOLE : ZERO_RANGE);
	if (io->sync)
		run_sync(io, req);
	else
		queue_uring(io, req);
}

void blk_io_kick(struct blk_io *io)
{
	if (!io->sync)
		io_uring_submit(&io->ring);
}

void blk_io_complete(struct blk_io *io, bool wait)
{
	eventfd_t count;

	if (io->sync)
		return;
	eventfd_read(io->event_fd, &count); /* non-blocking: just clears the signal */
	if (wait)
		io_uring_submit(&io->ring);
	while (io->in_flight) {
		struct io_uring_cqe *cqe;
		struct blk_io_req *req;
		int ret, res;

		if (wait)
			ret = io_uring_wait_cqe(&io->ring, &cqe);
		else
			ret = io_uring_peek_cqe(&io->ring, &cqe);
		if (ret == -EINTR)
			continue;
		if (ret) {
			if (ret != -EAGAIN)
				log_error("io_uring: waiting for completions: %s", strerror(-ret));
			return;
		}
		req = io_uring_cqe_get_data(cqe);
		res = result(req, cqe->res);
		io_uring_cqe_seen(&io->ring, cqe);
		io->in_flight--;
		if (zero_fallback(io, req, res)) {
			queue_uring(io, req);
			io_uring_submit(&io->ring);
			continue;
		}
		io->done(io->opaque, req, res);
	}
}

void blk_io_set_fd(struct blk_io *io, int fd)
{
	/*
	 * Requests already issued keep the old file; finishing them here means none writes to
	 * it after the caller closes it and drops its lock, where another process may be.
	 */
	blk_io_complete(io, true);
	io->fd = fd;
	io->unsupported = 0; /* another file system may zero ranges differently */
}

int blk_io_event_fd(const struct blk_io *io)
{
	return io->sync ? -1 : io->event_fd;
}

static int start_uring(struct blk_io *io, const char *name)
{
	int ret = io_uring_queue_init(RING_ENTRIES, &io->ring, 0);

	if (ret < 0) {
		/* Disabled by sysctl or seccomp, or an old kernel: synchronous I/O still works. */
		log_info("%s: io_uring unavailable (%s); using synchronous I/O", name,
			 strerror(-ret));
		return 0;
	}
	io->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (io->event_fd < 0)
		ret = -errno;
	else /* inline completions are reaped right after submission: see blk_io.h */
		ret = io_uring_register_eventfd_async(&io->ring, io->event_fd);
	if (ret < 0) {
		if (io->event_fd >= 0)
			close(io->event_fd);
		io_uring_queue_exit(&io->ring);
		return ret;
	}
	io->sync = false;
	return 0;
}

struct blk_io *blk_io_create(int fd, const char *name, bool sync, blk_io_done_fn done,
			     void *opaque)
{
	struct blk_io *io = calloc(1, sizeof(*io));
	int ret;

	if (!io)
		return NULL;
	io->fd = fd;
	io->sync = true;
	io->event_fd = -1;
	io->done = done;
	io->opaque = opaque;
	/* Never written, so never backed by more than the kernel's zero page. */
	io->zeroes = mmap(NULL, BLK_IO_ZEROES_MAX, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (io->zeroes == MAP_FAILED) {
		ret = -errno;
		goto err_free;
	}
	ret = sync ? 0 : start_uring(io, name);
	if (ret)
		goto err_unmap;
	return io;

err_unmap:
	munmap(io->zeroes, BLK_IO_ZEROES_MAX);
err_free:
	free(io);
	errno = -ret;
	return NULL;
}

void blk_io_free(struct blk_io *io)
{
	if (!io)
		return;
	if (!io->sync) {
		blk_io_complete(io, true);
		io_uring_queue_exit(&io->ring);
		close(io->event_fd);
	}
	munmap(io->zeroes, BLK_IO_ZEROES_MAX);
	free(io);
}
