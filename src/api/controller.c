#include "controller_parts.h"

#include "queue.h"
#include "vm_json.h"

#include "../log.h"
#include "../migrate/migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

const char *const controller_op_names[API_OPS] = {
	[API_GET_INFO] = "get_info",
	[API_PUT_BOOT_SOURCE] = "put_boot_source",
	[API_GET_MACHINE] = "get_machine_config",
	[API_PUT_MACHINE] = "put_machine_config",
	[API_PATCH_MACHINE] = "patch_machine_config",
	[API_PUT_DRIVE] = "put_drive",
	[API_PATCH_DRIVE] = "patch_drive",
	[API_PUT_NET] = "put_network_interface",
	[API_PUT_ENTROPY] = "put_entropy",
	[API_PUT_SERIAL] = "put_serial",
	[API_INSTANCE_START] = "instance_start",
	[API_SEND_CTRL_ALT_DEL] = "send_ctrl_alt_del",
	[API_FLUSH_METRICS] = "flush_metrics",
	[API_INSTANCE_STOP] = "instance_stop",
	[API_PAUSE] = "pause",
	[API_RESUME] = "resume",
	[API_GET_VM_CONFIG] = "get_vm_config",
	[API_PUT_LOGGER] = "put_logger",
	[API_PUT_METRICS] = "put_metrics",
	[API_GET_METRICS] = "get_metrics",
	[API_SNAPSHOT_CREATE] = "snapshot_create",
	[API_SNAPSHOT_LOAD] = "snapshot_load",
	[API_MIGRATE_START] = "migrate",
	[API_MIGRATE_STATUS] = "migrate_status",
	[API_MIGRATE_CANCEL] = "migrate_cancel",
	[API_MIGRATE_TRACK] = "migrate_track",
	[API_MIGRATE_FINAL] = "migrate_final",
	[API_MIGRATE_COMPLETE] = "migrate_complete",
	[API_MIGRATE_ROLLBACK] = "migrate_rollback",
};

static const char *const state_names[] = {
	[INSTANCE_NOT_STARTED] = "Not started",
	[INSTANCE_RUNNING] = "Running",
	[INSTANCE_PAUSED] = "Paused",
};

int controller_init(struct controller *ctl, const struct vm_config *base,
		    const struct api_counters *counters, struct api_queue *queue,
		    struct controller_hooks hooks)
{
	*ctl = (struct controller){
		.base = *base,
		.serial_fd = -1,
		.linger_fd = -1,
		.metrics = { .fd = -1 },
		.counters = counters,
		.queue = queue,
		.hooks = hooks,
	};
	ctl->doc = vm_json_export(base);
	return ctl->doc ? 0 : -ENOMEM;
}

void controller_set_vm(struct controller *ctl, struct vm *vm)
{
	ctl->vm = vm;
	ctl->state = INSTANCE_RUNNING;
}

void controller_stop_migration(struct controller *ctl)
{
	if (!ctl->migration)
		return;
	atomic_store(&ctl->migration->cancel, true);
	migration_interrupt(ctl->migration);
	migration_finish(ctl->migration);
	free(ctl->migration);
	ctl->migration = NULL;
}

void controller_destroy(struct controller *ctl)
{
	controller_stop_migration(ctl);
	if (ctl->linger_fd >= 0)
		close(ctl->linger_fd);
	json_decref(ctl->doc);
	json_decref(ctl->metrics.properties);
	if (ctl->serial_fd >= 0)
		close(ctl->serial_fd);
	if (ctl->metrics.fd >= 0)
		close(ctl->metrics.fd);
	ctl->doc = NULL;
}

/* A copy of body with every field PUT leaves out at its default, as Firecracker does. */
static json_t *machine_with_defaults(json_t *body)
{
	json_t *machine = json_pack("{s:b, s:b, s:s}", "smt", 0, "track_dirty_pages", 0,
				    "huge_pages", "None");

	if (machine && json_object_update(machine, body)) {
		json_decref(machine);
		return NULL;
	}
	return machine;
}

/* Replaces the item of array whose key is id, or appends item; steals item. */
static int put_by_id(json_t *array, const char *key, const char *id, json_t *item)
{
	json_t *old;
	size_t i;

	json_array_foreach(array, i, old) {
		if (!strcmp(json_string_value(json_object_get(old, key)), id))
			return json_array_set_new(array, i, item);
	}
	return json_array_append_new(array, item);
}

