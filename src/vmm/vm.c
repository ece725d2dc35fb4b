#include "vm.h"

#include "vcpu.h"

#include "../arch/x86/boot.h"
#include "../arch/x86/cpu.h"
#include "../arch/x86/layout.h"
#include "../arch/x86/tables.h"
#include "../arch/x86/unpack.h"
#include "../devices/power.h"
#include "../log.h"
#include "../util/file.h"
#include "../virtio/console.h"
#include "../virtio/rng.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define KVM_API_VERSION_EXPECTED 12

/*
 * What a Linux guest needs on this machine unless told otherwise: its console on the
 * terminal, reboot through the i8042 (skiff then exits), reboot rather than hang after a
 * panic, and no PCI probing, as there is no PCI.
 */
#define LINUX_DEFAULTS_COMMON	"reboot=k panic=1 pci=off"
#define LINUX_DEFAULTS		"console=ttyS0 " LINUX_DEFAULTS_COMMON
#define LINUX_DEFAULTS_HVC	"console=hvc0 " LINUX_DEFAULTS_COMMON

static const struct {
	int cap;
	const char *name;
} required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "USER_MEMORY" },
	{ KVM_CAP_SPLIT_IRQCHIP, "SPLIT_IRQCHIP" },
	{ KVM_CAP_SIGNAL_MSI, "SIGNAL_MSI" },
	{ KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT" },
	{ KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR" },
};

static int open_kvm(struct vm *vm)
{
	int version;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int err = -errno;

		if (errno == ENOENT)
			log_error("/dev/kvm: not found (is the kvm module loaded, and does this "
				  "CPU have virtualisation enabled?)");
		else if (errno == EACCES || errno == EPERM)
			log_error("/dev/kvm: permission denied (add your user to the kvm group)");
		else
			log_error("/dev/kvm: %s", strerror(errno));
		return err;
	}
	version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION_EXPECTED) {
		log_error("/dev/kvm: KVM API version %d, skiff needs %d", version,
			  KVM_API_VERSION_EXPECTED);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
			log_error("/dev/kvm: this KVM lacks KVM_CAP_%s, which skiff needs",
				  required_caps[i].name);
			return -ENOTSUP;
		}
	}
	return 0;
}

/*
 * Split irqchip: LAPICs in KVM, IOAPIC in skiff, no PIC or PIT. Measured here, the full
 * in-kernel irqchip adds ~15 ms and the PIT ~8 ms more to VM teardown
 * (bench/irqchip_cost.c, docs/architecture.md).
 */
static int create_machine(struct vm *vm, const struct vm_config *cfg)
{
	struct kvm_enable_cap split = { .cap = KVM_CAP_SPLIT_IRQCHIP, .args = { IOAPIC_PINS } };
	int max_vcpus, ret;

	max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max_vcpus > 0 && cfg->cpus > (unsigned)max_vcpus) {
		log_error("--cpus %u: this KVM allows at most %d vCPUs", cfg->cpus, max_vcpus);
		return -EINVAL;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		ret = -errno;
		log_error("KVM_CREATE_VM: %s", strerror(errno));
		return ret;
	}
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, LAYOUT_KVM_TSS) < 0 ||
	    ioctl(vm->vm_fd, KVM_ENABLE_CAP, &split) < 0) {
		ret = -errno;
		log_error("setting up the VM: %s", strerror(errno));
		return ret;
	}
	if (cfg->ram) {
		ret = 0; /* adopted by vm_create() */
	} else if (cfg->mem_file) {
		ret = guest_mem_map_file(&vm->mem, cfg->mem_file, cfg->memory, LAYOUT_MMIO_HOLE,
					 LAYOUT_MMIO_HOLE_END);
		if (ret) {
			log_error("%s: %s", cfg->mem_file,
				  ret == -ENODATA ? "shorter than the snapshot's RAM (truncated?)"
				  : ret == -EFBIG ? "longer than the snapshot's RAM"
						  : strerror(-ret));
			return ret;
		}
	} else {
		ret = guest_mem_create(&vm->mem, cfg->memory, LAYOUT_MMIO_HOLE,
				       LAYOUT_MMIO_HOLE_END, cfg->huge_pages);
	}
	if (ret) {
		log_error("--memory: cannot allocate guest RAM%s: %s",
			  cfg->huge_pages == HUGE_PAGES_2M ? " in 2M huge pages" : "",
			  strerror(-ret));
		return ret;
	}
	if (cfg->track_dirty_pages && guest_mem_track_dirty(&vm->mem)) {
		log_error("track_dirty_pages: out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		struct kvm_userspace_memory_region region = {
			.slot = i,
			.guest_phys_addr = vm->mem.regions[i].gpa,
			.memory_size = vm->mem.regions[i].size,
			.userspace_addr = (uintptr_t)vm->mem.regions[i].host,
			.flags = cfg->track_dirty_pages ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
			ret = -errno;
			log_error("--memory: KVM refused guest RAM: %s", strerror(errno));
			return ret;
		}
	}
	vm->cpuid = cpu_supported_cpuid(vm->kvm_fd);
	if (!vm->cpuid) {
		ret = -errno;
		log_error("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		return ret;
	}
	return 0;
}

