#include "cpu_state.h"

#include "../../log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define VCPU_TAG      "VCPU"
#define VCPU_VERSION  1
#define CLOCK_TAG     "KCLK"
#define CLOCK_VERSION 1

#define MAX_CPUID_ENTRIES 256 /* KVM_MAX_CPUID_ENTRIES */
#define MAX_MSRS	  4096 /* far more than any KVM lists: bounds what a file can ask for */
#define MSRS_PER_IOCTL	  255 /* KVM refuses nmsrs >= 256 (MAX_IO_MSRS, arch/x86/kvm/x86.c) */
#define XSAVE_MAX_SIZE	  (1u << 20)
/* What boot-time TSC calibration varies by between hosts of one model (QEMU, Firecracker). */
#define TSC_KHZ_TOLERANCE_PPM 250

#define MSR_IA32_TSC		   0x10
#define MSR_IA32_APICBASE	   0x1b
#define MSR_IA32_FEAT_CTL	   0x3a
#define MSR_IA32_SPEC_CTRL	   0x48
#define MSR_IA32_PERF_CAPABILITIES 0x345
#define MSR_IA32_TSC_DEADLINE	   0x6e0
#define MSR_IA32_VMX_FIRST	   0x480
#define MSR_IA32_VMX_LAST	   0x49f
#define MSR_TSC_AUX		   0xc0000103
#define MSR_HYPERV_FIRST	   0x40000000
#define MSR_HYPERV_LAST		   0x400001ff
#define MSR_KVM_ASYNC_PF_EN	   0x4b564d02
#define MSR_KVM_ASYNC_PF_INT	   0x4b564d06

#define EFER_SVME		   (1ull << 12)
#define CR4_VMXE		   (1ull << 13)

#define APIC_LVTT		   0x320
#define APIC_LVT_MASKED		   (1u << 16)
#define APIC_LVT_TIMER_MODE	   (3u << 17)
#define APIC_LVT_TIMER_TSCDEADLINE (2u << 17)

#define VCPU_EVENTS_FLAGS                                                                  \
	(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |               \
	 KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_PAYLOAD | \
	 KVM_VCPUEVENT_VALID_TRIPLE_FAULT)
#define CLOCK_FLAGS (KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC)

/*
 * Which MSRs: every MSR KVM_GET_MSR_INDEX_LIST names (api.rst: the guest MSRs this KVM
 * supports on this host, the ones to save and restore: the SYSCALL and SYSENTER MSRs,
 * KERNEL_GS_BASE, IA32_TSC and TSC_ADJUST, TSC_DEADLINE, PAT, MISC_ENABLE, the kvmclock,
 * async-PF, PV-EOI, steal-time and poll-control MSRs, MCG_STATUS and MCG_CTL, and where the
 * host has them SPEC_CTRL, TSC_AUX, XSS, the PMU's counters...), plus MSRs KVM emulates
 * but does not list: the MTRRs (cpu_init_vcpu sets the default type; a guest may change
 * them), the machine-check banks, and TSC_AUX and SPEC_CTRL for hosts that leave them off
 * the list although they emulate them (this project's hosts omit TSC_AUX). Each is kept if
 * this vCPU reads it: KVM lists what the host supports, not what this vCPU's CPUID offers.
 * Left out:
 * - APIC_BASE, which the special registers carry and must set before the LAPIC; EFER,
 *   FS_BASE and GS_BASE, which KVM does not list, travel in the special registers too;
 * - the Hyper-V MSRs: skiff's CPUID offers no Hyper-V interface, so a guest holds no state
 *   in them, and some of them act when written;
 * - the VMX capability MSRs: they describe nested VMX, whose state skiff does not save.
 */
static const struct {
	uint32_t first, count;
} extra_msrs[] = {
	{ MSR_IA32_SPEC_CTRL, 1 },
	{ 0x200, 16 }, /* variable-range MTRRs: 8 base/mask pairs */
	{ 0x250, 1 },  /* fixed-range MTRRs */
	{ 0x258, 2 },
	{ 0x268, 8 },
	{ 0x280, 32 }, /* MCi_CTL2 (CMCI) */
	{ 0x2ff, 1 },  /* MTRR default type */
	{ 0x400, 128 }, /* machine-check banks: CTL, STATUS, ADDR, MISC for KVM's 32 banks */
	{ MSR_TSC_AUX, 1 },
};

static bool msr_left_out(uint32_t index)
{
	return index == MSR_IA32_APICBASE ||
	       (index >= MSR_HYPERV_FIRST && index <= MSR_HYPERV_LAST) ||
	       (index >= MSR_IA32_VMX_FIRST && index <= MSR_IA32_VMX_LAST);
}

