/*
 * The 8042 keyboard controller and a PS/2 keyboard behind it that answers the AT command
 * set (IBM PS/2 Hardware Interface Technical Reference, "Keyboard and auxiliary device
 * controller" and "Keyboard") and types in scan code set 2.
 *
 * The output buffer is a short queue: controller replies go in front, the keyboard's
 * bytes behind, so a guest that issues a controller command while keys are waiting reads
 * the reply first and loses no key. Each byte that becomes readable pulses IRQ 1 when
 * the command byte enables keyboard interrupts, as the 8042's OBF line does.
 */
#include "i8042.h"

#include <errno.h>
#include <string.h>

#define STATUS_OUTPUT_FULL	0x01
#define STATUS_SYSTEM		0x04
#define STATUS_UNLOCKED		0x10 /* no key lock: Linux warns when this is clear */

#define CB_KBD_INT		0x01
#define CB_KBD_DISABLED		0x10
#define CB_AUX_DISABLED		0x20
#define CB_TRANSLATE		0x40

#define CMD_READ_CMD_BYTE	0x20
#define CMD_WRITE_CMD_BYTE	0x60
#define CMD_DISABLE_AUX		0xa7
#define CMD_ENABLE_AUX		0xa8
#define CMD_SELF_TEST		0xaa
#define CMD_KBD_TEST		0xab
#define CMD_DISABLE_KBD		0xad
#define CMD_ENABLE_KBD		0xae
#define CMD_WRITE_OUTPUT	0xd1
#define CMD_WRITE_KBD_BUFFER	0xd2
#define CMD_WRITE_AUX_BUFFER	0xd3
#define CMD_WRITE_AUX		0xd4
#define CMD_PULSE_RESET		0xfe
#define SELF_TEST_OK		0x55
#define OUTPUT_PORT_RESET	0x01 /* active low: writing 0 resets the CPU */

/* What the guest writes to the keyboard (port 0x60 with no controller command pending). */
#define KBD_SET_LEDS		0xed
#define KBD_ECHO		0xee
#define KBD_SCAN_SET		0xf0
#define KBD_GET_ID		0xf2
#define KBD_SET_TYPEMATIC	0xf3
#define KBD_ENABLE		0xf4
#define KBD_DISABLE		0xf5
#define KBD_SET_DEFAULT		0xf6
#define KBD_RESET		0xff
/* What the keyboard sends back. */
#define KBD_ACK			0xfa
#define KBD_RESEND		0xfe /* also "command not understood" */
#define KBD_SELF_TEST_OK	0xaa
#define KBD_ID_1		0xab
#define KBD_ID_2		0x83 /* an MF2 keyboard */
#define KBD_SET_2		0x02
/* Scan code set 2 */
#define KEY_BREAK		0xf0 /* the next code is a release */
#define KEY_EXTENDED		0xe0
#define KEY_LEFT_CTRL		0x14
#define KEY_LEFT_ALT		0x11
#define KEY_DELETE		0x71 /* after KEY_EXTENDED */

void i8042_init(struct i8042 *kbd, struct power_ctl power)
{
	memset(kbd, 0, sizeof(*kbd));
	pthread_mutex_init(&kbd->lock, NULL);
	kbd->power = power;
	/*
	 * As firmware leaves it: no interrupts, AUX disabled, no translation. Linux's i8042
	 * driver keeps the translate bit as it finds it, so atkbd reads set 2, as from
	 * Firecracker's i8042.
	 */
	kbd->command_byte = CB_AUX_DISABLED;
	kbd->kbd_scanning = true;
}

void i8042_set_irq(struct i8042 *kbd, struct irq_line irq)
{
	kbd->irq = irq;
}

void i8042_destroy(struct i8042 *kbd)
{
	pthread_mutex_destroy(&kbd->lock);
}

static bool irq_level(const struct i8042 *kbd)
{
	return kbd->queued && (kbd->command_byte & CB_KBD_INT);
}

