/*
 * cpu_state.c against the real /dev/kvm: a vCPU given distinctive state in VM A is saved,
 * loaded into VM B (made the same way as skiff makes its VMs) and read back; damaged
 * sections are refused; a running guest continues where it was saved. Without /dev/kvm
 * every test is reported as SKIP.
 */
#include "test.h"

#include "../../src/arch/x86/boot.h"
#include "../../src/arch/x86/cpu.h"
#include "../../src/arch/x86/cpu_state.h"
#include "../../src/arch/x86/layout.h"
#include "../../src/state/state.h"
#include "../../src/util/bytes.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE     (2u << 20)
#define CODE_ADDR    0x1000
#define HANDLER_ADDR 0x1100
#define DEBUG_PORT   0x80
#define TIMER_PORT   0x81
#define INPUT_PORT   0x82
#define TIMER_VECTOR 0xec

#define MSR_IA32_TSC		0x10
#define MSR_IA32_SYSENTER_CS	0x174
#define MSR_IA32_SYSENTER_ESP	0x175
#define MSR_IA32_SYSENTER_EIP	0x176
#define MSR_IA32_MISC_ENABLE	0x1a0
#define MSR_IA32_CR_PAT		0x277
#define MSR_MTRR_DEF_TYPE	0x2ff
#define MSR_IA32_TSC_DEADLINE	0x6e0
#define MSR_STAR		0xc0000081
#define MSR_LSTAR		0xc0000082
#define MSR_CSTAR		0xc0000083
#define MSR_SYSCALL_MASK	0xc0000084
#define MSR_KERNEL_GS_BASE	0xc0000102
#define MSR_TSC_AUX		0xc0000103
#define MSR_KVM_WALL_CLOCK_NEW	0x4b564d00
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define MSR_KVM_ASYNC_PF_EN	0x4b564d02
#define MSR_KVM_STEAL_TIME	0x4b564d03
#define MSR_KVM_PV_EOI_EN	0x4b564d04
#define MSR_KVM_ASYNC_PF_INT	0x4b564d06

#define APIC_TPR  0x80
#define APIC_SPIV 0xf0
#define APIC_LVTT 0x320

#define SECTION_HEADER 10 /* tag, u16 version, u32 body length (state.c) */

/* A VM as create_machine() in src/vmm/vm.c makes one, with one vCPU and MEM_SIZE of RAM. */
struct test_vm {
	int kvm_fd, vm_fd, vcpu_fd;
	uint8_t *mem;
	struct kvm_run *run;
	size_t run_size;
};

static void vm_close(struct test_vm *vm)
{
	if (vm->run)
		munmap(vm->run, vm->run_size);
	if (vm->vcpu_fd >= 0)
		close(vm->vcpu_fd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->mem)
		munmap(vm->mem, MEM_SIZE);
}

/* nr_cpus only changes the CPUID cpu_init_vcpu gives (a count of logical CPUs). */
static bool vm_open(struct test_vm *vm, unsigned nr_cpus)
{
	struct kvm_enable_cap split = { .cap = KVM_CAP_SPLIT_IRQCHIP, .args = { IOAPIC_PINS } };
	struct kvm_userspace_memory_region region = { .memory_size = MEM_SIZE };
	struct kvm_cpuid2 *cpuid;
	bool ok;

	*vm = (struct test_vm){ .kvm_fd = -1, .vm_fd = -1, .vcpu_fd = -1 };
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	vm->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm->kvm_fd < 0 || vm->mem == MAP_FAILED) {
		CHECK(!"/dev/kvm or memory for the guest");
		vm->mem = NULL;
		vm_close(vm);
		return false;
	}
	region.userspace_addr = (uintptr_t)vm->mem;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	ok = vm->vm_fd >= 0 && ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, LAYOUT_KVM_TSS) == 0 &&
	     ioctl(vm->vm_fd, KVM_ENABLE_CAP, &split) == 0 &&
	     ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) == 0;
	if (ok)
		vm->vcpu_fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (ok && vm->vcpu_fd >= 0) {
		vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd,
			       0);
		if (vm->run == MAP_FAILED)
			vm->run = NULL;
	}
	cpuid = cpu_supported_cpuid(vm->kvm_fd);
	ok = vm->run && cpuid && cpu_init_vcpu(vm->vcpu_fd, cpuid, 0, nr_cpus) == 0;
	free(cpuid);
	CHECK(ok);
	if (!ok)
		vm_close(vm);
	return ok;
}

