#include "controller.h"

#include "queue.h"
#include "vm_json.h"

#include "../migrate/migrate.h"

#include "../log.h"
#include "../vmm/dirty.h"
#include "../vmm/vcpu.h"
#include "../vmm/vm_snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static const char *const op_names[API_OPS] = {
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

static uint64_t elapsed_us(struct timespec from)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - from.tv_sec) * 1000000 + (now.tv_nsec - from.tv_nsec) / 1000;
}

/* The command line's devices and options, less what the configuration document describes. */
static struct vm_config undescribed(const struct controller *ctl)
{
	struct vm_config cfg = ctl->base;

	cfg.kernel_path = cfg.initrd_path = cfg.cmdline = NULL;
	cfg.nr_disks = cfg.nr_nets = 0;
	cfg.has_root = cfg.rng = false;
	return cfg;
}

static void instance_start(struct controller *ctl, struct api_response *resp)
{
	struct vm_config cfg = undescribed(ctl);
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

/* Firecracker's network_overrides: another TAP device for an interface of the snapshot. */
static int override_networks(json_t *doc, json_t *overrides, struct field_error *err)
{
	json_t *nets = json_object_get(doc, "network-interfaces"), *o, *net;
	size_t i, j;

	json_array_foreach(overrides, i, o) {
		const char *id = json_string_value(json_object_get(o, "iface_id"));
		bool found = false;

		json_array_foreach(nets, j, net) {
			if (strcmp(json_string_value(json_object_get(net, "iface_id")), id))
				continue;
			if (!json_object_get(net, "host_dev_name"))
				return field_fail(err, "network_overrides: \"%s\" is not a TAP "
						  "interface", id);
			json_object_set(net, "host_dev_name", json_object_get(o, "host_dev_name"));
			found = true;
		}
		if (!found)
			return field_fail(err, "network_overrides: the snapshot has no interface "
					  "\"%s\"", id);
	}
	return 0;
}

int controller_restore_from(struct controller *ctl, struct vm_snapshot *snap,
			    const char *mem_path, struct guest_mem *ram, json_t *overrides,
			    bool resume, bool track_dirty_pages, struct field_error *err)
{
	struct vm_config cfg = undescribed(ctl);
	json_t *doc = json_loads(snap->config, JSON_REJECT_DUPLICATES, NULL);
	int ret = doc ? 0 : field_fail(err, "the snapshot's configuration is malformed");

	ret = ret ?: (overrides ? override_networks(doc, overrides, err) : 0);
	if (!ret && track_dirty_pages)
		json_object_set_new(json_object_get(doc, "machine-config"), "track_dirty_pages",
				    json_true());
	ret = ret ?: vm_json_parse(doc, false, &cfg, err);
	if (ret) {
		log_error("%s", err->msg); /* what was wrong with the request itself */
		if (ram)
			guest_mem_destroy(ram); /* ours either way, as if a VM had taken it */
	}
	if (!ret) {
		cfg.console = snap->console;
		cfg.mem_file = mem_path;
		cfg.ram = ram;
		if (ctl->hooks.boot(ctl->hooks.opaque, &cfg, ctl->serial_fd, snap, !resume))
			ret = field_fail(err, "%s", log_last_error());
	}
	if (ret) {
		json_decref(doc);
		return ret;
	}
	/* The restored VM is the snapshot's: its configuration, its console. */
	json_decref(ctl->doc);
	ctl->doc = doc;
	ctl->base.console = cfg.console;
	ctl->state = resume ? INSTANCE_RUNNING : INSTANCE_PAUSED;
	ctl->diff_base = ctl->vm && ctl->vm->mem.dirty; /* the memory file is the base */
	return 0;
}

int controller_restore(struct controller *ctl, const char *snapshot_path, const char *mem_path,
		       json_t *overrides, bool resume, bool track_dirty_pages,
		       struct field_error *err)
{
	struct vm_snapshot snap;
	int ret;

	if (vm_snapshot_open(snapshot_path, &snap))
		return field_fail(err, "%s", log_last_error());
	ret = controller_restore_from(ctl, &snap, mem_path, NULL, overrides, resume,
				      track_dirty_pages, err);
	vm_snapshot_close(&snap);
	return ret;
}

static void load_snapshot(struct controller *ctl, struct api_request *req,
			  struct api_response *resp)
{
	json_t *body = req->body, *backend = json_object_get(body, "mem_backend");
	const char *mem = json_string_value(backend ? json_object_get(backend, "backend_path")
						    : json_object_get(body, "mem_file_path"));
	struct field_error err;

	if (controller_restore(ctl, json_string_value(json_object_get(body, "snapshot_path")), mem,
			       json_object_get(body, "network_overrides"),
			       json_is_true(json_object_get(body, "resume_vm")),
			       json_is_true(json_object_get(body, "track_dirty_pages")) ||
				       json_is_true(json_object_get(body, "enable_diff_snapshots")),
			       &err)) {
		api_fault(resp, 400, "snapshot/load: %s", err.msg);
		return;
	}
	resp->status = 204;
}

/* On skiff's terminal, when it has one: a snapshot of a large VM takes a while. */
static void show_progress(void *opaque, uint64_t done, uint64_t total)
{
	struct controller *ctl = opaque;
	uint64_t us = elapsed_us(ctl->snapshot_started) ?: 1;

	ctl->snapshot_bytes = done;
	if (!isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "\rskiff: snapshot: %llu of %llu MiB written, %llu MiB/s%s",
		(unsigned long long)(done >> 20), (unsigned long long)(total >> 20),
		(unsigned long long)(done / us * 1000000 >> 20), done == total ? "\r\n" : "");
}

static void create_snapshot(struct controller *ctl, struct api_request *req,
			    struct api_response *resp)
{
	json_t *body = req->body;
	const char *type = json_string_value(json_object_get(body, "snapshot_type"));
	bool diff = type && !strcmp(type, "Diff"), tracking = ctl->vm->mem.dirty != NULL;
	uint64_t *dirty = NULL;
	char *config;
	int ret;

	if (ctl->state != INSTANCE_PAUSED) {
		api_fault(resp, 400, "snapshot/create: the VM must be paused first (PATCH /vm)");
		return;
	}
	if (diff && !tracking) {
		api_fault(resp, 400, "snapshot/create: a Diff needs track_dirty_pages "
				     "(machine-config, or snapshot/load)");
		return;
	}
	if (diff && !ctl->diff_base) {
		api_fault(resp, 400, "snapshot/create: a Diff needs a Full snapshot (or a restore) "
				     "before it, to hold the pages it leaves out");
		return;
	}
	config = json_dumps(ctl->doc, JSON_COMPACT);
	/* Every snapshot starts a new dirty interval: a Diff holds what changed since. */
	ret = !config ? -ENOMEM : tracking ? vm_collect_dirty(ctl->vm, true, &dirty) : 0;
	clock_gettime(CLOCK_MONOTONIC, &ctl->snapshot_started);
	ctl->snapshot_bytes = 0;
	ret = ret ?: vm_snapshot_create(ctl->vm, config, ctl->base.console,
					json_string_value(json_object_get(body, "snapshot_path")),
					json_string_value(json_object_get(body, "mem_file_path")),
					diff ? dirty : NULL, show_progress, ctl);
	free(config);
	free(dirty);
	ctl->snapshot_us = elapsed_us(ctl->snapshot_started);
	/* A failed snapshot lost the interval's dirty pages: only a Full may follow. */
	ctl->diff_base = !ret && tracking;
	if (ret) {
		api_fault(resp, 400, "snapshot/create: %s", ret == -ENOMEM ? "out of memory"
								  : log_last_error());
		return;
	}
	ctl->snapshots++;
	log_info("snapshot written in %llu us", (unsigned long long)ctl->snapshot_us);
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

static void set_metrics(struct controller *ctl, struct api_request *req,
			struct api_response *resp)
{
	const char *path = json_string_value(json_object_get(req->body, "metrics_path"));
	int fd;

	if (ctl->metrics.fd >= 0) {
		api_fault(resp, 400, "metrics: already set up");
		return;
	}
	/* O_NONBLOCK: a named pipe without a reader fails here instead of blocking the VM. */
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0) {
		api_fault(resp, 400, "metrics_path %s: %s", path, strerror(errno));
		return;
	}
	ctl->metrics.fd = fd;
	ctl->metrics.properties = json_incref(json_object_get(req->body, "properties"));
	resp->status = 204;
}

/* Per virtio device, labelled by its kind and slot, e.g. "virtio-blk.0". */
static void collect_devices(struct vm *vm, struct metrics *m)
{
	char labels[MAX_VIRTIO_DEVICES][32];
	uint64_t notes[MAX_VIRTIO_DEVICES], irqs[MAX_VIRTIO_DEVICES];
	struct net_stats net[MAX_VIRTIO_DEVICES] = { 0 };
	bool is_net[MAX_VIRTIO_DEVICES];
	unsigned n = vm->nr_virtio;

	for (unsigned i = 0; i < n; i++) {
		struct virtio_mmio *t = &vm->virtio[i];

		snprintf(labels[i], sizeof(labels[i]), "%s.%u", t->ops->name, i);
		virtio_mmio_lock(t);
		notes[i] = t->notifications;
		irqs[i] = t->interrupts;
		virtio_mmio_unlock(t);
		is_net[i] = !strcmp(t->ops->name, "virtio-net");
		if (is_net[i])
			virtio_net_stats(t->dev, &net[i]);
	}
	/* Grouped by name, as the renderers want. */
	for (unsigned i = 0; i < n; i++)
		metrics_add(m, "virtio_notifications_total", "Queue notifications from the guest",
			    "device", labels[i], notes[i]);
	for (unsigned i = 0; i < n; i++)
		metrics_add(m, "virtio_interrupts_total", "Interrupts raised to the guest",
			    "device", labels[i], irqs[i]);
	for (unsigned i = 0; i < n; i++)
		if (is_net[i])
			metrics_add(m, "net_rx_packets_total", "Frames delivered to the guest",
				    "device", labels[i], net[i].rx_packets);
	for (unsigned i = 0; i < n; i++)
		if (is_net[i])
			metrics_add(m, "net_tx_packets_total", "Frames sent by the guest", "device",
				    labels[i], net[i].tx_packets);
}

/* Every counter, grouped by name. */
static void collect(struct controller *ctl, struct metrics *m)
{
	static const char *const classes[] = { "", "1xx", "2xx", "3xx", "4xx", "5xx" };
	struct vm *vm = ctl->vm;

	metrics_add(m, "uptime_us", "Microseconds since skiff started", NULL, NULL,
		    elapsed_us(ctl->base.start));
	metrics_add(m, "snapshots_total", "Snapshots created", NULL, NULL, ctl->snapshots);
	metrics_add(m, "snapshot_memory_bytes", "RAM bytes the last snapshot has written", NULL,
		    NULL, ctl->snapshot_bytes);
	metrics_add(m, "snapshot_create_us", "Microseconds the last snapshot took", NULL, NULL,
		    ctl->snapshot_us);
	for (unsigned c = 1; c < 6; c++)
		metrics_add(m, "api_responses_total", "API answers by status class", "status",
			    classes[c], atomic_load(&ctl->counters->by_class[c]));
	for (unsigned op = 0; op < API_OPS; op++)
		metrics_add(m, "api_requests_total", "API requests that reached the VM",
			    "request", op_names[op], ctl->requests[op]);
	if (!vm)
		return;
	for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++) {
		uint64_t sum = 0;

		for (unsigned i = 0; i < vm->nr_vcpus; i++)
			sum += vcpu_exit_count(&vm->vcpus[i], k);
		metrics_add(m, "vcpu_exits_total", "vCPU exits to skiff by reason", "reason",
			    vcpu_exit_names[k], sum);
	}
	collect_devices(vm, m);
}