/* Checks the whole candidate configuration, then makes it the VM's. Steals candidate. */
static void commit(struct controller *ctl, json_t *candidate, struct api_response *resp)
{
	struct vm_config scratch = { 0 };
	struct field_error err;

	if (!candidate) {
		api_fault(resp, 500, "out of memory");
		return;
	}
	if (vm_json_parse(candidate, false, &scratch, &err)) {
		api_fault(resp, 400, "%s", err.msg);
		json_decref(candidate);
		return;
	}
	json_decref(ctl->doc);
	ctl->doc = candidate;
	resp->status = 204;
}

/* PUT or PATCH of a section, or an item of drives / network-interfaces. */
static void configure(struct controller *ctl, struct api_request *req,
		      struct api_response *resp)
{
	json_t *doc = json_deep_copy(ctl->doc), *value = json_deep_copy(req->body);
	int ret = !doc || !value;

	switch (req->op) {
	case API_PUT_BOOT_SOURCE:
		ret = ret ?: json_object_set(doc, "boot-source", value);
		break;
	case API_PUT_MACHINE:
		ret = ret ?: json_object_set_new(doc, "machine-config", machine_with_defaults(value));
		break;
	case API_PATCH_MACHINE:
		ret = ret ?: json_object_update(json_object_get(doc, "machine-config"), value);
		break;
	case API_PUT_DRIVE:
		ret = ret ?: put_by_id(json_object_get(doc, "drives"), "drive_id", req->id,
				       json_incref(value));
		break;
	case API_PUT_NET:
		ret = ret ?: put_by_id(json_object_get(doc, "network-interfaces"), "iface_id",
				       req->id, json_incref(value));
		break;
	case API_PUT_ENTROPY:
		ret = ret ?: json_object_set(doc, "entropy", value);
		break;
	default:
		ret = -EINVAL;
		break;
	}
	json_decref(value);
	if (ret) {
		json_decref(doc);
		doc = NULL;
	}
	commit(ctl, doc, resp);
}

static void open_serial(struct controller *ctl, struct api_request *req,
			struct api_response *resp)
{
	json_t *path = json_object_get(req->body, "serial_out_path");
	int fd = -1;

	if (path) {
		fd = open(json_string_value(path), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0) {
			api_fault(resp, 400, "serial_out_path %s: %s", json_string_value(path),
				  strerror(errno));
			return;
		}
	}
	if (ctl->serial_fd >= 0)
		close(ctl->serial_fd);
	ctl->serial_fd = fd;
	resp->status = 204;
}

uint64_t controller_elapsed_us(struct timespec from)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - from.tv_sec) * 1000000 + (now.tv_nsec - from.tv_nsec) / 1000;
}

/* The command line's devices and options, less what the configuration document describes. */
struct vm_config controller_undescribed(const struct controller *ctl)
{
	struct vm_config cfg = ctl->base;

	cfg.kernel_path = cfg.initrd_path = cfg.cmdline = NULL;
	cfg.nr_disks = cfg.nr_nets = 0;
	cfg.has_root = cfg.rng = false;
	return cfg;
}

static void instance_start(struct controller *ctl, struct api_response *resp)
{
	struct vm_config cfg = controller_undescribed(ctl);
	struct field_error err;

	if (vm_json_parse(ctl->doc, true, &cfg, &err)) {
		api_fault(resp, 400, "InstanceStart: %s", err.msg);
		return;
	}
	if (ctl->hooks.boot(ctl->hooks.opaque, &cfg, ctl->serial_fd, NULL, false)) {
		api_fault(resp, 400, "InstanceStart: %s", log_last_error());
		return;
	}
	ctl->state = INSTANCE_RUNNING;
	resp->status = 204;
}

static int drive_index(struct controller *ctl, const char *id)
{
	json_t *drive;
	size_t i;

	json_array_foreach(json_object_get(ctl->doc, "drives"), i, drive)
		if (!strcmp(json_string_value(json_object_get(drive, "drive_id")), id))
			return i;
	return -1;
}

/* Disks are the VM's first virtio devices, in order: drive i is virtio device i. */
static void swap_drive(struct controller *ctl, struct api_request *req,
		       struct api_response *resp)
{
	const char *path = json_string_value(json_object_get(req->body, "path_on_host"));
	int i = drive_index(ctl, req->id);
	json_t *drive;

	if (i < 0) {
		api_fault(resp, 400, "no drive \"%s\"", req->id);
		return;
	}
	if (virtio_blk_swap(ctl->vm->virtio[i].dev, path)) {
		api_fault(resp, 400, "drive \"%s\": %s", req->id, log_last_error());
		return;
	}
	drive = json_array_get(json_object_get(ctl->doc, "drives"), i);
	json_object_set_new(drive, "path_on_host", json_string(path));
	resp->status = 204;
}