/* KVM_GET_MSRS or KVM_SET_MSRS on one MSR; returns the number done (1) or -1. */
static int one_msr(int vcpu_fd, unsigned long request, uint32_t index, uint64_t *value)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + sizeof(m->entries[0]));
	int ret;

	m->nmsrs = 1;
	m->entries[0] = (struct kvm_msr_entry){ .index = index, .data = *value };
	ret = ioctl(vcpu_fd, request, m);
	*value = m->entries[0].data;
	free(m);
	return ret;
}

static uint64_t get_msr(int vcpu_fd, uint32_t index)
{
	uint64_t value = 0;

	CHECK(one_msr(vcpu_fd, KVM_GET_MSRS, index, &value) == 1);
	return value;
}

static void set_msr(int vcpu_fd, uint32_t index, uint64_t value)
{
	CHECK(one_msr(vcpu_fd, KVM_SET_MSRS, index, &value) == 1);
}

static uint32_t lapic_reg(const struct kvm_lapic_state *lapic, unsigned offset)
{
	return get_le32(lapic->regs + offset);
}

static void set_lapic_reg(struct kvm_lapic_state *lapic, unsigned offset, uint32_t value)
{
	put_le32(lapic->regs + offset, value);
}

static struct kvm_cpuid_entry2 *cpuid_leaf(struct kvm_cpuid2 *cpuid, uint32_t function)
{
	for (unsigned i = 0; i < cpuid->nent; i++)
		if (cpuid->entries[i].function == function)
			return &cpuid->entries[i];
	return NULL;
}

static struct kvm_cpuid2 *get_cpuid(int vcpu_fd)
{
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + 256 * sizeof(cpuid->entries[0]));

	cpuid->nent = 256;
	CHECK(ioctl(vcpu_fd, KVM_GET_CPUID2, cpuid) == 0);
	return cpuid;
}

/* The MSRs the test gives distinctive values, in an order KVM takes them in. */
static const uint32_t test_msrs[] = {
	MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP, MSR_IA32_MISC_ENABLE,
	MSR_IA32_CR_PAT,      MSR_MTRR_DEF_TYPE,     MSR_STAR,		    MSR_LSTAR,
	MSR_CSTAR,	      MSR_SYSCALL_MASK,	     MSR_KERNEL_GS_BASE,    MSR_TSC_AUX,
	MSR_KVM_WALL_CLOCK_NEW, MSR_KVM_SYSTEM_TIME_NEW, MSR_KVM_STEAL_TIME, MSR_KVM_PV_EOI_EN,
	MSR_KVM_ASYNC_PF_INT, MSR_KVM_ASYNC_PF_EN,    MSR_IA32_TSC_DEADLINE,
};

/* Everything the test compares between A and B. */
struct snapshot_view {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint8_t xsave[sizeof(struct kvm_xsave)];
	struct kvm_xcrs xcrs;
	struct kvm_debugregs debugregs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp_state;
	uint64_t msrs[sizeof(test_msrs) / sizeof(test_msrs[0])];
	uint64_t tsc;
	uint32_t cpuid_leaf1_ebx;
};