/*
 * The order MSRs are loaded in; KVM_SET_MSRS writes its entries in order.
 * 0: PERF_CAPABILITIES, as a new value refreshes the PMU and resets its counters; and
 *    FEATURE_CONTROL, which QEMU's kvm_arch_put_registers writes before anything else.
 * 1: IA32_TSC: the time the deadline is measured against (5).
 * 2, 4: ASYNC_PF_INT before ASYNC_PF_EN: the vector must be set before async page faults
 *    are enabled (Documentation/virt/kvm/x86/msr.rst, MSR_KVM_ASYNC_PF_INT).
 * 5: TSC_DEADLINE last: KVM arms the timer when it is written, comparing it with the guest
 *    TSC then, and drops the write unless the LAPIC timer is already in TSC-deadline mode.
 *    So the LAPIC and IA32_TSC go first (Firecracker defers it for the same reason).
 */
static int msr_load_rank(uint32_t index)
{
	switch (index) {
	case MSR_IA32_FEAT_CTL:
	case MSR_IA32_PERF_CAPABILITIES:
		return 0;
	case MSR_IA32_TSC:
		return 1;
	case MSR_KVM_ASYNC_PF_INT:
		return 2;
	case MSR_KVM_ASYNC_PF_EN:
		return 4;
	case MSR_IA32_TSC_DEADLINE:
		return 5;
	default:
		return 3;
	}
}
#define MSR_LOAD_RANKS 6

/* Everything KVM keeps for one vCPU, as its ioctls give it. */
struct vcpu_state {
	__u32 tsc_khz; /* 0: KVM could not tell */
	struct kvm_cpuid2 *cpuid;
	struct kvm_mp_state mp_state;
	struct kvm_regs regs;
	/* KVM_GET_SREGS2's layout: with KVM_GET_SREGS, flags and pdptrs are 0 */
	struct kvm_sregs2 sregs;
	__u32 xsave_size;
	struct kvm_xsave *xsave; /* xsave_size bytes */
	struct kvm_xcrs xcrs;
	struct kvm_debugregs debugregs;
	struct kvm_lapic_state lapic;
	struct kvm_msrs *msrs;
	struct kvm_vcpu_events events;
};

static void vcpu_state_free(struct vcpu_state *s)
{
	free(s->cpuid);
	free(s->xsave);
	free(s->msrs);
}

/* One ioctl; on failure, one log line naming it. Returns its result or -errno. */
static int kvm_ioctl(int fd, unsigned long request, const char *name, void *arg)
{
	int ret = ioctl(fd, request, arg);

	if (ret < 0) {
		ret = -errno;
		log_error("%s: %s", name, strerror(errno));
	}
	return ret;
}
#define KVM_IOCTL(fd, request, arg) kvm_ioctl(fd, request, #request, arg)

/*
 * The bytes KVM_GET_XSAVE2 writes and KVM_SET_XSAVE reads: KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2)
 * (api.rst, KVM_GET_XSAVE2), never less than struct kvm_xsave's 4 KiB; more once the process
 * has been granted dynamic features such as AMX (arch_prctl ARCH_REQ_XCOMP_GUEST_PERM).
 */
static __u32 xsave_size(int kvm_fd)
{
	int size = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);

	return size > (int)sizeof(struct kvm_xsave) ? (__u32)size : sizeof(struct kvm_xsave);
}

static bool has_sregs2(int kvm_fd)
{
	return ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SREGS2) > 0;
}

static int compare_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The MSR numbers worth trying (see extra_msrs), sorted, each once. */
static int msrs_to_try(int kvm_fd, uint32_t **out, unsigned *count)
{
	struct kvm_msr_list probe = { .nmsrs = 0 }, *list;
	unsigned n = 0, extra = 0;
	uint32_t *index;
	int ret;

	/* api.rst, KVM_GET_MSR_INDEX_LIST: E2BIG, with nmsrs set to the number it has */
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG) {
		int err = -errno;

		log_error("KVM_GET_MSR_INDEX_LIST: %s", strerror(errno));
		return err;
	}
	for (size_t i = 0; i < sizeof(extra_msrs) / sizeof(extra_msrs[0]); i++)
		extra += extra_msrs[i].count;
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	index = calloc(probe.nmsrs + extra, sizeof(*index));
	if (!list || !index) {
		free(list);
		free(index);
		return -ENOMEM;
	}
	list->nmsrs = probe.nmsrs;
	ret = KVM_IOCTL(kvm_fd, KVM_GET_MSR_INDEX_LIST, list);
	if (ret < 0) {
		free(list);
		free(index);
		return ret;
	}
	for (unsigned i = 0; i < list->nmsrs && i < probe.nmsrs; i++)
		if (!msr_left_out(list->indices[i]))
			index[n++] = list->indices[i];
	for (size_t i = 0; i < sizeof(extra_msrs) / sizeof(extra_msrs[0]); i++)
		for (uint32_t j = 0; j < extra_msrs[i].count; j++)
			index[n++] = extra_msrs[i].first + j;
	free(list);
	qsort(index, n, sizeof(*index), compare_u32);
	*count = 0;
	for (unsigned i = 0; i < n; i++)
		if (*count == 0 || index[i] != index[*count - 1])
			index[(*count)++] = index[i];
	*out = index;
	return 0;
}

