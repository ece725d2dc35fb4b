/*
 * What each KVM interrupt-controller choice costs at VM creation and teardown, the
 * measurement behind skiff's split irqchip (docs/architecture.md).
 * Usage: irqchip_cost [RUNS]; prints the median of each phase per mode, in ms.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

enum mode { NONE, FULL, FULL_PIT, SPLIT, MODES };
static const char *const mode_names[MODES] = { "none", "full", "full+pit", "split" };

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int set_irqchip(int vm, enum mode mode)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	struct kvm_enable_cap split = { .cap = KVM_CAP_SPLIT_IRQCHIP, .args = { 24 } };

	switch (mode) {
	case FULL:
		return ioctl(vm, KVM_CREATE_IRQCHIP, 0);
	case FULL_PIT:
		return ioctl(vm, KVM_CREATE_IRQCHIP, 0) ?: ioctl(vm, KVM_CREATE_PIT2, &pit);
	case SPLIT:
		return ioctl(vm, KVM_ENABLE_CAP, &split);
	default:
		return 0;
	}
}

/* times[0..3]: create VM, irqchip, create vCPU, close everything. */
static int measure(int kvm, enum mode mode, double *times)
{
	double t0 = now_ms(), t1, t2, t3;
	int vm = ioctl(kvm, KVM_CREATE_VM, 0), vcpu;

	t1 = now_ms();
	if (vm < 0 || set_irqchip(vm, mode) < 0)
		return -1;
	t2 = now_ms();
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	t3 = now_ms();
	if (vcpu < 0)
		return -1;
	close(vcpu);
	close(vm);
	times[0] = t1 - t0;
	times[1] = t2 - t1;
	times[2] = t3 - t2;
	times[3] = now_ms() - t3;
	return 0;
}

static int compare(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 9;
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	double *samples;

	if (kvm < 0 || runs < 1) {
		fprintf(stderr, "usage: irqchip_cost [RUNS] (needs /dev/kvm)\n");
		return 2;
	}
	samples = calloc((size_t)runs * 4, sizeof(*samples));
	printf("%-9s %10s %10s %10s %10s   (medians of %d runs, ms)\n", "irqchip", "create",
	       "irqchip", "vcpu", "close", runs);
	for (int m = 0; m < MODES; m++) {
		for (int r = 0; r < runs; r++) {
			double t[4];

			if (measure(kvm, m, t) < 0) {
				perror(mode_names[m]);
				return 1;
			}
			for (int i = 0; i < 4; i++)
				samples[i * runs + r] = t[i];
		}
		printf("%-9s", mode_names[m]);
		for (int i = 0; i < 4; i++) {
			qsort(samples + i * runs, runs, sizeof(*samples), compare);
			printf(" %10.2f", samples[i * runs + runs / 2]);
		}
		printf("\n");
	}
	return 0;
}
