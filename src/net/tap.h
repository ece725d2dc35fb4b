/*
 * TAP back-end of virtio-net: an existing tap interface opened with IFF_VNET_HDR, so that
 * every frame carries the 12-byte virtio_net_hdr and checksum/segmentation offloads pass
 * between guest and host untouched.
 */
#ifndef SKIFF_NET_TAP_H
#define SKIFF_NET_TAP_H

#include <linux/if_tun.h>
#include <stdbool.h>

#define TAP_VNET_HDR_LEN 12 /* virtio 1.x virtio_net_hdr, num_buffers included */

/*
 * Attaches to the tap interface ifname, which must exist, with a non-blocking fd. Sets
 * *ufo if the kernel takes TUN_F_UFO. Logs one line naming ifname and returns -errno on
 * failure.
 */
int tap_open(const char *ifname, bool *ufo);
/* Lets the tap hand us frames using the TUN_F_* offloads in flags. Returns 0 or -errno. */
int tap_set_offload(int fd, unsigned flags);

#endif