static struct kvm_msrs *msrs_alloc(unsigned n)
{
	struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + n * sizeof(msrs->entries[0]));

	if (msrs)
		msrs->nmsrs = n;
	return msrs;
}

/*
 * The value of each MSR in index[] that this vCPU can read. KVM_GET_MSRS stops at the first
 * MSR it cannot read and returns how many it did (api.rst, KVM_GET_MSRS).
 */
static int read_msrs(int vcpu_fd, const uint32_t *index, unsigned n, struct kvm_msrs **out)
{
	struct kvm_msrs *msrs = msrs_alloc(n), *batch = msrs_alloc(MSRS_PER_IOCTL);
	unsigned done = 0, kept = 0;
	int ret = msrs && batch ? 0 : -ENOMEM;

	while (!ret && done < n) {
		unsigned chunk = n - done < MSRS_PER_IOCTL ? n - done : MSRS_PER_IOCTL;
		int got;

		batch->nmsrs = chunk;
		for (unsigned i = 0; i < chunk; i++)
			batch->entries[i] = (struct kvm_msr_entry){ .index = index[done + i] };
		got = KVM_IOCTL(vcpu_fd, KVM_GET_MSRS, batch);
		if (got < 0) {
			ret = got;
			break;
		}
		memcpy(&msrs->entries[kept], batch->entries, got * sizeof(batch->entries[0]));
		kept += got;
		done += got;
		if ((unsigned)got < chunk)
			done++; /* index[done] is not one this vCPU has: skip it */
	}
	free(batch);
	if (ret) {
		free(msrs);
		return ret;
	}
	msrs->nmsrs = kept;
	*out = msrs;
	return 0;
}

static int write_msrs(int vcpu_fd, const struct kvm_msrs *msrs)
{
	struct kvm_msrs *batch = msrs_alloc(MSRS_PER_IOCTL);
	int ret = batch ? 0 : -ENOMEM;

	for (unsigned done = 0; !ret && done < msrs->nmsrs;) {
		unsigned left = msrs->nmsrs - done;
		unsigned chunk = left < MSRS_PER_IOCTL ? left : MSRS_PER_IOCTL;
		int got;

		batch->nmsrs = chunk;
		memcpy(batch->entries, &msrs->entries[done], chunk * sizeof(batch->entries[0]));
		got = KVM_IOCTL(vcpu_fd, KVM_SET_MSRS, batch);
		if (got < 0) {
			ret = got;
		} else if ((unsigned)got < chunk) {
			/* KVM_SET_MSRS, like KVM_GET_MSRS, stops at the first one it refuses */
			log_error("KVM_SET_MSRS: KVM refused MSR 0x%x = 0x%llx",
				  batch->entries[got].index, batch->entries[got].data);
			ret = -EINVAL;
		}
		done += chunk;
	}
	free(batch);
	return ret;
}

/* The MSRs in load order (msr_load_rank), each rank in its saved order. */
static struct kvm_msrs *msrs_in_load_order(const struct kvm_msrs *msrs)
{
	struct kvm_msrs *sorted = msrs_alloc(msrs->nmsrs);
	unsigned n = 0;

	if (!sorted)
		return NULL;
	for (int rank = 0; rank < MSR_LOAD_RANKS; rank++)
		for (unsigned i = 0; i < msrs->nmsrs; i++)
			if (msr_load_rank(msrs->entries[i].index) == rank)
				sorted->entries[n++] = msrs->entries[i];
	return sorted;
}

static struct kvm_msr_entry *find_msr(struct kvm_msrs *msrs, uint32_t index)
{
	for (unsigned i = 0; i < msrs->nmsrs; i++)
		if (msrs->entries[i].index == index)
			return &msrs->entries[i];
	return NULL;
}

/*
 * KVM clears the deadline when it delivers the timer's interrupt. Firecracker found vCPUs
 * saved with the LAPIC timer armed in TSC-deadline mode, the deadline at 0 and the tick in
 * none of the saved state; restored, their guests never had another timer interrupt. Such
 * a deadline is saved as due now: at worst the guest takes one spurious timer interrupt,
 * which Linux's clockevents code takes in its stride.
 */
