/*
 * Snapshots of a paused VM. The state file (state/snapshot.h) holds state sections
 * (state/state.h) in a fixed order: the configuration, each vCPU, the platform devices,
 * each virtio device, kvmclock. The VM that loads them is built from that configuration
 * first, with its RAM the snapshot's memory file.
 */
#ifndef SKIFF_VM_SNAPSHOT_H
#define SKIFF_VM_SNAPSHOT_H

#include "vm.h"

#include "../state/snapshot.h"
#include "../state/state.h"

/* An opened snapshot file, checked, ready to restore from. */
struct vm_snapshot {
	uint8_t *buf; /* what the state lies in; freed by vm_snapshot_close() */
	struct snapshot_info info;
	char *config;		  /* the VM's configuration (GET /vm/config's JSON), NUL-ended */
	enum console_kind console; /* skiff's own device choice, not in that JSON */
	struct state_reader state; /* the sections vm_snapshot_load() reads */
};

/*
 * Writes the paused VM's state (config is its configuration, as GET /vm/config gives it)
 * to snapshot_path and its RAM to mem_path: all of RAM, or with dirty (a page bitmap) only
 * the pages in it. progress as for snapshot_write_memory(). 0 or -errno, logged.
 */
int vm_snapshot_create(struct vm *vm, const char *config, enum console_kind console,
		       const char *snapshot_path, const char *mem_path, const uint64_t *dirty,
		       void (*progress)(void *, uint64_t, uint64_t), void *opaque);
/* Reads and checks a snapshot file. 0, or -errno after one log line naming the problem. */
int vm_snapshot_open(const char *path, struct vm_snapshot *snap);
/* The same over a snapshot file's bytes (named name in messages); takes buf (malloc'd). */
int vm_snapshot_parse(const char *name, uint8_t *buf, size_t len, struct vm_snapshot *snap);
/*
 * The same over bare state sections (a migration's STATE), described by info; takes buf,
 * in which state lies.
 */
int vm_snapshot_from_state(const char *name, uint8_t *buf, const uint8_t *state,
			   size_t state_len, const struct snapshot_info *info,
			   struct vm_snapshot *snap);
/* The state sections vm_snapshot_create() writes: configuration, vCPUs, devices, clock. */
int vm_snapshot_state(struct vm *vm, const char *config, enum console_kind console,
		      struct state_writer *w);
void vm_snapshot_close(struct vm_snapshot *snap);
/*
 * Into a VM just created for restore from snap's configuration (vm_config.mem_file) whose
 * vCPUs have not run: checks the memory file against the snapshot, then loads. Afterwards
 * the devices look at their queues once, for buffers the guest made available before the
 * snapshot that no notification will announce again. 0 or -errno, logged.
 */
int vm_snapshot_load(struct vm *vm, struct vm_snapshot *snap);

#endif
