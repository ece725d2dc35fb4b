#include "ioapic.h"

#include "../log.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define REG_ID		0x00
#define REG_VERSION	0x01
#define REG_ARB		0x02
#define REG_REDIR	0x10
#define IOAPIC_VERSION	0x11

#define REDIR_VECTOR(e)		((e) & 0xff)
#define REDIR_DELIVERY(e)	(((e) >> 8) & 7)
#define REDIR_DEST_LOGICAL	(1ULL << 11)
#define REDIR_REMOTE_IRR	(1ULL << 14)
#define REDIR_LEVEL		(1ULL << 15)
#define REDIR_MASKED		(1ULL << 16)
#define REDIR_DEST(e)		((e) >> 56)
#define REDIR_RO_BITS		((1ULL << 12) | REDIR_REMOTE_IRR) /* delivery status, remote IRR */

/* Intel SDM vol. 3, 10.11: the MSI address/data an entry stands for. */
static void redir_to_msi(uint64_t e, struct kvm_msi *msi)
{
	memset(msi, 0, sizeof(*msi));
	msi->address_lo = 0xfee00000u | (uint32_t)(REDIR_DEST(e) << 12) |
			  ((e & REDIR_DEST_LOGICAL) ? 1u << 2 : 0);
	msi->data = REDIR_VECTOR(e) | (REDIR_DELIVERY(e) << 8) | ((e & REDIR_LEVEL) ? 1u << 15 : 0);
}

static int update_routes(struct ioapic *io)
{
	struct kvm_irq_routing *table;
	unsigned n = 0;
	int ret = 0;

	if (io->vm_fd < 0)
		return 0;
	table = calloc(1, sizeof(*table) + IOAPIC_PINS * sizeof(table->entries[0]));
	if (!table)
		return -ENOMEM;
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		struct kvm_irq_routing_entry *r = &table->entries[n];
		struct kvm_msi msi;

		if (io->redir[pin] & REDIR_MASKED)
			continue;
		redir_to_msi(io->redir[pin], &msi);
		r->gsi = pin;
		r->type = KVM_IRQ_ROUTING_MSI;
		r->u.msi.address_lo = msi.address_lo;
		r->u.msi.data = msi.data;
		n++;
	}
	table->nr = n;
	if (ioctl(io->vm_fd, KVM_SET_GSI_ROUTING, table) < 0) {
		ret = -errno;
		log_warn("ioapic: KVM_SET_GSI_ROUTING: %s", strerror(errno));
	}
	free(table);
	return ret;
}

int ioapic_init(struct ioapic *io, int vm_fd, uint8_t id)
{
	memset(io, 0, sizeof(*io));
	pthread_mutex_init(&io->lock, NULL);
	io->vm_fd = vm_fd;
	io->id = id;
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		io->redir[pin] = REDIR_MASKED;
	return update_routes(io);
}

void ioapic_destroy(struct ioapic *io)
{
	pthread_mutex_destroy(&io->lock);
}

static void deliver(struct ioapic *io, unsigned pin)
{
	uint64_t *e = &io->redir[pin];
	struct kvm_msi msi;

	if (*e & REDIR_MASKED)
		return;
	if (*e & REDIR_LEVEL) {
		if (*e & REDIR_REMOTE_IRR)
			return; /* the guest has not EOI'd the last one yet */
		*e |= REDIR_REMOTE_IRR;
	}
	redir_to_msi(*e, &msi);
	io->delivered++;
	if (io->vm_fd >= 0 && ioctl(io->vm_fd, KVM_SIGNAL_MSI, &msi) < 0)
		log_warn("ioapic: KVM_SIGNAL_MSI for pin %u: %s", pin, strerror(errno));
}