static void keep_expired_deadline(struct vcpu_state *s)
{
	struct kvm_msr_entry *deadline = find_msr(s->msrs, MSR_IA32_TSC_DEADLINE);
	struct kvm_msr_entry *tsc = find_msr(s->msrs, MSR_IA32_TSC);
	uint32_t lvtt;

	memcpy(&lvtt, s->lapic.regs + APIC_LVTT, sizeof(lvtt));
	if (deadline && tsc && deadline->data == 0 && !(lvtt & APIC_LVT_MASKED) &&
	    (lvtt & APIC_LVT_TIMER_MODE) == APIC_LVT_TIMER_TSCDEADLINE)
		deadline->data = tsc->data;
}

static void sregs_from_legacy(struct kvm_sregs2 *s, const struct kvm_sregs *l)
{
	/*
	 * interrupt_bitmap is left behind: it holds the external interrupt being injected,
	 * which KVM_GET_VCPU_EVENTS also reports (interrupt.injected, nr) and restores.
	 */
	memset(s, 0, sizeof(*s));
	s->cs = l->cs, s->ds = l->ds, s->es = l->es, s->fs = l->fs, s->gs = l->gs;
	s->ss = l->ss, s->tr = l->tr, s->ldt = l->ldt;
	s->gdt = l->gdt, s->idt = l->idt;
	s->cr0 = l->cr0, s->cr2 = l->cr2, s->cr3 = l->cr3, s->cr4 = l->cr4, s->cr8 = l->cr8;
	s->efer = l->efer, s->apic_base = l->apic_base;
}

static void sregs_to_legacy(struct kvm_sregs *l, const struct kvm_sregs2 *s)
{
	memset(l, 0, sizeof(*l));
	l->cs = s->cs, l->ds = s->ds, l->es = s->es, l->fs = s->fs, l->gs = s->gs;
	l->ss = s->ss, l->tr = s->tr, l->ldt = s->ldt;
	l->gdt = s->gdt, l->idt = s->idt;
	l->cr0 = s->cr0, l->cr2 = s->cr2, l->cr3 = s->cr3, l->cr4 = s->cr4, l->cr8 = s->cr8;
	l->efer = s->efer, l->apic_base = s->apic_base;
}

/*
 * KVM_GET_SREGS2 where the kernel has it (5.14): it adds the PDPTRs a PAE guest's CPU has
 * cached, which may differ from the page-directory-pointer table now in memory.
 */
static int get_sregs(int vcpu_fd, bool sregs2, struct kvm_sregs2 *s)
{
	struct kvm_sregs legacy;
	int ret;

	if (sregs2)
		return KVM_IOCTL(vcpu_fd, KVM_GET_SREGS2, s);
	ret = KVM_IOCTL(vcpu_fd, KVM_GET_SREGS, &legacy);
	if (!ret)
		sregs_from_legacy(s, &legacy);
	return ret;
}

/*
 * Without KVM_SET_SREGS2 here, saved PDPTRs are dropped: KVM then reads them from the table
 * at CR3, as the CPU does on its next MOV to CR3.
 */
static int set_sregs(int vcpu_fd, bool sregs2, struct kvm_sregs2 *s)
{
	struct kvm_sregs legacy;

	if (sregs2)
		return KVM_IOCTL(vcpu_fd, KVM_SET_SREGS2, s);
	sregs_to_legacy(&legacy, s);
	return KVM_IOCTL(vcpu_fd, KVM_SET_SREGS, &legacy);
}

static int get_xsave(int vcpu_fd, __u32 size, struct vcpu_state *s)
{
	s->xsave = calloc(1, size);
	if (!s->xsave)
		return -ENOMEM;
	s->xsave_size = size;
	/* api.rst: KVM_GET_XSAVE2 for an area larger than struct kvm_xsave */
	if (size > sizeof(struct kvm_xsave))
		return KVM_IOCTL(vcpu_fd, KVM_GET_XSAVE2, s->xsave);
	return KVM_IOCTL(vcpu_fd, KVM_GET_XSAVE, s->xsave);
}

