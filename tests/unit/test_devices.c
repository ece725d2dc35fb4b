#include "test.h"

#include "../../src/devices/i8042.h"
#include "../../src/devices/ioapic.h"
#include "../../src/devices/power.h"
#include "../../src/devices/rtc.h"
#include "../../src/devices/serial.h"
#include "../../src/terminal.h"
#include "../../src/vmm/bus.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct irq_log {
	int raised, lowered;
};

static void record_irq(void *opaque, unsigned pin, bool level)
{
	struct irq_log *log = opaque;

	(void)pin;
	if (level)
		log->raised++;
	else
		log->lowered++;
}

struct power_log {
	int count;
	enum power_event event;
	int status;
};

static void record_power(void *opaque, enum power_event event, int status)
{
	struct power_log *log = opaque;

	log->count++;
	log->event = event;
	log->status = status;
}

static uint8_t rd8(bus_access_fn fn, void *dev, uint64_t off)
{
	uint8_t v;

	fn(dev, off, &v, 1, false);
	return v;
}

static void wr8(bus_access_fn fn, void *dev, uint64_t off, uint8_t v)
{
	fn(dev, off, &v, 1, true);
}

TEST(serial_output_and_thre_interrupt)
{
	struct irq_log irqs = { 0 };
	struct serial s;
	int fds[2];
	char out[8] = { 0 };

	CHECK(pipe(fds) == 0);
	CHECK(serial_init(&s, fds[1], (struct irq_line){ record_irq, &irqs, 4 }) == 0);
	CHECK(rd8(serial_access, &s, 5) & 0x20); /* THR empty */
	wr8(serial_access, &s, 0, 'h');
	wr8(serial_access, &s, 0, 'i');
	CHECK(read(fds[0], out, sizeof(out)) == 2 && !strcmp(out, "hi"));
	CHECK(rd8(serial_access, &s, 2) == 0x01); /* no interrupt while IER is 0 */
	wr8(serial_access, &s, 1, 0x02);	  /* enable THRE: raises at once */
	CHECK(irqs.raised == 1);
	CHECK(rd8(serial_access, &s, 2) == 0x02); /* reading IIR clears THRE */
	CHECK(irqs.lowered == 1 && rd8(serial_access, &s, 2) == 0x01);
	serial_destroy(&s);
	close(fds[0]);
	close(fds[1]);
}

TEST(serial_input_interrupt_and_backpressure)
{
	struct irq_log irqs = { 0 };
	uint8_t big[SERIAL_RX_SIZE + 10];
	struct serial s;
	eventfd_t ev;

	memset(big, 'x', sizeof(big));
	CHECK(serial_init(&s, -1, (struct irq_line){ record_irq, &irqs, 4 }) == 0);
	wr8(serial_access, &s, 1, 0x01); /* receive interrupt */
	CHECK(serial_receive(&s, (const uint8_t *)"ab", 2) == 2);
	CHECK(irqs.raised == 1);
	CHECK((rd8(serial_access, &s, 2) & 0x0f) == 0x04);
	CHECK(rd8(serial_access, &s, 5) & 0x01);
	CHECK(rd8(serial_access, &s, 0) == 'a' && rd8(serial_access, &s, 0) == 'b');
	CHECK(!(rd8(serial_access, &s, 5) & 0x01) && irqs.lowered == 1);
	/* A full buffer takes what fits and signals space once the guest empties it. */
	CHECK(serial_receive(&s, big, sizeof(big)) == SERIAL_RX_SIZE);
	CHECK(eventfd_read(s.space_fd, &ev) < 0);
	for (unsigned i = 0; i < SERIAL_RX_SIZE; i++)
		rd8(serial_access, &s, 0);
	CHECK(eventfd_read(s.space_fd, &ev) == 0);
	serial_destroy(&s);
}

TEST(serial_loopback_and_divisor)
{
	struct serial s;

	CHECK(serial_init(&s, -1, (struct irq_line){ 0 }) == 0);
	wr8(serial_access, &s, 4, 0x1a); /* loop, OUT2, RTS: Linux's UART probe */
	CHECK((rd8(serial_access, &s, 6) & 0xf0) == 0x90);
	wr8(serial_access, &s, 0, 'z');
	CHECK(rd8(serial_access, &s, 0) == 'z');
	wr8(serial_access, &s, 3, 0x80); /* DLAB */
	wr8(serial_access, &s, 0, 0x01);
	wr8(serial_access, &s, 1, 0x00);
	CHECK(rd8(serial_access, &s, 0) == 0x01);
	wr8(serial_access, &s, 3, 0x03);
	wr8(serial_access, &s, 7, 0x5a);
	CHECK(rd8(serial_access, &s, 7) == 0x5a);
	serial_destroy(&s);
}

