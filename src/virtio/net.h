/*
 * virtio-net (virtio 1.2 §5.1) on a TAP device (vnet header, checksum and TSO offloads)
 * or on libslirp user-mode networking.
 */
#ifndef SKIFF_VIRTIO_NET_H
#define SKIFF_VIRTIO_NET_H

#include "mmio.h"

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#define NET_MAX_HOSTFWD 8
#define NET_ID_MAX	64 /* iface_id in the API: API_ID_MAX */

enum net_backend { NET_TAP, NET_USER };

/* hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, as in QEMU. */
struct net_hostfwd {
	bool udp;
	uint32_t host_addr;  /* network byte order; 0 = any */
	uint16_t host_port;  /* host byte order */
	uint32_t guest_addr; /* network byte order; 0 = the guest's DHCP address */
	uint16_t guest_port; /* host byte order */
};

/* One --net tap=IFNAME[,mac=MAC] or --net user[,hostfwd=...][,mac=MAC]. */
struct net_config {
	char id[NET_ID_MAX + 1]; /* "" : none given */
	enum net_backend backend;
	char ifname[IFNAMSIZ];
	uint8_t mac[6];
	/*
	 * Else 52:54:00:12:34:56 + index (...:56 for device 0, ...:57 for device 1): stable
	 * across runs and unique within a VM, but the same in every VM, so set mac= for
	 * VMs that share a network.
	 */
	bool mac_set;
	unsigned nr_hostfwd;
	struct net_hostfwd hostfwd[NET_MAX_HOSTFWD];
};

/* Frames counted by the device; dropped ones were malformed or found no room. */
struct net_stats {
	uint64_t rx_packets, rx_dropped;
	uint64_t tx_packets, tx_dropped;
};

struct virtio_net;

/* What every back-end supports: MAC and link status, no offloads. */
extern const struct virtio_device_ops virtio_net_ops;

/*
 * Opens the back-end (index numbers the device for its default MAC) on loop. Logs one
 * line naming the bad input and returns NULL on failure.
 */
struct virtio_net *virtio_net_create(const struct net_config *cfg, unsigned index,
				     struct event_loop *loop);
/* As virtio_net_create() on fd, an open tap or a stand-in for one (tests); takes fd. */
struct virtio_net *virtio_net_create_tap_fd(const struct net_config *cfg, unsigned index,
					    struct event_loop *loop, int fd);
/* virtio_net_ops with the back-end's offloads (a tap's): what to hand the transport. */
const struct virtio_device_ops *virtio_net_device_ops(const struct virtio_net *net);
/* Any thread, any time. */
void virtio_net_stats(const struct virtio_net *net, struct net_stats *stats);
/* Call once the event loop no longer runs. */
void virtio_net_free(struct virtio_net *net);

#endif
