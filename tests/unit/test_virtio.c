#include "test.h"
#include "fake_driver.h"

#include "../../src/util/bytes.h"
#include "../../src/virtio/mmio.h"
#include "../../src/virtio/console.h"
#include "../../src/virtio/rng.h"

#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define RAM_SIZE	(1 << 20)
#define DESC		0x1000
#define AVAIL		0x2000
#define USED		0x3000
#define DATA		0x10000
#define QSIZE		8
#define F_NEXT		1
#define F_WRITE		2
#define F_INDIRECT	4

static uint8_t ram[RAM_SIZE];
static struct guest_mem mem;
static struct virtio_mmio t;

static void wr(uint64_t off, uint32_t v)
{
	fake_write(&t, off, v);
}

static uint32_t rd(uint64_t off)
{
	return fake_read(&t, off);
}

static void put_desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	fake_put_desc(ram, table, i, addr, len, flags, next);
}

static void make_available(uint16_t head)
{
	fake_make_available(ram, AVAIL, QSIZE, head);
}

/* Brings the device up the way §3.1.1 says, with queue 0 at DESC/AVAIL/USED. */
static void driver_init_dev(const struct virtio_device_ops *ops, void *dev, uint64_t features)
{
	memset(ram, 0, sizeof(ram));
	guest_mem_wrap(&mem, ram, RAM_SIZE, 0xc0000000, 0x100000000);
	CHECK(virtio_mmio_init(&t, ops, dev, &mem, 0xd0000000, 5, -1, NULL) == 0);
	CHECK(rd(0x000) == 0x74726976 && rd(0x004) == 2 && rd(0x008) == ops->device_id);
	CHECK(rd(0x034) >= QSIZE);
	fake_negotiate(&t, features);
	fake_setup_queue(&t, 0, QSIZE, DESC, AVAIL, USED);
	wr(0x070, 0xf);
}

static void driver_init(const struct virtio_device_ops *ops, uint64_t features)
{
	driver_init_dev(ops, NULL, features);
}

static void finish(void)
{
	virtio_mmio_destroy(&t, NULL);
}

TEST(rng_fills_buffers_and_interrupts)
{
	eventfd_t irqs = 0;

	driver_init(&virtio_rng_ops, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	CHECK(rd(0x070) == 0xf);
	put_desc(DESC, 0, DATA, 64, F_WRITE, 0);
	make_available(0);
	virtio_mmio_process(&t, 0);
	CHECK(get_le16(ram + USED + 2) == 1);
	CHECK(get_le32(ram + USED + 4) == 0 && get_le32(ram + USED + 8) == 64);
	CHECK(memcmp(ram + DATA, ram + DATA + 32, 32) != 0); /* random, not zero */
	CHECK(eventfd_read(t.irq_fd, &irqs) == 0 && irqs == 1);
	CHECK(rd(0x060) == 1);
	wr(0x064, 1);
	CHECK(rd(0x060) == 0);
	finish();
}

TEST(features_must_include_version_1)
{
	driver_init(&virtio_rng_ops, 0);
	CHECK(!(rd(0x070) & VIRTIO_STATUS_FEATURES_OK));
	CHECK(rd(0x070) & VIRTIO_STATUS_NEEDS_RESET); /* DRIVER_OK without FEATURES_OK */
	finish();
	driver_init(&virtio_rng_ops, VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(40));
	CHECK(!(rd(0x070) & VIRTIO_STATUS_FEATURES_OK)); /* a bit nobody offered */
	finish();
}

TEST(chained_and_indirect_descriptors)
{
	struct virtq_chain c;

	driver_init(&virtio_rng_ops, VIRTIO_BIT(VIRTIO_F_VERSION_1) |
					     VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC));
	put_desc(DESC, 0, DATA, 16, 0, 0);	 /* readable */
	put_desc(DESC, 0, DATA, 16, F_NEXT, 3);
	put_desc(DESC, 3, 0x5000, 48, F_INDIRECT, 0);
	put_desc(0x5000, 0, DATA + 100, 10, F_NEXT | F_WRITE, 1);
	put_desc(0x5000, 1, DATA + 200, 20, F_NEXT | F_WRITE, 2);
	put_desc(0x5000, 2, DATA + 300, 30, F_WRITE, 0);
	make_available(0);
	virtio_mmio_lock(&t);
	CHECK(virtio_queue_pop(&t, 0, &c) == 1);
	CHECK(c.head == 0 && c.nr_out == 1 && c.nr_in == 3);
	CHECK(c.out_len == 16 && c.in_len == 60);
	CHECK(c.iov[3].iov_base == ram + DATA + 300);
	CHECK(virtio_queue_pop(&t, 0, &c) == 0); /* nothing else */
	virtio_mmio_unlock(&t);
	finish();
}

/* Each builder makes one bad chain at head 0; popping it must mark NEEDS_RESET. */
static void loop_chain(void)
{
	put_desc(DESC, 0, DATA, 8, F_NEXT, 1);
	put_desc(DESC, 1, DATA, 8, F_NEXT, 0);
}

