#include "test.h"
#include "fake_driver.h"

#include "../../src/state/state.h"
#include "../../src/util/bytes.h"
#include "../../src/virtio/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define RAM_SIZE	(1 << 20)
#define DATA		0x10000
#define BIG		0x40000 /* room for the largest frame */
#define QSIZE		8
#define F_NEXT		1
#define F_WRITE		2
#define HDR_LEN		12
#define MAX_FRAME	65550

#define F_GUEST_CSUM	1
#define F_CSUM		0
#define F_MAC		5
#define F_STATUS	16

struct fake_queue {
	uint64_t desc, avail, used;
};

static const struct fake_queue rxq = { 0x1000, 0x2000, 0x3000 };
static const struct fake_queue txq = { 0x4000, 0x5000, 0x6000 };

static uint8_t ram[RAM_SIZE];
static struct guest_mem mem;
static struct virtio_mmio t;
static struct event_loop loop;
static struct virtio_net *net;
static int peer = -1; /* the far end of the stand-in tap */

static void wr(uint64_t off, uint32_t v)
{
	fake_write(&t, off, v);
}

static uint32_t rd(uint64_t off)
{
	return fake_read(&t, off);
}

static void put_desc(const struct fake_queue *q, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	fake_put_desc(ram, q->desc, i, addr, len, flags, next);
}

static void make_available(const struct fake_queue *q, uint16_t head)
{
	fake_make_available(ram, q->avail, QSIZE, head);
}

static uint16_t used_idx(const struct fake_queue *q)
{
	return get_le16(ram + q->used + 2);
}

static uint32_t used_id(const struct fake_queue *q, unsigned i)
{
	return get_le32(ram + q->used + 4 + 8 * i);
}

static uint32_t used_len(const struct fake_queue *q, unsigned i)
{
	return get_le32(ram + q->used + 8 + 8 * i);
}

static void setup_queue(unsigned sel, const struct fake_queue *q)
{
	fake_setup_queue(&t, sel, QSIZE, q->desc, q->avail, q->used);
	CHECK(rd(0x044) == 1);
}

/* What a driver does after a reset (§3.1.1), with the rings cleared. */
static void driver_setup(uint64_t features)
{
	memset(ram, 0, DATA);
	fake_negotiate(&t, features);
	setup_queue(0, &rxq);
	setup_queue(1, &txq);
	wr(0x070, 0xf);
	CHECK(rd(0x070) == 0xf);
}

static void attach(uint64_t features)
{
	CHECK(net != NULL);
	if (!net)
		exit(1);
	guest_mem_wrap(&mem, ram, RAM_SIZE, 0xc0000000, 0x100000000);
	CHECK(virtio_mmio_init(&t, virtio_net_device_ops(net), net, &mem, 0xd0000000, 5, -1,
			       NULL) == 0);
	CHECK(rd(0x008) == 1);
	driver_setup(features);
}

static struct virtio_net *tap_device(const struct net_config *cfg, unsigned index)
{
	int sv[2];

	CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	peer = sv[1];
	return virtio_net_create_tap_fd(cfg, index, &loop, sv[0]);
}

static void start_tap(uint64_t features)
{
	struct net_config cfg = { .backend = NET_TAP, .ifname = "test0" };

	memset(ram, 0, sizeof(ram));
	CHECK(event_loop_init(&loop) == 0);
	net = tap_device(&cfg, 0);
	attach(VIRTIO_BIT(VIRTIO_F_VERSION_1) | features);
}

static void start_user(const struct net_config *cfg)
{
	memset(ram, 0, sizeof(ram));
	CHECK(event_loop_init(&loop) == 0);
	net = virtio_net_create(cfg, 0, &loop);
	attach(VIRTIO_BIT(VIRTIO_F_VERSION_1));
}

static void finish(void)
{
	virtio_mmio_destroy(&t, NULL);
	virtio_net_free(net);
	net = NULL;
	if (peer >= 0)
		close(peer);
	peer = -1;
	event_loop_destroy(&loop);
}