void ioapic_set_irq(void *opaque, unsigned pin, bool level)
{
	struct ioapic *io = opaque;
	uint32_t bit = 1u << pin;
	bool was_high;

	if (pin >= IOAPIC_PINS)
		return;
	pthread_mutex_lock(&io->lock);
	was_high = io->line & bit;
	io->line = level ? io->line | bit : io->line & ~bit;
	if (level && (!was_high || (io->redir[pin] & REDIR_LEVEL)))
		deliver(io, pin);
	pthread_mutex_unlock(&io->lock);
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
	pthread_mutex_lock(&io->lock);
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t *e = &io->redir[pin];

		if (!(*e & REDIR_LEVEL) || REDIR_VECTOR(*e) != vector)
			continue;
		*e &= ~REDIR_REMOTE_IRR;
		if (io->line & (1u << pin))
			deliver(io, pin);
	}
	pthread_mutex_unlock(&io->lock);
}

static uint32_t read_reg(const struct ioapic *io, uint32_t reg)
{
	unsigned pin = (reg - REG_REDIR) / 2;

	switch (reg) {
	case REG_ID:
		return (uint32_t)io->id << 24;
	case REG_VERSION:
		return ((IOAPIC_PINS - 1) << 16) | IOAPIC_VERSION;
	case REG_ARB:
		return (uint32_t)io->id << 24;
	}
	if (reg >= REG_REDIR && pin < IOAPIC_PINS)
		return (reg & 1) ? io->redir[pin] >> 32 : (uint32_t)io->redir[pin];
	return 0xffffffff;
}

static void write_reg(struct ioapic *io, uint32_t reg, uint32_t v)
{
	unsigned pin = (reg - REG_REDIR) / 2;
	uint64_t old, e;

	if (reg == REG_ID) {
		io->id = (v >> 24) & 0x0f;
		return;
	}
	if (reg < REG_REDIR || pin >= IOAPIC_PINS)
		return;
	old = io->redir[pin];
	if (reg & 1)
		e = (old & 0xffffffffULL) | ((uint64_t)v << 32);
	else
		e = (old & ~0xffffffffULL) | v;
	e = (e & ~REDIR_RO_BITS) | (old & REDIR_RO_BITS);
	if (!(e & REDIR_LEVEL))
		e &= ~REDIR_REMOTE_IRR;
	io->redir[pin] = e;
	if (e != old)
		update_routes(io);
	/* Unmasking a level-triggered pin that is already high delivers it now. */
	if ((io->line & (1u << pin)) && (e & REDIR_LEVEL))
		deliver(io, pin);
}

void ioapic_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct ioapic *io = opaque;
	uint32_t v = 0;

	pthread_mutex_lock(&io->lock);
	if (is_write) {
		memcpy(&v, data, len < 4 ? len : 4);
		if (offset == 0x00)
			io->ioregsel = v & 0xff;
		else if (offset == 0x10)
			write_reg(io, io->ioregsel, v);
	} else {
		if (offset == 0x00)
			v = io->ioregsel;
		else if (offset == 0x10)
			v = read_reg(io, io->ioregsel);
		else
			v = 0xffffffff;
		memset(data, 0, len);
		memcpy(data, &v, len < 4 ? len : 4);
	}
	pthread_mutex_unlock(&io->lock);
}

void ioapic_save(struct ioapic *io, struct state_writer *w)
{
	pthread_mutex_lock(&io->lock);
	state_begin(w, "IOAP", 1);
	state_put_u8(w, io->id);
	state_put_u32(w, io->ioregsel);
	state_put_u32(w, io->line);
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		state_put_u64(w, io->redir[pin]);
	state_end(w);
	pthread_mutex_unlock(&io->lock);
}

int ioapic_load(struct ioapic *io, struct state_reader *r)
{
	uint64_t redir[IOAPIC_PINS];
	uint32_t ioregsel, line;
	uint8_t id;
	int ret;

	if (state_open(r, "IOAP") != 1)
		return -EINVAL;
	id = state_get_u8(r);
	ioregsel = state_get_u32(r);
	line = state_get_u32(r);
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		redir[pin] = state_get_u64(r);
	if (state_close(r) || line >> IOAPIC_PINS)
		return -EINVAL;
	pthread_mutex_lock(&io->lock);
	io->id = id;
	io->ioregsel = ioregsel;
	io->line = line;
	memcpy(io->redir, redir, sizeof(redir));
	ret = update_routes(io);
	pthread_mutex_unlock(&io->lock);
	return ret;
}