static void view(int vcpu_fd, struct snapshot_view *v)
{
	struct kvm_cpuid2 *cpuid = get_cpuid(vcpu_fd);
	struct kvm_xsave *xsave = calloc(1, sizeof(*xsave));

	memset(v, 0, sizeof(*v));
	CHECK(ioctl(vcpu_fd, KVM_GET_MP_STATE, &v->mp_state) == 0);
	CHECK(ioctl(vcpu_fd, KVM_GET_REGS, &v->regs) == 0);
	CHECK(ioctl(vcpu_fd, KVM_GET_SREGS, &v->sregs) == 0);
	CHECK(ioctl(vcpu_fd, KVM_GET_XSAVE, xsave) == 0);
	memcpy(v->xsave, xsave, sizeof(v->xsave));
	free(xsave);
	CHECK(ioctl(vcpu_fd, KVM_GET_XCRS, &v->xcrs) == 0);
	CHECK(ioctl(vcpu_fd, KVM_GET_DEBUGREGS, &v->debugregs) == 0);
	CHECK(ioctl(vcpu_fd, KVM_GET_LAPIC, &v->lapic) == 0);
	CHECK(ioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, &v->events) == 0);
	for (size_t i = 0; i < sizeof(test_msrs) / sizeof(test_msrs[0]); i++)
		v->msrs[i] = get_msr(vcpu_fd, test_msrs[i]);
	v->tsc = get_msr(vcpu_fd, MSR_IA32_TSC);
	CHECK(cpuid_leaf(cpuid, 1) != NULL);
	if (cpuid_leaf(cpuid, 1))
		v->cpuid_leaf1_ebx = cpuid_leaf(cpuid, 1)->ebx;
	free(cpuid);
}

static uint64_t view_msr(const struct snapshot_view *v, uint32_t index)
{
	for (size_t i = 0; i < sizeof(test_msrs) / sizeof(test_msrs[0]); i++)
		if (test_msrs[i] == index)
			return v->msrs[i];
	return 0;
}