/* One turn of the event loop, waiting at most timeout_ms; returns how many handlers ran. */
static int loop_turn(int timeout_ms)
{
	struct epoll_event ev[8];
	int n = epoll_wait(loop.epoll_fd, ev, 8, timeout_ms);

	for (int i = 0; i < n; i++) {
		struct event_source *src = ev[i].data.ptr;

		src->fn(src->opaque);
	}
	return n;
}

static struct net_stats stats(void)
{
	struct net_stats s;

	virtio_net_stats(net, &s);
	return s;
}

static bool interrupted(void)
{
	eventfd_t n;

	return eventfd_read(t.irq_fd, &n) == 0 && n > 0;
}

static void fill(uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

/* A frame from the tap: a header with flags, then len bytes of pattern. */
static void tap_send(uint8_t flags, size_t len, uint8_t seed)
{
	static uint8_t frame[HDR_LEN + MAX_FRAME];

	memset(frame, 0, HDR_LEN);
	frame[0] = flags;
	fill(frame + HDR_LEN, len, seed);
	CHECK(send(peer, frame, HDR_LEN + len, 0) == (ssize_t)(HDR_LEN + len));
}

/* A one-descriptor RX buffer of len bytes at addr. */
static void post_rx(uint16_t head, uint64_t addr, uint32_t len)
{
	put_desc(&rxq, head, addr, len, F_WRITE, 0);
	make_available(&rxq, head);
}

static bool rx_holds(uint64_t addr, size_t len, uint8_t seed)
{
	uint8_t want[2048];

	fill(want, len, seed);
	return get_le16(ram + addr + 10) == 1 && memcmp(ram + addr + HDR_LEN, want, len) == 0;
}

static uint32_t config_read(uint32_t off)
{
	return rd(0x100 + off);
}

TEST(default_mac_is_stable_and_unique)
{
	struct net_config cfg = { .backend = NET_TAP, .ifname = "test0" };
	static const uint8_t want[3][6] = {
		{ 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 },
		{ 0x52, 0x54, 0x00, 0x12, 0x34, 0x57 },
		{ 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 },
	};

	for (unsigned i = 0; i < 3; i++) {
		uint8_t mac[8];

		CHECK(event_loop_init(&loop) == 0);
		net = tap_device(&cfg, i % 2);
		attach(VIRTIO_BIT(VIRTIO_F_VERSION_1));
		put_le32(mac, config_read(0));
		put_le32(mac + 4, config_read(4));
		CHECK(memcmp(mac, want[i], 6) == 0);
		CHECK(get_le16(mac + 6) == 1); /* VIRTIO_NET_S_LINK_UP */
		finish();
	}
	memcpy(cfg.mac, (uint8_t[]){ 0x02, 1, 2, 3, 4, 5 }, 6);
	cfg.mac_set = true;
	CHECK(event_loop_init(&loop) == 0);
	net = tap_device(&cfg, 0);
	attach(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	CHECK(config_read(0) == 0x03020102 && (config_read(4) & 0xffff) == 0x0504);
	finish();
}

TEST(features_follow_the_backend)
{
	struct net_config cfg = { .backend = NET_USER };

	start_tap(0);
	wr(0x014, 0);
	CHECK(rd(0x010) & (1u << F_CSUM | 1u << F_GUEST_CSUM | 1u << F_MAC | 1u << F_STATUS));
	CHECK(!(rd(0x010) & (1u << 15))); /* no MRG_RXBUF */
	finish();
	start_user(&cfg);
	wr(0x014, 0);
	CHECK((rd(0x010) & 0xffffff) == (1u << F_MAC | 1u << F_STATUS));
	finish();
	CHECK((virtio_net_ops.features & 0xffffff) == (1u << F_MAC | 1u << F_STATUS));
}

TEST(tx_passes_header_and_frame)
{
	uint8_t got[256], want[HDR_LEN + 60];

	start_tap(VIRTIO_BIT(F_CSUM));
	fill(want, sizeof(want), 3);
	memcpy(ram + DATA, want, HDR_LEN);
	memcpy(ram + DATA + 100, want + HDR_LEN, 20);
	memcpy(ram + DATA + 200, want + HDR_LEN + 20, 40);
	put_desc(&txq, 0, DATA, HDR_LEN, F_NEXT, 1);
	put_desc(&txq, 1, DATA + 100, 20, F_NEXT, 2);
	put_desc(&txq, 2, DATA + 200, 40, 0, 0);
	make_available(&txq, 0);
	virtio_mmio_process(&t, 1);
	CHECK(recv(peer, got, sizeof(got), 0) == sizeof(want));
	CHECK(memcmp(got, want, sizeof(want)) == 0);
	CHECK(used_idx(&txq) == 1 && used_id(&txq, 0) == 0 && used_len(&txq, 0) == 0);
	CHECK(interrupted());
	CHECK(stats().tx_packets == 1 && stats().tx_dropped == 0);
	finish();
}

TEST(tx_drops_malformed_chains)
{
	uint8_t got[8];

	start_tap(0);
	put_desc(&txq, 0, DATA, 8, 0, 0);			/* short of a header */
	put_desc(&txq, 1, DATA, HDR_LEN, 0, 0);			/* a header, no frame */
	put_desc(&txq, 2, BIG, HDR_LEN + MAX_FRAME + 1, 0, 0);	/* too big */
	put_desc(&txq, 3, DATA, 64, F_WRITE, 0);		/* nothing readable */
	put_desc(&txq, 4, BIG, HDR_LEN + MAX_FRAME, 0, 0);	/* the largest allowed */
	for (uint16_t i = 0; i < 5; i++)
		make_available(&txq, i);
	virtio_mmio_process(&t, 1);
	CHECK(used_idx(&txq) == 5);
	CHECK(stats().tx_dropped == 4 && stats().tx_packets == 1);
	CHECK(recv(peer, got, sizeof(got), MSG_TRUNC) == HDR_LEN + MAX_FRAME);
	CHECK(recv(peer, got, sizeof(got), 0) < 0 && errno == EAGAIN);
	CHECK(!(rd(0x070) & VIRTIO_STATUS_NEEDS_RESET));
	finish();
}

TEST(rx_reads_into_guest_buffer)
{
	start_tap(VIRTIO_BIT(F_GUEST_CSUM));
	/* The header itself split across descriptors. */
	put_desc(&rxq, 0, DATA, 10, F_WRITE | F_NEXT, 1);
	put_desc(&rxq, 1, DATA + 10, 200, F_WRITE, 0);
	make_available(&rxq, 0);
	tap_send(1, 60, 9); /* VIRTIO_NET_HDR_F_NEEDS_CSUM */
	virtio_mmio_process(&t, 0);
	CHECK(used_idx(&rxq) == 1 && used_id(&rxq, 0) == 0 && used_len(&rxq, 0) == HDR_LEN + 60);
	CHECK(ram[DATA] == 1 && rx_holds(DATA, 60, 9));
	CHECK(interrupted());
	CHECK(stats().rx_packets == 1 && stats().rx_dropped == 0);
	finish();

	/* Without GUEST_CSUM the driver gets no checksum flags (§5.1.6.4.1). */
	start_tap(0);
	post_rx(0, DATA, 2048);
	tap_send(2, 60, 1); /* VIRTIO_NET_HDR_F_DATA_VALID */
	virtio_mmio_process(&t, 0);
	CHECK(used_idx(&rxq) == 1 && ram[DATA] == 0 && rx_holds(DATA, 60, 1));
	finish();
}

TEST(rx_waits_for_buffers)
{
	start_tap(0);
	tap_send(0, 60, 1);
	virtio_mmio_process(&t, 0); /* no buffers: the tap is not watched */
	CHECK(loop_turn(0) == 0);
	CHECK(used_idx(&rxq) == 0 && stats().rx_dropped == 0);

	post_rx(0, DATA, 2048);
	post_rx(1, DATA + 2048, 2048);
	virtio_mmio_process(&t, 0);
	CHECK(used_idx(&rxq) == 1 && used_id(&rxq, 0) == 0 && rx_holds(DATA, 60, 1));
	CHECK(loop_turn(0) == 0); /* watched, nothing to read */

	tap_send(0, 70, 2);
	CHECK(loop_turn(0) == 1);
	CHECK(used_idx(&rxq) == 2 && used_id(&rxq, 1) == 1 && rx_holds(DATA + 2048, 70, 2));

	tap_send(0, 80, 3);
	loop_turn(0); /* finds no buffer and stops watching */
	CHECK(loop_turn(0) == 0);
	CHECK(used_idx(&rxq) == 2);

	post_rx(2, DATA + 4096, 2048);
	virtio_mmio_process(&t, 0);
	CHECK(used_idx(&rxq) == 3 && rx_holds(DATA + 4096, 80, 3));
	CHECK(stats().rx_packets == 3 && stats().rx_dropped == 0);
	finish();
}

TEST(rx_drops_frames_too_big_for_the_buffer)
{
	start_tap(0);
	post_rx(0, DATA, 10); /* no frame fits: given back at once */
	post_rx(1, DATA + 100, HDR_LEN + 50);
	tap_send(0, 100, 1);
	tap_send(0, 40, 2);
	virtio_mmio_process(&t, 0);
	CHECK(used_idx(&rxq) == 2);
	CHECK(used_id(&rxq, 0) == 0 && used_len(&rxq, 0) == 0);
	CHECK(used_id(&rxq, 1) == 1 && used_len(&rxq, 1) == HDR_LEN + 40);
	CHECK(rx_holds(DATA + 100, 40, 2));
	CHECK(ram[DATA + 100 + HDR_LEN + 50] == 0); /* nothing past the buffer */
	CHECK(stats().rx_dropped == 1 && stats().rx_packets == 1);
	finish();
}

TEST(reset_forgets_taken_buffers)
{
	start_tap(0);
	post_rx(0, DATA, 2048);
	virtio_mmio_process(&t, 0); /* takes the buffer, waits on the tap */
	wr(0x070, 0);
	tap_send(0, 60, 4);
	CHECK(loop_turn(0) == 0); /* not watched after a reset */

	driver_setup(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	post_rx(3, DATA + 4096, 2048);
	virtio_mmio_process(&t, 0);
	CHECK(used_idx(&rxq) == 1 && used_id(&rxq, 0) == 3 && rx_holds(DATA + 4096, 60, 4));
	finish();
}

TEST(snapshot_gives_held_buffer_back)
{
	struct net_config cfg = { .backend = NET_TAP, .ifname = "test0" };
	struct state_writer w;
	struct state_reader r;

	start_tap(0);
	post_rx(5, DATA, 2048);
	virtio_mmio_process(&t, 0); /* buffer 5 taken, nothing to put in it */
	state_writer_init(&w);
	CHECK(virtio_mmio_save(&t, &w) == 0);
	virtio_mmio_destroy(&t, NULL);
	virtio_net_free(net);
	close(peer);

	net = tap_device(&cfg, 0);
	CHECK(virtio_mmio_init(&t, virtio_net_device_ops(net), net, &mem, 0xd0000000, 5, -1,
			       NULL) == 0);
	state_reader_init(&r, w.buf, w.len);
	CHECK(virtio_mmio_load(&t, &r) == 0);
	state_writer_free(&w);
	tap_send(0, 60, 5);
	CHECK(loop_turn(0) == 1); /* the restored device looks at the tap by itself */
	CHECK(used_idx(&rxq) == 1 && used_id(&rxq, 0) == 5 && used_len(&rxq, 0) == 0);
	post_rx(6, DATA + 2048, 2048);
	virtio_mmio_process(&t, 0);
	CHECK(used_idx(&rxq) == 2 && used_id(&rxq, 1) == 6 && rx_holds(DATA + 2048, 60, 5));
	finish();
}

/* An ARP request from the guest (10.0.2.15, default MAC) for target (an IPv4 address). */
static void tx_arp_request(uint16_t head, uint32_t target)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	uint8_t *f = ram + DATA + 0x8000;

	memset(f, 0, HDR_LEN + 42);
	f += HDR_LEN;
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	memcpy(f + 12, (uint8_t[]){ 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1 }, 10);
	memcpy(f + 22, mac, 6);
	put_le32(f + 28, htonl(0x0a00020f));
	put_le32(f + 38, htonl(target));
	put_desc(&txq, head, DATA + 0x8000, HDR_LEN + 42, 0, 0);
	make_available(&txq, head);
}

TEST(user_mode_answers_arp)
{
	struct net_config cfg = { .backend = NET_USER };
	static const uint8_t zero[10];
	const uint8_t *f = ram + DATA + HDR_LEN;

	start_user(&cfg);
	post_rx(0, DATA, 2048);
	tx_arp_request(0, 0x0a000202);
	virtio_mmio_process(&t, 1);
	CHECK(used_idx(&txq) == 1 && stats().tx_packets == 1);
	CHECK(used_idx(&rxq) == 1 && used_len(&rxq, 0) >= HDR_LEN + 42);
	CHECK(memcmp(ram + DATA, zero, 10) == 0 && get_le16(ram + DATA + 10) == 1);
	CHECK(f[12] == 0x08 && f[13] == 0x06 && f[21] == 2); /* an ARP reply */
	CHECK(get_le32(f + 28) == htonl(0x0a000202));	      /* from 10.0.2.2 */
	CHECK(f[0] == 0x52 && f[5] == 0x56);		      /* to us */
	CHECK(interrupted());
	CHECK(stats().rx_packets == 1);
	loop_turn(0);

	/* No RX buffer: slirp's reply is dropped and counted. */
	tx_arp_request(1, 0x0a000203);
	virtio_mmio_process(&t, 1);
	CHECK(used_idx(&rxq) == 1 && stats().rx_dropped == 1);
	finish();
}

static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);

	CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(getsockname(s, (struct sockaddr *)&a, &len) == 0);
	close(s);
	return ntohs(a.sin_port);
}