/* A controller reply: ahead of the keyboard's bytes; when full, the newest one gives way. */
static void reply(struct i8042 *kbd, uint8_t byte)
{
	if (kbd->queued == I8042_QUEUE_SIZE)
		kbd->queued--;
	memmove(kbd->queue + 1, kbd->queue, kbd->queued);
	kbd->queue[0] = byte;
	kbd->queued++;
	kbd->new_head = true;
}

static void push(struct i8042 *kbd, const uint8_t *bytes, size_t n)
{
	kbd->new_head |= kbd->queued == 0 && n > 0;
	memcpy(kbd->queue + kbd->queued, bytes, n);
	kbd->queued += n;
}

/* The 8042's set 2 -> set 1 translation, for the set 2 bytes this keyboard ever sends. */
static uint8_t translate(uint8_t code)
{
	switch (code) {
	case KEY_LEFT_CTRL:
		return 0x1d;
	case KEY_LEFT_ALT:
		return 0x38;
	case KEY_DELETE:
		return 0x53;
	case KBD_SET_2:
		return 0x41;
	case KBD_ID_2:
		return 0x41; /* why translated keyboards identify as AB 41 */
	default:
		return code; /* 0x80 and up (E0, the replies) pass unchanged */
	}
}

/*
 * Bytes from the keyboard. The keyboard always speaks set 2; when the guest sets the
 * command byte's translate bit, the controller turns them into set 1 as a real 8042
 * does (F0 is swallowed and sets bit 7 of the next code), so guests get what they asked
 * the controller for without the keyboard knowing. Returns -EBUSY, queuing nothing, if
 * they don't all fit.
 */
static int kbd_send(struct i8042 *kbd, const uint8_t *bytes, size_t n)
{
	bool translating = kbd->command_byte & CB_TRANSLATE, released = false;
	uint8_t out[I8042_QUEUE_SIZE];
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		if (translating && bytes[i] == KEY_BREAK) {
			released = true;
			continue;
		}
		if (len == sizeof(out))
			return -EBUSY;
		out[len++] = translating ? translate(bytes[i]) | (released ? 0x80 : 0) : bytes[i];
		released = false;
	}
	if (len > (size_t)(I8042_QUEUE_SIZE - kbd->queued))
		return -EBUSY;
	push(kbd, out, len);
	return 0;
}

static void kbd_reply(struct i8042 *kbd, const uint8_t *bytes, size_t n)
{
	/* A guest that lets the queue fill up misses the answer, and times out as on hardware. */
	(void)kbd_send(kbd, bytes, n);
}

static void kbd_ack(struct i8042 *kbd)
{
	kbd_reply(kbd, (const uint8_t[]){ KBD_ACK }, 1);
}

/* The argument byte of a keyboard command. */
static void kbd_argument(struct i8042 *kbd, uint8_t cmd, uint8_t arg)
{
	/* Set 2 is the only set: selecting another is acknowledged, and F0 00 still says 2. */
	if (cmd == KBD_SCAN_SET && arg == 0)
		kbd_reply(kbd, (const uint8_t[]){ KBD_ACK, KBD_SET_2 }, 2);
	else
		kbd_ack(kbd); /* LEDs (none to light), typematic rate (no key repeats) */
}