/* Gives A's vCPU a value of its own in every part of its state. */
static void make_distinctive(struct test_vm *a)
{
	struct boot_entry entry = { .mode = BOOT_LINUX64, .rip = 0x1234567, .params = 0x7000 };
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave xsave;
	struct kvm_debugregs debugregs = { .db = { 0x1000, 0x2000, 0x3000, 0x4000 },
					   .dr6 = 0xffff0ff1,
					   .dr7 = 0x401 };
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state halted = { .mp_state = KVM_MP_STATE_HALTED };
	uint64_t tsc;

	CHECK(cpu_set_boot_regs(a->vcpu_fd, &entry) == 0);
	CHECK(ioctl(a->vcpu_fd, KVM_GET_REGS, &regs) == 0);
	regs = (struct kvm_regs){
		.rax = 0x1111111111111111ULL, .rbx = 0x2222222222222222ULL,
		.rcx = 0x3333333333333333ULL, .rdx = 0x4444444444444444ULL,
		.rsi = 0x5555555555555555ULL, .rdi = 0x6666666666666666ULL,
		.rsp = 0x7777777777777777ULL, .rbp = 0x8888888888888888ULL,
		.r8 = 0x9999999999999999ULL,  .r9 = 0xaaaaaaaaaaaaaaaaULL,
		.r10 = 0xbbbbbbbbbbbbbbbbULL, .r11 = 0xccccccccccccccccULL,
		.r12 = 0xddddddddddddddddULL, .r13 = 0xeeeeeeeeeeeeeeeeULL,
		.r14 = 0xffffffffffffffffULL, .r15 = 0x0123456789abcdefULL,
		.rip = regs.rip,	      .rflags = 0x246,
	};
	CHECK(ioctl(a->vcpu_fd, KVM_SET_REGS, &regs) == 0);
	CHECK(ioctl(a->vcpu_fd, KVM_GET_SREGS, &sregs) == 0);
	sregs.cr2 = 0xdeadb000;
	sregs.fs.base = 0x7f0012345000;
	sregs.gs.base = 0xffff888012345000;
	sregs.idt = (struct kvm_dtable){ .base = 0x5000, .limit = 0xfff };
	sregs.cr8 = 0x3;
	CHECK(ioctl(a->vcpu_fd, KVM_SET_SREGS, &sregs) == 0);

	/* XMM0 (bytes 160..175 of the legacy area) is only taken with SSE in XSTATE_BV. */
	CHECK(ioctl(a->vcpu_fd, KVM_GET_XSAVE, &xsave) == 0);
	for (int i = 0; i < 16; i++)
		((uint8_t *)xsave.region)[160 + i] = 0xa0 + i;
	xsave.region[128] |= 2;
	CHECK(ioctl(a->vcpu_fd, KVM_SET_XSAVE, &xsave) == 0);
	CHECK(ioctl(a->vcpu_fd, KVM_SET_DEBUGREGS, &debugregs) == 0);

	set_msr(a->vcpu_fd, MSR_IA32_TSC, 0x123456789000ULL);
	set_msr(a->vcpu_fd, MSR_IA32_SYSENTER_CS, 0x10);
	set_msr(a->vcpu_fd, MSR_IA32_SYSENTER_ESP, 0xffffc90000001000ULL);
	set_msr(a->vcpu_fd, MSR_IA32_SYSENTER_EIP, 0xffffffff81b00000ULL);
	set_msr(a->vcpu_fd, MSR_IA32_CR_PAT, 0x0007010600070106ULL);
	set_msr(a->vcpu_fd, MSR_STAR, 0x0023001000000000ULL);
	set_msr(a->vcpu_fd, MSR_LSTAR, 0xffffffff81a00000ULL);
	set_msr(a->vcpu_fd, MSR_CSTAR, 0xffffffff81a00100ULL);
	set_msr(a->vcpu_fd, MSR_SYSCALL_MASK, 0x47700);
	set_msr(a->vcpu_fd, MSR_KERNEL_GS_BASE, 0xffff888077600000ULL);
	set_msr(a->vcpu_fd, MSR_TSC_AUX, 7);
	/* The paravirtual MSRs name pages of guest RAM, as a Linux guest's do. */
	set_msr(a->vcpu_fd, MSR_KVM_WALL_CLOCK_NEW, 0x10000);
	set_msr(a->vcpu_fd, MSR_KVM_SYSTEM_TIME_NEW, 0x11000 | 1);
	set_msr(a->vcpu_fd, MSR_KVM_STEAL_TIME, 0x12000 | 1);
	set_msr(a->vcpu_fd, MSR_KVM_PV_EOI_EN, 0x13000 | 1);
	set_msr(a->vcpu_fd, MSR_KVM_ASYNC_PF_INT, 0xf3);
	set_msr(a->vcpu_fd, MSR_KVM_ASYNC_PF_EN, 0x14000 | (1 << 3) | 1); /* as interrupt */

	/* The LAPIC: a TPR, and its timer in TSC-deadline mode, armed far ahead. */
	CHECK(ioctl(a->vcpu_fd, KVM_GET_LAPIC, &lapic) == 0);
	set_lapic_reg(&lapic, APIC_TPR, 0x20);
	set_lapic_reg(&lapic, APIC_SPIV, 0x1ff);
	set_lapic_reg(&lapic, APIC_LVTT, (2u << 17) | 0xec);
	CHECK(ioctl(a->vcpu_fd, KVM_SET_LAPIC, &lapic) == 0);
	tsc = get_msr(a->vcpu_fd, MSR_IA32_TSC);
	set_msr(a->vcpu_fd, MSR_IA32_TSC_DEADLINE, tsc + 1000000000000ULL);

	/* An NMI waiting, an interrupt shadow, and the vCPU halted. */
	CHECK(ioctl(a->vcpu_fd, KVM_GET_VCPU_EVENTS, &events) == 0);
	events.nmi.pending = 1;
	events.interrupt.shadow = KVM_X86_SHADOW_INT_MOV_SS;
	events.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
	CHECK(ioctl(a->vcpu_fd, KVM_SET_VCPU_EVENTS, &events) == 0);
	CHECK(ioctl(a->vcpu_fd, KVM_SET_MP_STATE, &halted) == 0);
}

/* A's vCPU with distinctive state, saved into w; A stays open for comparison. */
static bool save_distinctive(struct test_vm *a, struct state_writer *w)
{
	if (!vm_open(a, 2))
		return false;
	make_distinctive(a);
	state_writer_init(w);
	CHECK(cpu_state_save(a->kvm_fd, a->vcpu_fd, w) == 0);
	return !w->failed && w->len > SECTION_HEADER;
}

