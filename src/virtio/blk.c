#include "blk.h"
#include "blk_io.h"

#include "../log.h"
#include "../util/bytes.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Feature bits (§5.2.3). */
#define BLK_F_SEG_MAX		2
#define BLK_F_RO		5
#define BLK_F_BLK_SIZE		6
#define BLK_F_FLUSH		9
#define BLK_F_DISCARD		13
#define BLK_F_WRITE_ZEROES	14

/* Request types and status values (§5.2.6). */
enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11, T_WRITE_ZEROES = 13 };
enum { S_OK = 0, S_IOERR = 1, S_UNSUPP = 2 };
#define SUBMITTED		(-1) /* not a status: the back-end finishes the request */

/* Offsets in the config space (§5.2.4); it ends after write_zeroes_may_unmap's padding. */
enum {
	CFG_CAPACITY = 0,
	CFG_SEG_MAX = 12,
	CFG_BLK_SIZE = 20,
	CFG_MAX_DISCARD_SECTORS = 36,
	CFG_MAX_DISCARD_SEG = 40,
	CFG_DISCARD_SECTOR_ALIGNMENT = 44,
	CFG_MAX_WRITE_ZEROES_SECTORS = 48,
	CFG_MAX_WRITE_ZEROES_SEG = 52,
	CFG_WRITE_ZEROES_MAY_UNMAP = 56,
	CONFIG_SIZE = 60,
};

#define SECTOR_SIZE		512
#define HEADER_SIZE		16 /* type, reserved, sector */
#define SEGMENT_SIZE		16 /* discard and write zeroes: sector, num_sectors, flags */
#define SEGMENT_F_UNMAP		1
#define QUEUE_SIZE		256
#define SEG_MAX			(VIRTQ_MAX_IOV - 2) /* a chain also carries header and status */
#define MAX_DISCARD_SECTORS	(1U << 22)
#define MAX_WRITE_ZEROES_SECTORS (BLK_IO_ZEROES_MAX / SECTOR_SIZE)

struct blk_request {
	struct blk_io_req io;
	struct virtq_chain chain;
	uint8_t *status; /* the chain's last writable byte; NULL if it has none */
	uint32_t used;	 /* bytes written into the chain, for the used ring */
	struct blk_request *next_free;
};

struct virtio_blk {
	char *path;
	int fd;
	bool readonly;
	uint64_t capacity;	    /* sectors */
	uint32_t discard_alignment; /* sectors */
	char id[BLK_ID_MAX];	    /* zero-padded, not terminated */
	struct blk_io *io;
	struct event_loop *loop; /* NULL unless completions are watched on it */
	struct event_source completion_src;
	struct virtio_mmio *t;
	struct blk_request *requests; /* QUEUE_SIZE of them: the most in flight */
	struct blk_request *free_requests;
	bool stalled;  /* requests may wait in the ring for a free slot */
	bool dropping; /* reset or teardown: finished requests are not returned */
	bool pushed;   /* used entries since the last interrupt */
	bool warned_no_status, warned_io_error;
	uint64_t *written; /* with write tracking: the chunks written since the last collect */
};

static void blk_attach(void *dev, struct virtio_mmio *t)
{
	((struct virtio_blk *)dev)->t = t;
}

static void blk_config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	const struct virtio_blk *blk = dev;
	uint8_t cfg[CONFIG_SIZE] = { 0 };

	put_le64(cfg + CFG_CAPACITY, blk->capacity);
	put_le32(cfg + CFG_SEG_MAX, SEG_MAX);
	put_le32(cfg + CFG_BLK_SIZE, SECTOR_SIZE);
	put_le32(cfg + CFG_MAX_DISCARD_SECTORS, MAX_DISCARD_SECTORS);
	put_le32(cfg + CFG_MAX_DISCARD_SEG, 1);
	put_le32(cfg + CFG_DISCARD_SECTOR_ALIGNMENT, blk->discard_alignment);
	put_le32(cfg + CFG_MAX_WRITE_ZEROES_SECTORS, MAX_WRITE_ZEROES_SECTORS);
	put_le32(cfg + CFG_MAX_WRITE_ZEROES_SEG, 1);
	cfg[CFG_WRITE_ZEROES_MAY_UNMAP] = 1;
	memcpy(data, cfg + offset, len);
}

