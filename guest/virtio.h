/*
 * virtio 1.x devices over virtio-mmio (virtio 1.2 §4.2) with split virtqueues (§2.7), and the
 * block and network drivers that the tests and benchmarks share. Everything that moves data
 * (virtq_*, blk_submit .. blk_io, net_*) is CPL3-safe: memory and MMIO only, no port I/O.
 */
#ifndef PROBE_VIRTIO_H
#define PROBE_VIRTIO_H

#include "probe.h"

#define VIRTIO_ID_NET		1
#define VIRTIO_ID_BLOCK		2
#define VIRTIO_ID_CONSOLE	3
#define VIRTIO_ID_RNG		4

#define VIRTIO_F_RING_INDIRECT_DESC	28
#define VIRTIO_F_RING_EVENT_IDX		29
#define VIRTIO_F_VERSION_1		32

#define BIT(n)		(1ULL << (n))
#define VIRTQ_MAX	256

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];	/* then used_event */
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[];	/* then avail_event */
};

/* One buffer of a request; the device-readable ones come first (§2.7.4.2). */
struct virtq_buf {
	void *addr;
	uint32_t len;
	bool device_writes;
};

struct virtio_dev {
	uint64_t base;
	uint64_t offered;	/* the device's feature bits */
	uint64_t features;	/* what was negotiated */
	uint32_t irq;		/* from the command line: an ISA IRQ below 16, else a GSI */
};

/* A split virtqueue with its rings; static storage, zero until virtq_init. */
struct virtq {
	struct virtq_desc desc[VIRTQ_MAX] __attribute__((aligned(4096)));
	uint8_t avail_page[PAGE_SIZE] __attribute__((aligned(4096)));
	uint8_t used_page[PAGE_SIZE] __attribute__((aligned(4096)));
	void *token[VIRTQ_MAX];
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint64_t notify;
	uint16_t index;
	uint16_t size;
	uint16_t num_free;
	uint16_t free_head;
	uint16_t avail_idx;	/* next avail->idx */
	uint16_t kicked_idx;	/* avail->idx when the device was last told */
	uint16_t last_used;
	bool indirect;
	bool event_idx;
};

/* virtio.c, CPL0 */
const char *virtio_find(const struct probe *p, uint32_t device_id, struct virtio_dev *dev);
const char *virtio_start(struct virtio_dev *dev, uint64_t wanted);
const char *virtq_init(struct virtio_dev *dev, struct virtq *vq, uint16_t index);
void virtio_ready(struct virtio_dev *dev);
void virtio_irq_ack(const struct virtio_dev *dev);
uint8_t virtio_config8(const struct virtio_dev *dev, uint32_t offset);
uint64_t virtio_config64(const struct virtio_dev *dev, uint32_t offset);

/* virtio.c, CPL3-safe */
int virtq_add(struct virtq *vq, const struct virtq_buf *bufs, unsigned int n,
	      struct virtq_desc *table, void *token);
void virtq_kick(struct virtq *vq);
void *virtq_get(struct virtq *vq, uint32_t *len);
bool virtq_arm(struct virtq *vq);

/* blk.c */
#define BLK_SECTOR		512
#define BLK_T_IN		0
#define BLK_T_OUT		1
#define BLK_T_FLUSH		4
#define BLK_T_GET_ID		8
#define BLK_S_OK		0
#define BLK_S_IOERR		1
#define BLK_S_TIMEOUT		0x100	/* ours: no completion in time */
#define BLK_MAX_DEPTH		32
#define BLK_MAX_REQUEST		MIB

struct blk_request {
	struct virtq_desc table[3];	/* indirect: header, data, status */
	struct {
		uint32_t type;
		uint32_t reserved;
		uint64_t sector;
	} hdr;
	uint8_t status;
} __attribute__((aligned(16)));

struct blk {
	struct virtio_dev dev;
	struct virtq vq;
	uint64_t sectors;
	unsigned int max_depth;	/* requests the ring holds at once, up to BLK_MAX_DEPTH */
	struct blk_request requests[BLK_MAX_DEPTH];
};

extern uint8_t blk_buffers[2][BLK_MAX_REQUEST];

const char *blk_open(const struct probe *p, struct blk *blk);
int blk_submit(struct blk *blk, struct blk_request *req, uint32_t type, uint64_t sector,
	       void *buf, uint32_t len);
struct blk_request *blk_wait(struct blk *blk);
uint32_t blk_io(struct blk *blk, uint32_t type, uint64_t sector, void *buf, uint32_t len);
const char *blk_failure(uint32_t status, const char *what);

/* net.c */
#define NET_BUFS	64
#define NET_BUF_SIZE	2048
#define NET_UDP_MAX	1472	/* a 1514-byte frame */

typedef void (*net_udp_fn)(void *arg, const uint8_t *data, uint32_t len);

struct net {
	struct virtio_dev dev;
	struct virtq rx;
	struct virtq tx;
	uint8_t mac[6];
	uint8_t gw_mac[6];
	bool gw_known;
	uint32_t ip;
	uint32_t gw;
	uint32_t peer;
	uint16_t peer_port;
	uint16_t ip_id;
	uint8_t *tx_free[NET_BUFS];
	unsigned int tx_free_count;
	net_udp_fn udp_rx;	/* datagrams from the peer */
	void *udp_arg;
	uint8_t rx_bufs[NET_BUFS][NET_BUF_SIZE];
	uint8_t tx_bufs[NET_BUFS][NET_BUF_SIZE];
};

const char *net_open(const struct probe *p, struct net *net);
void net_start(struct net *net);
uint64_t net_poll(struct net *net);
bool net_resolve_gateway(struct net *net);
int net_send_udp(struct net *net, const void *data, uint32_t len);

#endif