TEST(vcpu_continues_in_another_vm)
{
	struct test_vm a, b;
	struct state_writer w;
	struct state_reader r;
	struct snapshot_view va, vb;
	unsigned khz;

	if (!save_distinctive(&a, &w))
		goto out_a;
	view(a.vcpu_fd, &va);
	if (!vm_open(&b, 1))
		goto out_a;
	state_reader_init(&r, w.buf, w.len);
	CHECK(cpu_state_load(b.kvm_fd, b.vcpu_fd, &r) == 0);
	CHECK(r.pos == r.len);
	view(b.vcpu_fd, &vb);

	CHECK(!memcmp(&va.regs, &vb.regs, sizeof(va.regs)));
	CHECK(vb.regs.rip == 0x1234567 && vb.regs.r15 == 0x0123456789abcdefULL);
	CHECK(!memcmp(&va.sregs, &vb.sregs, sizeof(va.sregs)));
	CHECK(vb.sregs.cr2 == 0xdeadb000 && vb.sregs.fs.base == 0x7f0012345000);
	CHECK(vb.sregs.cs.l == 1 && (vb.sregs.efer & 0x500) == 0x500); /* long mode */
	/* The legacy area and the XSAVE header; XMM0 in particular. */
	CHECK(!memcmp(va.xsave, vb.xsave, 576));
	CHECK(vb.xsave[160] == 0xa0 && vb.xsave[175] == 0xaf);
	CHECK(!memcmp(&va.xcrs, &vb.xcrs, sizeof(va.xcrs)));
	CHECK(!memcmp(va.debugregs.db, vb.debugregs.db, sizeof(va.debugregs.db)));
	CHECK(va.debugregs.dr6 == vb.debugregs.dr6 && va.debugregs.dr7 == vb.debugregs.dr7);
	CHECK(vb.debugregs.db[3] == 0x4000 && vb.debugregs.dr7 == 0x401);
	CHECK(!memcmp(&va.lapic, &vb.lapic, sizeof(va.lapic)));
	CHECK(lapic_reg(&vb.lapic, APIC_TPR) == 0x20);
	CHECK(lapic_reg(&vb.lapic, APIC_LVTT) == ((2u << 17) | 0xec));
	for (size_t i = 0; i < sizeof(test_msrs) / sizeof(test_msrs[0]); i++) {
		if (va.msrs[i] != vb.msrs[i])
			printf("  MSR 0x%x: 0x%llx in A, 0x%llx in B\n", test_msrs[i],
			       (unsigned long long)va.msrs[i], (unsigned long long)vb.msrs[i]);
		CHECK(va.msrs[i] == vb.msrs[i]);
	}
	CHECK(view_msr(&vb, MSR_LSTAR) == 0xffffffff81a00000ULL);
	CHECK(view_msr(&vb, MSR_KVM_ASYNC_PF_INT) == 0xf3);
	CHECK(view_msr(&vb, MSR_IA32_TSC_DEADLINE) > va.tsc + 999000000000ULL); /* still armed */
	/* The TSC goes on from where it was: not behind, and not more than 10 s ahead. */
	khz = ioctl(b.vcpu_fd, KVM_GET_TSC_KHZ, 0);
	CHECK(vb.tsc >= va.tsc && vb.tsc - va.tsc < 10000ULL * khz * 1000);
	CHECK(va.events.nmi.pending == 1 && vb.events.nmi.pending == 1);
	CHECK(vb.events.interrupt.shadow == KVM_X86_SHADOW_INT_MOV_SS);
	CHECK(vb.mp_state.mp_state == KVM_MP_STATE_HALTED);
	/* CPUID comes from A (made for 2 CPUs), not from B's own set-up (for 1). */
	CHECK(va.cpuid_leaf1_ebx == vb.cpuid_leaf1_ebx && ((vb.cpuid_leaf1_ebx >> 16) & 0xff) == 2);
	vm_close(&b);
out_a:
	state_writer_free(&w);
	vm_close(&a);
}

/* Loads a copy of buf[0..len) with patch applied (4 bytes at offset, if offset < len). */
static int load_patched(const struct test_vm *vm, const uint8_t *buf, size_t len,
			size_t offset, uint32_t patch)
{
	uint8_t *copy = malloc(len ?: 1);
	struct state_reader r;
	int ret;

	memcpy(copy, buf, len);
	if (offset + 4 <= len)
		put_le32(copy + offset, patch);
	state_reader_init(&r, copy, len);
	ret = cpu_state_load(vm->kvm_fd, vm->vcpu_fd, &r);
	free(copy);
	return ret;
}

