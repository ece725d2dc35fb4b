/* The tests selectable with test=NAME. Each returns NULL on pass or the reason it failed. */
#include "probe.h"

#define SMP_INCREMENTS	1000
#define MEM_PATTERN	0x5a5aa5a5c3c33c3cULL
#define ECHO_IRQ	4
#define ECHO_VECTOR	0x24
#define I8042_COMMAND	0x64
#define I8042_RESET	0xfe
/* How long a reset or power-off request may take to stop the VM. */
#define SETTLE_TSC	(1ULL << 30)

struct test {
	const char *name;
	const char *(*run)(struct probe *p);
	ap_work_fn ap_work;
};

struct smp_wait {
	struct cpu *cpu;
	uint64_t target;
};

struct mem_range {
	uint64_t start;
	uint64_t end;
};

struct mem_job {
	struct mem_range ranges[2 * MAX_MEMMAP];
	unsigned int count;
	uint64_t verified;
};

static uint64_t smp_counter;

static void settle(void)
{
	uint64_t deadline = rdtsc() + SETTLE_TSC;

	while (rdtsc() < deadline)
		cpu_relax();
}

static const char *test_hello(struct probe *p)
{
	(void)p;
	return NULL;
}

/* CPL3 */
static uint64_t smp_increment(void *arg)
{
	struct cpu *cpu = arg;
	uint64_t one;
	unsigned int i;

	for (i = 0; i < SMP_INCREMENTS; i++) {
		one = 1;
		__asm__ __volatile__("lock xaddq %0, %1" : "+r"(one), "+m"(smp_counter));
	}
	cpu->contributed = SMP_INCREMENTS;
	return 0;
}

static void smp_ap_work(struct cpu *cpu)
{
	user_run(cpu, smp_increment, cpu);
}

/* CPL3: the BSP adds its share, then waits for everyone else's. */
static uint64_t smp_collect(void *arg)
{
	struct smp_wait *w = arg;
	uint64_t deadline;

	smp_increment(w->cpu);
	deadline = rdtsc() + TIMEOUT_TSC;
	while (__atomic_load_n(&smp_counter, __ATOMIC_ACQUIRE) < w->target && rdtsc() < deadline)
		cpu_relax();
	return __atomic_load_n(&smp_counter, __ATOMIC_ACQUIRE);
}

static const char *test_smp(struct probe *p)
{
	struct smp_wait w = { p->bsp, (uint64_t)p->plat.ncpus * SMP_INCREMENTS };
	unsigned int i;

	if (user_run(p->bsp, smp_collect, &w) != w.target)
		return "count-mismatch";
	for (i = 0; i < p->plat.ncpus; i++) {
		if (cpus[i].contributed != SMP_INCREMENTS)
			return "cpu-missing";
	}
	return NULL;
}

/* CPL3: write everything first, then verify, so aliased addresses show up. */
static uint64_t mem_check(void *arg)
{
	struct mem_job *job = arg;
	volatile uint64_t *q, *end;
	unsigned int i;

	for (i = 0; i < job->count; i++) {
		end = (uint64_t *)job->ranges[i].end;
		for (q = (uint64_t *)job->ranges[i].start; q < end; q++)
			*q = (uint64_t)q ^ MEM_PATTERN;
	}
	for (i = 0; i < job->count; i++) {
		end = (uint64_t *)job->ranges[i].end;
		for (q = (uint64_t *)job->ranges[i].start; q < end; q++) {
			if (*q != ((uint64_t)q ^ MEM_PATTERN))
				return 1;
		}
		job->verified += job->ranges[i].end - job->ranges[i].start;
	}
	return 0;
}

static void mem_add(struct mem_job *job, uint64_t start, uint64_t end)
{
	if (start < end)
		job->ranges[job->count++] = (struct mem_range){ start, end };
}

static const char *test_mem(struct probe *p)
{
	uint64_t image_lo = (uint64_t)image_start, image_hi = (uint64_t)image_end;
	static struct mem_job job;
	uint64_t start, end;
	unsigned int i;
	uint64_t bad;

	for (i = 0; i < p->memmap_count; i++) {
		const struct memmap_entry *e = &p->memmap[i];

		if (e->type != E820_RAM)
			continue;
		start = (e->addr < MIB ? MIB : e->addr + 7) & ~7ULL;
		end = e->addr + e->size;
		end = (end > p->mapped_end ? p->mapped_end : end) & ~7ULL;
		if (start < image_hi && image_lo < end) {
			mem_add(&job, start, image_lo);
			mem_add(&job, image_hi, end);
		} else {
			mem_add(&job, start, end);
		}
	}
	bad = user_run(p->bsp, mem_check, &job);
	printk("probe: mem verified_mib=%lu\n", job.verified / MIB);
	if (bad)
		return "mismatch";
	return job.verified ? NULL : "no-ram";
}

static const char *test_echo(struct probe *p)
{
	char line[8];
	unsigned int len = 0;
	char c;

	irq_install(ECHO_VECTOR);
	lapic_enable();
	ioapic_route(&p->plat, ECHO_IRQ, ECHO_VECTOR, lapic_id());
	serial_enable_rx_irq();
	printk("probe: echo ready\n");
	for (;;) {
		while (serial_rx_ready()) {
			c = serial_getc();
			serial_putc(c);
			if (c != '\n' && c != '\r') {
				if (len < sizeof(line))
					line[len++] = c;
				continue;
			}
			if (len == 4 && !memcmp(line, "quit", 4))
				return NULL;
			len = 0;
		}
		irq_wait();
	}
}

static const char *test_reset(struct probe *p)
{
	(void)p;
	outb(I8042_COMMAND, I8042_RESET);
	settle();
	return "still-running";
}

/* skiff's boot-time device: the write makes the VMM log how long the boot took. */
static const char *test_boot_time(struct probe *p)
{
	(void)p;
	outb(BOOT_TIMER_PORT, BOOT_TIMER_MAGIC);
	return NULL;
}

static const char *test_poweroff(struct probe *p)
{
	const char *reason;

	if (acpi_poweroff(p, &reason))
		return reason;
	settle();
	return "still-running";
}

static const struct test tests[] = {
	{ "hello", test_hello, NULL },
	{ "smp", test_smp, smp_ap_work },
	{ "mem", test_mem, NULL },
	{ "echo", test_echo, NULL },
	{ "reset", test_reset, NULL },
	{ "poweroff", test_poweroff, NULL },
	{ "boot-time", test_boot_time, NULL },
	{ "blk-rw", test_blk_rw, NULL },
	{ "blk-read", test_blk_read, NULL },
	{ "blk-id", test_blk_id, NULL },
	{ "blk-ro", test_blk_ro, NULL },
	{ "rng", test_rng, NULL },
	{ "net-echo", test_net_echo, NULL },
	{ "console-echo", test_console_echo, NULL },
	{ "blk-bench", test_blk_bench, NULL },
	{ "net-bench", test_net_bench, NULL },
	{ "counter", test_counter, NULL },
	{ "kbd", test_kbd, NULL },
};

static const struct test *find_test(const char *name)
{
	unsigned int i;

	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (str_eq(tests[i].name, name))
			return &tests[i];
	}
	return NULL;
}

ap_work_fn test_ap_work(const char *name)
{
	const struct test *t = find_test(name);

	return t ? t->ap_work : NULL;
}

void test_run(struct probe *p)
{
	const struct test *t = find_test(p->test);
	const char *reason = t ? t->run(p) : "unknown-test";

	if (reason)
		probe_fail(p, reason);
	printk("probe: result=pass test=%s\n", p->test);
	probe_exit(true);
}
