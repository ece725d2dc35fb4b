#include "test.h"
#include "fake_driver.h"

#include "../../src/devices/i8042.h"
#include "../../src/devices/ioapic.h"
#include "../../src/devices/rtc.h"
#include "../../src/devices/serial.h"
#include "../../src/state/state.h"
#include "../../src/util/bytes.h"
#include "../../src/vmm/bus.h"
#include "../../src/virtio/console.h"
#include "../../src/virtio/rng.h"

#include <string.h>
#include <unistd.h>

TEST(sections_round_trip_and_refuse_damage)
{
	struct state_writer w;
	struct state_reader r;

	state_writer_init(&w);
	state_begin(&w, "TEST", 3);
	state_put_u8(&w, 1);
	state_put_u16(&w, 0x1234);
	state_put_u32(&w, 0xdeadbeef);
	state_put_u64(&w, 0x0123456789abcdefULL);
	CHECK(state_end(&w) == 0 && w.len == 10 + 15);

	state_reader_init(&r, w.buf, w.len);
	CHECK(state_open(&r, "TEST") == 3);
	CHECK(state_get_bool(&r) && state_get_u16(&r) == 0x1234);
	CHECK(state_get_u32(&r) == 0xdeadbeef && state_get_u64(&r) == 0x0123456789abcdefULL);
	CHECK(state_close(&r) == 0);

	state_reader_init(&r, w.buf, w.len);
	CHECK(state_open(&r, "NOPE") < 0); /* another tag */
	state_reader_init(&r, w.buf, w.len - 1);
	CHECK(state_open(&r, "TEST") < 0); /* truncated */
	state_reader_init(&r, w.buf, w.len);
	state_open(&r, "TEST");
	state_get_u8(&r);
	CHECK(state_close(&r) < 0); /* not read to its end */
	state_reader_init(&r, w.buf, w.len);
	state_open(&r, "TEST");
	state_get_bytes(&r, (uint8_t[32]){ 0 }, 32);
	CHECK(r.failed && state_close(&r) < 0); /* read past its end */
	state_writer_free(&w);
}

/* Saves a device with save(), loads it into a fresh one with load(), and tries the
 * damaged variants: every strict prefix must be refused. */
#define ROUND_TRIP(save, load, from, to, fresh)                                       \
	do {                                                                           \
		struct state_writer w_;                                                \
		struct state_reader r_;                                                \
		state_writer_init(&w_);                                                \
		save(from, &w_);                                                       \
		for (size_t n_ = 0; n_ < w_.len; n_ += 1 + n_ / 8) {                  \
			fresh;                                                         \
			state_reader_init(&r_, w_.buf, n_);                            \
			CHECK(load(to, &r_) < 0);                                      \
		}                                                                      \
		fresh;                                                                 \
		state_reader_init(&r_, w_.buf, w_.len);                                \
		CHECK(load(to, &r_) == 0);                                             \
		state_writer_free(&w_);                                                \
	} while (0)

static void write8(bus_access_fn fn, void *dev, uint64_t off, uint8_t v)
{
	fn(dev, off, &v, 1, true);
}

static uint8_t read8(bus_access_fn fn, void *dev, uint64_t off)
{
	uint8_t v;

	fn(dev, off, &v, 1, false);
	return v;
}

TEST(platform_devices_round_trip)
{
	struct serial a, b;
	struct ioapic ia, ib;
	struct i8042 ka, kb;
	struct rtc ra, rb;
	uint32_t reg = 0x10 + 8, val = 0x31;

	serial_init(&a, -1, (struct irq_line){ 0 });
	serial_init(&b, -1, (struct irq_line){ 0 });
	write8(serial_access, &a, 3, 0x83);
	write8(serial_access, &a, 0, 0x0c);
	write8(serial_access, &a, 3, 0x03);
	write8(serial_access, &a, 1, 0x01);
	serial_receive(&a, (const uint8_t *)"xyz", 3);
	read8(serial_access, &a, 0);
	ROUND_TRIP(serial_save, serial_load, &a, &b, (void)0);
	CHECK(read8(serial_access, &b, 0) == 'y' && read8(serial_access, &b, 0) == 'z');
	CHECK(read8(serial_access, &b, 1) == 0x01 && read8(serial_access, &b, 3) == 0x03);
	write8(serial_access, &b, 3, 0x83);
	CHECK(read8(serial_access, &b, 0) == 0x0c);

	ioapic_init(&ia, -1, 3);
	ioapic_init(&ib, -1, 0);
	ioapic_access(&ia, 0, (uint8_t *)&reg, 4, true);
	ioapic_access(&ia, 0x10, (uint8_t *)&val, 4, true);
	ROUND_TRIP(ioapic_save, ioapic_load, &ia, &ib, (void)0);
	CHECK(ib.id == 3 && ib.redir[4] == 0x31 && ib.ioregsel == reg);

	i8042_init(&ka, (struct power_ctl){ 0 });
	i8042_init(&kb, (struct power_ctl){ 0 });
	write8(i8042_command_access, &ka, 0, 0xaa);
	ROUND_TRIP(i8042_save, i8042_load, &ka, &kb, (void)0);
	CHECK(read8(i8042_data_access, &kb, 0) == 0x55);

	rtc_init(&ra, NULL);
	rtc_init(&rb, NULL);
	write8(rtc_access, &ra, 0, 0x40);
	write8(rtc_access, &ra, 1, 0x99);
	ROUND_TRIP(rtc_save, rtc_load, &ra, &rb, (void)0);
	CHECK(read8(rtc_access, &rb, 1) == 0x99);
	serial_destroy(&a);
	serial_destroy(&b);
}

