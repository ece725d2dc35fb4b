/* Just enough of the PS/2 controller for guests to probe it and pulse the CPU reset line. */
#ifndef SKIFF_I8042_H
#define SKIFF_I8042_H

#include "platform.h"

#include "../state/state.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct i8042 {
	pthread_mutex_t lock;
	struct power_ctl power;
	uint8_t command_byte;
	uint8_t pending_cmd; /* command awaiting its data byte on port 0x60, or 0 */
	uint8_t output;
	bool output_full;
};

void i8042_init(struct i8042 *kbd, struct power_ctl power);
void i8042_destroy(struct i8042 *kbd);
/* Bus handlers for the data port (0x60) and the status/command port (0x64). */
void i8042_data_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
		       bool is_write);
void i8042_command_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write);

/* Controller state, as a state section. */
void i8042_save(struct i8042 *kbd, struct state_writer *w);
int i8042_load(struct i8042 *kbd, struct state_reader *r);

#endif