TEST(damaged_sections_are_refused)
{
	struct test_vm a, c;
	struct state_writer w;
	size_t len, refused = 0;
	uint8_t *buf;
	uint32_t nent;

	if (!save_distinctive(&a, &w))
		goto out_a;
	if (!vm_open(&c, 1))
		goto out_a;
	buf = w.buf;
	len = w.len;
	nent = get_le32(buf + SECTION_HEADER + 4); /* after the TSC rate */

	/* Cut anywhere: in the header, in the body, one byte short. */
	for (size_t cut = 0; cut < len; cut += cut < 64 ? 1 : 97)
		CHECK(load_patched(&c, buf, cut, len, 0) == -EINVAL);
	CHECK(load_patched(&c, buf, len - 1, len, 0) == -EINVAL);
	/* A body length that leaves the last field out, or claims more than there is. */
	CHECK(load_patched(&c, buf, len, 6, len - SECTION_HEADER - 1) == -EINVAL);
	CHECK(load_patched(&c, buf, len, 6, len - SECTION_HEADER + 1) == -EINVAL);
	CHECK(load_patched(&c, buf, len, 6, 0xffffffff) == -EINVAL);
	/* The CPUID entry count: huge, one more, one fewer, none. */
	CHECK(load_patched(&c, buf, len, SECTION_HEADER + 4, 0xffffffff) == -EINVAL);
	CHECK(load_patched(&c, buf, len, SECTION_HEADER + 4, 257) == -EINVAL);
	CHECK(load_patched(&c, buf, len, SECTION_HEADER + 4, nent + 1) == -EINVAL);
	CHECK(load_patched(&c, buf, len, SECTION_HEADER + 4, nent - 1) == -EINVAL);
	CHECK(load_patched(&c, buf, len, SECTION_HEADER + 4, 0) == -EINVAL);
	/* Another version (bytes 4-5), another tag. */
	CHECK(load_patched(&c, buf, len, 4, (get_le32(buf + 4) & 0xffff0000) | 2) ==
	      -EINVAL);
	CHECK(load_patched(&c, buf, len, 4, get_le32(buf + 4) & 0xffff0000) == -EINVAL);
	CHECK(load_patched(&c, buf, len, 0, 0x55504358) == -EINVAL); /* "XCPU" */

	/*
	 * Every 4-byte field position overwritten with all ones and with zeroes: the counts and
	 * sizes among them (XSAVE size, XCR count, MSR count...) must be refused, other values
	 * may be refused by KVM or taken; nothing may crash or read out of bounds (ASan).
	 */
	for (size_t off = SECTION_HEADER; off + 4 <= len; off += 4) {
		int r1 = load_patched(&c, buf, len, off, 0xffffffff);
		int r2 = load_patched(&c, buf, len, off, 0);

		CHECK(r1 <= 0 && r2 <= 0);
		refused += (r1 < 0) + (r2 < 0);
	}
	printf("  %zu of %zu damaged copies refused\n", refused, (len - SECTION_HEADER) / 2);
	/* The undamaged section still loads into the vCPU the damaged ones were tried on. */
	CHECK(load_patched(&c, buf, len, len, 0) == 0);
	vm_close(&c);
out_a:
	state_writer_free(&w);
	vm_close(&a);
}

TEST(kvmclock_resumes_where_saved)
{
	struct test_vm a, b;
	struct kvm_clock_data clock = { .clock = 1000000000000ULL }; /* 1000 s */
	struct state_writer w;
	struct state_reader r;
	uint8_t *copy;

	state_writer_init(&w);
	if (!vm_open(&a, 1))
		goto out;
	if (!vm_open(&b, 1)) {
		vm_close(&a);
		goto out;
	}
	CHECK(ioctl(a.vm_fd, KVM_SET_CLOCK, &clock) == 0);
	CHECK(vm_state_save_clock(a.vm_fd, &w) == 0);
	state_reader_init(&r, w.buf, w.len);
	CHECK(vm_state_load_clock(b.vm_fd, &r) == 0 && r.pos == r.len);
	memset(&clock, 0, sizeof(clock));
	CHECK(ioctl(b.vm_fd, KVM_GET_CLOCK, &clock) == 0);
	CHECK(clock.clock >= 1000000000000ULL && clock.clock < 1005000000000ULL);

	copy = malloc(w.len);
	memcpy(copy, w.buf, w.len);
	state_reader_init(&r, copy, w.len - 1);
	CHECK(vm_state_load_clock(b.vm_fd, &r) == -EINVAL); /* truncated */
	put_le32(copy + SECTION_HEADER + 8, 1u << 12);	    /* a flag KVM does not have */
	state_reader_init(&r, copy, w.len);
	CHECK(vm_state_load_clock(b.vm_fd, &r) == -EINVAL);
	memcpy(copy, w.buf, w.len);
	copy[4] = 2; /* version */
	state_reader_init(&r, copy, w.len);
	CHECK(vm_state_load_clock(b.vm_fd, &r) == -EINVAL);
	free(copy);
	vm_close(&b);
	vm_close(&a);
out:
	state_writer_free(&w);
}

