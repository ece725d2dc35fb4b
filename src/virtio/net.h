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

enum net_backend { NET_TAP, NET_USER };

/* hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, as in QEMU. */
struct net_hostfwd {
	bool udp;
	uint32_t host_addr;  /* network byte order; 0 = any */
	uint16_t host_port;
	uint32_t guest_addr; /* network byte order; 0 = the guest's DHCP address */
	uint16_t guest_port;
};

/* One --net tap=IFNAME[,mac=MAC] or --net user[,hostfwd=...][,mac=MAC]. */
struct net_config {
	enum net_backend backend;
	char ifname[IFNAMSIZ];
	uint8_t mac[6];
	bool mac_set; /* else a stable default derived from the device's index */
	unsigned nr_hostfwd;
	struct net_hostfwd hostfwd[NET_MAX_HOSTFWD];
};

struct virtio_net;

extern const struct virtio_device_ops virtio_net_ops;

/*
 * Opens the back-end (index numbers the device for its default MAC) on loop. Logs one
 * line naming the bad input and returns NULL on failure.
 */
struct virtio_net *virtio_net_create(const struct net_config *cfg, unsigned index,
				     struct event_loop *loop);
void virtio_net_free(struct virtio_net *net);

#endif
