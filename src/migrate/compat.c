#include "compat.h"

#include "../arch/x86/cpu.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const struct {
	uint32_t function, index;
	unsigned reg; /* 0 eax, 1 ebx, 2 ecx, 3 edx */
	const char *name;
} words_of[MIGRATE_FEATURE_WORDS] = {
	{ 1, 0, 2, "CPUID.1:ECX" },	     { 1, 0, 3, "CPUID.1:EDX" },
	{ 7, 0, 1, "CPUID.7.0:EBX" },	     { 7, 0, 2, "CPUID.7.0:ECX" },
	{ 7, 0, 3, "CPUID.7.0:EDX" },	     { 0xd, 1, 0, "CPUID.0xd.1:EAX" },
	{ 0x80000001, 0, 2, "CPUID.0x80000001:ECX" }, { 0x80000001, 0, 3, "CPUID.0x80000001:EDX" },
};

/* Bits that say how the CPU is set up rather than what it can do. */
#define LEAF1_ECX_OSXSAVE (1u << 27)

void migrate_cpu_features(const struct kvm_cpuid2 *cpuid, uint32_t words[MIGRATE_FEATURE_WORDS])
{
	for (unsigned w = 0; w < MIGRATE_FEATURE_WORDS; w++) {
		words[w] = 0;
		for (unsigned i = 0; i < cpuid->nent; i++) {
			const struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
			const uint32_t regs[4] = { e->eax, e->ebx, e->ecx, e->edx };

			if (e->function == words_of[w].function && e->index == words_of[w].index)
				words[w] = regs[words_of[w].reg];
		}
	}
	words[0] &= ~LEAF1_ECX_OSXSAVE;
}

/* This host's TSC rate in kHz, from a scratch vCPU (KVM tells it per vCPU); 0 if unknown. */
static uint32_t host_tsc_khz(int kvm_fd)
{
	int vm = ioctl(kvm_fd, KVM_CREATE_VM, 0), vcpu = -1, khz = 0;

	if (vm >= 0)
		vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu >= 0)
		khz = ioctl(vcpu, KVM_GET_TSC_KHZ, 0);
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	return khz > 0 ? khz : 0;
}

int migrate_check_host(const uint32_t words[MIGRATE_FEATURE_WORDS], uint32_t tsc_khz,
		       char *why, size_t why_len)
{
	uint32_t here[MIGRATE_FEATURE_WORDS], khz;
	struct kvm_cpuid2 *cpuid;
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), ret = 0;

	if (kvm < 0)
		return -errno;
	cpuid = cpu_supported_cpuid(kvm);
	if (!cpuid) {
		ret = -errno;
		goto out;
	}
	migrate_cpu_features(cpuid, here);
	free(cpuid);
	for (unsigned w = 0; w < MIGRATE_FEATURE_WORDS && !ret; w++) {
		uint32_t missing = words[w] & ~here[w];

		if (missing) {
			snprintf(why, why_len, "this host's KVM lacks %s bit %d that the guest was "
				 "offered", words_of[w].name, __builtin_ctz(missing));
			ret = -ENOTSUP;
		}
	}
	/* Without TSC scaling the rates must agree as cpu_state_load() wants: within 250 ppm. */
	if (!ret && tsc_khz && ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_TSC_CONTROL) <= 0) {
		khz = host_tsc_khz(kvm);
		if (khz && (uint64_t)(khz > tsc_khz ? khz - tsc_khz : tsc_khz - khz) * 4000 > tsc_khz) {
			snprintf(why, why_len, "the guest's TSC runs at %u kHz, this host's at %u kHz, "
				 "and this KVM cannot scale it", tsc_khz, khz);
			ret = -ENOTSUP;
		}
	}
out:
	close(kvm);
	return ret;
}
