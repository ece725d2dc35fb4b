/*
 * libFuzzer target: virtio-net's transmit and receive paths over the TAP back-end, with a
 * datagram socketpair standing in for the tap. The input lays out guest RAM: feature and
 * queue-depth bytes, the sizes of three frames waiting on the tap, then for each queue 16
 * descriptors (address, length, flags, next: all driver-controlled, in or out of RAM) and
 * the ring's 16 heads; the rest is data for buffers and indirect tables. Every frame the
 * device passes on must be whole and bounded, and nothing may crash.
 */
#include "../unit/fake_driver.h"
#include "../../src/log.h"
#include "../../src/util/bytes.h"
#include "../../src/virtio/net.h"

#include <assert.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define RAM_SIZE	(256 << 10)
#define DATA_AREA	0x1000
#define QSIZE		16
#define RECORD		8 /* address (4), length (2), flags (1), next (1) */
#define RAW_ADDRESS	0x80
#define HDR_LEN		12
#define MAX_FRAME	65550
#define GUEST_CSUM	1

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t ram[RAM_SIZE];
static uint8_t frame[HDR_LEN + MAX_FRAME + 1];
static struct virtio_mmio t;

static void wr(uint64_t off, uint32_t v)
{
	uint8_t b[4];

	put_le32(b, v);
	virtio_mmio_access(&t, off, b, 4, true);
}

static void setup_queue(unsigned sel, uint64_t base)
{
	fake_setup_queue(&t, sel, QSIZE, base, base + 0x100, base + 0x200);
}

static void driver_init(uint8_t choice)
{
	uint64_t features = VIRTIO_BIT(VIRTIO_F_VERSION_1);

	if (choice & 1)
		features |= VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC);
	if (choice & 2)
		features |= VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX);
	if (choice & 4)
		features |= VIRTIO_BIT(GUEST_CSUM);
	fake_negotiate(&t, features);
	setup_queue(0, 0x400);
	setup_queue(1, 0x0);
	wr(0x070, 0xf);
}

/* Takes n bytes of input, or NULL when it has run out. */
static const uint8_t *take(const uint8_t **p, size_t *left, size_t n)
{
	const uint8_t *r = *p;

	if (*left < n)
		return NULL;
	*p += n;
	*left -= n;
	return r;
}

/* Fills a queue's descriptor table and its available ring with count heads. */
static void fill_queue(const uint8_t **p, size_t *left, uint64_t base, unsigned count)
{
	const uint8_t *r;

	for (unsigned i = 0; i < QSIZE && (r = take(p, left, RECORD)); i++) {
		uint8_t *d = ram + base + 16 * i;
		uint32_t addr = get_le32(r);

		put_le64(d, r[6] & RAW_ADDRESS ? addr : addr % RAM_SIZE);
		put_le32(d + 8, get_le16(r + 4));
		put_le16(d + 12, r[6] & 7); /* NEXT, WRITE, INDIRECT */
		put_le16(d + 14, r[7]);
	}
	for (unsigned i = 0; i < count && (r = take(p, left, 1)); i++)
		put_le16(ram + base + 0x104 + 2 * i, r[0]);
	put_le16(ram + base + 0x102, count);
}

/* Runs whatever the event loop has ready, once. */
static void loop_turn(struct event_loop *loop)
{
	struct epoll_event ev[4];
	int n = epoll_wait(loop->epoll_fd, ev, 4, 0);

	for (int i = 0; i < n; i++) {
		struct event_source *src = ev[i].data.ptr;

		src->fn(src->opaque);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct net_config cfg = { .backend = NET_TAP, .ifname = "fuzz0" };
	struct event_loop loop;
	struct guest_mem mem;
	struct virtio_net *net;
	const uint8_t *choice, *sizes;
	int sv[2], ret;
	ssize_t n;

	log_set_level(LOG_OFF);
	memset(ram, 0, sizeof(ram));
	choice = take(&data, &size, 3);
	sizes = take(&data, &size, 6);
	if (!sizes)
		return 0;
	fill_queue(&data, &size, 0x0, choice[1] % (QSIZE + 1));
	fill_queue(&data, &size, 0x400, choice[2] % (QSIZE + 1));
	memcpy(ram + DATA_AREA, data, size < RAM_SIZE - DATA_AREA ? size : RAM_SIZE - DATA_AREA);
	guest_mem_wrap(&mem, ram, RAM_SIZE, 0xc0000000, 0x100000000);
	if (event_loop_init(&loop))
		return 0;
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv)) {
		event_loop_destroy(&loop);
		return 0;
	}
	net = virtio_net_create_tap_fd(&cfg, 0, &loop, sv[0]);
	assert(net);
	ret = virtio_mmio_init(&t, virtio_net_device_ops(net), net, &mem, 0xd0000000, 5, -1, NULL);
	assert(ret == 0);
	driver_init(choice[0]);
	/* Frames for the RX path, up to 2 KiB each. */
	for (unsigned i = 0; i < 3; i++) {
		size_t len = get_le16(sizes + 2 * i) & 0x7ff;

		memset(frame, (int)i, len);
		n = send(sv[1], frame, len, 0);
		assert(n == (ssize_t)len);
	}
	virtio_mmio_process(&t, 1);
	virtio_mmio_process(&t, 0);
	loop_turn(&loop);
	while ((n = recv(sv[1], frame, sizeof(frame), MSG_TRUNC)) >= 0)
		assert(n >= HDR_LEN + 14 && n <= HDR_LEN + MAX_FRAME);
	virtio_mmio_destroy(&t, NULL);
	virtio_net_free(net);
	close(sv[1]);
	event_loop_destroy(&loop);
	return 0;
}
