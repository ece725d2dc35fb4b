/*
 * The virtio-mmio transport (virtio 1.2 §4.2, register layout version 2). Register
 * accesses come from vCPU threads; queue notifications arrive through ioeventfds and are
 * handled on the event thread; interrupts go out through an irqfd. One lock per device
 * serialises the two sides.
 */
#ifndef SKIFF_VIRTIO_MMIO_H
#define SKIFF_VIRTIO_MMIO_H

#include "queue.h"
#include "virtio.h"

#include "../state/state.h"
#include "../vmm/event.h"
#include "../vmm/memory.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_MMIO_SIZE	0x1000
#define VIRTIO_MMIO_MAX_QUEUES	4

struct virtio_mmio;

/* What an ioeventfd's handler needs to know: which transport, which queue. */
struct virtio_notify_ctx {
	struct virtio_mmio *t;
	unsigned queue;
};

/* What a device back-end provides. All callbacks run with the transport locked. */
struct virtio_device_ops {
	const char *name;
	uint32_t device_id;
	uint64_t features; /* device-specific bits; the transport adds its own */
	unsigned nr_queues;
	uint16_t queue_max;
	uint32_t config_size;
	/* Called once by virtio_mmio_init(): devices with host-side input keep t. Optional. */
	void (*attach)(void *dev, struct virtio_mmio *t);
	/* Device config space (NULL when config_size is 0); accesses past it never get here. */
	void (*config_read)(void *dev, uint32_t offset, uint8_t *data, uint32_t len);
	void (*config_write)(void *dev, uint32_t offset, const uint8_t *data, uint32_t len);
	/* The driver made buffers available on queue (event thread, after DRIVER_OK). */
	void (*queue_notify)(void *dev, struct virtio_mmio *t, unsigned queue);
	/* The driver reset the device: drop in-flight work, forget negotiated state. */
	void (*reset)(void *dev);
	/* The device's own state beyond the transport's, as one state section. Optional. */
	int (*save)(void *dev, struct state_writer *w);
	int (*load)(void *dev, struct state_reader *r);
};

struct virtio_mmio {
	pthread_mutex_t lock;
	const struct virtio_device_ops *ops;
	void *dev;
	const struct guest_mem *mem;
	uint64_t base;
	unsigned gsi;
	int irq_fd; /* eventfd bound to gsi with KVM_IRQFD (or read by tests) */
	int notify_fd[VIRTIO_MMIO_MAX_QUEUES]; /* ioeventfds on QueueNotify, one per queue */
	struct event_source notify_src[VIRTIO_MMIO_MAX_QUEUES];
	struct virtio_notify_ctx notify_ctx[VIRTIO_MMIO_MAX_QUEUES];

	/* Registers and negotiated state: what a snapshot saves. */
	uint32_t status;
	uint32_t device_features_sel, driver_features_sel, queue_sel;
	uint64_t driver_features;
	uint32_t interrupt_status;
	uint32_t config_generation;
	struct virtq queues[VIRTIO_MMIO_MAX_QUEUES];
	uint64_t notifications, interrupts; /* counters */
};

/*
 * Sets up the transport for dev at base, interrupting on gsi. vm_fd < 0 (unit tests)
 * skips KVM's ioeventfd and irqfd; loop NULL skips the event thread. Returns 0 or -errno.
 */
int virtio_mmio_init(struct virtio_mmio *t, const struct virtio_device_ops *ops, void *dev,
		     const struct guest_mem *mem, uint64_t base, unsigned gsi, int vm_fd,
		     struct event_loop *loop);
void virtio_mmio_destroy(struct virtio_mmio *t, struct event_loop *loop);
/* Bus handler for the device's 4 KiB window. */
void virtio_mmio_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			bool is_write);
/*
 * Saves the registers, negotiated features, queues and pending interrupts, then the
 * device's own section. Load checks everything, maps the queues again, and changes
 * nothing unless it all fits this device; it returns 0 or -EINVAL.
 */
int virtio_mmio_save(struct virtio_mmio *t, struct state_writer *w);
int virtio_mmio_load(struct virtio_mmio *t, struct state_reader *r);
/* Handles a queue notification now (what the event thread does on an ioeventfd). */
void virtio_mmio_process(struct virtio_mmio *t, unsigned queue);

/* For devices, with the transport locked. */
bool virtio_has_feature(const struct virtio_mmio *t, unsigned bit);
/* 1: a chain was taken; 0: none. A malformed chain marks the device DEVICE_NEEDS_RESET. */
int virtio_queue_pop(struct virtio_mmio *t, unsigned queue, struct virtq_chain *chain);
void virtio_queue_push(struct virtio_mmio *t, unsigned queue, uint16_t head, uint32_t len);
/* After one or more pushes: interrupts the driver if it asked for it. */
void virtio_queue_interrupt(struct virtio_mmio *t, unsigned queue);
/*
 * The device changed its config space: bumps ConfigGeneration and, once the driver is live
 * (DRIVER_OK), interrupts with InterruptStatus bit 1, configuration change (§4.2.2).
 */
void virtio_config_changed(struct virtio_mmio *t);
void virtio_mmio_lock(struct virtio_mmio *t);
void virtio_mmio_unlock(struct virtio_mmio *t);

#endif
