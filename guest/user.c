/*
 * Running code at CPL3, where this machine's KVM runs it natively instead of emulating it:
 * a TSS per CPU for the way back, and the IDT that the way back (and the echo tests) go through.
 */
#include "probe.h"

#define USER_STACK_SIZE		4096
#define TSS_AVAILABLE		0x89
#define IDT_INTERRUPT_GATE	0x8e

_Static_assert(sizeof(struct tss) == 104, "64-bit TSS layout");

struct idt_gate {
	uint16_t offset_low;
	uint16_t selector;
	uint8_t ist;
	uint8_t type;
	uint16_t offset_mid;
	uint32_t offset_high;
	uint32_t reserved;
};

uint64_t user_call(uint64_t (*fn)(void *), void *arg, void *stack_top, void *tss_rsp0);
extern char user_return[];
extern uint64_t gdt[];

static struct idt_gate idt[256] __attribute__((aligned(16)));
static uint8_t user_stacks[MAX_CPUS][USER_STACK_SIZE] __attribute__((aligned(16)));

/* Vectors without a gate stay not-present; nothing raises them. */
void idt_set_gate(uint8_t vector, const void *handler)
{
	uint64_t a = (uint64_t)handler;

	idt[vector] = (struct idt_gate){
		.offset_low = (uint16_t)a,
		.selector = KERNEL_CS,
		.type = IDT_INTERRUPT_GATE,
		.offset_mid = (uint16_t)(a >> 16),
		.offset_high = (uint32_t)(a >> 32),
	};
}

/* Once, on the BSP, before any CPU loads the IDT. */
void user_init(void)
{
	idt_set_gate(USER_RETURN_VECTOR, user_return);
}

void user_init_cpu(struct cpu *cpu)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idt_ptr = { sizeof(idt) - 1, (uint64_t)idt };
	uint64_t base = (uint64_t)&cpu->tss;
	unsigned int slot = (TSS_FIRST + 16 * cpu->index) / 8;
	uint16_t selector = (uint16_t)(slot * 8);

	cpu->tss.iomap_base = sizeof(cpu->tss);
	/* A 64-bit TSS descriptor (SDM 8.2.3): limit, base 0..31, type, then base 32..63. */
	gdt[slot] = (sizeof(cpu->tss) - 1) | (base & 0xffffff) << 16 |
		    (uint64_t)TSS_AVAILABLE << 40 | (base >> 24 & 0xff) << 56;
	gdt[slot + 1] = base >> 32;
	__asm__ __volatile__("ltr %0" : : "r"(selector));
	__asm__ __volatile__("lidt %0" : : "m"(idt_ptr));
}

/* fn runs with interrupts off and must not touch I/O ports or privileged state. */
uint64_t user_run(struct cpu *cpu, uint64_t (*fn)(void *), void *arg)
{
	return user_call(fn, arg, user_stacks[cpu->index] + USER_STACK_SIZE,
			 (uint8_t *)&cpu->tss + offsetof(struct tss, rsp0));
}
