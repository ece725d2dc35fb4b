#include "test.h"

#include "../../src/arch/x86/layout.h"
#include "../../src/arch/x86/tables.h"
#include "../../src/devices/i8042.h"
#include "../../src/state/state.h"
#include "../../src/util/bytes.h"

#include <errno.h>
#include <string.h>

#define STATUS		0x64
#define DATA		0x60
#define OUTPUT_FULL	0x01

struct irq_count {
	int rises, falls;
	bool high;
};

static void count_irq(void *opaque, unsigned pin, bool level)
{
	struct irq_count *c = opaque;

	CHECK(pin == IRQ_KEYBOARD);
	if (level && !c->high)
		c->rises++;
	if (!level && c->high)
		c->falls++;
	c->high = level;
}

static void init(struct i8042 *kbd, struct irq_count *irq)
{
	i8042_init(kbd, (struct power_ctl){ 0 });
	memset(irq, 0, sizeof(*irq));
	i8042_set_irq(kbd, (struct irq_line){ count_irq, irq, IRQ_KEYBOARD });
}

static uint8_t in(struct i8042 *kbd, uint16_t port)
{
	uint8_t v = 0xcc;

	if (port == STATUS)
		i8042_command_access(kbd, 0, &v, 1, false);
	else
		i8042_data_access(kbd, 0, &v, 1, false);
	return v;
}

static void out(struct i8042 *kbd, uint16_t port, uint8_t v)
{
	if (port == STATUS)
		i8042_command_access(kbd, 0, &v, 1, true);
	else
		i8042_data_access(kbd, 0, &v, 1, true);
}

static void write_command_byte(struct i8042 *kbd, uint8_t v)
{
	out(kbd, STATUS, 0x60);
	out(kbd, DATA, v);
}

/* Reads what the data port holds, checking OUTPUT_FULL before each byte; returns the count. */
static size_t drain(struct i8042 *kbd, uint8_t *buf, size_t max)
{
	size_t n = 0;

	while (n < max && (in(kbd, STATUS) & OUTPUT_FULL))
		buf[n++] = in(kbd, DATA);
	return n;
}

static bool reads(struct i8042 *kbd, const uint8_t *want, size_t n)
{
	uint8_t got[I8042_QUEUE_SIZE + 1];

	return drain(kbd, got, sizeof(got)) == n && !memcmp(got, want, n);
}

#define READS(kbd, ...)                                                                   \
	reads(kbd, (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ }))

TEST(keyboard_answers_commands)
{
	struct irq_count irq;
	struct i8042 kbd;

	init(&kbd, &irq);
	CHECK(!(in(&kbd, STATUS) & OUTPUT_FULL));
	CHECK(in(&kbd, STATUS) & 0x10); /* not key-locked */
	out(&kbd, DATA, 0xf2); /* get ID: an MF2 keyboard */
	CHECK(READS(&kbd, 0xfa, 0xab, 0x83));
	out(&kbd, DATA, 0xff); /* reset: ACK, then self-test passed */
	CHECK(READS(&kbd, 0xfa, 0xaa));
	out(&kbd, DATA, 0xee); /* echo, without an ACK */
	CHECK(READS(&kbd, 0xee));
	out(&kbd, DATA, 0xed); /* set LEDs: ACK for the command and for its argument */
	CHECK(READS(&kbd, 0xfa));
	out(&kbd, DATA, 0x07);
	CHECK(READS(&kbd, 0xfa));
	out(&kbd, DATA, 0xf3); /* typematic rate: the argument isn't a command */
	out(&kbd, DATA, 0xf2);
	CHECK(READS(&kbd, 0xfa, 0xfa));
	out(&kbd, DATA, 0xf0); /* scan set: only set 2, whatever is asked */
	out(&kbd, DATA, 0x03);
	out(&kbd, DATA, 0xf0);
	out(&kbd, DATA, 0x00);
	CHECK(READS(&kbd, 0xfa, 0xfa, 0xfa, 0xfa, 0x02));
	out(&kbd, DATA, 0xf5);
	out(&kbd, DATA, 0xf4);
	out(&kbd, DATA, 0xf6);
	CHECK(READS(&kbd, 0xfa, 0xfa, 0xfa));
	out(&kbd, DATA, 0x42); /* not a command: resend */
	CHECK(READS(&kbd, 0xfe));
	CHECK(in(&kbd, DATA) == 0xfe); /* an empty buffer reads its last byte again */
	CHECK(irq.rises == 0); /* the command byte leaves keyboard interrupts off */
	i8042_destroy(&kbd);
}