static int get_vcpu_state(int vcpu_fd, int kvm_fd, struct vcpu_state *s)
{
	uint32_t *index = NULL;
	unsigned nr_index = 0;
	int khz, ret;

	s->cpuid = calloc(1, sizeof(*s->cpuid) + MAX_CPUID_ENTRIES * sizeof(s->cpuid->entries[0]));
	if (!s->cpuid)
		return -ENOMEM;
	s->cpuid->nent = MAX_CPUID_ENTRIES;
	/*
	 * MP state first: KVM_GET_MP_STATE has the LAPIC act on a pending INIT or SIPI, which
	 * changes the registers and the LAPIC (QEMU's kvm_arch_get_registers and Firecracker's
	 * save_state read it before the registers for this reason).
	 */
	ret = KVM_IOCTL(vcpu_fd, KVM_GET_MP_STATE, &s->mp_state);
	ret = ret ?: KVM_IOCTL(vcpu_fd, KVM_GET_REGS, &s->regs);
	ret = ret ?: get_sregs(vcpu_fd, has_sregs2(kvm_fd), &s->sregs);
	ret = ret ?: get_xsave(vcpu_fd, xsave_size(kvm_fd), s);
	ret = ret ?: KVM_IOCTL(vcpu_fd, KVM_GET_XCRS, &s->xcrs);
	ret = ret ?: KVM_IOCTL(vcpu_fd, KVM_GET_DEBUGREGS, &s->debugregs);
	ret = ret ?: KVM_IOCTL(vcpu_fd, KVM_GET_LAPIC, &s->lapic);
	ret = ret ?: KVM_IOCTL(vcpu_fd, KVM_GET_CPUID2, s->cpuid);
	ret = ret ?: msrs_to_try(kvm_fd, &index, &nr_index);
	ret = ret ?: read_msrs(vcpu_fd, index, nr_index, &s->msrs);
	/* Pending events last, as Firecracker's save_state: the reads above may move state
	 * into them. */
	ret = ret ?: KVM_IOCTL(vcpu_fd, KVM_GET_VCPU_EVENTS, &s->events);
	free(index);
	if (ret)
		return ret;
	/* api.rst, KVM_GET_TSC_KHZ: absent without KVM_CAP_GET_TSC_KHZ; 0 then means unknown */
	khz = ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0);
	s->tsc_khz = khz > 0 ? (__u32)khz : 0;
	if (s->xcrs.nr_xcrs > KVM_MAX_XCRS || s->cpuid->nent > MAX_CPUID_ENTRIES ||
	    s->msrs->nmsrs > MAX_MSRS) {
		log_error("KVM returned more XCRs, CPUID entries or MSRs than it can");
		return -EIO;
	}
	/*
	 * A guest that turned on SVM or VMX may be running a guest of its own, whose state is
	 * in KVM_GET_NESTED_STATE, which skiff does not save: better no snapshot than one that
	 * does not resume.
	 */
	if ((s->sregs.efer & EFER_SVME) || (s->sregs.cr4 & CR4_VMXE)) {
		log_error("the guest has turned on nested virtualization, whose state skiff does "
			  "not save");
		return -ENOTSUP;
	}
	keep_expired_deadline(s);
	return 0;
}

/*
 * Both directions through one description of the section, so that save and load cannot
 * drift apart: with w set it writes the fields, with r set it reads them into place.
 */
struct transfer {
	struct state_writer *w;
	struct state_reader *r;
	const char *damaged; /* load: what was found out of range */
};

static void mark_damaged(struct transfer *t, const char *what)
{
	if (!t->damaged)
		t->damaged = what;
}

static void xfer_u8(struct transfer *t, __u8 *v)
{
	if (t->w)
		state_put_u8(t->w, *v);
	else
		*v = state_get_u8(t->r);
}

static void xfer_u16(struct transfer *t, __u16 *v)
{
	if (t->w)
		state_put_u16(t->w, *v);
	else
		*v = state_get_u16(t->r);
}

static void xfer_u32(struct transfer *t, __u32 *v)
{
	if (t->w)
		state_put_u32(t->w, *v);
	else
		*v = state_get_u32(t->r);
}

static void xfer_u64(struct transfer *t, __u64 *v)
{
	if (t->w)
		state_put_u64(t->w, *v);
	else
		*v = state_get_u64(t->r);
}

static void xfer_bytes(struct transfer *t, void *p, size_t n)
{
	if (t->w)
		state_put_bytes(t->w, p, n);
	else
		state_get_bytes(t->r, p, n);
}

/*
 * A count written before its items: on load, refused past max (t->damaged names it) so
 * that nothing is allocated or looped over on a damaged file's say-so.
 */
static bool xfer_count(struct transfer *t, __u32 *n, __u32 max, const char *what)
{
	xfer_u32(t, n);
	if (*n > max) {
		mark_damaged(t, what);
		return false;
	}
	return true;
}

static void xfer_segment(struct transfer *t, struct kvm_segment *s)
{
	__u8 *flags[] = { &s->type, &s->present, &s->dpl, &s->db, &s->s,
			  &s->l,    &s->g,	 &s->avl, &s->unusable };

	xfer_u64(t, &s->base);
	xfer_u32(t, &s->limit);
	xfer_u16(t, &s->selector);
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		xfer_u8(t, flags[i]);
}

static void xfer_dtable(struct transfer *t, struct kvm_dtable *d)
{
	xfer_u64(t, &d->base);
	xfer_u16(t, &d->limit);
}

static void xfer_regs(struct transfer *t, struct kvm_regs *x)
{
	__u64 *regs[] = { &x->rax, &x->rbx, &x->rcx, &x->rdx, &x->rsi, &x->rdi,
			  &x->rsp, &x->rbp, &x->r8,  &x->r9,  &x->r10, &x->r11,
			  &x->r12, &x->r13, &x->r14, &x->r15, &x->rip, &x->rflags };

	for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
		xfer_u64(t, regs[i]);
}

