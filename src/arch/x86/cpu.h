/* Per-vCPU x86 state: CPUID, MSRs, FPU, and the registers of the boot entry mode. */
#ifndef SKIFF_X86_CPU_H
#define SKIFF_X86_CPU_H

#include "boot.h"

#include <linux/kvm.h>

/* KVM_GET_SUPPORTED_CPUID into a new allocation (free()); NULL with errno on failure. */
struct kvm_cpuid2 *cpu_supported_cpuid(int kvm_fd);
/* Fills a copy of supported with what vCPU index of nr_cpus should see. Pure: unit-tested. */
void cpu_adjust_cpuid(struct kvm_cpuid2 *cpuid, unsigned index, unsigned nr_cpus);
/* CPUID, MSRs and FPU for one vCPU. Returns 0 or -errno. */
int cpu_init_vcpu(int vcpu_fd, const struct kvm_cpuid2 *supported, unsigned index,
		  unsigned nr_cpus);
/* Puts the boot vCPU in the mode its loader asked for. */
int cpu_set_boot_regs(int vcpu_fd, const struct boot_entry *entry);

#endif