static void interrupt(struct virtio_blk *blk)
{
	if (blk->pushed) {
		blk->pushed = false;
		virtio_queue_interrupt(blk->t, 0);
	}
}

/* Returns the chain to the driver (unless a reset dropped it) and frees the slot. */
static void finish(struct virtio_blk *blk, struct blk_request *req, uint8_t status)
{
	if (!blk->dropping) {
		if (req->status)
			*req->status = status;
		virtio_queue_push(blk->t, 0, req->chain.head, req->used);
		blk->pushed = true;
	}
	req->next_free = blk->free_requests;
	blk->free_requests = req;
}

static struct blk_request *request_of(struct blk_io_req *io)
{
	return (struct blk_request *)((char *)io - offsetof(struct blk_request, io));
}

static void request_done(void *opaque, struct blk_io_req *io, int res)
{
	struct virtio_blk *blk = opaque;
	struct blk_request *req = request_of(io);

	if (res == -EOPNOTSUPP && io->op == BLK_IO_DISCARD)
		res = 0; /* §5.2.6.2: the device MAY deallocate; a discard is only a hint */
	if (res < 0 && !blk->warned_io_error) {
		blk->warned_io_error = true;
		log_warn("%s: %s; the guest gets an I/O error (further ones are not logged)",
			 blk->path, strerror(-res));
	}
	if (!res && io->op == BLK_IO_READ)
		req->used = req->chain.in_len; /* data, then status */
	/* Marked on completion: a chunk read before now is sent again after. */
	if (blk->written && io->op != BLK_IO_READ && io->op != BLK_IO_FLUSH && io->len)
		for (uint64_t c = io->offset >> BLK_CHUNK_SHIFT;
		     c <= (io->offset + io->len - 1) >> BLK_CHUNK_SHIFT; c++)
			__atomic_fetch_or(&blk->written[c / 64], 1ULL << (c % 64), __ATOMIC_RELAXED);
	finish(blk, req, res ? S_IOERR : S_OK);
}

static uint8_t *last_writable_byte(const struct virtq_chain *c)
{
	for (unsigned i = c->nr_out + c->nr_in; i-- > c->nr_out;)
		if (c->iov[i].iov_len)
			return (uint8_t *)c->iov[i].iov_base + c->iov[i].iov_len - 1;
	return NULL;
}

/* Narrows iov[0..nr) in place to its bytes [skip, skip + len); returns the new count. */
static unsigned iov_narrow(struct iovec *iov, unsigned nr, uint64_t skip, uint64_t len)
{
	unsigned n = 0;

	for (unsigned i = 0; i < nr && len; i++) {
		struct iovec seg = iov[i];

		if (skip >= seg.iov_len) {
			skip -= seg.iov_len;
			continue;
		}
		seg.iov_base = (uint8_t *)seg.iov_base + skip;
		seg.iov_len -= skip;
		if (seg.iov_len > len)
			seg.iov_len = len;
		skip = 0;
		len -= seg.iov_len;
		iov[n++] = seg;
	}
	return n;
}

static bool in_range(const struct virtio_blk *blk, uint64_t sector, uint64_t count)
{
	return sector <= blk->capacity && count <= blk->capacity - sector;
}

/* §5.2.6.2: reads and writes cover whole sectors, all inside the disk. */
static int prepare_transfer(const struct virtio_blk *blk, struct blk_io_req *io,
			    uint64_t sector)
{
	if (io->len % SECTOR_SIZE || !in_range(blk, sector, io->len / SECTOR_SIZE))
		return S_IOERR;
	if (!io->len)
		return S_OK;
	io->offset = sector * SECTOR_SIZE;
	return SUBMITTED;
}

static int get_id(const struct virtio_blk *blk, struct blk_request *req)
{
	uint64_t room = req->chain.in_len - 1;
	size_t n = room < BLK_ID_MAX ? room : BLK_ID_MAX;

	virtq_write(&req->chain, 0, blk->id, n);
	req->used = n + 1;
	return S_OK;
}

