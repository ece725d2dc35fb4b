#include "mmio.h"

#include "../log.h"
#include "../util/bytes.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Register offsets, virtio 1.2 §4.2.2. */
enum {
	REG_MAGIC = 0x000,
	REG_VERSION = 0x004,
	REG_DEVICE_ID = 0x008,
	REG_VENDOR_ID = 0x00c,
	REG_DEVICE_FEATURES = 0x010,
	REG_DEVICE_FEATURES_SEL = 0x014,
	REG_DRIVER_FEATURES = 0x020,
	REG_DRIVER_FEATURES_SEL = 0x024,
	REG_QUEUE_SEL = 0x030,
	REG_QUEUE_NUM_MAX = 0x034,
	REG_QUEUE_NUM = 0x038,
	REG_QUEUE_READY = 0x044,
	REG_QUEUE_NOTIFY = 0x050,
	REG_INTERRUPT_STATUS = 0x060,
	REG_INTERRUPT_ACK = 0x064,
	REG_STATUS = 0x070,
	REG_QUEUE_DESC_LOW = 0x080,
	REG_QUEUE_DESC_HIGH = 0x084,
	REG_QUEUE_DRIVER_LOW = 0x090,
	REG_QUEUE_DRIVER_HIGH = 0x094,
	REG_QUEUE_DEVICE_LOW = 0x0a0,
	REG_QUEUE_DEVICE_HIGH = 0x0a4,
	REG_SHM_LEN_LOW = 0x0b4,
	REG_SHM_LEN_HIGH = 0x0b8,
	REG_CONFIG_GENERATION = 0x0fc,
	REG_CONFIG = 0x100,
};

#define MAGIC			0x74726976 /* "virt" */
#define VENDOR_ID		0x46464b53 /* "SKFF" */
#define INT_USED_BUFFER		0x1
#define INT_CONFIG_CHANGE	0x2
#define TRANSPORT_FEATURES	(VIRTIO_BIT(VIRTIO_F_VERSION_1) | \
				 VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC) | \
				 VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX))

static uint64_t offered_features(const struct virtio_mmio *t)
{
	return t->ops->features | TRANSPORT_FEATURES;
}

bool virtio_has_feature(const struct virtio_mmio *t, unsigned bit)
{
	return t->driver_features & VIRTIO_BIT(bit);
}

void virtio_mmio_lock(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
}

void virtio_mmio_unlock(struct virtio_mmio *t)
{
	pthread_mutex_unlock(&t->lock);
}

static void raise_interrupt(struct virtio_mmio *t, uint32_t why)
{
	t->interrupt_status |= why;
	t->interrupts++;
	eventfd_write(t->irq_fd, 1);
}