/* Runs the vCPU to its next exit, which must be port I/O on port in direction dir. */
static uint8_t *next_io(struct test_vm *vm, uint16_t port, uint8_t dir)
{
	CHECK(ioctl(vm->vcpu_fd, KVM_RUN, 0) == 0);
	CHECK(vm->run->exit_reason == KVM_EXIT_IO && vm->run->io.port == port &&
	      vm->run->io.direction == dir);
	return (uint8_t *)vm->run + vm->run->io.data_offset;
}

/* Real mode at CODE_ADDR: in al, INPUT_PORT; out DEBUG_PORT, al; jmp back. */
static bool start_echo(struct test_vm *vm)
{
	static const uint8_t code[] = { 0xe4, INPUT_PORT, 0xe6, DEBUG_PORT, 0xeb, 0xfa };
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = CODE_ADDR, .rflags = 0x2 };

	memcpy(vm->mem + CODE_ADDR, code, sizeof(code));
	CHECK(ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs) == 0);
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	return ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sregs) == 0 &&
	       ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs) == 0;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

/*
 * The guest's TSC-deadline timer, due 0.2 s after it was set in A, interrupts the guest in
 * B about 0.2 s after the load. Its deadline is measured against the restored TSC; measured
 * against B's own (0 at set-up) it would be hours away. The interrupt handler (real mode,
 * IVT entry TIMER_VECTOR) reports on TIMER_PORT.
 */
TEST(tsc_deadline_timer_fires_after_restore)
{
	static const uint8_t handler[] = { 0xe6, TIMER_PORT, 0xcf }; /* out TIMER_PORT, al; iret */
	struct test_vm a, b;
	struct kvm_lapic_state lapic;
	struct kvm_regs regs;
	struct state_writer w;
	struct state_reader r;
	struct timespec loaded;
	double fired = -1;
	uint64_t tsc;
	int khz;

	state_writer_init(&w);
	if (!vm_open(&a, 1))
		goto out;
	CHECK(start_echo(&a));
	memcpy(a.mem + HANDLER_ADDR, handler, sizeof(handler));
	put_le16(a.mem + TIMER_VECTOR * 4, HANDLER_ADDR); /* IP, then CS 0 */
	CHECK(ioctl(a.vcpu_fd, KVM_GET_REGS, &regs) == 0);
	regs.rflags |= 0x200; /* IF */
	CHECK(ioctl(a.vcpu_fd, KVM_SET_REGS, &regs) == 0);
	CHECK(ioctl(a.vcpu_fd, KVM_GET_LAPIC, &lapic) == 0);
	set_lapic_reg(&lapic, APIC_SPIV, 0x1ff);
	set_lapic_reg(&lapic, APIC_LVTT, (2u << 17) | TIMER_VECTOR);
	CHECK(ioctl(a.vcpu_fd, KVM_SET_LAPIC, &lapic) == 0);
	khz = ioctl(a.vcpu_fd, KVM_GET_TSC_KHZ, 0);
	CHECK(khz > 0);
	set_msr(a.vcpu_fd, MSR_IA32_TSC, 0x123456789000ULL);
	tsc = get_msr(a.vcpu_fd, MSR_IA32_TSC);
	set_msr(a.vcpu_fd, MSR_IA32_TSC_DEADLINE, tsc + (uint64_t)khz * 200);
	CHECK(cpu_state_save(a.kvm_fd, a.vcpu_fd, &w) == 0);

	if (!vm_open(&b, 1)) {
		vm_close(&a);
		goto out;
	}
	memcpy(b.mem, a.mem, MEM_SIZE);
	vm_close(&a);
	state_reader_init(&r, w.buf, w.len);
	CHECK(cpu_state_load(b.kvm_fd, b.vcpu_fd, &r) == 0);
	clock_gettime(CLOCK_MONOTONIC, &loaded);
	while (seconds_since(&loaded) < 3) {
		if (ioctl(b.vcpu_fd, KVM_RUN, 0) < 0 || b.run->exit_reason != KVM_EXIT_IO)
			break;
		if (b.run->io.port == TIMER_PORT) {
			fired = seconds_since(&loaded);
			break;
		}
	}
	printf("  timer interrupt %.3f s after the load\n", fired);
	CHECK(fired >= 0 && fired < 1.5);
	vm_close(&b);
out:
	state_writer_free(&w);
}

