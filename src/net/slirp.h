/*
 * User-mode back-end of virtio-net: libslirp's TCP/IP stack on 10.0.2.0/24 (host 10.0.2.2,
 * DNS 10.0.2.3, DHCP from 10.0.2.15), IPv4 only, with host port forwards.
 *
 * Everything runs on the event thread. slirp's sockets sit in an epoll set of their own,
 * which the event loop watches as one fd; after every call into slirp the set is rebuilt
 * from slirp_pollfds_fill(), whose timeout arms a timerfd. slirp's own timers are one
 * timerfd each.
 */
#ifndef SKIFF_NET_SLIRP_H
#define SKIFF_NET_SLIRP_H

#include "../virtio/net.h"
#include "../vmm/event.h"

#include <stddef.h>
#include <stdint.h>

struct net_slirp;

/* The device on the guest side. */
struct net_slirp_client {
	/* A frame for the guest; it may drop it. Runs with the client locked. */
	void (*receive)(void *opaque, const uint8_t *frame, size_t len);
	/* Bracket each call into slirp that the event loop makes, so receive() runs locked. */
	void (*lock)(void *opaque);
	void (*unlock)(void *opaque);
	void *opaque;
};

/*
 * Starts the stack with cfg's host forwards on loop. Logs one line naming the bad input
 * and returns NULL on failure.
 */
struct net_slirp *net_slirp_create(const struct net_config *cfg, struct event_loop *loop,
				   const struct net_slirp_client *client);
/* A frame from the guest, without virtio_net_hdr. Call with the client locked. */
void net_slirp_input(struct net_slirp *s, const uint8_t *frame, size_t len);
/* Call once the event loop no longer runs. */
void net_slirp_free(struct net_slirp *s);

#endif
