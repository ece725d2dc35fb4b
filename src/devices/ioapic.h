/*
 * A user-space 82093AA IOAPIC for KVM's split irqchip: the LAPICs live in KVM, pins are
 * turned into MSIs here. Every redirection entry is mirrored into KVM's GSI routing table
 * (GSI n = pin n) so that irqfds can target pins and KVM reports EOIs of level-triggered
 * vectors back to us (KVM_EXIT_IOAPIC_EOI).
 */
#ifndef SKIFF_IOAPIC_H
#define SKIFF_IOAPIC_H

#include "../arch/x86/layout.h"

#include "../state/state.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define IOAPIC_MMIO_SIZE 0x1000

struct ioapic {
	pthread_mutex_t lock;
	int vm_fd; /* -1 in unit tests: interrupts are recorded, not sent */
	uint8_t id;
	uint32_t ioregsel;
	uint32_t line;	/* current level of each pin */
	uint64_t redir[IOAPIC_PINS];
	uint64_t delivered; /* MSIs sent (tests and metrics) */
};

int ioapic_init(struct ioapic *io, int vm_fd, uint8_t id);
void ioapic_destroy(struct ioapic *io);
void ioapic_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* irq_line callback: sets a pin's level; an edge or an unmasked high level delivers. */
void ioapic_set_irq(void *opaque, unsigned pin, bool level);
/* The guest EOI'd a level-triggered vector. */
void ioapic_eoi(struct ioapic *io, uint8_t vector);

/* The IOAPIC's registers and line levels, as a state section; load re-routes in KVM. */
void ioapic_save(struct ioapic *io, struct state_writer *w);
int ioapic_load(struct ioapic *io, struct state_reader *r);

#endif