static void xfer_sregs(struct transfer *t, struct kvm_sregs2 *s)
{
	struct kvm_segment *segments[] = { &s->cs, &s->ds, &s->es, &s->fs,
					   &s->gs, &s->ss, &s->tr, &s->ldt };
	__u64 *regs[] = { &s->cr0, &s->cr2, &s->cr3, &s->cr4, &s->cr8, &s->efer, &s->apic_base,
			  &s->flags, &s->pdptrs[0], &s->pdptrs[1], &s->pdptrs[2], &s->pdptrs[3] };

	for (size_t i = 0; i < sizeof(segments) / sizeof(segments[0]); i++)
		xfer_segment(t, segments[i]);
	xfer_dtable(t, &s->gdt);
	xfer_dtable(t, &s->idt);
	for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
		xfer_u64(t, regs[i]);
	if (s->flags & ~(__u64)KVM_SREGS2_FLAGS_PDPTRS_VALID)
		mark_damaged(t, "special register flags");
}

static void xfer_events(struct transfer *t, struct kvm_vcpu_events *e)
{
	__u8 *bytes[] = {
		&e->exception.injected, &e->exception.nr,      &e->exception.has_error_code,
		&e->exception.pending,	&e->interrupt.injected, &e->interrupt.nr,
		&e->interrupt.soft,	&e->interrupt.shadow,	&e->nmi.injected,
		&e->nmi.pending,	&e->nmi.masked,		&e->smi.smm,
		&e->smi.pending,	&e->smi.smm_inside_nmi, &e->smi.latched_init,
		&e->triple_fault.pending, &e->exception_has_payload,
	};

	for (size_t i = 0; i < sizeof(bytes) / sizeof(bytes[0]); i++)
		xfer_u8(t, bytes[i]);
	xfer_u32(t, &e->exception.error_code);
	xfer_u32(t, &e->sipi_vector);
	xfer_u32(t, &e->flags);
	xfer_u64(t, &e->exception_payload);
	if (e->flags & ~(__u32)VCPU_EVENTS_FLAGS)
		mark_damaged(t, "event flags");
}

/*
 * The section's body. On load each variable part's count is checked before its memory is
 * allocated; t->damaged names the first thing out of range. Returns 0, or -ENOMEM.
 */
static int xfer_vcpu_state(struct transfer *t, struct vcpu_state *s)
{
	__u32 n;

	xfer_u32(t, &s->tsc_khz);

	n = t->w ? s->cpuid->nent : 0;
	if (!xfer_count(t, &n, MAX_CPUID_ENTRIES, "CPUID entry count"))
		return 0;
	if (t->r) {
		s->cpuid = calloc(1, sizeof(*s->cpuid) + n * sizeof(s->cpuid->entries[0]));
		if (!s->cpuid)
			return -ENOMEM;
		s->cpuid->nent = n;
	}
	for (__u32 i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *e = &s->cpuid->entries[i];
		__u32 *fields[] = { &e->function, &e->index, &e->flags, &e->eax,
				    &e->ebx,	  &e->ecx,   &e->edx };

		for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
			xfer_u32(t, fields[f]);
	}

	xfer_u32(t, &s->mp_state.mp_state);
	xfer_regs(t, &s->regs);
	xfer_sregs(t, &s->sregs);

	/* XSAVE: at least struct kvm_xsave, and never more than the section still holds */
	xfer_u32(t, &s->xsave_size);
	if (t->r) {
		if (s->xsave_size < sizeof(struct kvm_xsave) || s->xsave_size > XSAVE_MAX_SIZE ||
		    s->xsave_size > t->r->section_end - t->r->pos) {
			mark_damaged(t, "XSAVE size");
			return 0;
		}
		s->xsave = calloc(1, s->xsave_size);
		if (!s->xsave)
			return -ENOMEM;
	}
	xfer_bytes(t, s->xsave, s->xsave_size);

	xfer_u32(t, &s->xcrs.flags);
	if (!xfer_count(t, &s->xcrs.nr_xcrs, KVM_MAX_XCRS, "XCR count"))
		return 0;
	for (__u32 i = 0; i < s->xcrs.nr_xcrs; i++) {
		xfer_u32(t, &s->xcrs.xcrs[i].xcr);
		xfer_u64(t, &s->xcrs.xcrs[i].value);
	}

	for (int i = 0; i < 4; i++)
		xfer_u64(t, &s->debugregs.db[i]);
	xfer_u64(t, &s->debugregs.dr6);
	xfer_u64(t, &s->debugregs.dr7);

	xfer_bytes(t, s->lapic.regs, sizeof(s->lapic.regs));

	n = t->w ? s->msrs->nmsrs : 0;
	if (!xfer_count(t, &n, MAX_MSRS, "MSR count"))
		return 0;
	if (t->r) {
		s->msrs = msrs_alloc(n);
		if (!s->msrs)
			return -ENOMEM;
	}
	for (__u32 i = 0; i < n; i++) {
		xfer_u32(t, &s->msrs->entries[i].index);
		xfer_u64(t, &s->msrs->entries[i].data);
	}

	xfer_events(t, &s->events);
	return 0;
}