static void kbd_command(struct i8042 *kbd, uint8_t cmd)
{
	if (kbd->kbd_pending) {
		uint8_t pending = kbd->kbd_pending;

		kbd->kbd_pending = 0;
		kbd_argument(kbd, pending, cmd);
		return;
	}
	switch (cmd) {
	case KBD_SET_LEDS:
	case KBD_SCAN_SET:
	case KBD_SET_TYPEMATIC:
		kbd->kbd_pending = cmd;
		kbd_ack(kbd);
		break;
	case KBD_ECHO:
		kbd_reply(kbd, (const uint8_t[]){ KBD_ECHO }, 1);
		break;
	case KBD_GET_ID:
		kbd_reply(kbd, (const uint8_t[]){ KBD_ACK, KBD_ID_1, KBD_ID_2 }, 3);
		break;
	case KBD_ENABLE:
		kbd->kbd_scanning = true;
		kbd_ack(kbd);
		break;
	case KBD_DISABLE:
		kbd->kbd_scanning = false;
		kbd_ack(kbd);
		break;
	case KBD_SET_DEFAULT:
		kbd_ack(kbd);
		break;
	case KBD_RESET:
		/* The self-test result follows the ACK at once: there is no test to wait for. */
		kbd->kbd_scanning = true;
		kbd_reply(kbd, (const uint8_t[]){ KBD_ACK, KBD_SELF_TEST_OK }, 2);
		break;
	default:
		kbd_reply(kbd, (const uint8_t[]){ KBD_RESEND }, 1);
		break;
	}
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
	case CMD_WRITE_KBD_BUFFER:
	case CMD_WRITE_AUX_BUFFER:
	case CMD_WRITE_AUX:
		kbd->pending_cmd = cmd;
		break;
	case CMD_SELF_TEST:
		reply(kbd, SELF_TEST_OK);
		break;
	case CMD_KBD_TEST:
		reply(kbd, 0x00);
		break;
	case CMD_DISABLE_KBD:
		kbd->command_byte |= CB_KBD_DISABLED;
		break;
	case CMD_ENABLE_KBD:
		kbd->command_byte &= ~CB_KBD_DISABLED;
		break;
	case CMD_DISABLE_AUX:
		kbd->command_byte |= CB_AUX_DISABLED;
		break;
	case CMD_ENABLE_AUX:
		kbd->command_byte &= ~CB_AUX_DISABLED;
		break;
	case CMD_PULSE_RESET:
		return true;
	default:
		/*
		 * No answer, and so no AUX port: Linux's AUX test (0xa9) and loopback (0xd3)
		 * time out and it goes on without a mouse.
		 */
		break;
	}
	return false;
}

/* Returns true when the data byte resets the machine. */
static bool data_write(struct i8042 *kbd, uint8_t v)
{
	uint8_t cmd = kbd->pending_cmd;

	kbd->pending_cmd = 0;
	switch (cmd) {
	case CMD_WRITE_CMD_BYTE:
		kbd->command_byte = v;
		break;
	case CMD_WRITE_OUTPUT:
		return !(v & OUTPUT_PORT_RESET);
	case CMD_WRITE_KBD_BUFFER:
		/* As if the keyboard had sent it, but past the translation, like QEMU's. */
		if (kbd->queued < I8042_QUEUE_SIZE)
			push(kbd, &v, 1);
		break;
	case CMD_WRITE_AUX_BUFFER:
	case CMD_WRITE_AUX:
		break; /* to the absent AUX device */
	default:
		kbd_command(kbd, v);
		break;
	}
	return false;
}

static uint8_t data_read(struct i8042 *kbd)
{
	if (kbd->queued) {
		kbd->last = kbd->queue[0];
		kbd->queued--;
		memmove(kbd->queue, kbd->queue + 1, kbd->queued);
		kbd->new_head = kbd->queued > 0;
	}
	return kbd->last;
}

/*
 * Ends an operation under the lock that began when before was irq_level(): true when
 * the guest must be told of a byte, i.e. the line rises or a new byte replaced the one
 * it saw. The pulse itself is sent outside the lock.
 */
static bool end_op(struct i8042 *kbd, bool before)
{
	bool pulse = irq_level(kbd) && (!before || kbd->new_head);

	kbd->new_head = false;
	return pulse;
}

static void pulse_irq(struct i8042 *kbd)
{
	/* ISA interrupts are edge-triggered: the rising edge is what the IOAPIC delivers. */
	irq_line_set(&kbd->irq, true);
	irq_line_set(&kbd->irq, false);
}