static void next_out_of_range(void)
{
	put_desc(DESC, 0, DATA, 8, F_NEXT, QSIZE);
}

static void buffer_outside_ram(void)
{
	put_desc(DESC, 0, RAM_SIZE - 4, 8, 0, 0);
}

static void huge_length(void)
{
	put_desc(DESC, 0, DATA, 0xffffffff, 0, 0);
}

static void readable_after_writable(void)
{
	put_desc(DESC, 0, DATA, 8, F_WRITE | F_NEXT, 1);
	put_desc(DESC, 1, DATA, 8, 0, 0);
}

static void nested_indirect(void)
{
	put_desc(DESC, 0, 0x5000, 16, F_INDIRECT, 0);
	put_desc(0x5000, 0, 0x6000, 16, F_INDIRECT, 0);
}

static void indirect_with_next(void)
{
	put_desc(DESC, 0, 0x5000, 16, F_INDIRECT | F_NEXT, 1);
}

static void indirect_bad_length(void)
{
	put_desc(DESC, 0, 0x5000, 17, F_INDIRECT, 0);
}

static void indirect_loop(void)
{
	put_desc(DESC, 0, 0x5000, 32, F_INDIRECT, 0);
	put_desc(0x5000, 0, DATA, 8, F_NEXT, 1);
	put_desc(0x5000, 1, DATA, 8, F_NEXT, 0);
}

static void head_out_of_range(void)
{
	put_le16(ram + AVAIL + 4, QSIZE + 3);
	put_le16(ram + AVAIL + 2, 1);
}

static void avail_idx_too_far(void)
{
	put_desc(DESC, 0, DATA, 8, 0, 0);
	put_le16(ram + AVAIL + 2, QSIZE + 1);
}

TEST(malformed_chains_need_reset)
{
	static void (*const cases[])(void) = {
		loop_chain, next_out_of_range, buffer_outside_ram, huge_length,
		readable_after_writable, nested_indirect, indirect_with_next,
		indirect_bad_length, indirect_loop, head_out_of_range, avail_idx_too_far,
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		driver_init(&virtio_rng_ops, VIRTIO_BIT(VIRTIO_F_VERSION_1) |
						     VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC));
		cases[i]();
		if (cases[i] != head_out_of_range && cases[i] != avail_idx_too_far)
			make_available(0);
		virtio_mmio_process(&t, 0);
		if (!(rd(0x070) & VIRTIO_STATUS_NEEDS_RESET))
			printf("  case %zu not rejected\n", i);
		CHECK(rd(0x070) & VIRTIO_STATUS_NEEDS_RESET);
		CHECK(get_le16(ram + USED + 2) == 0);
		wr(0x070, 0); /* reset clears it */
		CHECK(rd(0x070) == 0);
		finish();
	}
}