int cpu_state_save(int kvm_fd, int vcpu_fd, struct state_writer *w)
{
	struct vcpu_state s;
	struct transfer t = { .w = w };
	int ret;

	memset(&s, 0, sizeof(s));
	ret = get_vcpu_state(vcpu_fd, kvm_fd, &s);
	if (!ret) {
		state_begin(w, VCPU_TAG, VCPU_VERSION);
		xfer_vcpu_state(&t, &s);
		ret = state_end(w);
		if (ret)
			log_error("saving the vCPU state: out of memory");
	}
	vcpu_state_free(&s);
	return ret;
}

static int read_vcpu_state(struct state_reader *r, struct vcpu_state *s)
{
	struct transfer t = { .r = r };
	int version = state_open(r, VCPU_TAG), ret;

	if (version != VCPU_VERSION) {
		if (version < 0)
			log_error("vCPU state: no %s section here (damaged, or out of order)",
				  VCPU_TAG);
		else
			log_error("vCPU state: section version %d, this skiff reads version %d",
				  version, VCPU_VERSION);
		return -EINVAL;
	}
	ret = xfer_vcpu_state(&t, s);
	if (ret == -ENOMEM) {
		log_error("loading the vCPU state: out of memory");
		return ret;
	}
	if (t.damaged || state_close(r)) {
		log_error("vCPU state: damaged section (%s)",
			  t.damaged ? t.damaged : "truncated, or longer than its contents");
		return -EINVAL;
	}
	return 0;
}

/*
 * The TSC must tick at the saved rate: the guest measured it at boot (or read it from
 * kvmclock) and times its TSC-deadline timer and TSC clocksource with it. Within the
 * calibration tolerance it is the same rate; otherwise only TSC scaling can help
 * (api.rst, KVM_SET_TSC_KHZ, with KVM_CAP_TSC_CONTROL).
 */
static int match_tsc_khz(int vcpu_fd, __u32 saved)
{
	long long diff;
	int here;

	if (!saved)
		return 0; /* saved where KVM could not tell: nothing to compare */
	here = ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0);
	diff = (long long)here - saved;
	if (diff < 0)
		diff = -diff;
	if (here > 0 && diff * 1000000 <= (long long)saved * TSC_KHZ_TOLERANCE_PPM)
		return 0;
	if (ioctl(vcpu_fd, KVM_SET_TSC_KHZ, (unsigned long)saved) == 0)
		return 0;
	log_error("the saved vCPU's TSC ran at %u kHz, this host's at %d kHz, and KVM cannot "
		  "scale it (KVM_SET_TSC_KHZ: %s)", saved, here, strerror(errno));
	return -ENOTSUP;
}

/*
 * KVM_SET_XSAVE reads the whole area this process's KVM uses: a smaller saved one is padded
 * with zeroes (the components it lacks were in their initial state), a larger one means the
 * guest used components (such as AMX) this process may not.
 */
static int set_xsave(int vcpu_fd, __u32 size, const struct vcpu_state *s)
{
	struct kvm_xsave *area;
	int ret;

	if (s->xsave_size > size) {
		log_error("the saved vCPU's XSAVE area is %u bytes, larger than this host's %u",
			  s->xsave_size, size);
		return -ENOTSUP;
	}
	area = calloc(1, size);
	if (!area)
		return -ENOMEM;
	memcpy(area, s->xsave, s->xsave_size);
	ret = KVM_IOCTL(vcpu_fd, KVM_SET_XSAVE, area);
	free(area);
	return ret;
}

/*
 * The order matters (QEMU's kvm_arch_put_registers, Firecracker's restore_state):
 * - CPUID first: which MSRs KVM accepts and the LAPIC timer modes depend on it.
 * - The TSC rate before IA32_TSC: KVM derives the TSC offset from it.
 * - Registers before pending events: KVM_SET_REGS drops a pending exception, which
 *   KVM_SET_VCPU_EVENTS then restores.
 * - Special registers before the LAPIC: they carry APIC_BASE, and KVM_SET_LAPIC reads the
 *   APIC ID in the format (xAPIC or x2APIC) APIC_BASE selects.
 * - The LAPIC before the MSRs: TSC_DEADLINE is dropped unless the LAPIC timer is in
 *   TSC-deadline mode (see msr_load_rank for the order among the MSRs).
 * - The MP state last: KVM refuses INIT_RECEIVED/SIPI_RECEIVED while the vCPU is in SMM,
 *   which the events set, and KVM_SET_SREGS may itself make a vCPU at the reset vector
 *   runnable (QEMU puts the MP state after the events for these reasons).
 */