static void set_logger(struct api_request *req, struct api_response *resp)
{
	json_t *body = req->body, *level = json_object_get(body, "level");
	struct log_options opts = {
		.path = json_string_value(json_object_get(body, "log_path")),
		.level = LOG_INFO, /* Firecracker's default */
		.show_level = json_is_true(json_object_get(body, "show_level")),
		.show_origin = json_is_true(json_object_get(body, "show_log_origin")),
		.module = json_string_value(json_object_get(body, "module")),
	};
	char err[256];

	if (level && log_parse_firecracker_level(json_string_value(level), &opts.level)) {
		api_fault(resp, 400, "logger: 'level' must be Error, Warning, Info, Debug, Trace "
				     "or Off");
		return;
	}
	if (log_configure(&opts, err, sizeof(err))) {
		api_fault(resp, 400, "logger: %s", err);
		return;
	}
	resp->status = 204;
}

static json_t *instance_info(struct controller *ctl)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "app_name", "skiff", "id", "anonymous-instance",
			 "state", state_names[ctl->state], "vmm_version", SKIFF_VERSION);
}

static void pause_or_resume(struct controller *ctl, bool pause, struct api_response *resp)
{
	if (pause && ctl->state == INSTANCE_RUNNING) {
		vm_pause(ctl->vm);
		ctl->state = INSTANCE_PAUSED;
		log_info("VM paused");
	} else if (!pause && ctl->state == INSTANCE_PAUSED) {
		vm_resume(ctl->vm);
		ctl->state = INSTANCE_RUNNING;
		log_info("VM resumed");
	}
	resp->status = 204;
}

static bool migrating(const struct controller *ctl)
{
	return ctl->migration && !migration_done(ctl->migration);
}

static void start_migration(struct controller *ctl, struct api_request *req,
			    struct api_response *resp)
{
	json_t *ms = json_object_get(req->body, "downtime_ms");
	struct migration *m;

	if (migrating(ctl)) {
		api_fault(resp, 400, "migrate: a migration is under way (GET /migrate)");
		return;
	}
	if (ctl->state != INSTANCE_RUNNING) {
		api_fault(resp, 400, "migrate: the VM must be running (it is %s)",
			  state_names[ctl->state]);
		return;
	}
	controller_stop_migration(ctl); /* the last one, ended */
	m = calloc(1, sizeof(*m));
	if (!m || !(m->config = json_dumps(ctl->doc, JSON_COMPACT))) {
		free(m);
		api_fault(resp, 500, "out of memory");
		return;
	}
	snprintf(m->uri, sizeof(m->uri), "%s",
		 json_string_value(json_object_get(req->body, "destination")));
	m->downtime_ms = ms ? json_integer_value(ms) : MIGRATE_DEFAULT_DOWNTIME_MS;
	m->vm = ctl->vm;
	m->queue = ctl->queue;
	m->console = ctl->base.console;
	m->with_disks = json_is_true(json_object_get(req->body, "with_disks"));
	atomic_store(&m->ram_bytes, ctl->vm->mem.size);
	if ((m->with_disks && migration_prepare_disks(m)) || migration_start(m)) {
		migration_finish(m);
		free(m);
		api_fault(resp, 400, "migrate: %s", log_last_error());
		return;
	}
	ctl->migration = m;
	resp->status = 204;
}

/* How long a migrated-away skiff waits for its client to ask how the migration ended. */
#define LINGER_SECONDS 3

static void stop_lingering(void *opaque)
{
	struct controller *ctl = opaque;

	vm_request_stop(ctl->vm, 0);
}

/*
 * The guest runs at the destination: this skiff is done, but exiting at once would leave
 * a client polling GET /migrate with no answer. Stop once one has been given, or soon.
 */
static void migrated_away(struct controller *ctl, struct api_response *resp)
{
	struct itimerspec when = { .it_value = { LINGER_SECONDS, 0 } };

	ctl->linger_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (ctl->linger_fd < 0 || timerfd_settime(ctl->linger_fd, 0, &when, NULL) < 0 ||
	    event_add(&ctl->vm->loop, &ctl->linger_src, ctl->linger_fd, stop_lingering, ctl))
		vm_request_stop(ctl->vm, 0);
	resp->status = 204;
}

static bool pre_boot_only(enum api_op op)
{
	switch (op) {
	case API_PUT_BOOT_SOURCE: case API_PUT_MACHINE: case API_PATCH_MACHINE:
	case API_PUT_DRIVE: case API_PUT_NET: case API_PUT_ENTROPY: case API_PUT_SERIAL:
	case API_INSTANCE_START: case API_SNAPSHOT_LOAD:
		return true;
	default:
		return false;
	}
}

