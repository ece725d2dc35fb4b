#include "i8042.h"

#include <errno.h>
#include <string.h>

#define STATUS_OUTPUT_FULL	0x01
#define STATUS_SYSTEM		0x04
#define CMD_READ_CMD_BYTE	0x20
#define CMD_WRITE_CMD_BYTE	0x60
#define CMD_DISABLE_AUX		0xa7
#define CMD_ENABLE_AUX		0xa8
#define CMD_SELF_TEST		0xaa
#define CMD_KBD_TEST		0xab
#define CMD_DISABLE_KBD		0xad
#define CMD_ENABLE_KBD		0xae
#define CMD_WRITE_OUTPUT	0xd1
#define CMD_PULSE_RESET		0xfe
#define SELF_TEST_OK		0x55
#define OUTPUT_PORT_RESET	0x01 /* active low: writing 0 resets the CPU */

void i8042_init(struct i8042 *kbd, struct power_ctl power)
{
	memset(kbd, 0, sizeof(*kbd));
	pthread_mutex_init(&kbd->lock, NULL);
	kbd->power = power;
	kbd->command_byte = 0x20; /* keyboard clock disabled until a driver enables it */
}

void i8042_destroy(struct i8042 *kbd)
{
	pthread_mutex_destroy(&kbd->lock);
}

static void reply(struct i8042 *kbd, uint8_t byte)
{
	kbd->output = byte;
	kbd->output_full = true;
}

/* Returns true when the command resets the machine. */
static bool command(struct i8042 *kbd, uint8_t cmd)
{
	switch (cmd) {
	case CMD_READ_CMD_BYTE:
		reply(kbd, kbd->command_byte);
		break;
	case CMD_WRITE_CMD_BYTE:
	case CMD_WRITE_OUTPUT:
		kbd->pending_cmd = cmd;
		break;
	case CMD_SELF_TEST:
		reply(kbd, SELF_TEST_OK);
		break;
	case CMD_KBD_TEST:
		reply(kbd, 0x00);
		break;
	case CMD_PULSE_RESET:
		return true;
	default: /* enable/disable and the rest have no effect on a machine with no keys */
		break;
	}
	return false;
}

/* Returns true when the data byte resets the machine. */
static bool data_write(struct i8042 *kbd, uint8_t v)
{
	uint8_t cmd = kbd->pending_cmd;

	kbd->pending_cmd = 0;
	if (cmd == CMD_WRITE_CMD_BYTE)
		kbd->command_byte = v;
	else if (cmd == CMD_WRITE_OUTPUT)
		return !(v & OUTPUT_PORT_RESET);
	return false;
}

static void access(struct i8042 *kbd, bool command_port, uint8_t *data, uint32_t len,
		   bool is_write)
{
	bool reset = false;

	pthread_mutex_lock(&kbd->lock);
	if (is_write) {
		reset = command_port ? command(kbd, data[0]) : data_write(kbd, data[0]);
	} else {
		memset(data, 0, len);
		if (command_port) {
			data[0] = STATUS_SYSTEM | (kbd->output_full ? STATUS_OUTPUT_FULL : 0);
		} else {
			data[0] = kbd->output;
			kbd->output_full = false;
		}
	}
	pthread_mutex_unlock(&kbd->lock);
	/* Outside the lock: stopping the VM waits for nothing, but keep it lock-free. */
	if (reset)
		power_request(&kbd->power, POWER_RESET, 0);
}

void i8042_data_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
		       bool is_write)
{
	(void)offset;
	access(opaque, false, data, len, is_write);
}

void i8042_command_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write)
{
	(void)offset;
	access(opaque, true, data, len, is_write);
}

void i8042_save(struct i8042 *kbd, struct state_writer *w)
{
	pthread_mutex_lock(&kbd->lock);
	state_begin(w, "KBDC", 1);
	state_put_u8(w, kbd->command_byte);
	state_put_u8(w, kbd->pending_cmd);
	state_put_u8(w, kbd->output);
	state_put_u8(w, kbd->output_full);
	state_end(w);
	pthread_mutex_unlock(&kbd->lock);
}

int i8042_load(struct i8042 *kbd, struct state_reader *r)
{
	uint8_t command_byte, pending, output;
	bool full;

	if (state_open(r, "KBDC") != 1)
		return -EINVAL;
	command_byte = state_get_u8(r);
	pending = state_get_u8(r);
	output = state_get_u8(r);
	full = state_get_bool(r);
	if (state_close(r))
		return -EINVAL;
	pthread_mutex_lock(&kbd->lock);
	kbd->command_byte = command_byte;
	kbd->pending_cmd = pending;
	kbd->output = output;
	kbd->output_full = full;
	pthread_mutex_unlock(&kbd->lock);
	return 0;
}