static void ioapic_write(struct ioapic *io, uint32_t reg, uint32_t v)
{
	ioapic_access(io, 0, (uint8_t *)&reg, 4, true);
	ioapic_access(io, 0x10, (uint8_t *)&v, 4, true);
}

static uint32_t ioapic_read(struct ioapic *io, uint32_t reg)
{
	uint32_t v;

	ioapic_access(io, 0, (uint8_t *)&reg, 4, true);
	ioapic_access(io, 0x10, (uint8_t *)&v, 4, false);
	return v;
}

TEST(ioapic_registers_and_edges)
{
	struct ioapic io;

	CHECK(ioapic_init(&io, -1, 3) == 0);
	CHECK(ioapic_read(&io, 0) >> 24 == 3);
	CHECK(ioapic_read(&io, 1) == 0x170011);
	CHECK(ioapic_read(&io, 0x10 + 8) & (1u << 16)); /* pins start masked */
	ioapic_set_irq(&io, 4, true);
	CHECK(io.delivered == 0);
	ioapic_set_irq(&io, 4, false);
	ioapic_write(&io, 0x10 + 8, 0x30); /* pin 4: vector 0x30, edge, unmasked */
	ioapic_write(&io, 0x10 + 9, 0);
	CHECK(ioapic_read(&io, 0x10 + 8) == 0x30);
	ioapic_set_irq(&io, 4, true);
	ioapic_set_irq(&io, 4, true); /* no new edge */
	CHECK(io.delivered == 1);
	ioapic_set_irq(&io, 4, false);
	ioapic_set_irq(&io, 4, true);
	CHECK(io.delivered == 2);
	ioapic_set_irq(&io, IOAPIC_PINS, true); /* out of range: ignored */
	CHECK(ioapic_read(&io, 0x10 + 2 * IOAPIC_PINS) == 0xffffffff);
	ioapic_destroy(&io);
}

TEST(ioapic_level_waits_for_eoi)
{
	struct ioapic io;

	CHECK(ioapic_init(&io, -1, 0) == 0);
	ioapic_write(&io, 0x10 + 10, 0x8041); /* pin 5: vector 0x41, level */
	ioapic_set_irq(&io, 5, true);
	CHECK(io.delivered == 1 && (ioapic_read(&io, 0x10 + 10) & (1u << 14)));
	ioapic_set_irq(&io, 5, true);
	CHECK(io.delivered == 1); /* remote IRR holds it */
	ioapic_eoi(&io, 0x41);
	CHECK(io.delivered == 2); /* still high: delivered again */
	ioapic_set_irq(&io, 5, false);
	ioapic_eoi(&io, 0x41);
	CHECK(io.delivered == 2 && !(ioapic_read(&io, 0x10 + 10) & (1u << 14)));
	ioapic_destroy(&io);
}

TEST(i8042_reset_paths)
{
	struct power_log log = { 0 };
	struct i8042 kbd;

	i8042_init(&kbd, (struct power_ctl){ record_power, &log });
	wr8(i8042_command_access, &kbd, 0, 0xaa);
	CHECK(rd8(i8042_command_access, &kbd, 0) & 0x01);
	CHECK(rd8(i8042_data_access, &kbd, 0) == 0x55);
	wr8(i8042_command_access, &kbd, 0, 0xd1);
	wr8(i8042_data_access, &kbd, 0, 0x01); /* reset line stays high */
	CHECK(log.count == 0);
	wr8(i8042_command_access, &kbd, 0, 0xfe);
	CHECK(log.count == 1 && log.event == POWER_RESET);
	wr8(i8042_command_access, &kbd, 0, 0xd1);
	wr8(i8042_data_access, &kbd, 0, 0x00);
	CHECK(log.count == 2);
	i8042_destroy(&kbd);
}

static time_t fixed_time(void)
{
	return 1795000000; /* 2026-11-18 11:06:40 UTC */
}