/* §2.1.2: the device is broken for the driver until it resets it. */
static void needs_reset(struct virtio_mmio *t, const char *why)
{
	if (t->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	log_warn("%s@0x%llx: %s; device needs reset", t->ops->name, (unsigned long long)t->base,
		 why);
	t->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		raise_interrupt(t, INT_CONFIG_CHANGE);
}

static bool queue_live(const struct virtio_mmio *t, unsigned queue)
{
	return queue < t->ops->nr_queues && t->queues[queue].ready &&
	       (t->status & VIRTIO_STATUS_DRIVER_OK) && !(t->status & VIRTIO_STATUS_NEEDS_RESET);
}

int virtio_queue_pop(struct virtio_mmio *t, unsigned queue, struct virtq_chain *chain)
{
	int ret;

	if (!queue_live(t, queue))
		return 0;
	ret = virtq_pop(&t->queues[queue], t->mem, chain);
	if (ret < 0) {
		needs_reset(t, "malformed descriptor chain");
		return 0;
	}
	return ret;
}

void virtio_queue_push(struct virtio_mmio *t, unsigned queue, uint16_t head, uint32_t len)
{
	if (queue_live(t, queue))
		virtq_push(&t->queues[queue], head, len);
}

void virtio_queue_interrupt(struct virtio_mmio *t, unsigned queue)
{
	if (queue_live(t, queue) && virtq_should_notify(&t->queues[queue]))
		raise_interrupt(t, INT_USED_BUFFER);
}

void virtio_config_changed(struct virtio_mmio *t)
{
	/*
	 * §2.5: config_generation changes with the config space, so a driver that read across
	 * the change reads again. The notification (§2.3) waits for DRIVER_OK, as NEEDS_RESET's
	 * does (§2.1.2): before it, the driver is still reading the config space for itself.
	 */
	t->config_generation++;
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		raise_interrupt(t, INT_CONFIG_CHANGE);
}

static void reset(struct virtio_mmio *t)
{
	t->ops->reset(t->dev);
	t->status = 0;
	t->device_features_sel = t->driver_features_sel = t->queue_sel = 0;
	t->driver_features = 0;
	t->interrupt_status = 0;
	memset(t->queues, 0, sizeof(t->queues));
}

void virtio_mmio_process(struct virtio_mmio *t, unsigned queue)
{
	virtio_mmio_lock(t);
	t->notifications++;
	if (queue_live(t, queue))
		t->ops->queue_notify(t->dev, t, queue);
	virtio_mmio_unlock(t);
}

static void notified(void *opaque)
{
	struct virtio_notify_ctx *ctx = opaque;
	eventfd_t count;

	eventfd_read(ctx->t->notify_fd[ctx->queue], &count);
	virtio_mmio_process(ctx->t, ctx->queue);
}

/* §3.1.1 step 5: FEATURES_OK only if the device can work with what the driver accepted. */
static bool features_ok(const struct virtio_mmio *t)
{
	return !(t->driver_features & ~offered_features(t)) &&
	       (t->driver_features & VIRTIO_BIT(VIRTIO_F_VERSION_1));
}

static void write_status(struct virtio_mmio *t, uint32_t v)
{
	if (v == 0) {
		reset(t);
		return;
	}
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(t->status & VIRTIO_STATUS_FEATURES_OK) &&
	    !features_ok(t))
		v &= ~VIRTIO_STATUS_FEATURES_OK;
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(v & VIRTIO_STATUS_FEATURES_OK)) {
		needs_reset(t, "DRIVER_OK without FEATURES_OK");
		return;
	}
	/* The driver sets bits; only a reset clears them (NEEDS_RESET is the device's). */
	t->status |= v & ~VIRTIO_STATUS_NEEDS_RESET;
	for (unsigned q = 0; q < t->ops->nr_queues; q++) {
		t->queues[q].indirect = virtio_has_feature(t, VIRTIO_F_RING_INDIRECT_DESC);
		t->queues[q].event_idx = virtio_has_feature(t, VIRTIO_F_RING_EVENT_IDX);
	}
}

static void set_half(uint64_t *field, bool high, uint32_t v)
{
	*field = high ? (*field & 0xffffffffULL) | ((uint64_t)v << 32)
		      : (*field & ~0xffffffffULL) | v;
}

static void write_queue_reg(struct virtio_mmio *t, uint64_t reg, uint32_t v)
{
	struct virtq *q;

	if (t->queue_sel >= t->ops->nr_queues)
		return;
	q = &t->queues[t->queue_sel];
	if (reg == REG_QUEUE_READY) {
		if (!v) {
			q->ready = false;
		} else if (!q->ready) {
			if (q->size > t->ops->queue_max || !virtq_map(q, t->mem))
				needs_reset(t, "queue set up outside guest RAM or with a bad size");
			else
				q->ready = true;
		}
		return;
	}
	if (q->ready)
		return; /* §4.2.2.2: queue layout is fixed while the queue is ready */
	switch (reg) {
	case REG_QUEUE_NUM:
		q->size = v > 0xffff ? 0 : v;
		break;
	case REG_QUEUE_DESC_LOW:
	case REG_QUEUE_DESC_HIGH:
		set_half(&q->desc, reg == REG_QUEUE_DESC_HIGH, v);
		break;
	case REG_QUEUE_DRIVER_LOW:
	case REG_QUEUE_DRIVER_HIGH:
		set_half(&q->avail, reg == REG_QUEUE_DRIVER_HIGH, v);
		break;
	case REG_QUEUE_DEVICE_LOW:
	case REG_QUEUE_DEVICE_HIGH:
		set_half(&q->used, reg == REG_QUEUE_DEVICE_HIGH, v);
		break;
	}
}

static void write_reg(struct virtio_mmio *t, uint64_t reg, uint32_t v)
{
	switch (reg) {
	case REG_DEVICE_FEATURES_SEL:
		t->device_features_sel = v;
		break;
	case REG_DRIVER_FEATURES:
		/* Features are fixed once FEATURES_OK is set (§2.2). */
		if (!(t->status & VIRTIO_STATUS_FEATURES_OK) && t->driver_features_sel < 2)
			set_half(&t->driver_features, t->driver_features_sel == 1, v);
		break;
	case REG_DRIVER_FEATURES_SEL:
		t->driver_features_sel = v;
		break;
	case REG_QUEUE_SEL:
		t->queue_sel = v;
		break;
	case REG_QUEUE_NOTIFY:
		/* Normally caught by the ioeventfd; either way the event thread does the work. */
		if (v < t->ops->nr_queues && t->notify_fd[v] >= 0)
			eventfd_write(t->notify_fd[v], 1);
		break;
	case REG_INTERRUPT_ACK:
		t->interrupt_status &= ~v;
		break;
	case REG_STATUS:
		write_status(t, v);
		break;
	default:
		write_queue_reg(t, reg, v);
		break;
	}
}

