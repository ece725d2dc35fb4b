#include "net.h"

#include "../log.h"
#include "../net/slirp.h"
#include "../net/tap.h"
#include "../util/bytes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* Feature bits, virtio 1.2 §5.1.3. */
#define NET_F_CSUM		0
#define NET_F_GUEST_CSUM	1
#define NET_F_MAC		5
#define NET_F_GUEST_TSO4	7
#define NET_F_GUEST_TSO6	8
#define NET_F_GUEST_ECN		9
#define NET_F_GUEST_UFO		10
#define NET_F_HOST_TSO4		11
#define NET_F_HOST_TSO6		12
#define NET_F_HOST_ECN		13
#define NET_F_HOST_UFO		14
#define NET_F_STATUS		16

#define NET_BASE_FEATURES	(VIRTIO_BIT(NET_F_MAC) | VIRTIO_BIT(NET_F_STATUS))
#define NET_TAP_FEATURES	(NET_BASE_FEATURES | VIRTIO_BIT(NET_F_CSUM) | \
				 VIRTIO_BIT(NET_F_GUEST_CSUM) | VIRTIO_BIT(NET_F_GUEST_TSO4) | \
				 VIRTIO_BIT(NET_F_GUEST_TSO6) | VIRTIO_BIT(NET_F_GUEST_ECN) | \
				 VIRTIO_BIT(NET_F_HOST_TSO4) | VIRTIO_BIT(NET_F_HOST_TSO6) | \
				 VIRTIO_BIT(NET_F_HOST_ECN))
#define NET_UFO_FEATURES	(VIRTIO_BIT(NET_F_GUEST_UFO) | VIRTIO_BIT(NET_F_HOST_UFO))

#define NET_RX_QUEUE		0
#define NET_TX_QUEUE		1
/*
 * struct virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, then
 * num_buffers, which VERSION_1 always has (§5.1.6).
 */
#define NET_HDR_LEN		12
#define NET_HDR_FLAGS		0
#define NET_HDR_NUM_BUFFERS	10
#define NET_ETH_HLEN		14
#define NET_MAX_FRAME		65550 /* a largest (64 KiB) IP packet and its Ethernet header */
#define NET_CONFIG_SIZE		8     /* mac, status (§5.1.4) */
#define NET_S_LINK_UP		1
#define NET_RX_BATCH		64    /* frames per turn, so one busy tap can't hog the loop */

struct virtio_net {
	enum net_backend backend;
	char name[IFNAMSIZ + 8]; /* "tap=IFNAME" or "--net user", for messages */
	struct virtio_device_ops ops; /* virtio_net_ops with the back-end's features */
	struct event_loop *loop;
	struct virtio_mmio *t;
	uint8_t config[NET_CONFIG_SIZE];

	int tap_fd;
	struct event_source tap_src;
	bool tap_watched;  /* on the loop: there is an RX buffer for the next frame */
	bool offloads_set; /* the tap's offloads follow what the driver negotiated */

	struct net_slirp *slirp;

	/* Taken from the RX queue but not filled yet: the next frame's buffer. */
	bool rx_pending;
	struct virtq_chain rx_chain;
	/* Restored from a snapshot: a buffer taken before it, to give back empty. */
	bool rx_orphan;
	uint16_t rx_orphan_head;
	bool rx_pushed; /* RX buffers used but not yet signalled */
	struct virtq_chain tx_chain;
	struct iovec rx_iov[VIRTQ_MAX_IOV + 1];
	struct net_stats stats;
	/* user: the frame for slirp; tap: where an RX frame too big for its buffer spills */
	uint8_t scratch[NET_HDR_LEN + NET_MAX_FRAME];
};

