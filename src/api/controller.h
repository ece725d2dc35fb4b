/*
 * The VM's side of the management API: carries out requests on the VM's thread, one at a
 * time. Before InstanceStart it builds the VM's configuration; after, it controls the VM
 * (pause, resume, drive swap, stop) and reports on it (GET /vm/config, metrics).
 */
#ifndef SKIFF_CONTROLLER_H
#define SKIFF_CONTROLLER_H

#include "api.h"
#include "json_fields.h"
#include "metrics.h"

#include "../vmm/vm.h"

struct api_queue;
struct migration;
struct vm_snapshot;

struct controller_hooks {
	/*
	 * Builds and starts the VM, restored from snap when it is not NULL, with its vCPUs
	 * parked when paused; returns 0, or -errno once the cause has been logged.
	 */
	int (*boot)(void *opaque, const struct vm_config *cfg, int serial_fd,
		    struct vm_snapshot *snap, bool paused);
	/* Ends skiff before any VM was started (InstanceStop pre-boot). */
	void (*quit)(void *opaque);
	void *opaque;
};

enum instance_state { INSTANCE_NOT_STARTED, INSTANCE_RUNNING, INSTANCE_PAUSED };

struct controller {
	struct vm_config base;	/* the command line's VM: what the API has not replaced */
	json_t *doc;		/* the VM as FullVmConfiguration: GET /vm/config */
	enum instance_state state;
	struct vm *vm;		/* once started */
	int serial_fd;		/* PUT /serial's file; -1: stdout */
	struct metrics_sink metrics;
	const struct api_counters *counters;
	uint64_t requests[API_OPS];
	uint64_t snapshots, snapshot_bytes, snapshot_us; /* for metrics */
	bool diff_base; /* a snapshot or restore since which dirty pages are tracked */
	struct api_queue *queue;     /* the one requests come through: a migration's too */
	struct migration *migration; /* the last PUT /migrate's, or NULL */
	/* Migrated away: skiff lingers until GET /migrate has told of it, or a timeout. */
	int linger_fd;
	struct event_source linger_src;
	struct timespec snapshot_started;
	struct controller_hooks hooks;
};

/* base is the command line's configuration (its VM options, if any, are the pre-boot ones). */
int controller_init(struct controller *ctl, const struct vm_config *base,
		    const struct api_counters *counters, struct api_queue *queue,
		    struct controller_hooks hooks);
/* Before the VM goes: cancels a migration still under way and waits for its thread. */
void controller_stop_migration(struct controller *ctl);
/* The VM booted from the command line, with no InstanceStart. */
void controller_set_vm(struct controller *ctl, struct vm *vm);
/*
 * Restores the VM from a snapshot (skiff run --restore, PUT /snapshot/load): overrides is
 * Firecracker's network_overrides array or NULL. 0, or -EINVAL with err filled.
 */
int controller_restore(struct controller *ctl, const char *snapshot_path, const char *mem_path,
		       json_t *overrides, bool resume, bool track_dirty_pages,
		       struct field_error *err);
/*
 * The same from an opened snapshot whose RAM is the file at mem_path, or (incoming
 * migration) ram, which this call takes whatever happens.
 */
int controller_restore_from(struct controller *ctl, struct vm_snapshot *snap,
			    const char *mem_path, struct guest_mem *ram, json_t *overrides,
			    bool resume, bool track_dirty_pages, struct field_error *err);
/*
 * Incoming migration, as soon as the source's configuration is known: builds the VM with
 * its vCPUs parked, RAM ram (taken whatever happens), so that only loading the state is
 * left for the pause. controller_run_incoming() then loads it and runs the guest.
 */
int controller_prepare_incoming(struct controller *ctl, json_t *config, enum console_kind console,
				struct guest_mem *ram, struct field_error *err);
int controller_run_incoming(struct controller *ctl, struct vm_snapshot *snap);
/* For api_queue_serve(): opaque is the controller. */
void controller_handle(void *opaque, struct api_request *req, struct api_response *resp);
void controller_destroy(struct controller *ctl);

#endif
