#include "test.h"

#include "../../src/arch/x86/cpu.h"

#include <string.h>

static struct kvm_cpuid2 *table(const char *vendor)
{
	static const uint32_t leaves[][2] = {
		{ 0, 0 }, { 1, 0 }, { 4, 0 }, { 0xb, 0 }, { 0xb, 1 }, { 0xb, 2 },
		{ 0x80000008, 0 }, { 0x8000001e, 0 },
	};
	enum { N = sizeof(leaves) / sizeof(leaves[0]) };
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + N * sizeof(c->entries[0]));

	c->nent = N;
	for (unsigned i = 0; i < N; i++) {
		c->entries[i].function = leaves[i][0];
		c->entries[i].index = leaves[i][1];
		c->entries[i].eax = c->entries[i].ebx = c->entries[i].ecx = 0xffffffff;
	}
	memcpy(&c->entries[0].ebx, vendor, 4);
	c->entries[1].ebx = 0x00000800; /* CLFLUSH line size, kept */
	c->entries[1].ecx = 0;
	c->entries[1].edx = 0;
	return c;
}

static struct kvm_cpuid_entry2 *leaf(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index)
{
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == index)
			return &c->entries[i];
	return NULL;
}

TEST(apic_ids_and_topology)
{
	struct kvm_cpuid2 *c = table("Genu");

	cpu_adjust_cpuid(c, 2, 4);
	CHECK(leaf(c, 1, 0)->ebx >> 24 == 2);		/* initial APIC ID */
	CHECK(((leaf(c, 1, 0)->ebx >> 16) & 0xff) == 4); /* logical processors */
	CHECK((leaf(c, 1, 0)->ebx & 0xffff) == 0x800);
	CHECK(leaf(c, 1, 0)->ecx & (1u << 31));		/* hypervisor present */
	CHECK(leaf(c, 1, 0)->edx & (1u << 28));
	CHECK(leaf(c, 4, 0)->eax >> 26 == 3);		/* cores per package - 1 */
	CHECK(leaf(c, 0xb, 0)->edx == 2 && leaf(c, 0xb, 1)->edx == 2);
	CHECK(leaf(c, 0xb, 0)->ebx == 1 && ((leaf(c, 0xb, 0)->ecx >> 8) & 0xff) == 1);
	CHECK(leaf(c, 0xb, 1)->ebx == 4 && leaf(c, 0xb, 1)->eax == 2);
	CHECK(((leaf(c, 0xb, 1)->ecx >> 8) & 0xff) == 2);
	CHECK(((leaf(c, 0xb, 2)->ecx >> 8) & 0xff) == 0); /* end of levels */
	CHECK((leaf(c, 0x80000008, 0)->ecx & 0xff) == 3);
	CHECK(leaf(c, 0x8000001e, 0)->eax == 2);
	free(c);
}

TEST(single_cpu_has_no_htt)
{
	struct kvm_cpuid2 *c = table("Auth");

	cpu_adjust_cpuid(c, 0, 1);
	CHECK(!(leaf(c, 1, 0)->edx & (1u << 28)));
	CHECK(leaf(c, 0xb, 1)->eax == 0 && leaf(c, 0xb, 1)->ebx == 1);
	CHECK(leaf(c, 4, 0)->eax == 0xffffffff); /* leaf 4 is Intel's; AMD's is left alone */
	free(c);
}

TEST_MAIN(T(apic_ids_and_topology), T(single_cpu_has_no_htt))
