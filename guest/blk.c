/* virtio-blk (virtio 1.2 §5.2) and the blk-* tests; the data loops run at CPL3. */
#include "virtio.h"

#define BLK_F_RO	5
#define BLK_F_FLUSH	9
#define BLK_ID_BYTES	20
/* The host checks the disk against this: the word at byte offset o holds o ^ BLK_PATTERN. */
#define BLK_PATTERN	0x736b6966665f626bULL

/* What a CPL3 pass over part of the disk is given and reports. */
struct blk_job {
	struct blk *blk;
	uint64_t offset;
	uint64_t bytes;
	uint64_t done;
	uint32_t crc;
	const char *reason;
};

struct blk_call {
	struct blk *blk;
	uint32_t type;
	uint64_t sector;
	void *buf;
	uint32_t len;
};

uint8_t blk_buffers[2][BLK_MAX_REQUEST] __attribute__((aligned(4096)));

static struct blk blk_dev;

const char *blk_open(const struct probe *p, struct blk *blk)
{
	const char *reason = virtio_find(p, VIRTIO_ID_BLOCK, &blk->dev);

	if (!reason)
		reason = virtio_start(&blk->dev, BIT(BLK_F_RO) | BIT(BLK_F_FLUSH) |
					       BIT(VIRTIO_F_RING_INDIRECT_DESC) |
					       BIT(VIRTIO_F_RING_EVENT_IDX));
	if (!reason)
		reason = virtq_init(&blk->dev, &blk->vq, 0);
	if (reason)
		return reason;
	/* A request takes one descriptor through an indirect table, else up to three. */
	blk->max_depth = blk->vq.indirect ? blk->vq.size : blk->vq.size / 3;
	if (blk->max_depth > BLK_MAX_DEPTH)
		blk->max_depth = BLK_MAX_DEPTH;
	if (!blk->max_depth)
		return "virtio-queue-too-small";
	blk->sectors = virtio_config64(&blk->dev, 0);
	virtio_ready(&blk->dev);
	return NULL;
}

/* Queues a request (§5.2.6): header, data unless len is 0, status. blk->vq needs a kick. */
int blk_submit(struct blk *blk, struct blk_request *req, uint32_t type, uint64_t sector,
	       void *buf, uint32_t len)
{
	struct virtq_buf bufs[3];
	unsigned int n = 0;

	req->hdr.type = type;
	req->hdr.reserved = 0;
	req->hdr.sector = sector;
	req->status = 0xff;
	bufs[n++] = (struct virtq_buf){ &req->hdr, sizeof(req->hdr), false };
	if (len)
		bufs[n++] = (struct virtq_buf){ buf, len, type != BLK_T_OUT };
	bufs[n++] = (struct virtq_buf){ &req->status, 1, true };
	return virtq_add(&blk->vq, bufs, n, req->table, req);
}

/* The next finished request, or NULL when none finishes within TIMEOUT_TSC. */
struct blk_request *blk_wait(struct blk *blk)
{
	uint64_t deadline = rdtsc() + TIMEOUT_TSC;
	struct blk_request *req;
	uint32_t len;

	while (!(req = virtq_get(&blk->vq, &len))) {
		if (rdtsc() > deadline)
			return NULL;
		cpu_relax();
	}
	return req;
}

/* One request at a time: the device's status byte, or BLK_S_TIMEOUT. */
uint32_t blk_io(struct blk *blk, uint32_t type, uint64_t sector, void *buf, uint32_t len)
{
	struct blk_request *req;

	if (blk_submit(blk, &blk->requests[0], type, sector, buf, len))
		return BLK_S_TIMEOUT;
	virtq_kick(&blk->vq);
	req = blk_wait(blk);
	return req ? req->status : BLK_S_TIMEOUT;
}

/* The reason a request failed: what failed, or that it never finished. */
const char *blk_failure(uint32_t status, const char *what)
{
	return status == BLK_S_TIMEOUT ? "blk-timeout" : what;
}

static uint64_t job_fail(struct blk_job *job, const char *reason)
{
	job->reason = reason;
	return 1;
}

static uint32_t request_len(uint64_t offset, uint64_t end)
{
	return end - offset < BLK_MAX_REQUEST ? (uint32_t)(end - offset) : BLK_MAX_REQUEST;
}

/* CPL3: pattern out, flush, then back in and compared; the read buffer is poisoned first. */
static uint64_t blk_rw_user(void *arg)
{
	struct blk_job *job = arg;
	uint64_t off, end = job->offset + job->bytes;
	uint64_t *out = (uint64_t *)blk_buffers[0], *in = (uint64_t *)blk_buffers[1];
	uint32_t len, i, status;

	for (off = job->offset; off < end; off += len) {
		len = request_len(off, end);
		for (i = 0; i < len / 8; i++)
			out[i] = (off + 8 * i) ^ BLK_PATTERN;
		status = blk_io(job->blk, BLK_T_OUT, off / BLK_SECTOR, out, len);
		if (status != BLK_S_OK)
			return job_fail(job, blk_failure(status, "write-error"));
	}
	status = blk_io(job->blk, BLK_T_FLUSH, 0, NULL, 0);
	if (status != BLK_S_OK)
		return job_fail(job, blk_failure(status, "flush-error"));
	for (off = job->offset; off < end; off += len) {
		len = request_len(off, end);
		memset(in, 0xff, len);
		status = blk_io(job->blk, BLK_T_IN, off / BLK_SECTOR, in, len);
		if (status != BLK_S_OK)
			return job_fail(job, blk_failure(status, "read-error"));
		for (i = 0; i < len / 8; i++) {
			if (in[i] != ((off + 8 * i) ^ BLK_PATTERN))
				return job_fail(job, "mismatch");
		}
		job->done += len;
	}
	return 0;
}