static void power_event(void *opaque, enum power_event event, int status)
{
	static const char *const names[] = {
		[POWER_RESET] = "reset", [POWER_OFF] = "power-off", [POWER_DEBUG_EXIT] = "debug exit",
	};

	log_info("guest %s", names[event]);
	vm_request_stop(opaque, event == POWER_DEBUG_EXIT ? status : 0);
}

static int add_devices(struct vm *vm, const struct vm_config *cfg, int console_out_fd)
{
	struct irq_line com1 = { ioapic_set_irq, &vm->ioapic, IRQ_COM1 };
	struct irq_line kbd_irq = { ioapic_set_irq, &vm->ioapic, IRQ_KEYBOARD };
	int ret;

	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	vm->power = (struct power_ctl){ power_event, vm };
	ret = ioapic_init(&vm->ioapic, vm->vm_fd, tables_ioapic_id(cfg->cpus));
	if (!ret)
		ret = serial_init(&vm->serial, console_out_fd, com1);
	if (ret) {
		log_error("setting up interrupts and the serial port: %s", strerror(-ret));
		return ret;
	}
	i8042_init(&vm->i8042, vm->power);
	i8042_set_irq(&vm->i8042, kbd_irq);
	rtc_init(&vm->rtc, NULL);
	boot_timer_init(&vm->boot_timer, cfg->start);
	vm->devices_ready = true;

	/* Fixed, non-overlapping ranges: a failure here is a bug, not bad input. */
	ret = bus_register(&vm->mmio, LAYOUT_IOAPIC, IOAPIC_MMIO_SIZE, ioapic_access, &vm->ioapic);
	ret = ret ?: bus_register(&vm->pio, PORT_COM1, 8, serial_access, &vm->serial);
	ret = ret ?: bus_register(&vm->pio, PORT_I8042, 1, i8042_data_access, &vm->i8042);
	ret = ret ?: bus_register(&vm->pio, PORT_I8042_CMD, 1, i8042_command_access, &vm->i8042);
	ret = ret ?: bus_register(&vm->pio, PORT_RTC, 2, rtc_access, &vm->rtc);
	ret = ret ?: bus_register(&vm->pio, PORT_ACPI_SLEEP_CTL, ACPI_PM_PORTS, acpi_pm_access,
				  &vm->power);
	ret = ret ?: bus_register(&vm->pio, PORT_BOOT_TIMER, 1, boot_timer_access,
				  &vm->boot_timer);
	if (!ret && cfg->debug_exit)
		ret = bus_register(&vm->pio, PORT_DEBUG_EXIT, 4, debug_exit_access, &vm->power);
	if (ret)
		log_error("registering devices: %s", strerror(-ret));
	return ret;
}

/*
 * Puts a virtio device in the next 4 KiB window with the next interrupt line; the VM owns
 * dev from here on (free_dev releases it, NULL if there is nothing to release).
 */
static int add_virtio(struct vm *vm, const struct virtio_device_ops *ops, void *dev,
		      void (*free_dev)(void *))
{
	unsigned i = vm->nr_virtio;
	uint64_t base = LAYOUT_VIRTIO_BASE + (uint64_t)i * VIRTIO_MMIO_SIZE;
	int ret;

	if (i == MAX_VIRTIO_DEVICES) {
		log_error("too many virtio devices (at most %d)", MAX_VIRTIO_DEVICES);
		if (free_dev)
			free_dev(dev);
		return -ENOSPC;
	}
	ret = virtio_mmio_init(&vm->virtio[i], ops, dev, &vm->mem, base, IRQ_VIRTIO_FIRST + i,
			       vm->vm_fd, &vm->loop);
	vm->virtio_free[i] = free_dev;
	vm->nr_virtio++;
	ret = ret ?: bus_register(&vm->mmio, base, VIRTIO_MMIO_SIZE, virtio_mmio_access,
				  &vm->virtio[i]);
	if (ret)
		log_error("setting up %s: %s", ops->name, strerror(-ret));
	return ret;
}

