/*
 * Whether a destination can run a source's guest, checked before the source pauses: the
 * CPU features the guest was offered must all be offered here too, and the TSC must tick
 * at the same rate or be scalable to it.
 */
#ifndef SKIFF_MIGRATE_COMPAT_H
#define SKIFF_MIGRATE_COMPAT_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

#define MIGRATE_FEATURE_WORDS 8

/* The feature words of CPUID leaves 1, 7.0, 0xd.1 and 0x80000001 in cpuid. */
void migrate_cpu_features(const struct kvm_cpuid2 *cpuid, uint32_t words[MIGRATE_FEATURE_WORDS]);
/*
 * On this host: 0 if a guest offered words with a TSC of tsc_khz (0: unknown) can run, or
 * -ENOTSUP with why filled (the first missing feature, or the TSC). -errno if /dev/kvm
 * cannot tell.
 */
int migrate_check_host(const uint32_t words[MIGRATE_FEATURE_WORDS], uint32_t tsc_khz,
		       char *why, size_t why_len);

#endif
