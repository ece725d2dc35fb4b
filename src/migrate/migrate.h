/*
 * Live migration (PUT /migrate, skiff run --incoming): a running VM moved to another skiff
 * over TCP while it keeps running.
 *
 * The source sends all of RAM while KVM logs what the guest dirties (and skiff logs what
 * it writes itself), then the pages dirtied meanwhile, pass after pass, until the last
 * pass would fit the downtime budget; a guest that dirties faster than the link is
 * throttled step by step. Then the VM pauses, the last pages and the VM's state (the same
 * sections a snapshot holds) go out, and the destination runs the guest. Until the
 * destination says so, any failure resumes the source with nothing lost.
 */
#ifndef SKIFF_MIGRATE_H
#define SKIFF_MIGRATE_H

#include "../api/api.h"
#include "../state/state.h"
#include "../vmm/vm.h"

#include <pthread.h>
#include <stdatomic.h>

#define MIGRATE_DEFAULT_DOWNTIME_MS 50

struct api_queue;
struct controller;

enum migrate_phase {
	MIGRATE_NONE, MIGRATE_SETUP, MIGRATE_RAM, MIGRATE_DIRTY, MIGRATE_FINAL,
	MIGRATE_COMPLETED, MIGRATE_FAILED, MIGRATE_CANCELLED,
};

struct migration {
	/* What PUT /migrate asked for. */
	char uri[256];
	unsigned downtime_ms;
	bool with_disks;
	/* With disks: the images, read through fds of the migration's own. */
	unsigned nr_disks;
	struct migrate_disk {
		struct virtio_blk *blk;
		int fd;
		uint64_t size;
		uint64_t *final; /* chunks written since the last pass, taken when paused */
	} disks[VM_MAX_DISKS];
	/* Set up by the controller before migration_start(). */
	struct vm *vm;
	struct api_queue *queue;
	char *config; /* the VM's configuration (GET /vm/config's JSON); owned */
	enum console_kind console;

	/* Progress: written by the migration's thread, read by anyone. */
	atomic_int phase;
	atomic_ullong bytes_sent, ram_bytes, remaining_bytes, dirty_rate, rate;
	atomic_ullong estimated_downtime_us, passes, throttle, total_us, downtime_us;
	atomic_bool cancel;
	int fd;		 /* the connection, for migration_interrupt(); -1 before and after */
	pthread_mutex_t fd_lock;
	char error[256]; /* set before phase becomes MIGRATE_FAILED */

	pthread_t thread;
	bool thread_started;
	uint8_t *bounce; /* pages and disk chunks are copied here before they are sent */
	struct timespec started;

	/* The last pass, filled on the VM's thread (migration_on_vm_thread). */
	uint64_t *final_dirty;
	struct state_writer final_state;
	uint32_t memory_crc;
	bool paused_here;
};

/*
 * On the VM's thread, with_disks set: opens the disks for the migration and starts
 * tracking what the guest writes to them. 0 or -errno, logged.
 */
int migration_prepare_disks(struct migration *m);
/* Starts the migration's thread; m is filled as above. 0 or -errno, logged. */
int migration_start(struct migration *m);
/* Waits for the thread (after it finished, or after cancel) and frees what m holds. */
void migration_finish(struct migration *m);
/* After setting cancel: unblocks the thread if it waits on the network. */
void migration_interrupt(struct migration *m);
/* Whether the thread has ended (completed, failed or cancelled). */
bool migration_done(const struct migration *m);
/* GET /migrate's answer. */
json_t *migration_progress(const struct migration *m);
/*
 * The steps that need the VM's thread (API_MIGRATE_*), which the migration's thread asks
 * for through the API queue.
 */
void migration_on_vm_thread(struct migration *m, enum api_op op, struct api_response *resp);

/*
 * skiff run --incoming URI: waits for one migration and restores the VM it carries through
 * ctl, running. signal_fd ends the wait. 0, -errno after a log line, or 128 + N when
 * signal N came first.
 */
int migrate_incoming(struct controller *ctl, const char *uri, int signal_fd);

#endif
