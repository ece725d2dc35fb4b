#include "tap.h"

#include "../log.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const char *attach_error(int err)
{
	switch (err) {
	case EBUSY:
		return "in use by another process";
	case EINVAL:
		return "not a tap interface, or a multi-queue one";
	case EPERM:
		return "permission denied (not the tap's owner and no CAP_NET_ADMIN)";
	default:
		return strerror(err);
	}
}

int tap_open(const char *ifname, bool *ufo)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	int hdr_len = TAP_VNET_HDR_LEN;
	int fd, err;

	/* For root, TUNSETIFF would create a missing interface: attach only to one that exists. */
	if (strlen(ifname) >= IFNAMSIZ || if_nametoindex(ifname) == 0) {
		log_error("tap=%s: no such interface", ifname);
		return -ENODEV;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		log_error("tap=%s: /dev/net/tun: %s", ifname, strerror(err));
		return -err;
	}
	memcpy(ifr.ifr_name, ifname, strlen(ifname) + 1);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		err = errno;
		log_error("tap=%s: %s", ifname, attach_error(err));
		goto fail;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_len) < 0) {
		err = errno;
		log_error("tap=%s: setting the vnet header size: %s", ifname, strerror(err));
		goto fail;
	}
	/* QEMU's probe: a kernel that accepts TUN_F_UFO passes UDP fragmentation offload. */
	*ufo = ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_UFO) == 0;
	/* No offloads until the driver says which it can take. */
	if (ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
		err = errno;
		log_error("tap=%s: clearing offloads: %s", ifname, strerror(err));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -err;
}

int tap_set_offload(int fd, unsigned flags)
{
	return ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) < 0 ? -errno : 0;
}