/* Counters are read from other threads (virtio_net_stats). */
static void count(uint64_t *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

static void tap_readable(void *opaque);

/* Watches the tap only while there is somewhere to put a frame: no busy loop, no drops. */
static void tap_watch(struct virtio_net *net, bool on)
{
	int ret;

	if (on == net->tap_watched)
		return;
	if (!on) {
		event_del(net->loop, &net->tap_src);
	} else {
		ret = event_add(net->loop, &net->tap_src, net->tap_fd, tap_readable, net);
		if (ret) {
			log_warn("%s: cannot watch the tap: %s", net->name, strerror(-ret));
			return;
		}
	}
	net->tap_watched = on;
}

/* What the tap may hand us is what the driver can take (§5.1.3.1: TSO needs GUEST_CSUM). */
static unsigned tap_offloads(const struct virtio_mmio *t)
{
	unsigned flags;

	if (!virtio_has_feature(t, NET_F_GUEST_CSUM))
		return 0;
	flags = TUN_F_CSUM;
	if (virtio_has_feature(t, NET_F_GUEST_TSO4))
		flags |= TUN_F_TSO4;
	if (virtio_has_feature(t, NET_F_GUEST_TSO6))
		flags |= TUN_F_TSO6;
	if ((flags & (TUN_F_TSO4 | TUN_F_TSO6)) && virtio_has_feature(t, NET_F_GUEST_ECN))
		flags |= TUN_F_TSO_ECN;
	if (virtio_has_feature(t, NET_F_GUEST_UFO))
		flags |= TUN_F_UFO;
	return flags;
}

/*
 * The transport has no activation hook, so the offloads are set at the first activity
 * after features are final (any notification, or the restored tap's first frame).
 */
static void tap_activate(struct virtio_net *net)
{
	int ret;

	if (net->offloads_set)
		return;
	ret = tap_set_offload(net->tap_fd, tap_offloads(net->t));
	if (ret)
		log_warn("%s: setting offloads: %s", net->name, strerror(-ret));
	net->offloads_set = true;
}

/* A buffer held across a snapshot goes back empty; the driver just re-posts it. */
static void rx_return_orphan(struct virtio_net *net)
{
	if (!net->rx_orphan)
		return;
	virtio_queue_push(net->t, NET_RX_QUEUE, net->rx_orphan_head, 0);
	net->rx_orphan = false;
	net->rx_pushed = true;
}

/* The buffer for the next frame: the one kept from before, or a new one. */
static bool rx_chain_ready(struct virtio_net *net)
{
	while (!net->rx_pending && virtio_queue_pop(net->t, NET_RX_QUEUE, &net->rx_chain) == 1) {
		if (net->rx_chain.in_len >= NET_HDR_LEN + NET_ETH_HLEN) {
			net->rx_pending = true;
			break;
		}
		/* No frame fits: give it back rather than hold up every frame behind it. */
		virtio_queue_push(net->t, NET_RX_QUEUE, net->rx_chain.head, 0);
		net->rx_pushed = true;
	}
	return net->rx_pending;
}

static void rx_complete(struct virtio_net *net, uint32_t len)
{
	uint8_t one[2];

	/* §5.1.6.4: one buffer per frame without VIRTIO_NET_F_MRG_RXBUF. */
	put_le16(one, 1);
	virtq_write(&net->rx_chain, NET_HDR_NUM_BUFFERS, one, sizeof(one));
	virtio_queue_push(net->t, NET_RX_QUEUE, net->rx_chain.head, len);
	net->rx_pending = false;
	net->rx_pushed = true;
	count(&net->stats.rx_packets);
}

static void rx_signal(struct virtio_net *net)
{
	if (net->rx_pushed)
		virtio_queue_interrupt(net->t, NET_RX_QUEUE);
	net->rx_pushed = false;
}

/* Reads frames, vnet header included, straight into RX buffers until either runs out. */
static void tap_receive(struct virtio_net *net)
{
	const struct virtq_chain *c = &net->rx_chain;
	static const uint8_t no_flags;

	for (unsigned i = 0; i < NET_RX_BATCH; i++) {
		ssize_t n;

		if (!rx_chain_ready(net)) {
			tap_watch(net, false); /* the RX queue's next notification resumes */
			return;
		}
		/* Past the buffer, the scratch area: a frame that did not fit shows as longer. */
		memcpy(net->rx_iov, c->iov + c->nr_out, c->nr_in * sizeof(struct iovec));
		net->rx_iov[c->nr_in] = (struct iovec){ net->scratch, sizeof(net->scratch) };
		n = readv(net->tap_fd, net->rx_iov, c->nr_in + 1);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			tap_watch(net, true);
			return;
		}
		if (n <= 0) {
			log_warn("%s: read: %s", net->name, n ? strerror(errno) : "end of file");
			tap_watch(net, false);
			return;
		}
		if ((uint64_t)n > c->in_len || n < NET_HDR_LEN + NET_ETH_HLEN) {
			count(&net->stats.rx_dropped); /* the buffer waits for the next frame */
			continue;
		}
		/* §5.1.6.4.1: no checksum flags for a driver that did not ask for them. */
		if (!virtio_has_feature(net->t, NET_F_GUEST_CSUM))
			virtq_write(c, NET_HDR_FLAGS, &no_flags, 1);
		rx_complete(net, n);
	}
	tap_watch(net, true); /* more may be waiting: next turn */
}

