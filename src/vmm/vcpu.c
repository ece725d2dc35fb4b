#include "vcpu.h"

#include "vm.h"

#include "../log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIG_KICK SIGUSR1
#define EXIT_VMM_ERROR 2

const char *const vcpu_exit_names[VCPU_EXIT_KINDS] = {
	[VCPU_EXIT_IO] = "io", [VCPU_EXIT_MMIO] = "mmio", [VCPU_EXIT_HLT] = "hlt",
	[VCPU_EXIT_SIGNAL] = "signal", [VCPU_EXIT_IOAPIC_EOI] = "ioapic_eoi",
	[VCPU_EXIT_SYSTEM] = "system", [VCPU_EXIT_OTHER] = "other",
};

/* Relaxed atomics: the vCPU thread is the only writer, so a plain add is not lost. */
static void count_exit(struct vcpu *vcpu, enum vcpu_exit_kind kind)
{
	__atomic_store_n(&vcpu->exits[kind], vcpu->exits[kind] + 1, __ATOMIC_RELAXED);
}

uint64_t vcpu_exit_count(const struct vcpu *vcpu, enum vcpu_exit_kind kind)
{
	return __atomic_load_n(&vcpu->exits[kind], __ATOMIC_RELAXED);
}

static void kick_handler(int sig)
{
	(void)sig; /* only here to make KVM_RUN return EINTR */
}

int vcpu_kick_signal_init(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };

	sigemptyset(&sa.sa_mask);
	return sigaction(SIG_KICK, &sa, NULL) < 0 ? -errno : 0;
}

int vcpu_create(struct vcpu *vcpu, struct vm *vm, unsigned index, size_t run_size)
{
	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->run_size = run_size;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, index);
	if (vcpu->fd < 0)
		return -errno;
	vcpu->run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		int err = -errno;

		close(vcpu->fd);
		vcpu->fd = -1;
		vcpu->run = NULL;
		return err;
	}
	return 0;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vcpu->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

static void handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

	/* String instructions arrive as count back-to-back accesses. */
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
		bus_access(&vcpu->vm->pio, run->io.port, data, run->io.size, is_write);
}

/* For diagnosing guest crashes: where the vCPU was and in which mode. */
static void log_state(const struct vcpu *vcpu)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	if (log_get_level() < LOG_DEBUG || ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return;
	log_debug("vcpu %u: rip=0x%llx rsp=0x%llx rflags=0x%llx cs=0x%x cr0=0x%llx cr3=0x%llx cr4=0x%llx "
		  "efer=0x%llx", vcpu->index, (unsigned long long)regs.rip,
		  (unsigned long long)regs.rsp, (unsigned long long)regs.rflags, sregs.cs.selector, (unsigned long long)sregs.cr0,
		  (unsigned long long)sregs.cr3, (unsigned long long)sregs.cr4,
		  (unsigned long long)sregs.efer);
}

/* Returns false when the vCPU must stop. */
static bool handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct vm *vm = vcpu->vm;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		count_exit(vcpu, VCPU_EXIT_IO);
		handle_io(vcpu);
		return true;
	case KVM_EXIT_MMIO:
		count_exit(vcpu, VCPU_EXIT_MMIO);
		bus_access(&vm->mmio, run->mmio.phys_addr, run->mmio.data,
			   run->mmio.len > 8 ? 8 : run->mmio.len, run->mmio.is_write);
		return true;
	case KVM_EXIT_IOAPIC_EOI:
		count_exit(vcpu, VCPU_EXIT_IOAPIC_EOI);
		ioapic_eoi(&vm->ioapic, run->eoi.vector);
		return true;
	case KVM_EXIT_HLT:
		count_exit(vcpu, VCPU_EXIT_HLT);
		return true;
	case KVM_EXIT_INTR:
		count_exit(vcpu, VCPU_EXIT_SIGNAL);
		return true;
	default:
		break;
	}
	count_exit(vcpu, run->exit_reason == KVM_EXIT_SHUTDOWN ||
				 run->exit_reason == KVM_EXIT_SYSTEM_EVENT ? VCPU_EXIT_SYSTEM
									   : VCPU_EXIT_OTHER);
	switch (run->exit_reason) {
	case KVM_EXIT_SHUTDOWN:
		/* A triple fault resets a PC. */
		log_info("vcpu %u: triple fault: guest reset", vcpu->index);
		log_state(vcpu);
		vm_request_stop(vm, 0);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_CRASH) {
			log_error("vcpu %u: guest reported a crash", vcpu->index);
			vm_request_stop(vm, EXIT_VMM_ERROR);
		} else {
			log_info("vcpu %u: system event %u", vcpu->index, run->system_event.type);
			vm_request_stop(vm, 0);
		}
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		log_error("vcpu %u: KVM internal error, suberror %u", vcpu->index,
			  run->internal.suberror);
		log_state(vcpu);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		log_error("vcpu %u: VM entry failed, reason 0x%llx", vcpu->index,
			  (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	default:
		log_error("vcpu %u: unexpected KVM exit reason %u", vcpu->index, run->exit_reason);
		break;
	}
	vm_request_stop(vm, EXIT_VMM_ERROR);
	return false;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	sigset_t kick;
	char name[16];

	/* Named from inside: from outside, glibc goes through /proc for a thread's name. */
	snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
	pthread_setname_np(pthread_self(), name);
	sigemptyset(&kick);
	sigaddset(&kick, SIG_KICK);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	while (!atomic_load(&vm->stopping)) {
		if (atomic_load(&vm->pausing)) {
			/*
			 * The kick set immediate_exit: this KVM_RUN only completes the last
			 * exit's I/O instruction, which a snapshot taken now would otherwise
			 * replay (api.rst, immediate_exit).
			 */
			__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
			ioctl(vcpu->fd, KVM_RUN, 0);
			vm_park_vcpu(vm, vcpu);
			continue;
		}
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				count_exit(vcpu, VCPU_EXIT_SIGNAL);
				vm_throttle_vcpu(vm, vcpu);
				continue;
			}
			log_error("vcpu %u: KVM_RUN: %s", vcpu->index, strerror(errno));
			vm_request_stop(vm, EXIT_VMM_ERROR);
			break;
		}
		if (!handle_exit(vcpu))
			break;
	}
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	int err = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);

	if (err)
		return -err;
	atomic_store(&vcpu->started, true);
	return 0;
}

void vcpu_kick(struct vcpu *vcpu)
{
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (atomic_load(&vcpu->started))
		pthread_kill(vcpu->thread, SIG_KICK);
}
