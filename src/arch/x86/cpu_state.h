/*
 * What KVM keeps for an x86 vCPU, and the VM's kvmclock, as state sections (state/state.h):
 * the CPU half of a snapshot or a migration. A vCPU saved here continues exactly in another
 * VM, in another process, once its guest RAM and devices are back.
 *
 * Saving wants every vCPU out of KVM_RUN, and each one's last exit completed: after a
 * KVM_EXIT_IO or KVM_EXIT_MMIO the instruction finishes only when KVM_RUN is entered again
 * (api.rst, "immediate_exit"), so a vCPU parked straight after such an exit must first go
 * through KVM_RUN once with kvm_run.immediate_exit set (it returns EINTR, the instruction
 * done, no guest code run). Otherwise the restored guest would repeat the port or MMIO access.
 *
 * Loading wants a vCPU made as skiff makes them (cpu_init_vcpu) in a VM with the split
 * irqchip, not yet run, with the guest RAM already registered: the kvmclock, steal-time,
 * async-PF and PV-EOI MSRs name guest-physical pages that KVM looks up when they are written.
 * Load every vCPU before any of them runs.
 */
#ifndef SKIFF_X86_CPU_STATE_H
#define SKIFF_X86_CPU_STATE_H

#include "../../state/state.h"

/*
 * One "VCPU" section: CPUID, TSC frequency, MP state, general and special registers,
 * FPU/SSE/AVX (XSAVE) and XCRs, debug registers, local APIC, MSRs, pending events.
 * kvm_fd is /dev/kvm, which alone answers the MSR index list and the XSAVE size. Returns 0,
 * or -errno after one log line naming what failed.
 */
int cpu_state_save(int kvm_fd, int vcpu_fd, struct state_writer *w);
/*
 * Reads the section whole and checks it before touching the vCPU: a short, long, damaged
 * section or one of another version is refused with -EINVAL. A section that is sound but
 * that this host cannot take (another TSC rate it cannot scale to, a larger XSAVE area)
 * gives -ENOTSUP; a value KVM refuses, its -errno. One log line in each case.
 */
int cpu_state_load(int kvm_fd, int vcpu_fd, struct state_reader *r);

/*
 * One "KCLK" section: the VM's kvmclock (KVM_GET_CLOCK). Loading sets the clock to the
 * saved value, so the guest resumes at the instant it was paused, its TSC (saved with each
 * vCPU) and kvmclock still agreeing. kvmclock counts on from KVM_SET_CLOCK, so the best
 * moment to load it is after the vCPUs, just before they run. 0 or -errno, logged.
 */
int vm_state_save_clock(int vm_fd, struct state_writer *w);
int vm_state_load_clock(int vm_fd, struct state_reader *r);

#endif