/* Discard and write zeroes carry one segment: max_discard_seg and max_write_zeroes_seg are 1. */
static int prepare_zeroing(const struct virtio_blk *blk, struct blk_request *req, bool discard)
{
	const struct virtq_chain *c = &req->chain;
	uint64_t data = c->out_len - HEADER_SIZE, sector;
	uint8_t seg[SEGMENT_SIZE];
	uint32_t count, flags;

	if (blk->readonly)
		return S_IOERR;
	if (!virtio_has_feature(blk->t, discard ? BLK_F_DISCARD : BLK_F_WRITE_ZEROES))
		return S_UNSUPP;
	if (data == 0 || data % SEGMENT_SIZE)
		return S_IOERR;
	if (data > SEGMENT_SIZE)
		return S_UNSUPP;
	virtq_read(c, HEADER_SIZE, seg, SEGMENT_SIZE);
	sector = get_le64(seg);
	count = get_le32(seg + 8);
	flags = get_le32(seg + 12);
	/* §5.2.6.2: unknown flags, and unmap on a discard, are unsupported. */
	if ((flags & ~SEGMENT_F_UNMAP) || (discard && flags))
		return S_UNSUPP;
	if (count > (discard ? MAX_DISCARD_SECTORS : MAX_WRITE_ZEROES_SECTORS) ||
	    !in_range(blk, sector, count))
		return S_IOERR;
	if (!count)
		return S_OK;
	req->io.op = discard ? BLK_IO_DISCARD : BLK_IO_WRITE_ZEROES;
	req->io.unmap = flags & SEGMENT_F_UNMAP;
	req->io.offset = sector * SECTOR_SIZE;
	req->io.len = (uint64_t)count * SECTOR_SIZE;
	return SUBMITTED;
}

/* Returns a VIRTIO_BLK_S_* status to finish the request with now, or SUBMITTED. */
static int prepare(const struct virtio_blk *blk, struct blk_request *req, uint32_t type,
		   uint64_t sector)
{
	struct virtq_chain *c = &req->chain;
	struct blk_io_req *io = &req->io;

	switch (type) {
	case T_IN:
		io->op = BLK_IO_READ;
		io->len = c->in_len - 1;
		io->iov = c->iov + c->nr_out;
		io->nr_iov = iov_narrow(io->iov, c->nr_in, 0, io->len);
		return prepare_transfer(blk, io, sector);
	case T_OUT:
		if (blk->readonly)
			return S_IOERR;
		io->op = BLK_IO_WRITE;
		io->len = c->out_len - HEADER_SIZE;
		io->iov = c->iov;
		io->nr_iov = iov_narrow(c->iov, c->nr_out, HEADER_SIZE, io->len);
		return prepare_transfer(blk, io, sector);
	case T_FLUSH:
		io->op = BLK_IO_FLUSH;
		return SUBMITTED;
	case T_GET_ID:
		return get_id(blk, req);
	case T_DISCARD:
	case T_WRITE_ZEROES:
		return prepare_zeroing(blk, req, type == T_DISCARD);
	default:
		return S_UNSUPP;
	}
}

static void start_request(struct virtio_blk *blk, struct blk_request *req)
{
	uint8_t header[HEADER_SIZE];
	int status = S_IOERR;

	memset(&req->io, 0, sizeof(req->io));
	req->status = last_writable_byte(&req->chain);
	req->used = 1;
	if (!req->status) {
		/* §5.2.6: the status byte is the driver's to provide; without one, say nothing. */
		if (!blk->warned_no_status)
			log_warn("%s: the driver sent a request without a status byte", blk->path);
		blk->warned_no_status = true;
		req->used = 0;
	} else if (virtq_read(&req->chain, 0, header, HEADER_SIZE) == HEADER_SIZE) {
		status = prepare(blk, req, get_le32(header), get_le64(header + 8));
	}
	if (status == SUBMITTED)
		blk_io_submit(blk->io, &req->io);
	else
		finish(blk, req, status);
}

static void process_queue(struct virtio_blk *blk)
{
	struct blk_request *req;

	while ((req = blk->free_requests) && virtio_queue_pop(blk->t, 0, &req->chain) == 1) {
		blk->free_requests = req->next_free;
		start_request(blk, req);
	}
	/* Out of slots: the rest waits in the ring until completions free some. */
	blk->stalled = !blk->free_requests;
	blk_io_kick(blk->io);
	blk_io_complete(blk->io, false); /* page-cache hits are done already */
	interrupt(blk);
}

static void blk_queue_notify(void *dev, struct virtio_mmio *t, unsigned queue)
{
	(void)t; /* the one attach gave */
	(void)queue;
	process_queue(dev);
}

