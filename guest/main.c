/*
 * Boot flow of the probe: read the PVH start_info (xen/include/public/arch-x86/hvm/start_info.h),
 * map RAM, discover CPUs, start the APs and run the test named on the command line.
 */
#include "probe.h"

#define START_INFO_MAGIC	0x336ec578
#define DEBUG_EXIT_PORT		0xf4
#define MAX_MAPPED		(64 * GIB)

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;		/* version 1 and later */
	uint32_t memmap_entries;
	uint32_t reserved;
};

extern uint64_t pml4[512], pdpt[512];

/* Directories for 4..64 GiB when the CPU lacks 1 GiB pages. */
static uint64_t pd_high[MAX_MAPPED / GIB - 4][512] __attribute__((aligned(4096)));

static struct probe probe;

void probe_exit(bool pass)
{
	outl(DEBUG_EXIT_PORT, pass ? 0 : 1);
	for (;;)
		__asm__ __volatile__("cli; hlt");
}

void probe_fail(const struct probe *p, const char *reason)
{
	printk("probe: result=fail test=%s reason=%s\n", p->test, reason);
	probe_exit(false);
}

bool phys_range_ok(const struct probe *p, uint64_t addr, uint64_t len)
{
	return addr < p->mapped_end && len <= p->mapped_end - addr;
}

/* The value of the first key=value word after from (NULL: from the start), or NULL. */
const char *cmdline_value(const struct probe *p, const char *key, const char *from)
{
	const char *s = from ? from : p->cmdline;
	const char *k;

	while (*s) {
		for (k = key; *k && *k == *s; k++)
			s++;
		if (!*k && *s == '=')
			return s + 1;
		while (*s && *s != ' ')
			s++;
		while (*s == ' ')
			s++;
	}
	return NULL;
}

static void parse_cmdline(struct probe *p)
{
	const char *s = cmdline_value(p, "test", NULL);
	size_t n = 0;

	if (!s)
		return;
	for (; *s && *s != ' ' && n < TEST_NAME_MAX - 1; s++)
		p->test[n++] = *s;
	p->test[n] = '\0';
}

/* Copy what start_info points at into the image so that low memory may be reused. */
static int read_start_info(struct probe *p, uint64_t paddr, const char **reason)
{
	const struct hvm_start_info *si = (const void *)paddr;
	const char *cmdline;
	size_t n;

	if (!phys_range_ok(p, paddr, sizeof(*si)) || si->magic != START_INFO_MAGIC) {
		*reason = "bad-start-info";
		return -1;
	}
	if (si->cmdline_paddr && phys_range_ok(p, si->cmdline_paddr, CMDLINE_MAX)) {
		cmdline = (const char *)si->cmdline_paddr;
		for (n = 0; n < CMDLINE_MAX - 1 && cmdline[n]; n++)
			p->cmdline[n] = cmdline[n];
		parse_cmdline(p);
	}
	p->rsdp = si->rsdp_paddr;
	if (si->version < 1 || !si->memmap_entries || si->memmap_entries > MAX_MEMMAP ||
	    !phys_range_ok(p, si->memmap_paddr,
			   si->memmap_entries * sizeof(struct memmap_entry))) {
		*reason = "bad-memmap";
		return -1;
	}
	p->memmap_count = si->memmap_entries;
	memcpy(p->memmap, (const void *)si->memmap_paddr,
	       p->memmap_count * sizeof(struct memmap_entry));
	return 0;
}

/* MiB of RAM from 1 MiB up, plus one for the first MiB: the same whatever the 4 GiB hole's shape. */
static uint64_t memory_mib(const struct probe *p)
{
	uint64_t bytes = 0, start, end;
	unsigned int i;

	for (i = 0; i < p->memmap_count; i++) {
		const struct memmap_entry *e = &p->memmap[i];

		if (e->type != E820_RAM)
			continue;
		start = e->addr < MIB ? MIB : e->addr;
		end = e->addr + e->size;
		if (end > start)
			bytes += end - start;
	}
	return bytes / MIB + 1;
}

static bool has_1g_pages(void)
{
	uint32_t eax = 0x80000000, ebx, ecx = 0, edx;

	__asm__ __volatile__("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
	if (eax < 0x80000001)
		return false;
	eax = 0x80000001;
	ecx = 0;
	__asm__ __volatile__("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
	return edx & (1u << 26);
}

/* entry.S maps the first 4 GiB; extend up to the end of the memory map, in whole GiB. */
static void map_memory(struct probe *p)
{
	uint64_t end = 4 * GIB, e_end, gib, i;
	unsigned int n;

	for (n = 0; n < p->memmap_count; n++) {
		e_end = p->memmap[n].addr + p->memmap[n].size;
		if (e_end > end)
			end = e_end;
	}
	end = end > MAX_MAPPED ? MAX_MAPPED : (end + GIB - 1) & ~(GIB - 1);
	if (end > 4 * GIB) {
		bool huge = has_1g_pages();

		for (gib = 4; gib < end / GIB; gib++) {
			if (huge) {
				pdpt[gib] = (gib * GIB) | PTE_LARGE;
				continue;
			}
			for (i = 0; i < 512; i++)
				pd_high[gib - 4][i] = gib * GIB + i * 2 * MIB + PTE_LARGE;
			pdpt[gib] = (uint64_t)pd_high[gib - 4] | PTE_TABLE;
		}
		__asm__ __volatile__("mov %0, %%cr3" : : "r"(pml4) : "memory");
	}
	p->mapped_end = end;
}

/* Device registers below 4 GiB: their 2 MiB page (user-accessible, as all are) becomes uncached. */
int map_mmio(uint64_t addr)
{
	uint64_t *pd;

	if (addr >= 4 * GIB)
		return -1;
	pd = (uint64_t *)(pdpt[addr >> 30] & ~(PAGE_SIZE - 1));
	pd[addr >> 21 & 511] |= PTE_UNCACHED;
	__asm__ __volatile__("invlpg (%0)" : : "r"(addr) : "memory");
	return 0;
}

/* Called from entry.S on the BSP stack. */
void probe_main(uint32_t start_info)
{
	struct probe *p = &probe;
	const char *reason;

	printk("probe: hello\n");
	memcpy(p->test, "hello", sizeof("hello"));
	p->mapped_end = 4 * GIB;
	if (read_start_info(p, start_info, &reason))
		probe_fail(p, reason);
	map_memory(p);
	if (platform_discover(p, &reason))
		probe_fail(p, reason);
	printk("probe: cpus=%u mem_mib=%lu\n", p->plat.ncpus, memory_mib(p));
	if (smp_boot(p, test_ap_work(p->test), &reason))
		probe_fail(p, reason);
	test_run(p);
}
