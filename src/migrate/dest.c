/* The destination of a live migration: skiff run --incoming tcp:ADDR:PORT. */
#include "compat.h"
#include "incoming.h"
#include "migrate.h"
#include "stream.h"

#include "../api/controller.h"
#include "../arch/x86/layout.h"
#include "../log.h"
#include "../util/bytes.h"
#include "../vmm/vm_snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* A source that goes quiet this long mid-stream is gone. */
#define RECV_TIMEOUT_S	  60


/* Waits for the source to connect, or for a signal. */
static int accept_source(int listen_fd, int signal_fd)
{
	struct pollfd fds[2] = { { listen_fd, POLLIN, 0 }, { signal_fd, POLLIN, 0 } };
	struct signalfd_siginfo si;
	int fd;

	while (poll(fds, 2, -1) < 0)
		if (errno != EINTR)
			return -errno;
	if (fds[1].revents) {
		if (read(signal_fd, &si, sizeof(si)) != sizeof(si))
			si.ssi_signo = SIGTERM;
		log_info("stopping on signal %s while waiting for a migration",
			 strsignal(si.ssi_signo));
		return 128 + si.ssi_signo;
	}
	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int refuse(struct incoming *in, const char *why)
{
	log_error("refusing the migration: %s", why);
	migrate_send_buf(&in->s, MSG_REFUSE, why, strlen(why));
	return -ENOTSUP;
}

/* The --disk given here for the source's drive i: the same id, or the same place. */
static const struct blk_config *local_disk(const struct incoming *in, unsigned i, json_t *drive)
{
	const char *id = json_string_value(json_object_get(drive, "drive_id"));

	for (unsigned d = 0; d < in->base->nr_disks; d++)
		if (id && !strcmp(in->base->disks[d].id, id))
			return &in->base->disks[d];
	return i < in->base->nr_disks && !in->base->disks[i].id[0] ? &in->base->disks[i] : NULL;
}

/*
 * Where each drive lives here: a --disk given here replaces the source's path (shared
 * storage mounted elsewhere); with disks, one must be given, and the image is made there.
 */
static int place_disks(struct incoming *in, char *why, size_t why_len)
{
	json_t *drive;
	size_t i;

	json_array_foreach(json_object_get(in->config, "drives"), i, drive) {
		const struct blk_config *local = local_disk(in, i, drive);
		const char *id = json_string_value(json_object_get(drive, "drive_id"));

		if (!local && in->with_disks) {
			snprintf(why, why_len, "the disks come too: give --disk PATH,id=%s here for "
				 "drive \"%s\"", id ? id : "", id ? id : "");
			return -EINVAL;
		}
		if (!local)
			continue;
		json_object_set_new(drive, "path_on_host", json_string(local->path));
		if (!in->with_disks)
			continue;
		in->disks[i].fd = open(local->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		in->disks[i].created = in->disks[i].fd >= 0;
		if (in->disks[i].fd < 0 && errno == EEXIST)
			in->disks[i].fd = open(local->path, O_RDWR | O_CLOEXEC);
		if (in->disks[i].fd < 0 || ftruncate(in->disks[i].fd, in->disks[i].size) < 0) {
			snprintf(why, why_len, "%s: %s", local->path, strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/* A --net tap=IFNAME given here: the TAP that interface i uses on this host. */
static int place_nets(struct incoming *in, char *why, size_t why_len)
{
	json_t *nets = json_object_get(in->config, "network-interfaces"), *net;
	size_t i;

	json_array_foreach(nets, i, net) {
		const struct net_config *local = i < in->base->nr_nets ? &in->base->nets[i] : NULL;

		if (!local)
			continue;
		if (local->backend != NET_TAP || !json_object_get(net, "host_dev_name")) {
			snprintf(why, why_len, "--net %zu here and the source's interface %zu are "
				 "not both TAP", i, i);
			return -EINVAL;
		}
		json_object_set_new(net, "host_dev_name", json_string(local->ifname));
	}
	if (in->base->nr_nets > json_array_size(nets)) {
		snprintf(why, why_len, "%u --net given here, the source has %zu interfaces",
			 in->base->nr_nets, json_array_size(nets));
		return -EINVAL;
	}
	return 0;
}

/* A chunk of a drive, checked against its size. */
static int disk_message(struct incoming *in, size_t len)
{
	uint32_t i;
	uint64_t off;

	if (len < 16 || !in->with_disks)
		return -EPROTO;
	i = get_le32(in->buf);
	off = get_le64(in->buf + 8);
	len -= 16;
	if (i >= in->nr_disks || in->disks[i].fd < 0 || off > in->disks[i].size ||
	    len > in->disks[i].size - off)
		return -EPROTO;
	return pwrite(in->disks[i].fd, in->buf + 16, len, off) == (ssize_t)len ? 0 : -EIO;
}

/* Makes the images durable, or removes those this migration made, when it failed. */
static int finish_disks(struct incoming *in, bool failed)
{
	json_t *drive;
	size_t i;
	int ret = 0;

	json_array_foreach(json_object_get(in->config, "drives"), i, drive) {
		if (i >= in->nr_disks || in->disks[i].fd < 0)
			continue;
		if (!failed && fsync(in->disks[i].fd) < 0)
			ret = -errno;
		close(in->disks[i].fd);
		in->disks[i].fd = -1;
		if (failed && in->disks[i].created)
			unlink(json_string_value(json_object_get(drive, "path_on_host")));
	}
	return ret;
}

/* The stream version a test may pretend to speak (SKIFF_MIGRATE_VERSION). */
static uint32_t our_version(void)
{
	const char *v = getenv("SKIFF_MIGRATE_VERSION");

	return v ? (uint32_t)strtoul(v, NULL, 10) : MIGRATE_STREAM_VERSION;
}

static int hello(struct incoming *in, size_t len)
{
	uint32_t words[MIGRATE_FEATURE_WORDS], version;
	uint64_t ram;
	char why[160];
	int ret;

	size_t json_at;

	if (len < MIGRATE_HELLO_FIXED || get_le32(in->buf + 56) > VM_MAX_DISKS ||
	    len < MIGRATE_HELLO_FIXED + 8 * get_le32(in->buf + 56)) {
		log_error("migration: a malformed HELLO");
		return -EPROTO;
	}
	version = get_le32(in->buf);
	in->nr_vcpus = get_le32(in->buf + 4);
	ram = get_le64(in->buf + 8);
	for (unsigned w = 0; w < MIGRATE_FEATURE_WORDS; w++)
		words[w] = get_le32(in->buf + 24 + 4 * w);
	in->with_disks = get_le32(in->buf + 20) & MIGRATE_HELLO_DISKS;
	in->console = get_le32(in->buf + 20) & MIGRATE_HELLO_VIRTIO_CONSOLE ? CONSOLE_VIRTIO
									   : CONSOLE_SERIAL;
	in->nr_disks = get_le32(in->buf + 56);
	for (unsigned i = 0; i < in->nr_disks; i++)
		in->disks[i] = (typeof(in->disks[i])){ get_le64(in->buf + 60 + 8 * i), -1, false };
	json_at = MIGRATE_HELLO_FIXED + 8 * in->nr_disks;
	in->config = json_loadb((char *)in->buf + json_at, len - json_at, JSON_REJECT_DUPLICATES,
				NULL);
	if (version != our_version()) {
		snprintf(why, sizeof(why), "the source speaks migration stream version %u, this "
			 "skiff version %u", version, our_version());
		return refuse(in, why);
	}
	ret = migrate_check_host(words, get_le32(in->buf + 16), why, sizeof(why));
	if (ret == -ENOTSUP)
		return refuse(in, why);
	if (ret || !ram || ram % GUEST_PAGE_SIZE || ram > ((uint64_t)1 << 40))
		return refuse(in, ret ? "this host's /dev/kvm cannot say what it offers"
				      : "the source's RAM size is not one skiff has");
	if (!in->config || json_array_size(json_object_get(in->config, "drives")) != in->nr_disks)
		return refuse(in, "the source's configuration is malformed");
	ret = place_disks(in, why, sizeof(why)) ?: place_nets(in, why, sizeof(why));
	if (ret)
		return refuse(in, why);
	ret = guest_mem_create(&in->ram, ram, LAYOUT_MMIO_HOLE, LAYOUT_MMIO_HOLE_END,
			       HUGE_PAGES_NONE);
	if (ret)
		return refuse(in, "this host cannot allocate the guest's RAM");
	return migrate_send_buf(&in->s, MSG_ACCEPT, NULL, 0);
}

/* A page run or a zero run, checked against RAM's bounds. */
static int ram_message(struct incoming *in, enum migrate_msg type, size_t len)
{
	uint64_t off, size, pages;

	if (len < 8)
		return -EPROTO;
	off = get_le64(in->buf);
	if (type == MSG_RAM) {
		size = len - 8;
	} else {
		if (len != 16)
			return -EPROTO;
		pages = get_le64(in->buf + 8);
		if (pages > in->ram.size / GUEST_PAGE_SIZE)
			return -EPROTO;
		size = pages * GUEST_PAGE_SIZE;
	}
	if (off % GUEST_PAGE_SIZE || size % GUEST_PAGE_SIZE || off > in->ram.size ||
	    size > in->ram.size - off)
		return -EPROTO;
	if (type == MSG_RAM) {
		memcpy(in->ram.base + off, in->buf + 8, size);
		return 0;
	}
	/* Dropping the pages reads as zero and frees them, where writing zeroes would not. */
	return fallocate(in->ram.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, size) < 0
		       ? -errno : 0;
}

int incoming_receive(struct incoming *in)
{
	enum migrate_msg type;
	size_t len;
	int ret;

	for (;;) {
		ret = migrate_recv(&in->s, &type, in->buf, MIGRATE_MAX_PAYLOAD, &len);
		if (ret)
			return ret;
		switch (type) {
		case MSG_RAM:
		case MSG_ZERO:
			ret = ram_message(in, type, len);
			break;
		case MSG_DISK:
			ret = disk_message(in, len);
			break;
		case MSG_SYNC:
			ret = len ? -EPROTO : migrate_send_buf(&in->s, MSG_SYNCED, NULL, 0);
			break;
		case MSG_STATE:
			free(in->state);
			in->state = malloc(len ?: 1);
			if (!in->state)
				return -ENOMEM;
			memcpy(in->state, in->buf, len);
			in->state_len = len;
			break;
		case MSG_DONE:
			if (len != 4 || !in->state)
				return -EPROTO;
			in->memory_crc = get_le32(in->buf);
			return 0;
		default:
			ret = -EPROTO;
			break;
		}
		if (ret) {
			log_error("migration stream from %s: a malformed or unexpected message",
				  in->s.peer);
			return ret;
		}
	}
}

/* The guest runs here now: the source may stop. */
static int run_here(struct incoming *in, struct controller *ctl)
{
	struct snapshot_info info = { .nr_vcpus = in->nr_vcpus, .memory_size = in->ram.size,
				      .memory_crc = in->memory_crc };
	struct vm_snapshot snap;
	struct field_error err;
	int ret;

	ret = finish_disks(in, false);
	if (ret) {
		log_error("migration: the disks cannot be made durable: %s", strerror(-ret));
		return ret;
	}
	if (in->prebuilt) {
		ret = vm_snapshot_from_state(in->s.peer, in->state, in->state, in->state_len,
					     &info, &snap);
		in->state = NULL;
		ret = ret ?: controller_run_incoming(ctl, &snap);
		vm_snapshot_close(&snap);
		return ret ?: migrate_send_buf(&in->s, MSG_ACK, NULL, 0);
	}
	ret = vm_snapshot_from_state(in->s.peer, in->state, in->state, in->state_len, &info,
				     &snap);
	in->state = NULL; /* snap has it */
	if (ret)
		return ret;
	/* The disks where this side keeps them. */
	free(snap.config);
	snap.config = json_dumps(in->config, JSON_COMPACT);
	if (!snap.config) {
		vm_snapshot_close(&snap);
		return -ENOMEM;
	}
	ret = controller_restore_from(ctl, &snap, NULL, &in->ram, NULL, true, false, &err);
	vm_snapshot_close(&snap);
	in->ram.fd = -1; /* the VM took it, or destroyed it */
	in->ram.base = NULL;
	if (ret)
		return ret;
	return migrate_send_buf(&in->s, MSG_ACK, NULL, 0);
}

/*
 * While the source sends RAM: the VM, built and paused, so that the pause has only the
 * state to load. Not with disks on shared storage, which the source holds locked till then.
 */
static int prebuild(struct incoming *in, struct controller *ctl)
{
	struct field_error err;
	int ret;

	if (in->nr_disks && !in->with_disks)
		return 0;
	ret = controller_prepare_incoming(ctl, in->config, in->console, &in->ram, &err);
	/* The VM owns the RAM now (frames still land in it, through in->ram), or it is gone. */
	in->prebuilt = !ret;
	if (ret)
		in->ram.fd = -1;
	return ret;
}

int migrate_incoming(struct controller *ctl, const char *uri, int signal_fd)
{
	struct incoming in = { .s = { .fd = -1, .peer = uri }, .ram = { .fd = -1 },
			       .base = &ctl->base };
	struct timeval timeout = { .tv_sec = RECV_TIMEOUT_S };
	int listen_fd = migrate_listen(uri), ret;
	enum migrate_msg type;
	size_t len;

	if (listen_fd < 0)
		return listen_fd;
	log_info("waiting on %s for a migration", uri);
	ret = accept_source(listen_fd, signal_fd);
	close(listen_fd);
	if (ret < 0 || ret > 128)
		return ret;
	in.s.fd = ret;
	setsockopt(in.s.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	in.buf = malloc(MIGRATE_MAX_PAYLOAD);
	ret = in.buf ? migrate_recv(&in.s, &type, in.buf, MIGRATE_MAX_PAYLOAD, &len) : -ENOMEM;
	if (!ret && type != MSG_HELLO)
		ret = -EPROTO;
	ret = ret ?: hello(&in, len);
	ret = ret ?: prebuild(&in, ctl);
	ret = ret ?: incoming_receive(&in);
	ret = ret ?: run_here(&in, ctl);
	if (!ret)
		log_info("migration from %s done: the guest runs here", uri);
	else if (ret != -ENOTSUP)
		log_error("the migration failed; nothing of it is kept here");
	if (ret)
		finish_disks(&in, true);
	json_decref(in.config);
	if (in.ram.fd >= 0 && !in.prebuilt)
		guest_mem_destroy(&in.ram);
	free(in.state);
	free(in.buf);
	close(in.s.fd);
	return ret;
}