static void tap_readable(void *opaque)
{
	struct virtio_net *net = opaque;

	virtio_mmio_lock(net->t);
	if (net->tap_watched) {
		tap_activate(net);
		rx_return_orphan(net);
		tap_receive(net);
		rx_signal(net);
	}
	virtio_mmio_unlock(net->t);
}

/* slirp's frame for the guest, behind a header that asks for nothing. */
static void user_receive(void *opaque, const uint8_t *frame, size_t len)
{
	struct virtio_net *net = opaque;
	static const uint8_t hdr[NET_HDR_LEN];

	rx_return_orphan(net);
	/* slirp copes with drops: TCP retransmits, the rest is best effort anyway. */
	if (!rx_chain_ready(net) || net->rx_chain.in_len < NET_HDR_LEN + len) {
		count(&net->stats.rx_dropped);
		return;
	}
	virtq_write(&net->rx_chain, 0, hdr, sizeof(hdr));
	virtq_write(&net->rx_chain, NET_HDR_LEN, frame, len);
	rx_complete(net, NET_HDR_LEN + len);
}

static void user_lock(void *opaque)
{
	virtio_mmio_lock(((struct virtio_net *)opaque)->t);
}

static void user_unlock(void *opaque)
{
	struct virtio_net *net = opaque;

	rx_signal(net);
	virtio_mmio_unlock(net->t);
}

static void transmit_one(struct virtio_net *net, const struct virtq_chain *c)
{
	size_t len;

	if (c->out_len < NET_HDR_LEN + NET_ETH_HLEN || c->out_len - NET_HDR_LEN > NET_MAX_FRAME) {
		count(&net->stats.tx_dropped);
		return;
	}
	if (net->backend == NET_TAP) {
		/* The header goes through as is: the tap reads the same virtio_net_hdr. */
		if (writev(net->tap_fd, c->iov, c->nr_out) < 0) {
			count(&net->stats.tx_dropped);
			return;
		}
	} else {
		/* No offloads in user mode, so the header has nothing slirp needs. */
		len = virtq_read(c, NET_HDR_LEN, net->scratch, c->out_len - NET_HDR_LEN);
		net_slirp_input(net->slirp, net->scratch, len);
	}
	count(&net->stats.tx_packets);
}

