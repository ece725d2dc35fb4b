/*
 * The live-migration stream: framed messages over a TCP connection. Each message is a
 * 16-byte header (type, length of the payload, CRC32 of the payload, a sequence number)
 * and its payload, so a damaged, reordered or truncated stream is caught rather than
 * loaded. The first message each way carries the stream's version.
 *
 * Source -> destination: HELLO, then RAM / ZERO / DISK in any number with a SYNC after each
 * pass, then STATE and DONE. Destination -> source: ACCEPT or REFUSE after HELLO, SYNCED
 * for each SYNC, ACK after DONE (the guest runs there).
 */
#ifndef SKIFF_MIGRATE_STREAM_H
#define SKIFF_MIGRATE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define MIGRATE_STREAM_VERSION 1
#define MIGRATE_HEADER_SIZE    16
/* The largest payload: a run of pages, or the state, which is far smaller. */
#define MIGRATE_MAX_PAYLOAD    ((uint32_t)16 << 20)
#define MIGRATE_MAX_RUN	       ((MIGRATE_MAX_PAYLOAD - 16) / 4096)

/*
 * HELLO: u32 stream version, u32 vCPUs, u64 RAM bytes, u32 TSC kHz, u32 flags, 8 x u32
 * CPUID feature words, u32 disks, a u64 size per disk, then the configuration's JSON.
 */
#define MIGRATE_HELLO_FIXED (24 + 4 * 8 + 4)
#define MIGRATE_HELLO_DISKS 1u		/* flags: the disks' contents come too (DISK) */
#define MIGRATE_HELLO_VIRTIO_CONSOLE 2u /* flags: the guest has skiff's virtio console */

enum migrate_msg {
	MSG_HELLO = 1,
	MSG_ACCEPT,	/* empty */
	MSG_REFUSE,	/* the reason, text */
	MSG_RAM,	/* u64 RAM offset, then whole pages */
	MSG_ZERO,	/* u64 RAM offset, u64 pages: they are all zero */
	MSG_DISK,	/* u32 drive index, u32 reserved, u64 byte offset, then the data */
	MSG_STATE,	/* the VM's state sections (vm_snapshot), as a snapshot's */
	MSG_DONE,	/* empty: the destination may run the guest */
	MSG_ACK,	/* empty: it does */
	MSG_SYNC,	/* empty: answer once everything before has been taken in */
	MSG_SYNCED,	/* empty: the answer */
	MSG_TYPES
};

struct migrate_stream {
	int fd;
	uint32_t sent, received; /* sequence numbers */
	uint64_t bytes_sent;
	const char *peer;	  /* for messages */
};

/* Sends one message whose payload is the iovecs' bytes. 0 or -errno (not logged). */
int migrate_send(struct migrate_stream *s, enum migrate_msg type, const struct iovec *iov,
		 unsigned iovcnt);
int migrate_send_buf(struct migrate_stream *s, enum migrate_msg type, const void *buf,
		     size_t len);
/*
 * Receives the next message into buf (at most cap bytes): 0 with *type and *len, or
 * -EPROTO for a damaged or unexpected frame, -ECONNRESET when the peer closed, -errno.
 * A line naming the problem is logged.
 */
int migrate_recv(struct migrate_stream *s, enum migrate_msg *type, void *buf, size_t cap,
		 size_t *len);

/* "tcp:HOST:PORT" (HOST: a name or IPv4/IPv6 address, [v6] allowed). 0 or -EINVAL. */
int migrate_parse_uri(const char *uri, char *host, size_t host_len, char *port,
		      size_t port_len);
/* Connects to or listens on uri; returns the fd or -errno, logged. */
int migrate_connect(const char *uri);
int migrate_listen(const char *uri);

#endif
