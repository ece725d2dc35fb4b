/*
 * A fake virtio driver for unit tests and fuzzers: register accesses and queue set-up in
 * the order virtio 1.2 §3.1.1 and §4.2.3.2 give, over guest RAM the test owns.
 */
#ifndef SKIFF_FAKE_DRIVER_H
#define SKIFF_FAKE_DRIVER_H

#include "../../src/util/bytes.h"
#include "../../src/virtio/mmio.h"

static inline void fake_write(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	uint8_t b[4];

	put_le32(b, v);
	virtio_mmio_access(t, off, b, 4, true);
}

static inline uint32_t fake_read(struct virtio_mmio *t, uint64_t off)
{
	uint8_t b[4];

	virtio_mmio_access(t, off, b, 4, false);
	return get_le32(b);
}

/* Reset, ACKNOWLEDGE, DRIVER, the features, FEATURES_OK; returns the status read back. */
static inline uint32_t fake_negotiate(struct virtio_mmio *t, uint64_t features)
{
	fake_write(t, 0x070, 0);
	fake_write(t, 0x070, 1);
	fake_write(t, 0x070, 3);
	fake_write(t, 0x024, 0);
	fake_write(t, 0x020, (uint32_t)features);
	fake_write(t, 0x024, 1);
	fake_write(t, 0x020, features >> 32);
	fake_write(t, 0x070, 0xb);
	return fake_read(t, 0x070);
}

static inline void fake_setup_queue(struct virtio_mmio *t, unsigned sel, uint16_t size,
				    uint64_t desc, uint64_t avail, uint64_t used)
{
	fake_write(t, 0x030, sel);
	fake_write(t, 0x038, size);
	fake_write(t, 0x080, desc);
	fake_write(t, 0x084, desc >> 32);
	fake_write(t, 0x090, avail);
	fake_write(t, 0x094, avail >> 32);
	fake_write(t, 0x0a0, used);
	fake_write(t, 0x0a4, used >> 32);
	fake_write(t, 0x044, 1);
}

static inline void fake_put_desc(uint8_t *ram, uint64_t table, unsigned i, uint64_t addr,
				 uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = ram + table + 16 * i;

	put_le64(d, addr);
	put_le32(d + 8, len);
	put_le16(d + 12, flags);
	put_le16(d + 14, next);
}

/* Puts head in the available ring of a queue of size entries and publishes it. */
static inline void fake_make_available(uint8_t *ram, uint64_t avail, uint16_t size,
				       uint16_t head)
{
	uint16_t idx = get_le16(ram + avail + 2);

	put_le16(ram + avail + 4 + 2 * (idx % size), head);
	put_le16(ram + avail + 2, idx + 1);
}

#endif