static void transmit(struct virtio_net *net)
{
	bool pushed = false;

	while (virtio_queue_pop(net->t, NET_TX_QUEUE, &net->tx_chain) == 1) {
		transmit_one(net, &net->tx_chain);
		virtio_queue_push(net->t, NET_TX_QUEUE, net->tx_chain.head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_queue_interrupt(net->t, NET_TX_QUEUE);
}

static void net_attach(void *dev, struct virtio_mmio *t)
{
	((struct virtio_net *)dev)->t = t;
}

static void net_notify(void *dev, struct virtio_mmio *t, unsigned queue)
{
	struct virtio_net *net = dev;

	(void)t;
	if (net->backend == NET_TAP)
		tap_activate(net);
	rx_return_orphan(net);
	if (queue == NET_TX_QUEUE)
		transmit(net);
	else if (net->backend == NET_TAP)
		tap_receive(net); /* new RX buffers: frames may be waiting */
	rx_signal(net);
}

static void net_config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	memcpy(data, ((struct virtio_net *)dev)->config + offset, len);
}

static void net_reset(void *dev)
{
	struct virtio_net *net = dev;

	/* Buffers taken belong to queues the driver is tearing down. */
	net->rx_pending = false;
	net->rx_orphan = false;
	net->rx_pushed = false;
	net->offloads_set = false;
	if (net->backend == NET_TAP)
		tap_watch(net, false);
}

/* A buffer taken but not filled is the one thing the transport's state doesn't cover. */
static int net_save(void *dev, struct state_writer *w)
{
	struct virtio_net *net = dev;
	uint16_t head = net->rx_pending ? net->rx_chain.head : net->rx_orphan_head;
	bool held = net->rx_pending || net->rx_orphan;

	state_begin(w, "VNET", 1);
	state_put_u8(w, held);
	state_put_u16(w, held ? head : 0);
	return state_end(w);
}

static int net_load(void *dev, struct state_reader *r)
{
	struct virtio_net *net = dev;
	uint16_t head;
	bool held;

	if (state_open(r, "VNET") != 1)
		return -EINVAL;
	held = state_get_bool(r);
	head = state_get_u16(r);
	if (state_close(r) || head >= virtio_net_ops.queue_max)
		return -EINVAL;
	net->rx_pending = false;
	net->rx_orphan = held;
	net->rx_orphan_head = head;
	net->offloads_set = false;
	/* The driver may be waiting for frames already: look at the tap without a notification. */
	if (net->backend == NET_TAP)
		tap_watch(net, true);
	return 0;
}

const struct virtio_device_ops virtio_net_ops = {
	.name = "virtio-net",
	.device_id = VIRTIO_ID_NET,
	.features = NET_BASE_FEATURES,
	.nr_queues = 2,
	.queue_max = 256,
	.config_size = NET_CONFIG_SIZE,
	.attach = net_attach,
	.config_read = net_config_read,
	.queue_notify = net_notify,
	.reset = net_reset,
	.save = net_save,
	.load = net_load,
};

static struct virtio_net *net_alloc(const struct net_config *cfg, unsigned index,
				    struct event_loop *loop, enum net_backend backend)
{
	struct virtio_net *net = calloc(1, sizeof(*net));
	/* QEMU's numbering: 52:54:00:12:34:56 for the first device. */
	uint32_t low = 0x123456 + index;
	uint8_t mac[6] = { 0x52, 0x54, 0x00, low >> 16, low >> 8, low };

	if (!net)
		return NULL;
	net->backend = backend;
	if (backend == NET_TAP)
		snprintf(net->name, sizeof(net->name), "tap=%.*s", IFNAMSIZ - 1, cfg->ifname);
	else
		snprintf(net->name, sizeof(net->name), "--net user");
	net->ops = virtio_net_ops;
	net->loop = loop;
	net->tap_fd = -1;
	memcpy(net->config, cfg->mac_set ? cfg->mac : mac, sizeof(mac));
	put_le16(net->config + 6, NET_S_LINK_UP);
	return net;
}

static struct virtio_net *create_tap(const struct net_config *cfg, unsigned index,
				     struct event_loop *loop, int fd, bool ufo)
{
	struct virtio_net *net = net_alloc(cfg, index, loop, NET_TAP);

	if (!net) {
		log_error("tap=%s: %s", cfg->ifname, strerror(ENOMEM));
		close(fd);
		return NULL;
	}
	net->ops.features = NET_TAP_FEATURES | (ufo ? NET_UFO_FEATURES : 0);
	net->tap_fd = fd;
	return net;
}

struct virtio_net *virtio_net_create_tap_fd(const struct net_config *cfg, unsigned index,
					    struct event_loop *loop, int fd)
{
	return create_tap(cfg, index, loop, fd, false);
}

struct virtio_net *virtio_net_create(const struct net_config *cfg, unsigned index,
				     struct event_loop *loop)
{
	struct net_slirp_client client = { user_receive, user_lock, user_unlock, NULL };
	struct virtio_net *net;
	bool ufo;
	int fd;

	if (cfg->backend == NET_TAP) {
		fd = tap_open(cfg->ifname, &ufo);
		return fd < 0 ? NULL : create_tap(cfg, index, loop, fd, ufo);
	}
	net = net_alloc(cfg, index, loop, NET_USER);
	if (!net) {
		log_error("--net user: %s", strerror(ENOMEM));
		return NULL;
	}
	client.opaque = net;
	net->slirp = net_slirp_create(cfg, loop, &client);
	if (!net->slirp) {
		free(net);
		return NULL;
	}
	return net;
}

const struct virtio_device_ops *virtio_net_device_ops(const struct virtio_net *net)
{
	return &net->ops;
}

void virtio_net_stats(const struct virtio_net *net, struct net_stats *stats)
{
	stats->rx_packets = __atomic_load_n(&net->stats.rx_packets, __ATOMIC_RELAXED);
	stats->rx_dropped = __atomic_load_n(&net->stats.rx_dropped, __ATOMIC_RELAXED);
	stats->tx_packets = __atomic_load_n(&net->stats.tx_packets, __ATOMIC_RELAXED);
	stats->tx_dropped = __atomic_load_n(&net->stats.tx_dropped, __ATOMIC_RELAXED);
}

void virtio_net_free(struct virtio_net *net)
{
	if (!net)
		return;
	if (net->backend == NET_TAP) {
		tap_watch(net, false);
		close(net->tap_fd);
	} else {
		net_slirp_free(net->slirp);
	}
	free(net);
}