TEST(user_mode_forwards_host_ports)
{
	struct net_config cfg = { .backend = NET_USER, .nr_hostfwd = 1 };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	const uint8_t *f = ram + DATA + HDR_LEN;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	cfg.hostfwd[0] = (struct net_hostfwd){ .host_addr = htonl(INADDR_LOOPBACK),
					       .host_port = free_port(), .guest_port = 22 };
	start_user(&cfg);
	post_rx(0, DATA, 2048);
	a.sin_port = htons(cfg.hostfwd[0].host_port);
	CHECK(connect(s, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EINPROGRESS);
	/* slirp accepts, and must find the guest's MAC before its SYN can go out. */
	for (int i = 0; i < 50 && used_idx(&rxq) == 0; i++)
		loop_turn(100);
	CHECK(used_idx(&rxq) == 1);
	CHECK(f[12] == 0x08 && f[13] == 0x06 && f[21] == 1); /* an ARP request */
	CHECK(get_le32(f + 38) == htonl(0x0a00020f));	      /* for 10.0.2.15 */
	close(s);
	finish();

	/* A port already taken fails creation with one line. */
	s = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_port = 0;
	CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(s, 1) == 0);
	socklen_t len = sizeof(a);
	CHECK(getsockname(s, (struct sockaddr *)&a, &len) == 0);
	cfg.hostfwd[0].host_port = ntohs(a.sin_port);
	CHECK(event_loop_init(&loop) == 0);
	CHECK(virtio_net_create(&cfg, 0, &loop) == NULL);
	event_loop_destroy(&loop);
	close(s);
}

TEST(tap_must_exist)
{
	struct net_config cfg = { .backend = NET_TAP, .ifname = "skiffnosuch0" };

	CHECK(event_loop_init(&loop) == 0);
	CHECK(virtio_net_create(&cfg, 0, &loop) == NULL);
	event_loop_destroy(&loop);
}

TEST_MAIN(T(default_mac_is_stable_and_unique), T(features_follow_the_backend),
	  T(tx_passes_header_and_frame), T(tx_drops_malformed_chains),
	  T(rx_reads_into_guest_buffer), T(rx_waits_for_buffers),
	  T(rx_drops_frames_too_big_for_the_buffer), T(reset_forgets_taken_buffers),
	  T(snapshot_gives_held_buffer_back), T(user_mode_answers_arp),
	  T(user_mode_forwards_host_ports), T(tap_must_exist))
