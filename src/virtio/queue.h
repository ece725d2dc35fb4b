/*
 * Split virtqueues (virtio 1.2 §2.7) over guest memory. Everything the driver wrote is
 * read once and checked: indexes, descriptor addresses and lengths against guest RAM,
 * chain length and loops, indirect tables. A violation is the driver's fault and makes
 * virtq_pop() fail; the transport then asks for a reset.
 */
#ifndef SKIFF_VIRTQ_H
#define SKIFF_VIRTQ_H

#include "../vmm/memory.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define VIRTQ_MAX_SIZE	1024 /* largest queue a device offers */
#define VIRTQ_MAX_IOV	256  /* longest chain a device accepts */

struct virtq {
	uint16_t size; /* 0: not set up */
	bool ready;
	bool indirect;	/* VIRTIO_F_RING_INDIRECT_DESC negotiated */
	bool event_idx; /* VIRTIO_F_RING_EVENT_IDX negotiated */
	uint64_t desc, avail, used; /* guest addresses of the three areas */
	uint16_t last_avail;	    /* next available-ring entry to take */
	uint16_t used_idx;	    /* next used-ring index to publish */
	uint16_t signalled_used;    /* used_idx at the last interrupt (event_idx) */
	bool signalled_valid;
	/* Host views of the areas, set by virtq_map(); not part of the saved state. */
	uint8_t *desc_host, *avail_host, *used_host;
};

/* One request: readable segments (out) first, then writable ones (in). */
struct virtq_chain {
	uint16_t head;
	unsigned nr_out, nr_in;
	uint64_t out_len, in_len;
	struct iovec iov[VIRTQ_MAX_IOV]; /* nr_out readable, then nr_in writable */
};

/* Checks that the queue's size and areas are valid in guest RAM and maps them; false if not. */
bool virtq_map(struct virtq *q, const struct guest_mem *mem);
/* Takes the next available chain: 1 if one was taken, 0 if none, -EINVAL if malformed. */
int virtq_pop(struct virtq *q, const struct guest_mem *mem, struct virtq_chain *chain);
/* Returns a chain to the driver with len bytes written into its writable part. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);
/* After pushes: whether the driver wants an interrupt (flags or used_event, §2.7.10). */
bool virtq_should_notify(struct virtq *q);
/* Copies up to len bytes out of the chain's readable part from offset; returns bytes copied. */
size_t virtq_read(const struct virtq_chain *chain, size_t offset, void *dst, size_t len);
/* Copies into the chain's writable part at offset; returns bytes copied. */
size_t virtq_write(const struct virtq_chain *chain, size_t offset, const void *src,
		   size_t len);

#endif