static void free_console(void *dev)
{
	virtio_console_free(dev);
}

static void free_blk(void *dev)
{
	virtio_blk_free(dev);
}

static void free_net(void *dev)
{
	virtio_net_free(dev);
}

static int add_nets(struct vm *vm, const struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nr_nets; i++) {
		struct virtio_net *net = virtio_net_create(&cfg->nets[i], i, &vm->loop);
		int ret;

		if (!net)
			return -EINVAL;
		ret = add_virtio(vm, virtio_net_device_ops(net), net, free_net);
		if (ret)
			return ret;
	}
	return 0;
}

static int add_disks(struct vm *vm, const struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		struct virtio_blk *blk = virtio_blk_create(&cfg->disks[i], &vm->loop);
		int ret;

		if (!blk)
			return -EINVAL;
		ret = add_virtio(vm, virtio_blk_device_ops(blk), blk, free_blk);
		if (ret)
			return ret;
	}
	return 0;
}

/* In a fixed order, so a configuration always gives the guest the same layout. */
static int add_virtio_devices(struct vm *vm, const struct vm_config *cfg, int console_out_fd)
{
	int ret = add_disks(vm, cfg);

	ret = ret ?: add_nets(vm, cfg);
	if (!ret && cfg->rng)
		ret = add_virtio(vm, &virtio_rng_ops, NULL, NULL);
	if (!ret && cfg->console == CONSOLE_VIRTIO) {
		vm->virtio_console = virtio_console_create(console_out_fd);
		if (!vm->virtio_console) {
			log_error("--console virtio: %s", strerror(errno));
			return -ENOMEM;
		}
		ret = add_virtio(vm, &virtio_console_ops, vm->virtio_console, free_console);
	}
	return ret;
}

struct console_sink vm_console_sink(struct vm *vm)
{
	if (vm->virtio_console)
		return virtio_console_sink(vm->virtio_console);
	return (struct console_sink){ serial_receive, &vm->serial, vm->serial.space_fd };
}

/* virtio-mmio devices in Linux's command-line convention, for kernels that skip ACPI. */
static int device_params(const struct vm *vm, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < vm->nr_virtio && len < size; i++)
		len += snprintf(buf + len, size - len, "%svirtio_mmio.device=4K@0x%" PRIx64 ":%u",
				len ? " " : "", vm->virtio[i].base, vm->virtio[i].gsi);
	return len < size ? 0 : -E2BIG;
}

/*
 * A bzImage's payload decompressed here is booted as the ELF it is, skipping the guest's
 * own decompressor. Anything that is not a bzImage with a readable payload is left as is.
 */
static int unpack_kernel(struct boot_image *kernel, uint8_t **buf)
{
	struct timespec t0, t1;
	size_t size;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = bzimage_unpack(kernel, buf, &size);
	if (ret == -ENOEXEC)
		return 0;
	if (ret)
		return ret;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_debug("%s: payload unpacked on the host: %zu bytes in %" PRIu64 " us", kernel->name,
		  size, boot_timer_elapsed_us(t0, t1));
	kernel->data = *buf;
	kernel->size = size;
	return 0;
}

/* The user's command line, plus Firecracker's root=/dev/vdX when a disk is the root. */
static const char *root_cmdline(const struct vm_config *cfg, char *buf, size_t size)
{
	const char *user = cfg->cmdline ? cfg->cmdline : "";

	if (!cfg->has_root)
		return cfg->cmdline;
	/* Disks are the first virtio devices, so disk i is vd('a' + i). */
	snprintf(buf, size, "%s%sroot=/dev/vd%c %s", user, *user ? " " : "",
		 'a' + cfg->root_disk, cfg->disks[cfg->root_disk].readonly ? "ro" : "rw");
	return buf;
}

