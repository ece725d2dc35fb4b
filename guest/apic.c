/* Interrupt plumbing: the xAPIC at its default base and the IOAPIC. */
#include "probe.h"

#define LAPIC_ID		0x20
#define LAPIC_SVR		0xf0
#define LAPIC_ICR_LOW		0x300
#define LAPIC_ICR_HIGH		0x310
#define LAPIC_LVT_LINT0		0x350
#define LVT_MASKED		0x10000
#define LAPIC_SVR_ENABLE	0x100
#define ICR_PENDING		0x1000
#define SPURIOUS_VECTOR		0xff

#define IOAPIC_REGSEL		0x00
#define IOAPIC_WINDOW		0x10
#define IOAPIC_REDIR(pin)	(0x10 + 2 * (pin))
#define REDIR_ACTIVE_LOW	(1u << 13)
#define REDIR_LEVEL		(1u << 15)
/* MPS INTI flags (ACPI 6.5 §5.2.12.5): 3 in either field means active low / level. */
#define INTI_POLARITY_LOW	0x3
#define INTI_TRIGGER_LEVEL	0xc

extern char irq_entry[], spurious_entry[];

static uint32_t lapic_read(uint32_t reg)
{
	return mmio_read32(LAPIC_BASE + reg);
}

static void lapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(LAPIC_BASE + reg, v);
}

uint32_t lapic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

/* Mask LINT0: firmware may leave the 8259 wired to it, and the 8259's vectors have no gates. */
void lapic_enable(void)
{
	lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | SPURIOUS_VECTOR);
}

void lapic_send_ipi(uint32_t apic_id, uint32_t icr_low)
{
	uint64_t deadline = rdtsc() + TIMEOUT_TSC;

	lapic_write(LAPIC_ICR_HIGH, apic_id << 24);
	lapic_write(LAPIC_ICR_LOW, icr_low);
	while ((lapic_read(LAPIC_ICR_LOW) & ICR_PENDING) && rdtsc() < deadline)
		cpu_relax();
}

static void ioapic_write(uint64_t base, uint32_t reg, uint32_t v)
{
	mmio_write32(base + IOAPIC_REGSEL, reg);
	mmio_write32(base + IOAPIC_WINDOW, v);
}

/*
 * Fixed delivery, physical destination; unmasked. IRQs below 16 are ISA IRQs, subject to the
 * interrupt source overrides; the rest are GSIs, edge-triggered and active high.
 */
void ioapic_route(const struct platform *plat, unsigned int irq, uint8_t vector,
		  uint32_t dest_apic_id)
{
	uint32_t gsi = irq < 16 ? plat->isa_gsi[irq] : irq;
	uint16_t flags = irq < 16 ? plat->isa_flags[irq] : 0;
	uint32_t pin = gsi - plat->ioapic_gsi_base;
	uint32_t low = vector;

	if ((flags & INTI_POLARITY_LOW) == INTI_POLARITY_LOW)
		low |= REDIR_ACTIVE_LOW;
	if ((flags & INTI_TRIGGER_LEVEL) == INTI_TRIGGER_LEVEL)
		low |= REDIR_LEVEL;
	ioapic_write(plat->ioapic_addr, IOAPIC_REDIR(pin) + 1, dest_apic_id << 24);
	ioapic_write(plat->ioapic_addr, IOAPIC_REDIR(pin), low);
}

void irq_install(uint8_t vector)
{
	idt_set_gate(vector, irq_entry);
	idt_set_gate(SPURIOUS_VECTOR, spurious_entry);
}

/* sti's one-instruction shadow makes "sti; hlt" free of lost wake-ups. */
void irq_wait(void)
{
	__asm__ __volatile__("sti; hlt; cli" ::: "memory");
}