/* CPL3 */
static uint64_t blk_crc_user(void *arg)
{
	struct blk_job *job = arg;
	uint64_t off, end = job->offset + job->bytes;
	uint32_t len, status;

	for (off = job->offset; off < end; off += len) {
		len = request_len(off, end);
		status = blk_io(job->blk, BLK_T_IN, off / BLK_SECTOR, blk_buffers[0], len);
		if (status != BLK_S_OK)
			return job_fail(job, blk_failure(status, "read-error"));
		job->crc = crc32_update(job->crc, blk_buffers[0], len);
		job->done += len;
	}
	return 0;
}

/* CPL3 */
static uint64_t blk_call_user(void *arg)
{
	struct blk_call *c = arg;

	return blk_io(c->blk, c->type, c->sector, c->buf, c->len);
}

/* A single request from CPL0, where polling would be emulated, made at CPL3. */
static uint32_t blk_call(struct probe *p, uint32_t type, uint64_t sector, void *buf,
			 uint32_t len)
{
	struct blk_call c = { &blk_dev, type, sector, buf, len };

	return (uint32_t)user_run(p->bsp, blk_call_user, &c);
}

/* blk_range=START_SECTOR:SECTORS, else the whole disk. */
static const char *parse_range(const struct probe *p, struct blk_job *job)
{
	const char *s = cmdline_value(p, "blk_range", NULL);
	uint64_t start = 0, count = job->blk->sectors;

	if (s) {
		s = parse_u64(s, &start);
		if (!s || *s++ != ':' || !parse_u64(s, &count))
			return "bad-blk-range";
	}
	if (!count || start > job->blk->sectors || count > job->blk->sectors - start)
		return "bad-blk-range";
	job->offset = start * BLK_SECTOR;
	job->bytes = count * BLK_SECTOR;
	return NULL;
}

const char *test_blk_rw(struct probe *p)
{
	struct blk_job job = { .blk = &blk_dev };
	const char *reason = blk_open(p, &blk_dev);

	if (reason)
		return reason;
	if (!(blk_dev.dev.features & BIT(BLK_F_FLUSH)))
		return "no-flush";
	reason = parse_range(p, &job);
	if (reason)
		return reason;
	user_run(p->bsp, blk_rw_user, &job);
	printk("probe: blk-rw bytes=%lu\n", job.done);
	return job.reason;
}

const char *test_blk_read(struct probe *p)
{
	struct blk_job job = { .blk = &blk_dev };
	const char *reason = blk_open(p, &blk_dev);
	char hex[9];
	int i;

	if (reason)
		return reason;
	job.bytes = blk_dev.sectors * BLK_SECTOR;
	user_run(p->bsp, blk_crc_user, &job);
	for (i = 0; i < 8; i++)
		hex[i] = "0123456789abcdef"[job.crc >> (28 - 4 * i) & 0xf];
	hex[8] = '\0';
	printk("probe: blk-read bytes=%lu crc32=%s\n", job.done, hex);
	return job.reason;
}

const char *test_blk_id(struct probe *p)
{
	const char *reason = blk_open(p, &blk_dev);
	char *id = (char *)blk_buffers[0];
	uint32_t status;

	if (reason)
		return reason;
	id[BLK_ID_BYTES] = '\0';
	status = blk_call(p, BLK_T_GET_ID, 0, id, BLK_ID_BYTES);
	if (status != BLK_S_OK)
		return blk_failure(status, "get-id-error");
	printk("probe: blk-id id=%s\n", id);
	return NULL;
}

/* Writes sector 0 back as read, so a disk that is wrongly writable keeps its contents. */
const char *test_blk_ro(struct probe *p)
{
	const char *reason = blk_open(p, &blk_dev);
	uint32_t status;

	if (reason)
		return reason;
	if (!(blk_dev.dev.features & BIT(BLK_F_RO)))
		return "not-read-only";
	status = blk_call(p, BLK_T_IN, 0, blk_buffers[0], BLK_SECTOR);
	if (status != BLK_S_OK)
		return blk_failure(status, "read-error");
	status = blk_call(p, BLK_T_OUT, 0, blk_buffers[0], BLK_SECTOR);
	if (status == BLK_S_IOERR)
		return NULL;
	if (status == BLK_S_OK)
		return "write-succeeded";
	return blk_failure(status, "unexpected-status");
}
