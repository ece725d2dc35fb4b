/*
 * The virtio-mmio transport, register layout version 2 (virtio 1.2 §4.2.2), found through
 * Linux's virtio_mmio.device= parameters, and the split virtqueue (§2.7). Completions are
 * polled, so the device is asked not to interrupt, unless a driver waits with virtq_arm.
 */
#include "virtio.h"

#define MMIO_MAGIC			0x000
#define MMIO_VERSION			0x004
#define MMIO_DEVICE_ID			0x008
#define MMIO_DEVICE_FEATURES		0x010
#define MMIO_DEVICE_FEATURES_SEL	0x014
#define MMIO_DRIVER_FEATURES		0x020
#define MMIO_DRIVER_FEATURES_SEL	0x024
#define MMIO_QUEUE_SEL			0x030
#define MMIO_QUEUE_NUM_MAX		0x034
#define MMIO_QUEUE_NUM			0x038
#define MMIO_QUEUE_READY		0x044
#define MMIO_QUEUE_NOTIFY		0x050
#define MMIO_INTERRUPT_STATUS		0x060
#define MMIO_INTERRUPT_ACK		0x064
#define MMIO_STATUS			0x070
#define MMIO_QUEUE_DESC			0x080	/* low, then high at +4 */
#define MMIO_QUEUE_DRIVER		0x090
#define MMIO_QUEUE_DEVICE		0x0a0
#define MMIO_CONFIG_GENERATION		0x0fc
#define MMIO_CONFIG			0x100

#define MMIO_MAGIC_VALUE		0x74726976	/* "virt" */
#define MMIO_VERSION_MODERN		2

#define STATUS_ACKNOWLEDGE	1
#define STATUS_DRIVER		2
#define STATUS_DRIVER_OK	4
#define STATUS_FEATURES_OK	8

#define DESC_F_NEXT		1
#define DESC_F_WRITE		2
#define DESC_F_INDIRECT		4
#define AVAIL_F_NO_INTERRUPT	1
#define USED_F_NO_NOTIFY	1

static uint32_t reg_read(const struct virtio_dev *dev, uint32_t reg)
{
	return mmio_read32(dev->base + reg);
}

static void reg_write(const struct virtio_dev *dev, uint32_t reg, uint32_t v)
{
	mmio_write32(dev->base + reg, v);
}

static void reg_write64(const struct virtio_dev *dev, uint32_t reg, uint64_t v)
{
	reg_write(dev, reg, (uint32_t)v);
	reg_write(dev, reg + 4, (uint32_t)(v >> 32));
}

/* A store-to-load barrier: x86 may otherwise read avail_event before avail->idx is visible. */
static void virtio_mb(void)
{
	__asm__ __volatile__("lock orq $0, (%%rsp)" ::: "memory", "cc");
}

/* <size>@<base>:<irq>[:<id>], as drivers/virtio/virtio_mmio.c parses it; size takes K, M, G. */
static bool parse_device(const char *s, struct virtio_dev *dev)
{
	uint64_t size, irq;

	s = parse_u64(s, &size);
	if (!s)
		return false;
	switch (*s | 0x20) {
	case 'g':
		size <<= 10;
		/* fall through */
	case 'm':
		size <<= 10;
		/* fall through */
	case 'k':
		size <<= 10;
		s++;
	}
	if (*s++ != '@' || size < MMIO_CONFIG)
		return false;
	s = parse_u64(s, &dev->base);
	if (!s || *s++ != ':')
		return false;
	s = parse_u64(s, &irq);
	dev->irq = (uint32_t)irq;
	return s && irq <= UINT32_MAX && (*s == ' ' || *s == ':' || !*s);
}

static const char *missing_reason(uint32_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_NET:
		return "no-virtio-net";
	case VIRTIO_ID_BLOCK:
		return "no-virtio-blk";
	case VIRTIO_ID_CONSOLE:
		return "no-virtio-console";
	default:
		return "no-virtio-rng";
	}
}

/* The first device of that type in command-line order, mapped and checked to be virtio 1.x. */
const char *virtio_find(const struct probe *p, uint32_t device_id, struct virtio_dev *dev)
{
	const char *v = NULL;

	while ((v = cmdline_value(p, "virtio_mmio.device", v))) {
		if (!parse_device(v, dev))
			return "bad-virtio-mmio-param";
		if (map_mmio(dev->base))
			return "virtio-above-4g";
		if (reg_read(dev, MMIO_MAGIC) != MMIO_MAGIC_VALUE)
			return "virtio-bad-magic";
		if (reg_read(dev, MMIO_DEVICE_ID) != device_id)
			continue;
		if (reg_read(dev, MMIO_VERSION) != MMIO_VERSION_MODERN)
			return "virtio-legacy";
		return NULL;
	}
	return missing_reason(device_id);
}