static int set_vcpu_state(int vcpu_fd, int kvm_fd, struct vcpu_state *s)
{
	struct kvm_msrs *msrs = msrs_in_load_order(s->msrs);
	int ret;

	if (!msrs)
		return -ENOMEM;
	/* api.rst, KVM_SET_VCPU_EVENTS: these flags make KVM take nmi.pending, sipi_vector
	 * and the interrupt shadow from the structure rather than keep its own. */
	s->events.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
			   KVM_VCPUEVENT_VALID_SHADOW;
	s->debugregs.flags = 0; /* api.rst, KVM_SET_DEBUGREGS: must be zero */

	ret = KVM_IOCTL(vcpu_fd, KVM_SET_CPUID2, s->cpuid);
	ret = ret ?: match_tsc_khz(vcpu_fd, s->tsc_khz);
	ret = ret ?: KVM_IOCTL(vcpu_fd, KVM_SET_REGS, &s->regs);
	ret = ret ?: set_sregs(vcpu_fd, has_sregs2(kvm_fd), &s->sregs);
	ret = ret ?: set_xsave(vcpu_fd, xsave_size(kvm_fd), s);
	ret = ret ?: KVM_IOCTL(vcpu_fd, KVM_SET_XCRS, &s->xcrs);
	ret = ret ?: KVM_IOCTL(vcpu_fd, KVM_SET_DEBUGREGS, &s->debugregs);
	ret = ret ?: KVM_IOCTL(vcpu_fd, KVM_SET_LAPIC, &s->lapic);
	ret = ret ?: write_msrs(vcpu_fd, msrs);
	ret = ret ?: KVM_IOCTL(vcpu_fd, KVM_SET_VCPU_EVENTS, &s->events);
	ret = ret ?: KVM_IOCTL(vcpu_fd, KVM_SET_MP_STATE, &s->mp_state);
	free(msrs);
	return ret;
}

int cpu_state_load(int kvm_fd, int vcpu_fd, struct state_reader *r)
{
	struct vcpu_state s;
	int ret;

	memset(&s, 0, sizeof(s));
	ret = read_vcpu_state(r, &s);
	if (!ret)
		ret = set_vcpu_state(vcpu_fd, kvm_fd, &s);
	vcpu_state_free(&s);
	return ret;
}

int vm_state_save_clock(int vm_fd, struct state_writer *w)
{
	struct kvm_clock_data clock;
	int ret;

	memset(&clock, 0, sizeof(clock));
	ret = KVM_IOCTL(vm_fd, KVM_GET_CLOCK, &clock);
	if (ret)
		return ret;
	state_begin(w, CLOCK_TAG, CLOCK_VERSION);
	state_put_u64(w, clock.clock);
	state_put_u32(w, clock.flags);
	state_put_u64(w, clock.realtime);
	state_put_u64(w, clock.host_tsc);
	ret = state_end(w);
	if (ret)
		log_error("saving kvmclock: out of memory");
	return ret;
}

/*
 * KVM_SET_CLOCK with no flags: kvmclock resumes at the saved value (api.rst, KVM_SET_CLOCK).
 * KVM_CLOCK_TSC_STABLE only reports, on KVM_GET_CLOCK, that all vCPUs see one master clock.
 * KVM_CLOCK_REALTIME would advance kvmclock by the wall time since the save; Firecracker
 * passes it back, but each vCPU's IA32_TSC is restored at its saved value, so only kvmclock
 * would jump and the guest's two clocks would part by the downtime. Moving both forward is
 * api.rst's KVM_VCPU_TSC_OFFSET recipe (for live migration); the section keeps realtime
 * and host_tsc for it.
 */
int vm_state_load_clock(int vm_fd, struct state_reader *r)
{
	struct kvm_clock_data clock;
	int version = state_open(r, CLOCK_TAG);
	__u32 flags;

	if (version != CLOCK_VERSION) {
		if (version < 0)
			log_error("kvmclock state: no %s section here (damaged, or out of order)",
				  CLOCK_TAG);
		else
			log_error("kvmclock state: section version %d, this skiff reads version %d",
				  version, CLOCK_VERSION);
		return -EINVAL;
	}
	memset(&clock, 0, sizeof(clock));
	clock.clock = state_get_u64(r);
	flags = state_get_u32(r);
	state_get_u64(r); /* realtime */
	state_get_u64(r); /* host_tsc */
	if (state_close(r) || (flags & ~(__u32)CLOCK_FLAGS)) {
		log_error("kvmclock state: damaged section");
		return -EINVAL;
	}
	return KVM_IOCTL(vm_fd, KVM_SET_CLOCK, &clock);
}
