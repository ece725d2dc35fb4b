/* Probe guest: shared types, hardware access helpers and cross-file interfaces. */
#ifndef PROBE_H
#define BOOT_TIMER_PORT	0x440	/* skiff's boot-time device */
#define BOOT_TIMER_MAGIC	123
#define PROBE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "asm.h"

#define PAGE_SIZE	4096ULL
#define MIB		(1ULL << 20)
#define GIB		(1ULL << 30)

#define MAX_MEMMAP	64
#define CMDLINE_MAX	1024
#define TEST_NAME_MAX	32

/* No TSC calibration: this bound is several seconds at any plausible TSC rate. */
#define TIMEOUT_TSC	(1ULL << 34)

#define E820_RAM	1

struct memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

/* What discovery found in the ACPI or MP tables. */
struct platform {
	unsigned int ncpus;
	uint32_t apic_ids[MAX_CPUS];
	uint64_t ioapic_addr;
	uint32_t ioapic_gsi_base;
	uint32_t isa_gsi[16];		/* ISA IRQ -> GSI, after interrupt source overrides */
	uint16_t isa_flags[16];		/* MPS INTI flags; 0 means the ISA default */
	bool acpi;
	/* FADT facts for power-off, read at discovery; the DSDT is scanned only when needed. */
	bool has_fadt;
	bool hw_reduced;
	uint8_t sleep_control_space;
	uint64_t sleep_control_addr;
	uint32_t pm1a_control;
	uint64_t dsdt;
	uint32_t dsdt_len;
};

/* 64-bit task state segment (SDM 8.7); only RSP0 is used. */
struct tss {
	uint32_t reserved0;
	uint64_t rsp0;
	uint64_t rsp1_2[2];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

struct cpu {
	struct tss tss;
	unsigned int index;
	volatile uint32_t up;
	volatile uint32_t contributed;
};

typedef void (*ap_work_fn)(struct cpu *cpu);

struct probe {
	struct memmap_entry memmap[MAX_MEMMAP];
	unsigned int memmap_count;
	char cmdline[CMDLINE_MAX];
	uint64_t rsdp;
	uint64_t mapped_end;
	char test[TEST_NAME_MAX];
	struct platform plat;
	struct cpu *bsp;
};

extern struct cpu cpus[MAX_CPUS];
extern char image_start[], image_end[];

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ __volatile__("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ __volatile__("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ __volatile__("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ __volatile__("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint8_t mmio_read8(uint64_t addr)
{
	return *(volatile uint8_t *)addr;
}

static inline uint32_t mmio_read32(uint64_t addr)
{
	return *(volatile uint32_t *)addr;
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	*(volatile uint32_t *)addr = v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* Firmware tables put multi-byte fields at any alignment. */
static inline uint16_t read_u16(const void *p)
{
	uint16_t v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint32_t read_u32(const void *p)
{
	uint32_t v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t read_u64(const void *p)
{
	uint64_t v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

static inline void cpu_relax(void)
{
	__asm__ __volatile__("pause" ::: "memory");
}

/* lib.c */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
bool str_eq(const char *a, const char *b);
const char *parse_u64(const char *s, uint64_t *v);
void printk(const char *fmt, ...);
uint8_t checksum8(const void *p, size_t n);

/* serial.c */
void serial_putc(char c);
bool serial_rx_ready(void);
char serial_getc(void);
void serial_enable_rx_irq(void);

/* main.c */
void __attribute__((noreturn)) probe_exit(bool pass);
void __attribute__((noreturn)) probe_fail(const struct probe *p, const char *reason);
bool phys_range_ok(const struct probe *p, uint64_t addr, uint64_t len);
const char *cmdline_value(const struct probe *p, const char *key, const char *from);
int map_mmio(uint64_t addr);

/* acpi.c */
int platform_discover(struct probe *p, const char **reason);
int acpi_poweroff(const struct probe *p, const char **reason);

/* smp.c */
int smp_boot(struct probe *p, ap_work_fn ap_work, const char **reason);

/* user.c */
void idt_set_gate(uint8_t vector, const void *handler);
void user_init(void);
void user_init_cpu(struct cpu *cpu);
uint64_t user_run(struct cpu *cpu, uint64_t (*fn)(void *), void *arg);

/* apic.c */
uint32_t lapic_id(void);
void lapic_enable(void);
void lapic_send_ipi(uint32_t apic_id, uint32_t icr_low);
void ioapic_route(const struct platform *plat, unsigned int irq, uint8_t vector,
		  uint32_t dest_apic_id);
void irq_install(uint8_t vector);
void irq_wait(void);

/* crc32.c */
uint32_t crc32_update(uint32_t crc, const void *buf, size_t len);

/* blk.c, rng.c, net.c, console.c, bench.c, counter.c: tests that tests.c lists */
const char *test_blk_rw(struct probe *p);
const char *test_blk_read(struct probe *p);
const char *test_blk_id(struct probe *p);
const char *test_blk_ro(struct probe *p);
const char *test_rng(struct probe *p);
const char *test_net_echo(struct probe *p);
const char *test_console_echo(struct probe *p);
const char *test_blk_bench(struct probe *p);
const char *test_net_bench(struct probe *p);
const char *test_counter(struct probe *p);

/* kbd.c */
const char *test_kbd(struct probe *p);

/* bench.c */
const char *tsc_calibrate(uint64_t *hz);

/* tests.c */
ap_work_fn test_ap_work(const char *name);
void __attribute__((noreturn)) test_run(struct probe *p);

#endif