static void flush_metrics(struct controller *ctl, struct api_response *resp)
{
	struct metrics m = { 0 };
	int ret;

	if (ctl->metrics.fd < 0) {
		api_fault(resp, 400, "FlushMetrics: no metrics_path yet (PUT /metrics)");
		return;
	}
	collect(ctl, &m);
	ret = metrics_flush(&ctl->metrics, &m);
	metrics_free(&m);
	if (ret)
		api_fault(resp, 400, "FlushMetrics: %s", strerror(-ret));
	else
		resp->status = 204;
}

static void get_metrics(struct controller *ctl, struct api_response *resp)
{
	struct metrics m = { 0 };

	collect(ctl, &m);
	resp->body = metrics_to_prometheus(&m);
	resp->status = resp->body ? 200 : 500;
	resp->text = true;
	metrics_free(&m);
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
		api_fault(resp, 400, "%s: only before InstanceStart", op_names[req->op]);
		return;
	}
	if (!started && post_boot_only(req->op)) {
		api_fault(resp, 400, "%s: only once the VM has started", op_names[req->op]);
		return;
	}
	if (migrating(ctl) && (req->op == API_PAUSE || req->op == API_RESUME ||
			       req->op == API_SNAPSHOT_CREATE || req->op == API_PATCH_DRIVE)) {
		api_fault(resp, 400, "%s: a migration is under way", op_names[req->op]);
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
		set_metrics(ctl, req, resp);
		break;
	case API_FLUSH_METRICS:
		flush_metrics(ctl, resp);
		break;
	case API_GET_METRICS:
		get_metrics(ctl, resp);
		break;
	case API_SNAPSHOT_CREATE:
		create_snapshot(ctl, req, resp);
		break;
	case API_SNAPSHOT_LOAD:
		load_snapshot(ctl, req, resp);
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
