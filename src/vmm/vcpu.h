/* A vCPU: its KVM fd, its shared kvm_run page, and the thread running KVM_RUN. */
#ifndef SKIFF_VCPU_H
#define SKIFF_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;

struct vcpu {
	struct vm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	atomic_bool started;
};

int vcpu_create(struct vcpu *vcpu, struct vm *vm, unsigned index, size_t run_size);
void vcpu_destroy(struct vcpu *vcpu);
int vcpu_start(struct vcpu *vcpu);
/*
 * Makes the vCPU leave KVM_RUN and not re-enter it: sets immediate_exit, then signals the
 * thread, so a signal landing just before KVM_RUN is not lost.
 */
void vcpu_kick(struct vcpu *vcpu);
/* Installs the (empty) handler of the kick signal; call once per process. */
int vcpu_kick_signal_init(void);

#endif
