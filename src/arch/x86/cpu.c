#include "cpu.h"

#include "layout.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define CPUID_MAX_ENTRIES	256
#define LEAF1_ECX_HYPERVISOR	(1u << 31)
#define LEAF1_EDX_HTT		(1u << 28)
#define TOPOLOGY_LEVEL_SMT	1
#define TOPOLOGY_LEVEL_CORE	2

#define MSR_IA32_TSC		0x10
#define MSR_IA32_SYSENTER_CS	0x174
#define MSR_IA32_SYSENTER_ESP	0x175
#define MSR_IA32_SYSENTER_EIP	0x176
#define MSR_IA32_MISC_ENABLE	0x1a0
#define MSR_MTRR_DEF_TYPE	0x2ff
#define MSR_STAR		0xc0000081
#define MSR_LSTAR		0xc0000082
#define MSR_CSTAR		0xc0000083
#define MSR_SYSCALL_MASK	0xc0000084
#define MSR_KERNEL_GS_BASE	0xc0000102
#define MSR_K7_HWCR		0xc0010015
#define HWCR_TSC_FREQ_SEL	(1ULL << 24) /* AMD: the TSC counts at the P0 frequency */
#define MISC_ENABLE_FAST_STRING	0x1
#define MTRR_ENABLE_WRITEBACK	((1u << 11) | 6)

#define CR0_PE			(1u << 0)
#define CR0_ET			(1u << 4)
#define CR0_PG			(1u << 31)
#define CR4_PAE			(1u << 5)
#define EFER_LME		(1u << 8)
#define EFER_LMA		(1u << 10)

struct kvm_cpuid2 *cpu_supported_cpuid(int kvm_fd)
{
	struct kvm_cpuid2 *cpuid;
	size_t size = sizeof(*cpuid) + CPUID_MAX_ENTRIES * sizeof(cpuid->entries[0]);

	cpuid = calloc(1, size);
	if (!cpuid)
		return NULL;
	cpuid->nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		int err = errno;

		free(cpuid);
		errno = err;
		return NULL;
	}
	return cpuid;
}

/* Bits needed to number count things: ceil(log2(count)). */
static unsigned id_bits(unsigned count)
{
	unsigned bits = 0;

	while ((1u << bits) < count)
		bits++;
	return bits;
}

static bool vendor_is(const struct kvm_cpuid2 *cpuid, const char *ebx)
{
	for (unsigned i = 0; i < cpuid->nent; i++)
		if (cpuid->entries[i].function == 0)
			return !memcmp(&cpuid->entries[i].ebx, ebx, 4);
	return false;
}

/* One socket of nr_cpus single-threaded cores; APIC ID = vCPU index. */
void cpu_adjust_cpuid(struct kvm_cpuid2 *cpuid, unsigned index, unsigned nr_cpus)
{
	bool intel = vendor_is(cpuid, "Genu");

	for (unsigned i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0xffff) | (nr_cpus << 16) | (index << 24);
			e->ecx |= LEAF1_ECX_HYPERVISOR;
			if (nr_cpus > 1)
				e->edx |= LEAF1_EDX_HTT;
			break;
		case 4:
			/* Intel cache topology: cores sharing the package. */
			if (intel)
				e->eax = (e->eax & 0x03ffffff) | ((nr_cpus - 1) << 26);
			break;
		case 0xb:
		case 0x1f:
			e->edx = index;
			if (e->index == 0) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = (TOPOLOGY_LEVEL_SMT << 8) | e->index;
			} else if (e->index == 1) {
				e->eax = id_bits(nr_cpus);
				e->ebx = nr_cpus;
				e->ecx = (TOPOLOGY_LEVEL_CORE << 8) | e->index;
			} else {
				e->eax = 0;
				e->ebx = 0;
				e->ecx = e->index;
			}
			break;
		case 0x80000008:
			/* AMD: cores per package minus one, and the APIC ID width. */
			e->ecx = (e->ecx & ~0xf0ffu) | (nr_cpus - 1) | (id_bits(nr_cpus) << 12);
			break;
		case 0x8000001e:
			e->eax = index;
			e->ebx = index; /* core ID, one thread per core */
			e->ecx = 0;
			break;
		}
	}
}

