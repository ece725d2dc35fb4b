/*
 * libslirp, loaded on first use. Most VMs have no user-mode network, and linking it (and
 * the glib it pulls in) cost every skiff start about 0.5 ms and 2 MiB of RSS.
 */
#ifndef SKIFF_SLIRP_LIB_H
#define SKIFF_SLIRP_LIB_H

#include <slirp/libslirp.h>

struct slirp_lib {
	Slirp *(*create)(const SlirpConfig *cfg, const SlirpCb *callbacks, void *opaque);
	void (*cleanup)(Slirp *slirp);
	void (*input)(Slirp *slirp, const uint8_t *pkt, int pkt_len);
	void (*pollfds_fill)(Slirp *slirp, uint32_t *timeout, SlirpAddPollCb add_poll,
			     void *opaque);
	void (*pollfds_poll)(Slirp *slirp, int select_error, SlirpGetREventsCb get_revents,
			     void *opaque);
	int (*add_hostfwd)(Slirp *slirp, int is_udp, struct in_addr host_addr, int host_port,
			   struct in_addr guest_addr, int guest_port);
};

/* The library's entry points; NULL, with one line logged, if it cannot be loaded. */
const struct slirp_lib *slirp_lib(void);

#endif