/* The back-end's eventfd fired (event thread): return what finished, in one interrupt. */
static void blk_completed(void *opaque)
{
	struct virtio_blk *blk = opaque;

	virtio_mmio_lock(blk->t);
	blk_io_complete(blk->io, false);
	if (blk->stalled)
		process_queue(blk);
	else
		interrupt(blk);
	virtio_mmio_unlock(blk->t);
}

/*
 * §2.4: once reset, the device must not touch the driver's buffers. The transport lock is
 * held, so no completion can be returned meanwhile; wait here for what the kernel still
 * has in flight (a vCPU waits on the disk only in this case) and drop it.
 */
static void blk_reset(void *dev)
{
	struct virtio_blk *blk = dev;

	blk->dropping = true;
	blk_io_complete(blk->io, true);
	blk->dropping = false;
	blk->stalled = false;
	blk->pushed = false;
}

/*
 * The back-end's position is the requests in flight: save lets them finish (their used
 * entries and interrupt then belong to the saved queue state), so a snapshot holds none.
 * What load checks is that it is the same disk.
 */
static int blk_save(void *dev, struct state_writer *w)
{
	struct virtio_blk *blk = dev;

	blk_io_complete(blk->io, true);
	interrupt(blk);
	state_begin(w, "VBLK", 1);
	state_put_u64(w, blk->capacity);
	state_put_u8(w, blk->readonly);
	return state_end(w);
}

static int blk_load(void *dev, struct state_reader *r)
{
	struct virtio_blk *blk = dev;
	uint64_t capacity;
	bool readonly;

	if (state_open(r, "VBLK") != 1)
		return -EINVAL;
	capacity = state_get_u64(r);
	readonly = state_get_bool(r);
	if (state_close(r) || capacity != blk->capacity || readonly != blk->readonly) {
		log_error("%s: not the disk the saved state was taken with (size or readonly "
			  "differ)", blk->path);
		return -EINVAL;
	}
	return 0;
}

#define BLK_OPS(extra_features)                                                          \
	{                                                                                \
		.name = "virtio-blk",                                                    \
		.device_id = VIRTIO_ID_BLOCK,                                            \
		.features = VIRTIO_BIT(BLK_F_SEG_MAX) | VIRTIO_BIT(BLK_F_BLK_SIZE) |     \
			    VIRTIO_BIT(BLK_F_FLUSH) | VIRTIO_BIT(BLK_F_DISCARD) |        \
			    VIRTIO_BIT(BLK_F_WRITE_ZEROES) | (extra_features),           \
		.nr_queues = 1,                                                          \
		.queue_max = QUEUE_SIZE,                                                 \
		.config_size = CONFIG_SIZE,                                              \
		.attach = blk_attach,                                                    \
		.config_read = blk_config_read,                                          \
		.queue_notify = blk_queue_notify,                                        \
		.reset = blk_reset,                                                      \
		.save = blk_save,                                                        \
		.load = blk_load,                                                        \
	}

const struct virtio_device_ops virtio_blk_ops = BLK_OPS(0);
static const struct virtio_device_ops virtio_blk_ro_ops = BLK_OPS(VIRTIO_BIT(BLK_F_RO));

const struct virtio_device_ops *virtio_blk_device_ops(const struct virtio_blk *blk)
{
	return blk->readonly ? &virtio_blk_ro_ops : &virtio_blk_ops;
}

/* An opened, locked image, before the device takes it. */
struct image {
	int fd;
	uint64_t capacity;	    /* sectors */
	uint32_t discard_alignment; /* sectors */
};