TEST(rtc_reads_time_in_bcd_and_binary)
{
	struct rtc rtc;

	rtc_init(&rtc, fixed_time);
	wr8(rtc_access, &rtc, 0, 0x00);
	CHECK(rd8(rtc_access, &rtc, 1) == 0x40);
	wr8(rtc_access, &rtc, 0, 0x02);
	CHECK(rd8(rtc_access, &rtc, 1) == 0x06);
	wr8(rtc_access, &rtc, 0, 0x84); /* NMI-mask bit is ignored */
	CHECK(rd8(rtc_access, &rtc, 1) == 0x11);
	wr8(rtc_access, &rtc, 0, 0x09);
	CHECK(rd8(rtc_access, &rtc, 1) == 0x26);
	wr8(rtc_access, &rtc, 0, 0x32);
	CHECK(rd8(rtc_access, &rtc, 1) == 0x20);
	wr8(rtc_access, &rtc, 0, 0x0d);
	CHECK(rd8(rtc_access, &rtc, 1) == 0x80);
	wr8(rtc_access, &rtc, 0, 0x0b);
	wr8(rtc_access, &rtc, 1, 0x06); /* binary mode */
	wr8(rtc_access, &rtc, 0, 0x08);
	CHECK(rd8(rtc_access, &rtc, 1) == 11);
	rtc_destroy(&rtc);
}

TEST(power_ports)
{
	struct power_log log = { 0 };
	struct power_ctl ctl = { record_power, &log };
	uint32_t v = 0x10;

	debug_exit_access(&ctl, 0, (uint8_t *)&v, 4, true);
	CHECK(log.count == 1 && log.event == POWER_DEBUG_EXIT && log.status == 0x21);
	wr8(acpi_pm_access, &ctl, 0, (5 << 2) | (1 << 5));
	CHECK(log.count == 2 && log.event == POWER_OFF);
	wr8(acpi_pm_access, &ctl, 0, (3 << 2) | (1 << 5)); /* S3: not offered */
	CHECK(log.count == 2);
	wr8(acpi_pm_access, &ctl, 2, 1);
	CHECK(log.count == 3 && log.event == POWER_RESET);
}

static void count_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			 bool is_write)
{
	(*(int *)opaque)++;
	if (!is_write)
		memset(data, (uint8_t)offset, len);
}

TEST(bus_dispatch)
{
	struct bus bus;
	int hits = 0;
	uint8_t v[4];

	bus_init(&bus, "pio");
	CHECK(bus_register(&bus, 0x100, 8, count_access, &hits) == 0);
	CHECK(bus_register(&bus, 0x10, 2, count_access, &hits) == 0);
	CHECK(bus_register(&bus, 0x104, 8, count_access, &hits) == -EEXIST);
	CHECK(bus_register(&bus, 0xfc, 8, count_access, &hits) == -EEXIST);
	CHECK(bus_register(&bus, 0x0, 0, count_access, &hits) == -EINVAL);
	bus_access(&bus, 0x103, v, 1, false);
	CHECK(hits == 1 && v[0] == 3);
	bus_access(&bus, 0x106, v, 4, false); /* straddles the end: unclaimed */
	CHECK(hits == 1 && !memcmp(v, "\xff\xff\xff\xff", 4) && bus.unclaimed == 1);
	bus_access(&bus, 0x200, v, 2, true);
	CHECK(bus.unclaimed == 2);
}

TEST(terminal_escapes)
{
	struct terminal t = { .is_tty = true };
	uint8_t buf[16];
	bool quit;

	memcpy(buf, "ab\x01" "ac\x01", 6);
	CHECK(terminal_filter(&t, buf, 6, &quit) == 4 && !quit);
	CHECK(!memcmp(buf, "ab\x01" "c", 4));
	memcpy(buf, "x", 1); /* the escape carried over from the last read */
	CHECK(terminal_filter(&t, buf, 1, &quit) == 0 && quit);
	t.is_tty = false;
	memcpy(buf, "\x01x", 2);
	CHECK(terminal_filter(&t, buf, 2, &quit) == 2 && !quit);
}

TEST_MAIN(T(serial_output_and_thre_interrupt), T(serial_input_interrupt_and_backpressure),
	  T(serial_loopback_and_divisor), T(ioapic_registers_and_edges),
	  T(ioapic_level_waits_for_eoi), T(i8042_reset_paths), T(rtc_reads_time_in_bcd_and_binary),
	  T(power_ports), T(bus_dispatch), T(terminal_escapes))