static uint32_t read_reg(struct virtio_mmio *t, uint64_t reg)
{
	const struct virtq *q = t->queue_sel < t->ops->nr_queues ? &t->queues[t->queue_sel] : NULL;
	uint64_t features = offered_features(t);

	switch (reg) {
	case REG_MAGIC:
		return MAGIC;
	case REG_VERSION:
		return 2;
	case REG_DEVICE_ID:
		return t->ops->device_id;
	case REG_VENDOR_ID:
		return VENDOR_ID;
	case REG_DEVICE_FEATURES:
		return t->device_features_sel < 2 ? features >> (32 * t->device_features_sel) : 0;
	case REG_QUEUE_NUM_MAX:
		return q ? t->ops->queue_max : 0;
	case REG_QUEUE_READY:
		return q && q->ready;
	case REG_INTERRUPT_STATUS:
		return t->interrupt_status;
	case REG_STATUS:
		return t->status;
	case REG_SHM_LEN_LOW:
	case REG_SHM_LEN_HIGH:
		return 0xffffffff; /* no shared memory regions */
	case REG_CONFIG_GENERATION:
		return t->config_generation;
	default:
		return 0;
	}
}

void virtio_mmio_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			bool is_write)
{
	struct virtio_mmio *t = opaque;

	virtio_mmio_lock(t);
	if (offset >= REG_CONFIG) {
		uint64_t off = offset - REG_CONFIG;

		if (off >= t->ops->config_size || len > t->ops->config_size - off) {
			if (!is_write)
				memset(data, 0, len);
		} else if (is_write) {
			if (t->ops->config_write)
				t->ops->config_write(t->dev, off, data, len);
		} else {
			t->ops->config_read(t->dev, off, data, len);
		}
	} else if (len != 4 || (offset & 3)) {
		/* §4.2.2.2: registers take aligned 32-bit accesses only. */
		if (!is_write)
			memset(data, 0, len);
	} else if (is_write) {
		write_reg(t, offset, get_le32(data));
	} else {
		put_le32(data, read_reg(t, offset));
	}
	virtio_mmio_unlock(t);
}

static int bind_kvm(struct virtio_mmio *t, int vm_fd)
{
	struct kvm_irqfd irqfd = { .fd = t->irq_fd, .gsi = t->gsi };

	if (ioctl(vm_fd, KVM_IRQFD, &irqfd) < 0)
		return -errno;
	for (unsigned q = 0; q < t->ops->nr_queues; q++) {
		struct kvm_ioeventfd ev = {
			.datamatch = q,
			.addr = t->base + REG_QUEUE_NOTIFY,
			.len = 4,
			.fd = t->notify_fd[q],
			.flags = KVM_IOEVENTFD_FLAG_DATAMATCH,
		};

		if (ioctl(vm_fd, KVM_IOEVENTFD, &ev) < 0)
			return -errno;
	}
	return 0;
}

int virtio_mmio_init(struct virtio_mmio *t, const struct virtio_device_ops *ops, void *dev,
		     const struct guest_mem *mem, uint64_t base, unsigned gsi, int vm_fd,
		     struct event_loop *loop)
{
	int ret = 0;

	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	t->ops = ops;
	t->dev = dev;
	t->mem = mem;
	t->base = base;
	t->gsi = gsi;
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
		t->notify_fd[q] = -1;
	if (ops->nr_queues > VIRTIO_MMIO_MAX_QUEUES)
		return -EINVAL;
	t->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->irq_fd < 0)
		return -errno;
	for (unsigned q = 0; q < ops->nr_queues; q++) {
		t->notify_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (t->notify_fd[q] < 0)
			return -errno;
		t->notify_ctx[q] = (struct virtio_notify_ctx){ t, q };
		if (loop)
			ret = ret ?: event_add(loop, &t->notify_src[q], t->notify_fd[q], notified,
					       &t->notify_ctx[q]);
	}
	if (!ret && vm_fd >= 0)
		ret = bind_kvm(t, vm_fd);
	if (!ret && ops->attach)
		ops->attach(dev, t);
	return ret;
}

