/* A vCPU: its KVM fd, its shared kvm_run page, and the thread running KVM_RUN. */
#ifndef SKIFF_VCPU_H
#define SKIFF_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;

/* Why KVM_RUN returned, for metrics. */
enum vcpu_exit_kind {
	VCPU_EXIT_IO, VCPU_EXIT_MMIO, VCPU_EXIT_HLT, VCPU_EXIT_SIGNAL, VCPU_EXIT_IOAPIC_EOI,
	VCPU_EXIT_SYSTEM, VCPU_EXIT_OTHER, VCPU_EXIT_KINDS
};

extern const char *const vcpu_exit_names[VCPU_EXIT_KINDS];

struct vcpu {
	struct vm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	atomic_bool started;
	/* Written only by the vCPU's thread, read by anyone: see vcpu_exit_count(). */
	uint64_t exits[VCPU_EXIT_KINDS];
};

int vcpu_create(struct vcpu *vcpu, struct vm *vm, unsigned index, size_t run_size);
void vcpu_destroy(struct vcpu *vcpu);
int vcpu_start(struct vcpu *vcpu);
/*
 * Makes the vCPU leave KVM_RUN and not re-enter it: sets immediate_exit, then signals the
 * thread, so a signal landing just before KVM_RUN is not lost.
 */
void vcpu_kick(struct vcpu *vcpu);
/* Exits of one kind so far; any thread. */
uint64_t vcpu_exit_count(const struct vcpu *vcpu, enum vcpu_exit_kind kind);
/* Installs the (empty) handler of the kick signal; call once per process. */
int vcpu_kick_signal_init(void);

#endif
