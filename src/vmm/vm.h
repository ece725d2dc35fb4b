/* One virtual machine: KVM handles, guest RAM, buses, platform devices and vCPUs. */
#ifndef SKIFF_VM_H
#define SKIFF_VM_H

#include "bus.h"
#include "event.h"
#include "memory.h"

#include "../devices/boot_timer.h"
#include "../devices/i8042.h"
#include "../devices/ioapic.h"
#include "../devices/rtc.h"
#include "../devices/serial.h"
#include "../virtio/blk.h"
#include "../virtio/console.h"
#include "../virtio/mmio.h"
#include "../virtio/net.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define VM_MAX_DISKS 8
#define VM_MAX_NETS  4

enum console_kind { CONSOLE_SERIAL, CONSOLE_VIRTIO };

struct vm_config {
	const char *kernel_path;
	const char *initrd_path; /* NULL: none */
	const char *cmdline;	 /* NULL: empty */
	unsigned cpus;
	uint64_t memory;
	enum huge_pages huge_pages;
	bool track_dirty_pages; /* KVM logs the pages the guest dirties */
	bool debug_exit;
	bool no_unpack; /* boot a bzImage through its own decompressor */
	struct timespec start; /* when skiff started, for the boot-time device */
	unsigned nr_disks;
	struct blk_config disks[VM_MAX_DISKS];
	bool has_root; /* disks[root_disk] is the root: root=/dev/vdX joins the command line */
	unsigned root_disk;
	unsigned nr_nets;
	struct net_config nets[VM_MAX_NETS];
	bool rng; /* virtio-rng */
	enum console_kind console;
	/* Restore: guest RAM is this memory file (mapped privately); no kernel is loaded. */
	const char *mem_file;
	/* Incoming migration: guest RAM, already received; the VM takes it. No kernel either. */
	struct guest_mem *ram;
};

struct vcpu;

struct vm {
	int kvm_fd;
	int vm_fd;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct kvm_cpuid2 *cpuid;
	unsigned nr_vcpus;
	struct vcpu *vcpus;

	struct ioapic ioapic;
	struct serial serial;
	struct i8042 i8042;
	struct rtc rtc;
	struct boot_timer boot_timer;
	struct power_ctl power;
	bool devices_ready; /* the devices above need destroying */
	unsigned nr_virtio;
	struct virtio_mmio virtio[MAX_VIRTIO_DEVICES];
	void (*virtio_free[MAX_VIRTIO_DEVICES])(void *dev);
	struct virtio_console *virtio_console; /* the terminal's, with --console virtio */

	struct event_loop loop; /* run by the main thread: see vmm/event.h */
	atomic_bool stopping;
	int exit_status;
	int stop_fd; /* eventfd: readable once the VM has been asked to stop */
	struct event_source stop_src;

	/* While pausing is set, vCPU threads wait in vm_park_vcpu(); parked counts them. */
	atomic_bool pausing;
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	unsigned parked;
	struct timespec started_at; /* when vm_start() ran, for uptime */

	/* Throttling (vm_set_throttle): a ticker kicks the vCPUs, which then sleep a while. */
	atomic_uint throttle_percent;
	pthread_t throttler;
	bool throttler_running;
};

/* Builds the machine described by cfg, ready to run. Logs one line and returns -errno. */
int vm_create(struct vm *vm, const struct vm_config *cfg, int console_out_fd);
/* Starts one thread per vCPU. */
int vm_start(struct vm *vm);
/* Where the terminal's input goes: COM1, or the virtio console. */
struct console_sink vm_console_sink(struct vm *vm);
/* Runs the event loop on the calling thread until the VM is asked to stop. */
int vm_run_events(struct vm *vm);
/* Asks the VM to stop with status (the first request wins); safe from any thread. */
void vm_request_stop(struct vm *vm, int status);
/*
 * Stops every vCPU outside KVM_RUN and returns once all are parked (or the VM is stopping);
 * devices keep running. vm_resume() lets them go on. Either from one controlling thread.
 */
void vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);
/*
 * Slows the guest to about (100 - percent)% of its vCPUs' time, so that a guest dirtying
 * memory faster than a migration sends it lets the migration converge; 0 stops it. Any
 * thread. 0 or -errno.
 */
int vm_set_throttle(struct vm *vm, unsigned percent);
/* For vCPU threads: after a kick, sleeps the throttled share of the period. */
void vm_throttle_vcpu(struct vm *vm, struct vcpu *vcpu);
/* For vCPU threads: waits while the VM is paused. */
void vm_park_vcpu(struct vm *vm, struct vcpu *vcpu);
/* Joins the vCPU threads after a stop request; returns the exit status. */
int vm_join(struct vm *vm);
void vm_destroy(struct vm *vm);

#endif