static int load_guest(struct vm *vm, const struct vm_config *cfg)
{
	struct mapped_file kernel = { 0 }, initrd = { 0 };
	uint8_t *unpacked = NULL;
	static char params[LAYOUT_CMDLINE_MAX];
	static char cmdline[LAYOUT_CMDLINE_MAX];
	struct boot_config boot = {
		.cmdline = root_cmdline(cfg, cmdline, sizeof(cmdline)),
		.linux_defaults = cfg->console == CONSOLE_VIRTIO ? LINUX_DEFAULTS_HVC : LINUX_DEFAULTS,
		.device_params = params,
	};
	struct acpi_mmio_device acpi_devs[MAX_VIRTIO_DEVICES];
	struct boot_entry entry;
	int ret;

	ret = device_params(vm, params, sizeof(params));
	if (ret)
		return ret; /* at most MAX_VIRTIO_DEVICES short entries: cannot happen */

	for (unsigned i = 0; i < vm->nr_virtio; i++)
		acpi_devs[i] = (struct acpi_mmio_device){ vm->virtio[i].base, VIRTIO_MMIO_SIZE,
							  vm->virtio[i].gsi };
	ret = acpi_build(&vm->mem, cfg->cpus, acpi_devs, vm->nr_virtio, &boot.rsdp);
	ret = ret ?: mptable_build(&vm->mem, cfg->cpus);
	if (ret) {
		log_error("building firmware tables: %s", strerror(-ret));
		return ret;
	}
	ret = file_map(cfg->kernel_path, &kernel);
	if (!ret && cfg->initrd_path)
		ret = file_map(cfg->initrd_path, &initrd);
	if (!ret) {
		boot.kernel = (struct boot_image){ cfg->kernel_path, kernel.data, kernel.size };
		if (cfg->initrd_path)
			boot.initrd = (struct boot_image){ cfg->initrd_path, initrd.data,
							   initrd.size };
		if (!cfg->no_unpack)
			ret = unpack_kernel(&boot.kernel, &unpacked);
		ret = ret ?: boot_load(&vm->mem, &boot, &entry);
	}
	free(unpacked);
	file_unmap(&kernel);
	file_unmap(&initrd);
	if (ret)
		return ret;

	ret = cpu_set_boot_regs(vm->vcpus[0].fd, &entry);
	if (ret)
		log_error("setting the boot vCPU's registers: %s", strerror(-ret));
	return ret;
}

