/*
 * AP bring-up with INIT-SIPI-SIPI (SDM 9.4.4.1), one AP at a time so that a single boot slot
 * (ap_boot_*) tells the trampoline which CPU and stack it is.
 */
#include "probe.h"

#define AP_STACK_SIZE	4096
#define ICR_INIT	0x4500		/* INIT, level assert */
#define ICR_STARTUP	0x4600		/* start-up IPI; the low byte is the vector */
#define LOW_MEMORY_END	0xa0000

struct cpu cpus[MAX_CPUS];

extern char trampoline_start[], trampoline_end[];

static uint8_t ap_stacks[MAX_CPUS][AP_STACK_SIZE] __attribute__((aligned(16)));

/* Read by trampoline.S and ap_main, written by the BSP before each start-up. */
volatile uint64_t ap_boot_stack;
static struct cpu *volatile ap_boot_cpu;
static ap_work_fn ap_boot_work;

/* Called from trampoline.S on the stack in ap_boot_stack. */
void __attribute__((noreturn)) ap_main(void)
{
	struct cpu *cpu = ap_boot_cpu;

	user_init_cpu(cpu);
	__atomic_store_n(&cpu->up, 1, __ATOMIC_RELEASE);
	if (ap_boot_work)
		ap_boot_work(cpu);
	for (;;)
		__asm__ __volatile__("cli; hlt");
}

static bool overlaps(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len)
{
	return a < b + b_len && b < a + a_len;
}

static bool in_ram(const struct probe *p, uint64_t addr, uint64_t len)
{
	unsigned int i;

	for (i = 0; i < p->memmap_count; i++) {
		const struct memmap_entry *e = &p->memmap[i];

		if (e->type == E820_RAM && addr >= e->addr && addr + len <= e->addr + e->size)
			return true;
	}
	return false;
}

/* Page 0 holds the real-mode IVT and BIOS data; the DSDT is still needed for power-off. */
static uint64_t pick_trampoline_page(const struct probe *p)
{
	uint64_t a;

	for (a = PAGE_SIZE; a < LOW_MEMORY_END; a += PAGE_SIZE) {
		if (in_ram(p, a, PAGE_SIZE) &&
		    !overlaps(a, PAGE_SIZE, p->plat.dsdt, p->plat.dsdt_len))
			return a;
	}
	return 0;
}

static bool wait_up(const struct cpu *cpu)
{
	uint64_t deadline = rdtsc() + TIMEOUT_TSC;

	while (!__atomic_load_n(&cpu->up, __ATOMIC_ACQUIRE)) {
		if (rdtsc() > deadline)
			return false;
		cpu_relax();
	}
	return true;
}

int smp_boot(struct probe *p, ap_work_fn ap_work, const char **reason)
{
	const struct platform *plat = &p->plat;
	uint32_t bsp_id = lapic_id();
	unsigned int i, bsp = MAX_CPUS;
	uint64_t page;

	for (i = 0; i < plat->ncpus; i++) {
		cpus[i].index = i;
		if (plat->apic_ids[i] == bsp_id && bsp == MAX_CPUS)
			bsp = i;
	}
	if (bsp == MAX_CPUS) {
		*reason = "bsp-not-listed";
		return -1;
	}
	p->bsp = &cpus[bsp];
	user_init();
	user_init_cpu(p->bsp);
	p->bsp->up = 1;
	if (plat->ncpus == 1)
		return 0;

	page = pick_trampoline_page(p);
	if (!page) {
		*reason = "no-trampoline-page";
		return -1;
	}
	memcpy((void *)page, trampoline_start, trampoline_end - trampoline_start);
	ap_boot_work = ap_work;
	lapic_enable();

	for (i = 0; i < plat->ncpus; i++) {
		uint32_t id = plat->apic_ids[i];

		if (i == bsp)
			continue;
		if (id > 0xfe) {
			*reason = "apic-id-beyond-xapic";
			return -1;
		}
		ap_boot_cpu = &cpus[i];
		ap_boot_stack = (uint64_t)(ap_stacks[i] + AP_STACK_SIZE);
		lapic_send_ipi(id, ICR_INIT);
		/* A second SIPI is ignored by an AP that already left wait-for-SIPI. */
		lapic_send_ipi(id, ICR_STARTUP | (uint32_t)(page >> 12));
		lapic_send_ipi(id, ICR_STARTUP | (uint32_t)(page >> 12));
		if (!wait_up(&cpus[i])) {
			*reason = "ap-timeout";
			return -1;
		}
		printk("probe: cpu %u up apic=%u\n", i, id);
	}
	return 0;
}
