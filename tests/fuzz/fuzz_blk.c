/*
 * libFuzzer target: virtio-blk's request parser, driven through the transport. The input
 * picks the negotiated features, a read-only or writable disk, and up to 8 descriptor
 * chains of up to 6 segments anywhere in a 128 KiB buffer area; the rest of it fills that
 * area, so headers, discard segments and data are the fuzzer's. The disks are small
 * memfds, served synchronously. Every chain must come back, with a sane used length.
 */
#include "../unit/fake_driver.h"
#include "../../src/log.h"
#include "../../src/util/bytes.h"
#include "../../src/virtio/blk.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RAM_SIZE	(256 << 10)
#define DESC		0x0
#define AVAIL		0x1000
#define USED		0x2000
#define AREA		0x10000
#define AREA_SIZE	(128 << 10)
#define QSIZE		64
#define IMAGE_SIZE	(64 << 10)
#define MAX_CHAINS	8
#define MAX_SEGS	6

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct disk {
	int fd;
	struct virtio_blk *blk;
};

static uint8_t ram[RAM_SIZE];

static void open_disk(struct disk *d, bool readonly)
{
	char path[64];
	struct blk_config cfg = { .path = path, .readonly = readonly, .id = "fuzz" };

	d->fd = memfd_create("fuzz-image", 0);
	assert(d->fd >= 0 && ftruncate(d->fd, IMAGE_SIZE) == 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", d->fd);
	d->blk = virtio_blk_create(&cfg, NULL);
	assert(d->blk);
}

static void driver_start(struct virtio_mmio *t, uint8_t choice)
{
	uint64_t features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(2) | VIRTIO_BIT(5) |
			    VIRTIO_BIT(6) | VIRTIO_BIT(9);

	if (choice & 1)
		features |= VIRTIO_BIT(13); /* discard */
	if (choice & 2)
		features |= VIRTIO_BIT(14); /* write zeroes */
	if (choice & 4)
		features |= VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX);
	fake_write(t, 0x014, 0);
	features &= fake_read(t, 0x010) | ((uint64_t)1 << 32);
	fake_negotiate(t, features);
	fake_setup_queue(t, 0, QSIZE, DESC, AVAIL, USED);
	fake_write(t, 0x070, 0xf);
}

/* Builds the chains the input describes; returns how many, with their heads and sizes. */
static unsigned build_chains(const uint8_t **p, const uint8_t *end, uint16_t *heads,
			     uint64_t *in_len)
{
	unsigned nr = 0, desc = 0;

	if (*p == end)
		return 0;
	for (unsigned chains = 1 + *(*p)++ % MAX_CHAINS; nr < chains && *p < end; nr++) {
		unsigned segs = 1 + *(*p)++ % MAX_SEGS;
		heads[nr] = desc;
		in_len[nr] = 0;
		for (unsigned s = 0; s < segs; s++, desc++) {
			uint8_t seg[4] = { 0 };
			uint8_t *d = ram + DESC + 16 * desc;
			uint32_t offset, len;
			bool write;

			memcpy(seg, *p, end - *p < 4 ? (size_t)(end - *p) : 4);
			*p += end - *p < 4 ? end - *p : 4;
			offset = (get_le16(seg) * 2) % AREA_SIZE;
			len = (get_le16(seg + 2) & 0x3fff) % (AREA_SIZE - offset + 1);
			/* Readable segments first, then writable ones, as §2.7.4.2 requires. */
			write = s >= segs / 2 + (seg[3] >> 7);
			put_le64(d, AREA + offset);
			put_le32(d + 8, len);
			put_le16(d + 12, (write ? 2 : 0) | (s + 1 < segs ? 1 : 0));
			put_le16(d + 14, desc + 1);
			if (write)
				in_len[nr] += len;
		}
		put_le16(ram + AVAIL + 4 + 2 * nr, heads[nr]);
	}
	put_le16(ram + AVAIL + 2, nr);
	return nr;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct disk disks[2];
	static struct guest_mem mem;
	static bool ready;
	const uint8_t *p = data, *end = data + size;
	uint64_t in_len[MAX_CHAINS];
	uint16_t heads[MAX_CHAINS];
	struct virtio_mmio t;
	struct disk *d;
	unsigned nr;

	if (!ready) {
		log_set_level(LOG_OFF);
		open_disk(&disks[0], false);
		open_disk(&disks[1], true);
		guest_mem_wrap(&mem, ram, RAM_SIZE, 0xc0000000, 0x100000000);
		ready = true;
	}
	if (size < 1)
		return 0;
	d = &disks[(data[0] >> 3) & 1];
	/* The same image for every input, so that a crash replays. */
	assert(ftruncate(d->fd, 0) == 0 && ftruncate(d->fd, IMAGE_SIZE) == 0);
	memset(ram, 0, sizeof(ram));
	p++;
	nr = build_chains(&p, end, heads, in_len);
	memcpy(ram + AREA, p, end - p < AREA_SIZE ? (size_t)(end - p) : AREA_SIZE);

	assert(virtio_mmio_init(&t, virtio_blk_device_ops(d->blk), d->blk, &mem, 0xd0000000, 5, -1,
				NULL) == 0);
	driver_start(&t, data[0]);
	virtio_mmio_process(&t, 0);
	assert(get_le16(ram + USED + 2) == nr);
	for (unsigned i = 0; i < nr; i++) {
		uint32_t id = get_le32(ram + USED + 4 + 8 * i);
		uint32_t len = get_le32(ram + USED + 8 + 8 * i);

		assert(id == heads[i] && len <= in_len[i]);
	}
	fake_write(&t, 0x070, 0);
	virtio_mmio_destroy(&t, NULL);
	return 0;
}