TEST(controller_commands_and_write_keyboard_buffer)
{
	struct irq_count irq;
	struct i8042 kbd;

	init(&kbd, &irq);
	out(&kbd, STATUS, 0x20);
	CHECK(READS(&kbd, 0x20)); /* AUX disabled, no interrupts, no translation */
	write_command_byte(&kbd, 0x24);
	out(&kbd, STATUS, 0x20);
	CHECK(READS(&kbd, 0x24));
	out(&kbd, STATUS, 0xad); /* disable the keyboard, enable AUX: command byte bits */
	out(&kbd, STATUS, 0xa8);
	out(&kbd, STATUS, 0x20);
	CHECK(READS(&kbd, 0x14));
	out(&kbd, STATUS, 0xae);
	out(&kbd, STATUS, 0xa7);
	out(&kbd, STATUS, 0x20);
	CHECK(READS(&kbd, 0x24));
	out(&kbd, STATUS, 0xd2); /* write keyboard output buffer */
	out(&kbd, DATA, 0x5a);
	out(&kbd, STATUS, 0xd3); /* to the absent AUX port: the byte is swallowed */
	out(&kbd, DATA, 0x5b);
	out(&kbd, STATUS, 0xa9); /* AUX test: no answer */
	CHECK(READS(&kbd, 0x5a));
	/* A controller reply goes ahead of keys already waiting. */
	CHECK(i8042_send_ctrl_alt_del(&kbd) == 0);
	out(&kbd, STATUS, 0xaa);
	CHECK(READS(&kbd, 0x55, 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14));
	i8042_destroy(&kbd);
}

TEST(irq_pulses_only_with_interrupts_enabled)
{
	struct irq_count irq;
	struct i8042 kbd;

	init(&kbd, &irq);
	out(&kbd, DATA, 0xf2);
	CHECK(irq.rises == 0);
	/* Enabling interrupts with bytes waiting raises the line at once. */
	write_command_byte(&kbd, 0x01);
	CHECK(irq.rises == 1 && !irq.high);
	/* Each byte that reaches the front gets its own edge; the last read raises none. */
	CHECK(in(&kbd, DATA) == 0xfa && irq.rises == 2);
	CHECK(in(&kbd, DATA) == 0xab && irq.rises == 3);
	CHECK(in(&kbd, DATA) == 0x83 && irq.rises == 3);
	CHECK(!(in(&kbd, STATUS) & OUTPUT_FULL) && irq.rises == 3);
	out(&kbd, DATA, 0xee);
	CHECK(irq.rises == 4 && irq.falls == 4);
	/* Status reads and a second byte behind the first raise nothing. */
	CHECK(in(&kbd, STATUS) & OUTPUT_FULL);
	out(&kbd, DATA, 0xee);
	CHECK(irq.rises == 4);
	CHECK(READS(&kbd, 0xee, 0xee) && irq.rises == 5);
	write_command_byte(&kbd, 0x00);
	CHECK(i8042_send_ctrl_alt_del(&kbd) == 0);
	CHECK(irq.rises == 5);
	i8042_destroy(&kbd);
}

