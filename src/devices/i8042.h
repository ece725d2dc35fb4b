/*
 * The PS/2 controller with a minimal keyboard behind it: enough for guests to probe it,
 * pulse the CPU reset line, and for Linux's i8042 and atkbd drivers to find a keyboard
 * and receive the keys skiff sends (Ctrl-Alt-Del). There is no AUX (mouse) port.
 */
#ifndef SKIFF_I8042_H
#define SKIFF_I8042_H

#include "platform.h"

#include "../state/state.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Bytes waiting for the data port. Linux's i8042_flush() reads at most 16 before it
 * decides there is no controller, so never hold more than that.
 */
#define I8042_QUEUE_SIZE	16

struct i8042 {
	pthread_mutex_t lock;
	struct power_ctl power;
	struct irq_line irq;
	uint8_t command_byte;
	uint8_t pending_cmd; /* controller command awaiting its data byte on port 0x60, or 0 */
	uint8_t queue[I8042_QUEUE_SIZE]; /* what the data port returns next, oldest first */
	uint8_t queued;
	uint8_t last; /* the data port's last byte, read again while the queue is empty */
	uint8_t kbd_pending; /* keyboard command awaiting its argument byte, or 0 */
	bool kbd_scanning;   /* the keyboard reports keys (0xf4 enables, 0xf5 disables) */
	bool new_head;	     /* within one locked operation: a new byte reached the front */
};

/* A controller after reset, with its keyboard; no interrupt line until i8042_set_irq(). */
void i8042_init(struct i8042 *kbd, struct power_ctl power);
/* The line the keyboard interrupts on (IRQ 1), pulsed when a byte becomes readable. */
void i8042_set_irq(struct i8042 *kbd, struct irq_line irq);
void i8042_destroy(struct i8042 *kbd);
/* Bus handlers for the data port (0x60) and the status/command port (0x64). */
void i8042_data_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
		       bool is_write);
void i8042_command_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write);

/*
 * Presses and releases Left Ctrl, Left Alt and Delete, from any thread. Returns 0,
 * -EBUSY if the guest has not read enough of what is queued to make room, or -EAGAIN
 * if the guest has told the keyboard to stop scanning (0xf5).
 */
int i8042_send_ctrl_alt_del(struct i8042 *kbd);

/* Controller and keyboard state, as a state section. */
void i8042_save(struct i8042 *kbd, struct state_writer *w);
int i8042_load(struct i8042 *kbd, struct state_reader *r);

#endif