/* Device initialization (§3.1.1) up to FEATURES_OK; virtio_ready finishes it. */
const char *virtio_start(struct virtio_dev *dev, uint64_t wanted)
{
	uint64_t deadline = rdtsc() + TIMEOUT_TSC;
	uint32_t status = STATUS_ACKNOWLEDGE | STATUS_DRIVER;

	reg_write(dev, MMIO_STATUS, 0);
	while (reg_read(dev, MMIO_STATUS)) {
		if (rdtsc() > deadline)
			return "virtio-reset-timeout";
		cpu_relax();
	}
	reg_write(dev, MMIO_STATUS, STATUS_ACKNOWLEDGE);
	reg_write(dev, MMIO_STATUS, status);
	reg_write(dev, MMIO_DEVICE_FEATURES_SEL, 0);
	dev->offered = reg_read(dev, MMIO_DEVICE_FEATURES);
	reg_write(dev, MMIO_DEVICE_FEATURES_SEL, 1);
	dev->offered |= (uint64_t)reg_read(dev, MMIO_DEVICE_FEATURES) << 32;
	if (!(dev->offered & BIT(VIRTIO_F_VERSION_1)))
		return "virtio-no-version-1";
	dev->features = dev->offered & (wanted | BIT(VIRTIO_F_VERSION_1));
	reg_write(dev, MMIO_DRIVER_FEATURES_SEL, 0);
	reg_write(dev, MMIO_DRIVER_FEATURES, (uint32_t)dev->features);
	reg_write(dev, MMIO_DRIVER_FEATURES_SEL, 1);
	reg_write(dev, MMIO_DRIVER_FEATURES, (uint32_t)(dev->features >> 32));
	status |= STATUS_FEATURES_OK;
	reg_write(dev, MMIO_STATUS, status);
	if (!(reg_read(dev, MMIO_STATUS) & STATUS_FEATURES_OK))
		return "virtio-features-rejected";
	return NULL;
}

/* §4.2.3.2; the rings are still zero from boot, the queue size the largest power of 2 allowed. */
const char *virtq_init(struct virtio_dev *dev, struct virtq *vq, uint16_t index)
{
	uint32_t max;
	uint16_t i;

	reg_write(dev, MMIO_QUEUE_SEL, index);
	if (reg_read(dev, MMIO_QUEUE_READY))
		return "virtio-queue-busy";
	max = reg_read(dev, MMIO_QUEUE_NUM_MAX);
	if (!max)
		return "virtio-no-queue";
	for (vq->size = VIRTQ_MAX; vq->size > max;)
		vq->size >>= 1;
	vq->index = index;
	vq->notify = dev->base + MMIO_QUEUE_NOTIFY;
	vq->avail = (struct virtq_avail *)vq->avail_page;
	vq->used = (struct virtq_used *)vq->used_page;
	vq->indirect = dev->features & BIT(VIRTIO_F_RING_INDIRECT_DESC);
	vq->event_idx = dev->features & BIT(VIRTIO_F_RING_EVENT_IDX);
	vq->num_free = vq->size;
	for (i = 0; i < vq->size - 1; i++)
		vq->desc[i].next = i + 1;
	/* Far from any used index the device can reach before virtq_get moves it on (§2.7.10). */
	if (vq->event_idx)
		vq->avail->ring[vq->size] = 0x8000;
	else
		vq->avail->flags = AVAIL_F_NO_INTERRUPT;

	reg_write(dev, MMIO_QUEUE_NUM, vq->size);
	reg_write64(dev, MMIO_QUEUE_DESC, (uint64_t)vq->desc);
	reg_write64(dev, MMIO_QUEUE_DRIVER, (uint64_t)vq->avail);
	reg_write64(dev, MMIO_QUEUE_DEVICE, (uint64_t)vq->used);
	reg_write(dev, MMIO_QUEUE_READY, 1);
	return NULL;
}

void virtio_ready(struct virtio_dev *dev)
{
	reg_write(dev, MMIO_STATUS, reg_read(dev, MMIO_STATUS) | STATUS_DRIVER_OK);
}

/* Reads InterruptStatus and acknowledges what it shows (§4.2.2). */
void virtio_irq_ack(const struct virtio_dev *dev)
{
	uint32_t status = reg_read(dev, MMIO_INTERRUPT_STATUS);

	if (status)
		reg_write(dev, MMIO_INTERRUPT_ACK, status);
}

uint8_t virtio_config8(const struct virtio_dev *dev, uint32_t offset)
{
	return mmio_read8(dev->base + MMIO_CONFIG + offset);
}