static int create_vcpus(struct vm *vm, unsigned count)
{
	int run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	int ret;

	if (run_size <= 0) {
		log_error("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return -EINVAL;
	}
	vm->vcpus = calloc(count, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (unsigned i = 0; i < count; i++) {
		ret = vcpu_create(&vm->vcpus[i], vm, i, run_size);
		if (ret) {
			log_error("creating vCPU %u: %s", i, strerror(-ret));
			return ret;
		}
		vm->nr_vcpus++;
		ret = cpu_init_vcpu(vm->vcpus[i].fd, vm->cpuid, i, count);
		if (ret) {
			log_error("setting up vCPU %u: %s", i, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static void stop_requested(void *opaque)
{
	struct vm *vm = opaque;

	event_loop_stop(&vm->loop);
}

int vm_create(struct vm *vm, const struct vm_config *cfg, int console_out_fd)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	vm->kvm_fd = vm->vm_fd = vm->stop_fd = vm->mem.fd = vm->loop.epoll_fd = -1;
	if (cfg->ram)
		vm->mem = *cfg->ram; /* the VM owns it from here, whatever happens next */
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0)
		return -errno;
	ret = event_loop_init(&vm->loop);
	ret = ret ?: event_add(&vm->loop, &vm->stop_src, vm->stop_fd, stop_requested, vm);
	if (ret) {
		log_error("setting up the event loop: %s", strerror(-ret));
		return ret;
	}
	ret = open_kvm(vm);
	ret = ret ?: create_machine(vm, cfg);
	ret = ret ?: add_devices(vm, cfg, console_out_fd);
	ret = ret ?: add_virtio_devices(vm, cfg, console_out_fd);
	ret = ret ?: create_vcpus(vm, cfg->cpus);
	/* A restored or migrated guest's RAM already holds its kernel and tables. */
	if (!cfg->mem_file && !cfg->ram)
		ret = ret ?: load_guest(vm, cfg);
	return ret;
}

int vm_start(struct vm *vm)
{
	clock_gettime(CLOCK_MONOTONIC, &vm->started_at);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		int ret = vcpu_start(&vm->vcpus[i]);

		if (ret) {
			log_error("starting vCPU %u: %s", i, strerror(-ret));
			vm_request_stop(vm, 2);
			return ret;
		}
	}
	return 0;
}

int vm_run_events(struct vm *vm)
{
	return event_loop_run(&vm->loop);
}

void vm_request_stop(struct vm *vm, int status)
{
	bool expected = false;

	if (!atomic_compare_exchange_strong(&vm->stopping, &expected, true))
		return;
	vm->exit_status = status;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	/* Parked vCPUs wake to see stopping; the lock orders this against their check. */
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	eventfd_write(vm->stop_fd, 1);
}

static unsigned started_vcpus(struct vm *vm)
{
	unsigned n = 0;

	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		n += atomic_load(&vm->vcpus[i].started);
	return n;
}

void vm_pause(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->pausing, true);
	pthread_mutex_unlock(&vm->pause_lock);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	pthread_mutex_lock(&vm->pause_lock);
	while (vm->parked < started_vcpus(vm) && !atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	pthread_mutex_unlock(&vm->pause_lock);
}

void vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->pausing, false);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

#define THROTTLE_PERIOD_NS 10000000 /* 10 ms */

static void *throttle_ticks(void *opaque)
{
	struct vm *vm = opaque;
	struct timespec period = { 0, THROTTLE_PERIOD_NS };

	pthread_setname_np(pthread_self(), "throttle");
	while (atomic_load(&vm->throttle_percent) && !atomic_load(&vm->stopping)) {
		nanosleep(&period, NULL);
		for (unsigned i = 0; i < vm->nr_vcpus; i++)
			vcpu_kick(&vm->vcpus[i]);
	}
	return NULL;
}

int vm_set_throttle(struct vm *vm, unsigned percent)
{
	int ret = 0;

	/* The lock: a migration's thread and the main thread at exit may both call this. */
	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->throttle_percent, percent > 99 ? 99 : percent);
	if (!percent && vm->throttler_running) {
		pthread_join(vm->throttler, NULL);
		vm->throttler_running = false;
	} else if (percent && !vm->throttler_running) {
		ret = -pthread_create(&vm->throttler, NULL, throttle_ticks, vm);
		vm->throttler_running = !ret;
	}
	pthread_mutex_unlock(&vm->pause_lock);
	return ret;
}

void vm_throttle_vcpu(struct vm *vm, struct vcpu *vcpu)
{
	unsigned percent = atomic_load(&vm->throttle_percent);
	struct timespec nap = { 0, (long)THROTTLE_PERIOD_NS / 100 * percent };

	if (!percent)
		return;
	/*
	 * Undo the tick's kick before sleeping: a pause or stop sets its flag before its own
	 * kick, and the vCPU loop checks those flags before KVM_RUN, so none is lost.
	 */
	__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	nanosleep(&nap, NULL);
}

void vm_park_vcpu(struct vm *vm, struct vcpu *vcpu)
{
	pthread_mutex_lock(&vm->pause_lock);
	vm->parked++;
	pthread_cond_broadcast(&vm->pause_cond);
	while (atomic_load(&vm->pausing) && !atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	vm->parked--;
	/*
	 * Undo the pause's kick. A later kick sets pausing or stopping before immediate_exit,
	 * and the vCPU loop checks both before KVM_RUN, so none is lost.
	 */
	__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&vm->pause_lock);
}

int vm_join(struct vm *vm)
{
	vm_set_throttle(vm, 0);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if (atomic_load(&vm->vcpus[i].started)) {
			pthread_join(vm->vcpus[i].thread, NULL);
			atomic_store(&vm->vcpus[i].started, false);
		}
	}
	return vm->exit_status;
}

void vm_destroy(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	for (unsigned i = 0; i < vm->nr_virtio; i++) {
		virtio_mmio_destroy(&vm->virtio[i], &vm->loop);
		if (vm->virtio_free[i])
			vm->virtio_free[i](vm->virtio[i].dev);
	}
	free(vm->vcpus);
	vm->vcpus = NULL;
	vm->nr_vcpus = 0;
	if (vm->devices_ready) {
		serial_destroy(&vm->serial);
		i8042_destroy(&vm->i8042);
		rtc_destroy(&vm->rtc);
		ioapic_destroy(&vm->ioapic);
	}
	guest_mem_destroy(&vm->mem);
	free(vm->cpuid);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	event_loop_destroy(&vm->loop);
	pthread_cond_destroy(&vm->pause_cond);
	pthread_mutex_destroy(&vm->pause_lock);
}