static bool post_boot_only(enum api_op op)
{
	return op == API_PATCH_DRIVE || op == API_SEND_CTRL_ALT_DEL || op == API_PAUSE ||
	       op == API_RESUME || op == API_SNAPSHOT_CREATE || op == API_MIGRATE_START;
}

void controller_handle(void *opaque, struct api_request *req, struct api_response *resp)
{
	struct controller *ctl = opaque;
	bool started = ctl->state != INSTANCE_NOT_STARTED;

	ctl->requests[req->op]++;
	if (started && pre_boot_only(req->op)) {
		api_fault(resp, 400, "%s: only before InstanceStart", controller_op_names[req->op]);
		return;
	}
	if (!started && post_boot_only(req->op)) {
		api_fault(resp, 400, "%s: only once the VM has started", controller_op_names[req->op]);
		return;
	}
	if (migrating(ctl) && (req->op == API_PAUSE || req->op == API_RESUME ||
			       req->op == API_SNAPSHOT_CREATE || req->op == API_PATCH_DRIVE)) {
		api_fault(resp, 400, "%s: a migration is under way", controller_op_names[req->op]);
		return;
	}
	switch (req->op) {
	case API_GET_INFO:
		api_json(resp, instance_info(ctl));
		break;
	case API_GET_MACHINE:
		api_json(resp, json_incref(json_object_get(ctl->doc, "machine-config")));
		break;
	case API_GET_VM_CONFIG:
		api_json(resp, json_deep_copy(ctl->doc));
		break;
	case API_PUT_SERIAL:
		open_serial(ctl, req, resp);
		break;
	case API_INSTANCE_START:
		instance_start(ctl, resp);
		break;
	case API_PATCH_DRIVE:
		swap_drive(ctl, req, resp);
		break;
	case API_SEND_CTRL_ALT_DEL: {
		/* The guest's keyboard driver sees the keys; what it does with them is its own. */
		int ret = i8042_send_ctrl_alt_del(&ctl->vm->i8042);

		if (ret == -EBUSY)
			api_fault(resp, 400, "SendCtrlAltDel: the guest has not read the keys "
					     "already sent (i8042 buffer full)");
		else if (ret)
			api_fault(resp, 400, "SendCtrlAltDel: the guest has disabled its keyboard");
		else
			resp->status = 204;
		break;
	}
	case API_INSTANCE_STOP:
		log_info("stopping the VM: InstanceStop");
		if (ctl->vm)
			vm_request_stop(ctl->vm, 0);
		else
			ctl->hooks.quit(ctl->hooks.opaque);
		resp->status = 204;
		break;
	case API_PAUSE:
	case API_RESUME:
		pause_or_resume(ctl, req->op == API_PAUSE, resp);
		break;
	case API_PUT_LOGGER:
		set_logger(req, resp);
		break;
	case API_PUT_METRICS:
		controller_set_metrics(ctl, req, resp);
		break;
	case API_FLUSH_METRICS:
		controller_flush_metrics(ctl, resp);
		break;
	case API_GET_METRICS:
		controller_get_metrics(ctl, resp);
		break;
	case API_SNAPSHOT_CREATE:
		controller_create_snapshot(ctl, req, resp);
		break;
	case API_SNAPSHOT_LOAD:
		controller_load_snapshot(ctl, req, resp);
		break;
	case API_MIGRATE_START:
		start_migration(ctl, req, resp);
		break;
	case API_MIGRATE_STATUS:
		if (ctl->migration)
			api_json(resp, migration_progress(ctl->migration));
		else
			api_fault(resp, 400, "migrate: no migration yet");
		if (ctl->linger_fd >= 0)
			vm_request_stop(ctl->vm, 0); /* told: the answer goes out before skiff ends */
		break;
	case API_MIGRATE_CANCEL:
		if (migrating(ctl) && atomic_load(&ctl->migration->phase) < MIGRATE_FINAL) {
			atomic_store(&ctl->migration->cancel, true);
			migration_interrupt(ctl->migration);
			resp->status = 204;
		} else {
			api_fault(resp, 400, "migrate: %s", migrating(ctl)
				  ? "too late to cancel: the destination is taking over"
				  : "no migration under way");
		}
		break;
	case API_MIGRATE_COMPLETE:
		migrated_away(ctl, resp);
		break;
	case API_MIGRATE_TRACK:
	case API_MIGRATE_FINAL:
	case API_MIGRATE_ROLLBACK:
		migration_on_vm_thread(req->job, req->op, resp);
		break;
	default:
		configure(ctl, req, resp);
		break;
	}
}