/* 64-bit fields take two 32-bit reads; the generation counter shows a change between (§4.2.2). */
uint64_t virtio_config64(const struct virtio_dev *dev, uint32_t offset)
{
	uint32_t generation, low, high;

	do {
		generation = reg_read(dev, MMIO_CONFIG_GENERATION);
		low = reg_read(dev, MMIO_CONFIG + offset);
		high = reg_read(dev, MMIO_CONFIG + offset + 4);
	} while (generation != reg_read(dev, MMIO_CONFIG_GENERATION));
	return (uint64_t)high << 32 | low;
}

/*
 * Makes one request of n buffers available (§2.7.13), through the indirect table when there is
 * one and the feature was negotiated, else as a chain. The device sees it after virtq_kick.
 */
int virtq_add(struct virtq *vq, const struct virtq_buf *bufs, unsigned int n,
	      struct virtq_desc *table, void *token)
{
	uint16_t head = vq->free_head, i = head, last = head;
	bool indirect = table && vq->indirect;
	unsigned int k;

	if (vq->num_free < (indirect ? 1 : n))
		return -1;
	if (indirect) {
		for (k = 0; k < n; k++) {
			table[k] = (struct virtq_desc){
				.addr = (uint64_t)bufs[k].addr,
				.len = bufs[k].len,
				.flags = (bufs[k].device_writes ? DESC_F_WRITE : 0) |
					 (k + 1 < n ? DESC_F_NEXT : 0),
				.next = (uint16_t)(k + 1),
			};
		}
		vq->desc[head].addr = (uint64_t)table;
		vq->desc[head].len = n * sizeof(*table);
		vq->desc[head].flags = DESC_F_INDIRECT;
		vq->free_head = vq->desc[head].next;
		vq->num_free--;
	} else {
		/* The free list is linked through next, so the chain's links are already there. */
		for (k = 0; k < n; k++) {
			vq->desc[i].addr = (uint64_t)bufs[k].addr;
			vq->desc[i].len = bufs[k].len;
			vq->desc[i].flags = (bufs[k].device_writes ? DESC_F_WRITE : 0) |
					    (k + 1 < n ? DESC_F_NEXT : 0);
			last = i;
			i = vq->desc[i].next;
		}
		vq->free_head = vq->desc[last].next;
		vq->num_free -= n;
	}
	vq->token[head] = token;
	vq->avail->ring[vq->avail_idx % vq->size] = head;
	vq->avail_idx++;
	return 0;
}

/* Publishes what virtq_add queued and notifies unless the device said it needn't be (§2.7.10). */
void virtq_kick(struct virtq *vq)
{
	uint16_t old = vq->kicked_idx, now = vq->avail_idx, event;
	bool notify;

	__atomic_store_n(&vq->avail->idx, now, __ATOMIC_RELEASE);
	virtio_mb();
	if (vq->event_idx) {
		event = __atomic_load_n((uint16_t *)&vq->used->ring[vq->size], __ATOMIC_ACQUIRE);
		notify = (uint16_t)(now - event - 1) < (uint16_t)(now - old);
	} else {
		notify = !(__atomic_load_n(&vq->used->flags, __ATOMIC_ACQUIRE) & USED_F_NO_NOTIFY);
	}
	vq->kicked_idx = now;
	if (notify)
		mmio_write32(vq->notify, vq->index);
}

/* The token of a request the device has finished, or NULL; len is what it wrote. */
void *virtq_get(struct virtq *vq, uint32_t *len)
{
	struct virtq_used_elem elem;
	uint16_t id, count = 1;

	if (vq->last_used == __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE))
		return NULL;
	elem = vq->used->ring[vq->last_used % vq->size];
	/* A bad id from the device is left in place: the caller times out instead of crashing. */
	if (elem.id >= vq->size)
		return NULL;
	vq->last_used++;
	if (vq->event_idx)
		vq->avail->ring[vq->size] = vq->last_used + 0x8000;
	id = (uint16_t)elem.id;
	while (vq->desc[id].flags & DESC_F_NEXT) {
		id = vq->desc[id].next;
		count++;
	}
	vq->desc[id].next = vq->free_head;
	vq->free_head = (uint16_t)elem.id;
	vq->num_free += count;
	*len = elem.len;
	return vq->token[elem.id];
}

/*
 * Asks for an interrupt when the device next uses a buffer (§2.7.10), which virtq_get takes back
 * under event-idx; true if one is there already, so that the caller must not wait for it.
 */
bool virtq_arm(struct virtq *vq)
{
	if (vq->event_idx)
		vq->avail->ring[vq->size] = vq->last_used;
	else
		vq->avail->flags = 0;
	virtio_mb();
	return vq->last_used != __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
}