static int set_msrs(int vcpu_fd, bool amd)
{
	static const struct {
		uint32_t index;
		uint64_t value;
	} init[] = {
		{ MSR_IA32_SYSENTER_CS, 0 },
		{ MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 },
		{ MSR_STAR, 0 },
		{ MSR_LSTAR, 0 },
		{ MSR_CSTAR, 0 },
		{ MSR_SYSCALL_MASK, 0 },
		{ MSR_KERNEL_GS_BASE, 0 },
		{ MSR_IA32_TSC, 0 },
		{ MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING },
		{ MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WRITEBACK },
	};
	enum { N = sizeof(init) / sizeof(init[0]) };
	struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + (N + 1) * sizeof(msrs->entries[0]));
	int ret;

	if (!msrs)
		return -ENOMEM;
	msrs->nmsrs = N;
	for (unsigned i = 0; i < N; i++) {
		msrs->entries[i].index = init[i].index;
		msrs->entries[i].data = init[i].value;
	}
	/* What AMD firmware sets; without it Linux reports a firmware bug about the TSC. */
	if (amd)
		msrs->entries[msrs->nmsrs++] = (struct kvm_msr_entry){ .index = MSR_K7_HWCR,
								       .data = HWCR_TSC_FREQ_SEL };
	ret = ioctl(vcpu_fd, KVM_SET_MSRS, msrs);
	if (ret < 0)
		ret = -errno;
	else
		ret = (unsigned)ret == msrs->nmsrs ? 0 : -EINVAL;
	free(msrs);
	return ret;
}

int cpu_init_vcpu(int vcpu_fd, const struct kvm_cpuid2 *supported, unsigned index,
		  unsigned nr_cpus)
{
	size_t size = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *cpuid = malloc(size);
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	int ret = 0;

	if (!cpuid)
		return -ENOMEM;
	memcpy(cpuid, supported, size);
	cpu_adjust_cpuid(cpuid, index, nr_cpus);
	if (ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid) < 0)
		ret = -errno;
	free(cpuid);
	if (!ret)
		ret = set_msrs(vcpu_fd, vendor_is(supported, "Auth") || vendor_is(supported, "Hygo"));
	if (!ret && ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0)
		ret = -errno;
	return ret;
}

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type, bool long_mode)
{
	return (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = selector,
		.type = type,
		.present = 1,
		.dpl = 0,
		.db = !long_mode || type < 8, /* 64-bit code segments have D clear */
		.s = 1,
		.l = long_mode && type >= 8,
		.g = 1,
	};
}

int cpu_set_boot_regs(int vcpu_fd, const struct boot_entry *entry)
{
	bool long_mode = entry->mode == BOOT_LINUX64;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_segment data = flat_segment(0x18, 0x3, long_mode);

	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.cs = flat_segment(0x10, 0xb, long_mode);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	/*
	 * TR as after RESET (SDM vol. 3, 9.1.1), which VMX accepts. The 64 KiB limit
	 * matters on this project's hosts: their emulator checks port access against the
	 * TSS I/O bitmap, and QEMU's guests see the same TR.
	 */
	sregs.tr = (struct kvm_segment){ .limit = 0xffff, .type = 0xb, .present = 1 };
	sregs.gdt.base = LAYOUT_GDT;
	sregs.gdt.limit = 4 * 8 - 1;
	sregs.cr0 = CR0_PE | CR0_ET;
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (long_mode) {
		sregs.cr0 |= CR0_PG;
		sregs.cr3 = LAYOUT_PML4;
		sregs.cr4 |= CR4_PAE;
		sregs.efer |= EFER_LME | EFER_LMA;
	}
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2;
	regs.rip = entry->rip;
	if (long_mode)
		regs.rsi = entry->params;
	else
		regs.rbx = entry->params;
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}