static int image_size(const char *path, int fd, const struct stat *st, uint64_t *size)
{
	if (S_ISREG(st->st_mode)) {
		*size = st->st_size;
		return 0;
	}
	if (!S_ISBLK(st->st_mode)) {
		log_error("%s: not a regular file or block device", path);
		return -EINVAL;
	}
	if (ioctl(fd, BLKGETSIZE64, size) < 0) {
		log_error("%s: reading the device size: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

static bool same_file(int fd, const struct stat *st)
{
	struct stat cur;

	return fd >= 0 && fstat(fd, &cur) == 0 && cur.st_dev == st->st_dev &&
	       cur.st_ino == st->st_ino;
}

/*
 * Opens and locks path for the device. If it is the file current_fd has open (an image
 * given again, perhaps resized), current_fd is kept: it holds the lock, which a second open
 * file would conflict with. Logs one line naming path on failure.
 */
static int open_image(const char *path, bool readonly, int current_fd, struct image *img)
{
	/* An OFD lock belongs to this open file, not to the process: any other opener conflicts. */
	struct flock lock = { .l_type = readonly ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET };
	struct stat st;
	uint64_t size;
	int fd, ret;

	/*
	 * O_NONBLOCK, so that a FIFO cannot hang the open; cleared once the type is checked, or
	 * io_uring would fail reads and writes with EAGAIN rather than wait for them.
	 */
	fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0)
		goto err_errno;
	if (same_file(current_fd, &st)) {
		close(fd);
		fd = current_fd;
	}
	ret = image_size(path, fd, &st, &size);
	if (ret)
		goto err;
	if (fd != current_fd) {
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
			goto err_errno;
		if (fcntl(fd, F_OFD_SETLK, &lock) < 0) {
			if (errno == EAGAIN || errno == EACCES) {
				log_error("%s: in use by another process (locked)", path);
				ret = -EBUSY;
				goto err;
			}
			log_warn("%s: cannot lock (%s); nothing stops another process writing it",
				 path, strerror(errno));
		}
	}
	if (size % SECTOR_SIZE)
		log_warn("%s: size is not a multiple of 512; the last %u bytes are not visible",
			 path, (unsigned)(size % SECTOR_SIZE));
	img->fd = fd;
	img->capacity = size / SECTOR_SIZE;
	img->discard_alignment = st.st_blksize > SECTOR_SIZE ? st.st_blksize / SECTOR_SIZE : 1;
	return 0;

err_errno:
	ret = -errno;
	log_error("%s: %s", path, strerror(-ret));
err:
	if (fd >= 0 && fd != current_fd)
		close(fd);
	return ret;
}

static void use_image(struct virtio_blk *blk, const struct image *img)
{
	blk->fd = img->fd;
	blk->capacity = img->capacity;
	blk->discard_alignment = img->discard_alignment;
}

static bool sync_wanted(void)
{
	const char *env = getenv("SKIFF_BLK_SYNC");

	return env && !strcmp(env, "1");
}

struct virtio_blk *virtio_blk_create(const struct blk_config *cfg, struct event_loop *loop)
{
	struct virtio_blk *blk = calloc(1, sizeof(*blk));
	struct image img;
	int event_fd;

	if (!blk) {
		log_error("%s: %s", cfg->path, strerror(ENOMEM));
		return NULL;
	}
	blk->fd = -1;
	blk->path = strdup(cfg->path);
	blk->requests = calloc(QUEUE_SIZE, sizeof(*blk->requests));
	if (!blk->path || !blk->requests) {
		log_error("%s: %s", cfg->path, strerror(ENOMEM));
		goto err;
	}
	blk->readonly = cfg->readonly;
	memcpy(blk->id, cfg->id, strnlen(cfg->id, BLK_ID_MAX));
	for (unsigned i = 0; i < QUEUE_SIZE; i++) {
		blk->requests[i].next_free = blk->free_requests;
		blk->free_requests = &blk->requests[i];
	}
	if (open_image(blk->path, blk->readonly, -1, &img))
		goto err;
	use_image(blk, &img);
	blk->io = blk_io_create(blk->fd, blk->path, !loop || sync_wanted(), request_done, blk);
	if (!blk->io) {
		log_error("%s: setting up I/O: %s", blk->path, strerror(errno));
		goto err;
	}
	event_fd = blk_io_event_fd(blk->io);
	if (event_fd >= 0) {
		int ret = event_add(loop, &blk->completion_src, event_fd, blk_completed, blk);

		if (ret) {
			log_error("%s: watching I/O completions: %s", blk->path, strerror(-ret));
			goto err;
		}
		blk->loop = loop;
	}
	return blk;

err:
	virtio_blk_free(blk);
	return NULL;
}

void virtio_blk_free(struct virtio_blk *blk)
{
	if (!blk)
		return;
	if (blk->loop)
		event_del(blk->loop, &blk->completion_src);
	blk->dropping = true;
	blk_io_free(blk->io);
	if (blk->fd >= 0)
		close(blk->fd); /* and with it the lock */
	free(blk->requests);
	free(blk->written);
	free(blk->path);
	free(blk);
}

const char *virtio_blk_path(const struct virtio_blk *blk)
{
	return blk->path;
}

/*
 * Before leaving the old image: the requests the device took from the ring finish on it
 * (their used entries and interrupt go out now), and what they wrote is made durable now,
 * since the driver's next flush (§5.2.6) reaches only the new image.
 */
static int retire_image(struct virtio_blk *blk, const char *next)
{
	blk_io_complete(blk->io, true);
	interrupt(blk);
	if (!blk->readonly && fdatasync(blk->fd) < 0) {
		int ret = -errno;

		log_error("%s: syncing before the switch to %s: %s", blk->path, next,
			  strerror(-ret));
		return ret;
	}
	return 0;
}

int virtio_blk_swap(struct virtio_blk *blk, const char *path)
{
	char *new_path = strdup(path), *old_path;
	int old_fd = blk->fd, ret;
	struct image img;

	if (!new_path) {
		log_error("%s: %s", path, strerror(ENOMEM));
		return -ENOMEM;
	}
	/* Before taking the transport lock, as an open may wait: only this thread sets blk->fd. */
	ret = open_image(path, blk->readonly, old_fd, &img);
	if (ret) {
		free(new_path);
		return ret;
	}
	virtio_mmio_lock(blk->t);
	if (img.fd != old_fd) {
		ret = retire_image(blk, path);
		if (ret) {
			virtio_mmio_unlock(blk->t);
			close(img.fd);
			free(new_path);
			return ret;
		}
		blk_io_set_fd(blk->io, img.fd);
	}
	old_path = blk->path;
	blk->path = new_path;
	use_image(blk, &img);
	blk->warned_io_error = false; /* another file, its own errors */
	/* §5.2.4: the capacity may have changed; the driver re-reads it on this notification. */
	virtio_config_changed(blk->t);
	/* Requests left in the ring for want of a slot have slots now, on the new image. */
	if (blk->stalled)
		process_queue(blk);
	virtio_mmio_unlock(blk->t);
	if (img.fd != old_fd)
		close(old_fd); /* and with it its lock */
	free(old_path);
	return 0;
}

int virtio_blk_hold(struct virtio_blk *blk, bool hold)
{
	struct flock lock = { .l_type = !hold ? F_UNLCK : blk->readonly ? F_RDLCK : F_WRLCK,
			      .l_whence = SEEK_SET };

	/* What this VM wrote must be on the image before another opener reads it. */
	if (!hold && !blk->readonly && fdatasync(blk->fd) < 0) {
		log_error("%s: %s", blk->path, strerror(errno));
		return -errno;
	}
	if (fcntl(blk->fd, F_OFD_SETLK, &lock) < 0) {
		log_error("%s: %s the lock: %s", blk->path, hold ? "cannot take back" : "cannot drop",
			  strerror(errno));
		return -errno;
	}
	return 0;
}

uint64_t virtio_blk_size(const struct virtio_blk *blk)
{
	return blk->capacity * SECTOR_SIZE;
}

static uint64_t chunk_words(const struct virtio_blk *blk)
{
	uint64_t chunks = (virtio_blk_size(blk) + BLK_CHUNK - 1) >> BLK_CHUNK_SHIFT;

	return (chunks + 63) / 64;
}

int virtio_blk_track_writes(struct virtio_blk *blk)
{
	if (!blk->written)
		blk->written = calloc(chunk_words(blk), sizeof(uint64_t));
	return blk->written ? 0 : -ENOMEM;
}

uint64_t *virtio_blk_collect_writes(struct virtio_blk *blk)
{
	uint64_t words = chunk_words(blk), *bitmap = calloc(words ?: 1, sizeof(uint64_t));

	if (!bitmap || !blk->written)
		return bitmap;
	for (uint64_t w = 0; w < words; w++)
		bitmap[w] = __atomic_exchange_n(&blk->written[w], 0, __ATOMIC_RELAXED);
	return bitmap;
}

void virtio_blk_merge_writes(struct virtio_blk *blk, const uint64_t *bitmap)
{
	for (uint64_t w = 0; bitmap && blk->written && w < chunk_words(blk); w++)
		if (bitmap[w])
			__atomic_fetch_or(&blk->written[w], bitmap[w], __ATOMIC_RELAXED);
}