TEST(ctrl_alt_del_in_set_2_and_translated)
{
	struct irq_count irq;
	struct i8042 kbd;
	uint8_t got[I8042_QUEUE_SIZE];
	size_t n = 0;

	init(&kbd, &irq);
	write_command_byte(&kbd, 0x01);
	CHECK(i8042_send_ctrl_alt_del(&kbd) == 0);
	CHECK(irq.rises == 1);
	/* Byte by byte, each announced by OUTPUT_FULL and its own interrupt. */
	while (n < sizeof(got) && (in(&kbd, STATUS) & OUTPUT_FULL))
		got[n++] = in(&kbd, DATA);
	CHECK(n == 11 && !memcmp(got, "\x14\x11\xe0\x71\xe0\xf0\x71\xf0\x11\xf0\x14", 11));
	CHECK(irq.rises == 11);
	/* The guest asked the controller for set 1: break codes carry bit 7, no F0. */
	write_command_byte(&kbd, 0x40);
	CHECK(i8042_send_ctrl_alt_del(&kbd) == 0);
	CHECK(READS(&kbd, 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d));
	out(&kbd, DATA, 0xf2); /* and so does the ID, as Linux expects of a translated port */
	CHECK(READS(&kbd, 0xfa, 0xab, 0x41));
	i8042_destroy(&kbd);
}

TEST(ctrl_alt_del_refused_when_full_or_disabled)
{
	struct irq_count irq;
	struct i8042 kbd;

	init(&kbd, &irq);
	CHECK(i8042_send_ctrl_alt_del(&kbd) == 0);
	CHECK(i8042_send_ctrl_alt_del(&kbd) == -EBUSY); /* 11 + 11 > 16: nothing half-queued */
	CHECK(READS(&kbd, 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14));
	out(&kbd, DATA, 0xf5); /* the guest stops the keyboard scanning */
	CHECK(READS(&kbd, 0xfa));
	CHECK(i8042_send_ctrl_alt_del(&kbd) == -EAGAIN);
	CHECK(!(in(&kbd, STATUS) & OUTPUT_FULL));
	out(&kbd, DATA, 0xf4);
	CHECK(READS(&kbd, 0xfa));
	CHECK(i8042_send_ctrl_alt_del(&kbd) == 0);
	/* A full queue still takes a controller reply; the newest key gives way. */
	CHECK(i8042_send_ctrl_alt_del(&kbd) == -EBUSY);
	for (int i = 0; i < 5; i++) {
		out(&kbd, STATUS, 0xd2);
		out(&kbd, DATA, 0x70 + i);
	}
	out(&kbd, STATUS, 0x20);
	CHECK(READS(&kbd, 0x20, 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14,
		    0x70, 0x71, 0x72, 0x73));
	i8042_destroy(&kbd);
}

static void save(struct i8042 *kbd, struct state_writer *w)
{
	state_writer_init(w);
	i8042_save(kbd, w);
	CHECK(!w->failed);
}

static int load(struct i8042 *kbd, const uint8_t *buf, size_t len)
{
	struct state_reader r;

	state_reader_init(&r, buf, len);
	return i8042_load(kbd, &r);
}