#define RAM_SIZE (1 << 20)
static uint8_t ram[RAM_SIZE];



static void request(struct virtio_mmio *t, uint16_t i)
{
	uint8_t *d = ram + 0x1000 + 16 * (i % 8);

	put_le64(d, 0x10000 + 64 * i);
	put_le32(d + 8, 16);
	put_le16(d + 12, 2); /* device-writable */
	put_le16(ram + 0x2000 + 4 + 2 * (i % 8), i % 8);
	put_le16(ram + 0x2000 + 2, i + 1);
	virtio_mmio_process(t, 0);
}

TEST(virtio_transport_round_trip)
{
	struct guest_mem mem;
	struct virtio_mmio a, b;
	struct virtio_console *ca = virtio_console_create(-1), *cb = virtio_console_create(-1);

	guest_mem_wrap(&mem, ram, RAM_SIZE, 0xc0000000, 0x100000000);
	virtio_mmio_init(&a, &virtio_rng_ops, NULL, &mem, 0xd0000000, 5, -1, NULL);
	fake_negotiate(&a, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	fake_setup_queue(&a, 0, 8, 0x1000, 0x2000, 0x3000);
	fake_write(&a, 0x070, 0xf);
	request(&a, 0);
	request(&a, 1);
	ROUND_TRIP(virtio_mmio_save, virtio_mmio_load, &a, &b,
		   (virtio_mmio_init(&b, &virtio_rng_ops, NULL, &mem, 0xd0000000, 5, -1, NULL)));
	CHECK(fake_read(&b, 0x070) == 0xf && fake_read(&b, 0x060) == 1);
	CHECK(fake_read(&b, 0x044) == 1);
	request(&b, 2); /* the restored device carries on where the first left off */
	CHECK(get_le16(ram + 0x3000 + 2) == 3 && get_le32(ram + 0x3000 + 4 + 16) == 2);

	/* a ready queue that no longer fits guest RAM is refused, and nothing changes */
	{
		struct state_writer w;
		struct state_reader r;
		struct virtio_mmio c;

		state_writer_init(&w);
		virtio_mmio_save(&b, &w);
		put_le64(w.buf + 10 + 40 + 6, RAM_SIZE - 16); /* queue 0's descriptor address */
		virtio_mmio_init(&c, &virtio_rng_ops, NULL, &mem, 0xd0000000, 5, -1, NULL);
		state_reader_init(&r, w.buf, w.len);
		CHECK(virtio_mmio_load(&c, &r) < 0 && fake_read(&c, 0x070) == 0);
		/* and a device of another kind is refused */
		virtio_mmio_init(&c, &virtio_console_ops, cb, &mem, 0xd0000000, 5, -1, NULL);
		state_reader_init(&r, w.buf, w.len);
		CHECK(virtio_mmio_load(&c, &r) < 0);
		state_writer_free(&w);
	}
	/* a device's own section rides along */
	virtio_mmio_init(&a, &virtio_console_ops, ca, &mem, 0xd0000000, 5, -1, NULL);
	ROUND_TRIP(virtio_mmio_save, virtio_mmio_load, &a, &b,
		   (virtio_mmio_init(&b, &virtio_console_ops, cb, &mem, 0xd0000000, 5, -1, NULL)));
	virtio_console_free(ca);
	virtio_console_free(cb);
}

TEST_MAIN(T(sections_round_trip_and_refuse_damage), T(platform_devices_round_trip),
	  T(virtio_transport_round_trip))