TEST(indirect_needs_the_feature)
{
	driver_init(&virtio_rng_ops, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	put_desc(DESC, 0, 0x5000, 16, F_INDIRECT, 0);
	put_desc(0x5000, 0, DATA, 8, F_WRITE, 0);
	make_available(0);
	virtio_mmio_process(&t, 0);
	CHECK(rd(0x070) & VIRTIO_STATUS_NEEDS_RESET);
	finish();
}

TEST(queue_outside_ram_or_bad_size)
{
	driver_init(&virtio_rng_ops, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	wr(0x070, 0);
	wr(0x070, 0xb);
	wr(0x038, 6); /* not a power of two */
	wr(0x044, 1);
	CHECK(rd(0x044) == 0 && (rd(0x070) & VIRTIO_STATUS_NEEDS_RESET));
	wr(0x070, 0);
	wr(0x070, 0xb);
	wr(0x038, QSIZE);
	wr(0x080, RAM_SIZE - 16);
	wr(0x044, 1);
	CHECK(rd(0x044) == 0 && (rd(0x070) & VIRTIO_STATUS_NEEDS_RESET));
	finish();
}

TEST(event_idx_suppresses_interrupts)
{
	eventfd_t n;

	driver_init(&virtio_rng_ops, VIRTIO_BIT(VIRTIO_F_VERSION_1) |
					     VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX));
	put_le16(ram + AVAIL + 4 + 2 * QSIZE, 5); /* used_event: interrupt after entry 5 */
	for (uint16_t i = 0; i < 3; i++) {
		put_desc(DESC, i, DATA + 64 * i, 8, F_WRITE, 0);
		make_available(i);
		virtio_mmio_process(&t, 0);
	}
	CHECK(get_le16(ram + USED + 2) == 3);
	/* the first push always signals; then none until used passes 5 */
	CHECK(eventfd_read(t.irq_fd, &n) == 0 && n == 1);
	CHECK(get_le16(ram + USED + 4 + 8 * QSIZE) == 3); /* avail_event follows us */
	finish();
}

TEST(register_access_rules)
{
	uint8_t b[2] = { 0xaa, 0xaa };

	driver_init(&virtio_rng_ops, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	virtio_mmio_access(&t, 0x000, b, 2, false); /* 16-bit register read: refused */
	CHECK(b[0] == 0 && b[1] == 0);
	CHECK(rd(0x100) == 0); /* no config space */
	wr(0x030, 7);	       /* a queue that does not exist */
	CHECK(rd(0x034) == 0);
	wr(0x038, 8);
	wr(0x044, 1);
	CHECK(rd(0x044) == 0);
	CHECK(rd(0x0b4) == 0xffffffff); /* no shared memory */
	finish();
}

/* §2.5, §4.2.2: a config change bumps ConfigGeneration and, once DRIVER_OK, interrupts. */
TEST(config_change_notification)
{
	struct state_writer w;
	struct state_reader r;
	struct virtio_mmio t2;
	uint32_t generation;
	eventfd_t n = 0;

	driver_init(&virtio_rng_ops, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	generation = rd(0x0fc);
	virtio_mmio_lock(&t);
	virtio_config_changed(&t);
	virtio_mmio_unlock(&t);
	CHECK(rd(0x0fc) == generation + 1);
	CHECK(rd(0x060) == 2);
	CHECK(eventfd_read(t.irq_fd, &n) == 0 && n == 1);

	/* Saved and loaded with the rest: generation and the pending notification. */
	state_writer_init(&w);
	CHECK(virtio_mmio_save(&t, &w) == 0);
	CHECK(virtio_mmio_init(&t2, &virtio_rng_ops, NULL, &mem, 0xd0000000, 5, -1, NULL) == 0);
	state_reader_init(&r, w.buf, w.len);
	CHECK(virtio_mmio_load(&t2, &r) == 0);
	CHECK(fake_read(&t2, 0x0fc) == generation + 1 && fake_read(&t2, 0x060) == 2);
	virtio_mmio_destroy(&t2, NULL);
	state_writer_free(&w);

	wr(0x064, 2);
	CHECK(rd(0x060) == 0);
	/* Before DRIVER_OK: a new generation for the driver reading the config, no interrupt. */
	wr(0x070, 0);
	wr(0x070, 1);
	virtio_mmio_lock(&t);
	virtio_config_changed(&t);
	virtio_mmio_unlock(&t);
	CHECK(rd(0x0fc) == generation + 2);
	CHECK(rd(0x060) == 0 && eventfd_read(t.irq_fd, &n) < 0);
	finish();
}

/* Queue 1 of a two-queue device at DESC + 0x800 etc.; queue 0 is set up by driver_init. */
static void setup_queue1(void)
{
	fake_setup_queue(&t, 1, QSIZE, DESC + 0x800, AVAIL + 0x800, USED + 0x800);
	wr(0x030, 0);
}

TEST(console_transmit_and_receive)
{
	int fds[2];
	struct virtio_console *con;
	struct console_sink sink;
	char out[16] = { 0 };
	eventfd_t n;

	CHECK(pipe(fds) == 0);
	con = virtio_console_create(fds[1]);
	driver_init_dev(&virtio_console_ops, con, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	setup_queue1();
	sink = virtio_console_sink(con);
	/* transmitq: two readable segments reach the output in order */
	memcpy(ram + DATA, "hello ", 6);
	memcpy(ram + DATA + 100, "world", 5);
	put_desc(DESC + 0x800, 0, DATA, 6, F_NEXT, 1);
	put_desc(DESC + 0x800, 1, DATA + 100, 5, 0, 0);
	put_le16(ram + AVAIL + 0x800 + 4, 0);
	put_le16(ram + AVAIL + 0x800 + 2, 1);
	virtio_mmio_process(&t, 1);
	CHECK(read(fds[0], out, sizeof(out)) == 11 && !strcmp(out, "hello world"));
	/* receiveq: no buffers yet, so nothing is taken; a buffer then signals space */
	CHECK(sink.receive(sink.opaque, (const uint8_t *)"abc", 3) == 0);
	put_desc(DESC, 0, DATA + 200, 2, F_WRITE, 0);
	make_available(0);
	virtio_mmio_process(&t, 0);
	CHECK(eventfd_read(sink.space_fd, &n) == 0);
	CHECK(sink.receive(sink.opaque, (const uint8_t *)"abc", 3) == 2);
	CHECK(!memcmp(ram + DATA + 200, "ab", 2) && get_le32(ram + USED + 8) == 2);
	finish();
	virtio_console_free(con);
	close(fds[0]);
	close(fds[1]);
}

TEST_MAIN(T(rng_fills_buffers_and_interrupts), T(features_must_include_version_1),
	  T(chained_and_indirect_descriptors), T(malformed_chains_need_reset),
	  T(indirect_needs_the_feature), T(queue_outside_ram_or_bad_size),
	  T(event_idx_suppresses_interrupts), T(register_access_rules),
	  T(console_transmit_and_receive), T(config_change_notification))
