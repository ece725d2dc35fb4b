/*
 * The floor for skiff's start-up benchmark: the least a KVM process can do to run a guest
 * that prints a byte and exits. It opens /dev/kvm, creates a VM with 2 MiB of RAM and one
 * vCPU in real mode, runs three instructions (out to COM1, out to the exit port), writes
 * the byte to stdout and exits. Anything skiff adds on top of this is its own cost.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define RAM_SIZE (2 << 20)

int main(void)
{
	/* mov al,'F'; mov dx,0x3f8; out dx,al; mov dx,0xf4; out dx,al */
	static const uint8_t code[] = { 0xb0, 'F', 0xba, 0xf8, 0x03, 0xee,
					0xba, 0xf4, 0x00, 0xee };
	struct kvm_userspace_memory_region region = { .memory_size = RAM_SIZE };
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = 0x1000, .rflags = 2 };
	struct kvm_run *run;
	int kvm, vm, vcpu;
	uint8_t *ram;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		perror("/dev/kvm");
		return 2;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (vm < 0 || ram == MAP_FAILED)
		return 2;
	memcpy(ram + 0x1000, code, sizeof(code));
	region.userspace_addr = (uintptr_t)ram;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return 2;
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	run = mmap(NULL, ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), PROT_READ | PROT_WRITE,
		   MAP_SHARED, vcpu, 0);
	if (vcpu < 0 || run == MAP_FAILED || ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		return 2;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		return 2;
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0 || run->exit_reason != KVM_EXIT_IO)
			return 2;
		if (run->io.port == 0x3f8) {
			if (write(1, (uint8_t *)run + run->io.data_offset, 1) != 1)
				return 2;
		} else {
			return 0;
		}
	}
}