TEST(save_and_load_carry_queue_and_keyboard_state)
{
	struct irq_count ia, ib;
	struct i8042 a, b;
	struct state_writer w;

	init(&a, &ia);
	init(&b, &ib);
	write_command_byte(&a, 0x01);
	CHECK(i8042_send_ctrl_alt_del(&a) == 0);
	CHECK(in(&a, DATA) == 0x14);
	out(&a, DATA, 0xed); /* a keyboard command waiting for its argument */
	out(&a, STATUS, 0x60); /* and a controller command waiting for its data */
	save(&a, &w);
	CHECK(load(&b, w.buf, w.len) == 0);
	CHECK(ib.rises == 0); /* loading raises nothing: a raised interrupt is the LAPIC's */
	out(&b, DATA, 0x03); /* the command byte: interrupts, no translation */
	out(&b, DATA, 0x02); /* the LEDs */
	CHECK(READS(&b, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14, 0xfa, 0xfa));
	CHECK(in(&b, DATA) == 0xfa);
	state_writer_free(&w);

	out(&a, DATA, 0x01); /* the command byte */
	out(&a, DATA, 0x00); /* the LEDs */
	out(&a, DATA, 0xf5);
	save(&a, &w);
	CHECK(load(&b, w.buf, w.len) == 0);
	CHECK(i8042_send_ctrl_alt_del(&b) == -EAGAIN); /* scanning stayed off */
	/* Damage: every truncation, another version, an impossible queue length or state. */
	for (size_t len = 0; len < w.len; len++)
		CHECK(load(&b, w.buf, len) == -EINVAL);
	w.buf[4] = 1;
	CHECK(load(&b, w.buf, w.len) == -EINVAL);
	w.buf[4] = 3;
	CHECK(load(&b, w.buf, w.len) == -EINVAL);
	w.buf[4] = 2;
	CHECK(load(&b, w.buf, w.len) == 0);
	w.buf[12] = I8042_QUEUE_SIZE + 1; /* the queue length: after the header and 2 fields */
	CHECK(load(&b, w.buf, w.len) == -EINVAL);
	w.buf[12] = 0;
	CHECK(load(&b, w.buf, w.len) == -EINVAL); /* the bytes that followed are now too many */
	state_writer_free(&w);

	state_writer_init(&w);
	state_begin(&w, "KBDC", 2);
	state_put_u8(&w, 0x20);
	state_put_u8(&w, 0x99); /* not a controller command that takes data */
	state_put_u8(&w, 0);
	state_put_u8(&w, 0);
	state_put_u8(&w, 0);
	state_put_u8(&w, 1);
	state_end(&w);
	CHECK(load(&b, w.buf, w.len) == -EINVAL);
	w.buf[11] = 0;
	CHECK(load(&b, w.buf, w.len) == 0);
	w.buf[14] = 0x42; /* not a keyboard command that takes an argument */
	CHECK(load(&b, w.buf, w.len) == -EINVAL);
	w.buf[14] = 0;
	w.buf[15] = 2; /* scanning is a bool */
	CHECK(load(&b, w.buf, w.len) == -EINVAL);
	state_writer_free(&w);
	i8042_destroy(&a);
	i8042_destroy(&b);
}

/* The DSDT describes the keyboard so that Linux's i8042 driver finds it through PNPACPI. */
TEST(dsdt_describes_the_keyboard)
{
	static uint8_t buf[2 << 20];
	static const uint8_t crs[] = {
		0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01, 0x01,
		0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x01, 0x01,
		0x22, 0x02, 0x00, 0x79, 0x00,
	};
	struct guest_mem mem;
	const uint8_t *rsdp, *xsdt, *fadt, *dsdt, *kbd;
	uint64_t gpa;

	guest_mem_wrap(&mem, buf, sizeof(buf), LAYOUT_MMIO_HOLE, LAYOUT_MMIO_HOLE_END);
	CHECK(acpi_build(&mem, 1, NULL, 0, &gpa) == 0);
	rsdp = guest_mem_ptr(&mem, gpa, 36);
	xsdt = guest_mem_ptr(&mem, get_le64(rsdp + 24), 52);
	fadt = guest_mem_ptr(&mem, get_le64(xsdt + 36), 276);
	CHECK(get_le16(fadt + 109) & 0x02); /* IAPC_BOOT_ARCH: an 8042 is present */
	dsdt = guest_mem_ptr(&mem, get_le64(fadt + 140), 36);
	dsdt = guest_mem_ptr(&mem, get_le64(fadt + 140), get_le32(dsdt + 4));
	kbd = memmem(dsdt, get_le32(dsdt + 4), "KBD_", 4);
	CHECK(kbd && !memcmp(kbd + 4, "\x08_HID\x0c\x41\xd0\x03\x03", 10)); /* PNP0303 */
	CHECK(kbd && memmem(kbd, 64, crs, sizeof(crs)));
	CHECK(kbd && !memcmp(kbd - 3, "\x5b\x82", 2) && kbd[-1] == 45);
}

TEST_MAIN(T(keyboard_answers_commands), T(controller_commands_and_write_keyboard_buffer),
	  T(irq_pulses_only_with_interrupts_enabled), T(ctrl_alt_del_in_set_2_and_translated),
	  T(ctrl_alt_del_refused_when_full_or_disabled),
	  T(save_and_load_carry_queue_and_keyboard_state), T(dsdt_describes_the_keyboard))