void virtio_mmio_destroy(struct virtio_mmio *t, struct event_loop *loop)
{
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++) {
		if (t->notify_fd[q] < 0)
			continue;
		if (loop)
			event_del(loop, &t->notify_src[q]);
		close(t->notify_fd[q]);
	}
	if (t->irq_fd >= 0)
		close(t->irq_fd);
	pthread_mutex_destroy(&t->lock);
}

int virtio_mmio_save(struct virtio_mmio *t, struct state_writer *w)
{
	struct state_writer dev;
	int ret = 0;

	virtio_mmio_lock(t);
	/*
	 * The device first: saving finishes its requests in flight, whose used entries and
	 * interrupt belong in the transport state written below.
	 */
	state_writer_init(&dev);
	if (t->ops->save)
		ret = t->ops->save(t->dev, &dev);
	state_begin(w, "VMIO", 1);
	state_put_u32(w, t->ops->device_id);
	state_put_u32(w, t->status);
	state_put_u32(w, t->device_features_sel);
	state_put_u32(w, t->driver_features_sel);
	state_put_u32(w, t->queue_sel);
	state_put_u64(w, t->driver_features);
	state_put_u32(w, t->interrupt_status);
	state_put_u32(w, t->config_generation);
	state_put_u32(w, t->ops->nr_queues);
	for (unsigned i = 0; i < t->ops->nr_queues; i++) {
		const struct virtq *q = &t->queues[i];

		state_put_u16(w, q->size);
		state_put_bytes(w, (uint8_t[]){ q->ready, q->indirect, q->event_idx,
						 q->signalled_valid }, 4);
		state_put_u64(w, q->desc);
		state_put_u64(w, q->avail);
		state_put_u64(w, q->used);
		state_put_u16(w, q->last_avail);
		state_put_u16(w, q->used_idx);
		state_put_u16(w, q->signalled_used);
	}
	ret = state_end(w) ?: ret;
	state_put_bytes(w, dev.buf, dev.len);
	state_writer_free(&dev);
	virtio_mmio_unlock(t);
	return ret ?: (w->failed ? -ENOMEM : 0);
}

static int load_queue(struct virtio_mmio *t, struct state_reader *r, struct virtq *q)
{
	q->size = state_get_u16(r);
	q->ready = state_get_bool(r);
	q->indirect = state_get_bool(r);
	q->event_idx = state_get_bool(r);
	q->signalled_valid = state_get_bool(r);
	q->desc = state_get_u64(r);
	q->avail = state_get_u64(r);
	q->used = state_get_u64(r);
	q->last_avail = state_get_u16(r);
	q->used_idx = state_get_u16(r);
	q->signalled_used = state_get_u16(r);
	if (q->size > t->ops->queue_max)
		return -EINVAL;
	/* A ready queue must map now exactly as it did when the driver set it up. */
	return q->ready && !virtq_map(q, t->mem) ? -EINVAL : 0;
}

int virtio_mmio_load(struct virtio_mmio *t, struct state_reader *r)
{
	struct virtq queues[VIRTIO_MMIO_MAX_QUEUES] = { 0 };
	uint32_t regs[5], interrupt_status, generation;
	uint64_t driver_features;
	int ret = -EINVAL;

	virtio_mmio_lock(t);
	if (state_open(r, "VMIO") != 1 || state_get_u32(r) != t->ops->device_id)
		goto out;
	for (unsigned i = 0; i < 4; i++)
		regs[i] = state_get_u32(r);
	driver_features = state_get_u64(r);
	interrupt_status = state_get_u32(r);
	generation = state_get_u32(r);
	if (state_get_u32(r) != t->ops->nr_queues)
		goto out;
	for (unsigned i = 0; i < t->ops->nr_queues; i++)
		if (load_queue(t, r, &queues[i]))
			goto out;
	if (state_close(r) || regs[0] > 0xff || (driver_features & ~offered_features(t)) ||
	    interrupt_status > (INT_USED_BUFFER | INT_CONFIG_CHANGE))
		goto out;
	if (t->ops->load && t->ops->load(t->dev, r))
		goto out;
	t->status = regs[0];
	t->device_features_sel = regs[1];
	t->driver_features_sel = regs[2];
	t->queue_sel = regs[3];
	t->driver_features = driver_features;
	t->interrupt_status = interrupt_status;
	t->config_generation = generation;
	memcpy(t->queues, queues, sizeof(queues));
	ret = 0;
out:
	virtio_mmio_unlock(t);
	return ret;
}
