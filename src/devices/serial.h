/* A 16550A UART (8250 family) on COM1: output to a file descriptor, interrupt-driven input. */
#ifndef SKIFF_SERIAL_H
#define SKIFF_SERIAL_H

#include "platform.h"

#include "../state/state.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SERIAL_RX_SIZE 256

struct serial {
	pthread_mutex_t lock; /* input arrives on the event thread, registers on vCPUs */
	int out_fd;
	int space_fd; /* eventfd written when the guest empties a full receive buffer */
	struct irq_line irq;
	uint8_t ier, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
	bool thr_interrupt; /* THR-empty interrupt pending (cleared by reading IIR) */
	bool irq_level;
	bool rx_was_full;
	uint8_t rx[SERIAL_RX_SIZE];
	unsigned rx_head, rx_count;
};

/* Returns 0 or -errno (the eventfd). */
int serial_init(struct serial *s, int out_fd, struct irq_line irq);
void serial_destroy(struct serial *s);
/* Bus handler for the 8 registers at the base port. */
void serial_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* Queues input for the guest; returns how many bytes fitted (the rest waits for space_fd). */
size_t serial_receive(void *serial, const uint8_t *buf, size_t len);

/* Registers and unread input, as a state section. */
void serial_save(struct serial *s, struct state_writer *w);
int serial_load(struct serial *s, struct state_reader *r);

#endif