/*
 * A guest echoes what it reads from INPUT_PORT to DEBUG_PORT. A is saved while its IN waits
 * for completion; B, loaded from it, carries on with the OUT of that value.
 */
TEST(running_guest_continues_after_restore)
{
	struct test_vm a, b;
	struct state_writer w;
	struct state_reader r;
	struct kvm_regs regs;

	state_writer_init(&w);
	if (!vm_open(&a, 1))
		goto out;
	CHECK(start_echo(&a));
	for (uint8_t i = 1; i <= 50; i++) {
		*next_io(&a, INPUT_PORT, KVM_EXIT_IO_IN) = i;
		CHECK(*next_io(&a, DEBUG_PORT, KVM_EXIT_IO_OUT) == i);
	}
	*next_io(&a, INPUT_PORT, KVM_EXIT_IO_IN) = 51;
	/*
	 * The IN is finished, AL written, only when KVM_RUN is entered again (api.rst,
	 * immediate_exit): enter it with immediate_exit, which returns EINTR without running
	 * the guest. Saved before that, B would do the IN again.
	 */
	a.run->immediate_exit = 1;
	CHECK(ioctl(a.vcpu_fd, KVM_RUN, 0) < 0 && errno == EINTR);
	a.run->immediate_exit = 0;
	CHECK(ioctl(a.vcpu_fd, KVM_GET_REGS, &regs) == 0 && (regs.rax & 0xff) == 51);
	CHECK(cpu_state_save(a.kvm_fd, a.vcpu_fd, &w) == 0);

	if (!vm_open(&b, 1)) {
		vm_close(&a);
		goto out;
	}
	memcpy(b.mem, a.mem, MEM_SIZE); /* what the snapshot's memory file carries */
	state_reader_init(&r, w.buf, w.len);
	CHECK(cpu_state_load(b.kvm_fd, b.vcpu_fd, &r) == 0);
	CHECK(*next_io(&b, DEBUG_PORT, KVM_EXIT_IO_OUT) == 51);
	*next_io(&b, INPUT_PORT, KVM_EXIT_IO_IN) = 52;
	CHECK(*next_io(&b, DEBUG_PORT, KVM_EXIT_IO_OUT) == 52);
	/* And A, from the same point, does the same. */
	CHECK(*next_io(&a, DEBUG_PORT, KVM_EXIT_IO_OUT) == 51);
	vm_close(&b);
	vm_close(&a);
out:
	state_writer_free(&w);
}

/*
 * TEST_MAIN's main() runs every test; it is renamed so that without /dev/kvm the tests are
 * reported as skipped rather than run.
 */
#define main run_all_tests
TEST_MAIN(T(vcpu_continues_in_another_vm), T(tsc_deadline_timer_fires_after_restore),
	  T(damaged_sections_are_refused), T(kvmclock_resumes_where_saved),
	  T(running_guest_continues_after_restore))
#undef main

int main(void)
{
	static const char *const names[] = {
		"vcpu_continues_in_another_vm",	 "tsc_deadline_timer_fires_after_restore",
		"damaged_sections_are_refused",	 "kvmclock_resumes_where_saved",
		"running_guest_continues_after_restore",
	};
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			printf("SKIP %s: /dev/kvm: %s\n", names[i], strerror(errno));
		return 0;
	}
	close(fd);
	return run_all_tests();
}