static void access(struct i8042 *kbd, bool command_port, uint8_t *data, uint32_t len,
		   bool is_write)
{
	bool reset = false, pulse, before;

	pthread_mutex_lock(&kbd->lock);
	before = irq_level(kbd);
	if (is_write) {
		reset = command_port ? command(kbd, data[0]) : data_write(kbd, data[0]);
	} else {
		memset(data, 0, len);
		if (command_port)
			data[0] = STATUS_SYSTEM | STATUS_UNLOCKED |
				  (kbd->queued ? STATUS_OUTPUT_FULL : 0);
		else
			data[0] = data_read(kbd);
	}
	pulse = end_op(kbd, before);
	pthread_mutex_unlock(&kbd->lock);
	/* Outside the lock: neither the IOAPIC nor stopping the VM should wait on it. */
	if (pulse)
		pulse_irq(kbd);
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

int i8042_send_ctrl_alt_del(struct i8042 *kbd)
{
	/* Press Ctrl, Alt, Delete; release Delete, Alt, Ctrl: what Firecracker sends, and more. */
	static const uint8_t keys[] = {
		KEY_LEFT_CTRL, KEY_LEFT_ALT, KEY_EXTENDED, KEY_DELETE,
		KEY_EXTENDED, KEY_BREAK, KEY_DELETE,
		KEY_BREAK, KEY_LEFT_ALT,
		KEY_BREAK, KEY_LEFT_CTRL,
	};
	bool pulse, before;
	int ret;

	pthread_mutex_lock(&kbd->lock);
	before = irq_level(kbd);
	/* A keyboard told to stop scanning drops keys; say so rather than pretend. */
	ret = kbd->kbd_scanning ? kbd_send(kbd, keys, sizeof(keys)) : -EAGAIN;
	pulse = end_op(kbd, before);
	pthread_mutex_unlock(&kbd->lock);
	if (pulse)
		pulse_irq(kbd);
	return ret;
}

#define SECTION_VERSION 2

void i8042_save(struct i8042 *kbd, struct state_writer *w)
{
	pthread_mutex_lock(&kbd->lock);
	state_begin(w, "KBDC", SECTION_VERSION);
	state_put_u8(w, kbd->command_byte);
	state_put_u8(w, kbd->pending_cmd);
	state_put_u8(w, kbd->queued);
	state_put_bytes(w, kbd->queue, kbd->queued);
	state_put_u8(w, kbd->last);
	state_put_u8(w, kbd->kbd_pending);
	state_put_u8(w, kbd->kbd_scanning);
	state_end(w);
	pthread_mutex_unlock(&kbd->lock);
}

static bool valid_pending(uint8_t cmd)
{
	return cmd == 0 || cmd == CMD_WRITE_CMD_BYTE || cmd == CMD_WRITE_OUTPUT ||
	       cmd == CMD_WRITE_KBD_BUFFER || cmd == CMD_WRITE_AUX_BUFFER || cmd == CMD_WRITE_AUX;
}

static bool valid_kbd_pending(uint8_t cmd)
{
	return cmd == 0 || cmd == KBD_SET_LEDS || cmd == KBD_SCAN_SET || cmd == KBD_SET_TYPEMATIC;
}

/*
 * Loads what i8042_save wrote. A byte left queued raises no new interrupt: one already
 * raised for it is the interrupt controller's and the vCPU's state, restored with them.
 */
int i8042_load(struct i8042 *kbd, struct state_reader *r)
{
	uint8_t command_byte, pending, queued, queue[I8042_QUEUE_SIZE], last, kbd_pending;
	bool scanning;

	if (state_open(r, "KBDC") != SECTION_VERSION)
		return -EINVAL;
	command_byte = state_get_u8(r);
	pending = state_get_u8(r);
	queued = state_get_u8(r);
	if (queued > I8042_QUEUE_SIZE)
		return -EINVAL;
	state_get_bytes(r, queue, queued);
	last = state_get_u8(r);
	kbd_pending = state_get_u8(r);
	scanning = state_get_bool(r);
	if (state_close(r) || !valid_pending(pending) || !valid_kbd_pending(kbd_pending))
		return -EINVAL;
	pthread_mutex_lock(&kbd->lock);
	kbd->command_byte = command_byte;
	kbd->pending_cmd = pending;
	memcpy(kbd->queue, queue, queued);
	kbd->queued = queued;
	kbd->last = last;
	kbd->kbd_pending = kbd_pending;
	kbd->kbd_scanning = scanning;
	kbd->new_head = false;
	pthread_mutex_unlock(&kbd->lock);
	return 0;
}
