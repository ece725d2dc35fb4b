/*
 * test=kbd: the PS/2 keyboard behind the i8042, polled at CPL0 with interrupts off. The
 * probe checks the keyboard's ID, prints "probe: kbd waiting", and then expects the host
 * to type Ctrl-Alt-Del (skiff's SendCtrlAltDel action): the press and release of each key
 * in scan code set 2, untranslated, read byte by byte as the status port shows them.
 */
#include "probe.h"

#define I8042_DATA		0x60
#define I8042_STATUS		0x64
#define I8042_COMMAND		0x64
#define STATUS_OUTPUT_FULL	0x01
#define STATUS_INPUT_FULL	0x02
#define CMD_READ_CMD_BYTE	0x20
#define CMD_WRITE_CMD_BYTE	0x60
#define CB_KBD_INT		0x01
#define CB_KBD_DISABLED		0x10
#define CB_TRANSLATE		0x40
#define KBD_GET_ID		0xf2
#define FLUSH_MAX		32
/* The host sends the keys once it has seen the ready line: allow it a slow start. */
#define KEYS_TIMEOUT_TSC	(2 * TIMEOUT_TSC)

static const uint8_t ctrl_alt_del[] = {
	0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14,
};

static bool kbd_read(uint8_t *v, uint64_t deadline)
{
	while (!(inb(I8042_STATUS) & STATUS_OUTPUT_FULL)) {
		if (rdtsc() >= deadline)
			return false;
		cpu_relax();
	}
	*v = inb(I8042_DATA);
	return true;
}

static bool kbd_write(uint16_t port, uint8_t v)
{
	uint64_t deadline = rdtsc() + TIMEOUT_TSC;

	while (inb(I8042_STATUS) & STATUS_INPUT_FULL) {
		if (rdtsc() >= deadline)
			return false;
		cpu_relax();
	}
	outb(port, v);
	return true;
}

/* "14 11 e0 ..." */
static void hex_bytes(char *out, const uint8_t *b, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		*out++ = "0123456789abcdef"[b[i] >> 4];
		*out++ = "0123456789abcdef"[b[i] & 15];
		*out++ = i + 1 < n ? ' ' : '\0';
	}
	if (!n)
		*out = '\0';
}

const char *test_kbd(struct probe *p)
{
	uint8_t got[sizeof(ctrl_alt_del)], id[3], cb;
	char text[3 * sizeof(ctrl_alt_del) + 1];
	unsigned int n = 0, i;
	uint64_t deadline;

	(void)p;
	for (i = 0; i < FLUSH_MAX && (inb(I8042_STATUS) & STATUS_OUTPUT_FULL); i++)
		inb(I8042_DATA);
	/* As Linux's i8042 driver would, minus the interrupts: keyboard on, set 2 as is. */
	if (!kbd_write(I8042_COMMAND, CMD_READ_CMD_BYTE) ||
	    !kbd_read(&cb, rdtsc() + TIMEOUT_TSC))
		return "no-command-byte";
	cb &= ~(CB_KBD_INT | CB_KBD_DISABLED | CB_TRANSLATE);
	if (!kbd_write(I8042_COMMAND, CMD_WRITE_CMD_BYTE) || !kbd_write(I8042_DATA, cb))
		return "command-byte-write";
	if (!kbd_write(I8042_DATA, KBD_GET_ID))
		return "get-id-write";
	deadline = rdtsc() + TIMEOUT_TSC;
	for (i = 0; i < sizeof(id); i++) {
		if (!kbd_read(&id[i], deadline))
			return "no-id";
	}
	printk("probe: kbd id=%x\n", (unsigned int)(id[1] << 8 | id[2]));
	if (id[0] != 0xfa || id[1] != 0xab)
		return "not-a-keyboard";

	printk("probe: kbd waiting\n");
	deadline = rdtsc() + KEYS_TIMEOUT_TSC;
	while (n < sizeof(got) && kbd_read(&got[n], deadline))
		n++;
	hex_bytes(text, got, n);
	printk("probe: kbd bytes=%s\n", text);
	if (n < sizeof(got))
		return "timeout";
	return memcmp(got, ctrl_alt_del, sizeof(got)) ? "wrong-bytes" : NULL;
}
