/* The controller's snapshot requests: PUT /snapshot/create and /snapshot/load, --restore. */
#include "controller_parts.h"

#include "vm_json.h"

#include "../log.h"
#include "../vmm/dirty.h"
#include "../vmm/vm_snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/*
 * Builds the VM doc describes (taking doc), its RAM the memory file at mem_path or ram
 * (taken whatever happens), restored from snap when given, its vCPUs parked if paused.
 */
static int build(struct controller *ctl, json_t *doc, enum console_kind console,
		 const char *mem_path, struct guest_mem *ram, struct vm_snapshot *snap,
		 bool paused, struct field_error *err)
{
	struct vm_config cfg = controller_undescribed(ctl);
	int ret = vm_json_parse(doc, false, &cfg, err);

	if (ret) {
		log_error("%s", err->msg); /* what was wrong with the request itself */
		if (ram)
			guest_mem_destroy(ram); /* ours either way, as if a VM had taken it */
		json_decref(doc);
		return ret;
	}
	cfg.console = console;
	cfg.mem_file = mem_path;
	cfg.ram = ram;
	if (ctl->hooks.boot(ctl->hooks.opaque, &cfg, ctl->serial_fd, snap, paused)) {
		json_decref(doc);
		return field_fail(err, "%s", log_last_error());
	}
	/* The VM is the snapshot's or the source's: its configuration, its console. */
	json_decref(ctl->doc);
	ctl->doc = doc;
	ctl->base.console = console;
	ctl->state = paused ? INSTANCE_PAUSED : INSTANCE_RUNNING;
	return 0;
}

int controller_restore_from(struct controller *ctl, struct vm_snapshot *snap,
			    const char *mem_path, struct guest_mem *ram, json_t *overrides,
			    bool resume, bool track_dirty_pages, struct field_error *err)
{
	json_t *doc = json_loads(snap->config, JSON_REJECT_DUPLICATES, NULL);
	int ret = doc ? 0 : field_fail(err, "the snapshot's configuration is malformed");

	ret = ret ?: (overrides ? override_networks(doc, overrides, err) : 0);
	if (ret) {
		log_error("%s", err->msg);
		if (ram)
			guest_mem_destroy(ram);
		json_decref(doc);
		return ret;
	}
	if (track_dirty_pages)
		json_object_set_new(json_object_get(doc, "machine-config"), "track_dirty_pages",
				    json_true());
	ret = build(ctl, doc, snap->console, mem_path, ram, snap, !resume, err);
	ctl->diff_base = !ret && ctl->vm->mem.dirty; /* the memory file is the base */
	return ret;
}

int controller_prepare_incoming(struct controller *ctl, json_t *config, enum console_kind console,
				struct guest_mem *ram, struct field_error *err)
{
	return build(ctl, json_deep_copy(config), console, NULL, ram, NULL, true, err);
}

int controller_run_incoming(struct controller *ctl, struct vm_snapshot *snap)
{
	int ret = vm_snapshot_load(ctl->vm, snap);

	if (ret)
		return ret;
	vm_resume(ctl->vm);
	ctl->state = INSTANCE_RUNNING;
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

void controller_load_snapshot(struct controller *ctl, struct api_request *req,
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
	uint64_t us = controller_elapsed_us(ctl->snapshot_started) ?: 1;

	ctl->snapshot_bytes = done;
	if (!isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "\rskiff: snapshot: %llu of %llu MiB written, %llu MiB/s%s",
		(unsigned long long)(done >> 20), (unsigned long long)(total >> 20),
		(unsigned long long)(done / us * 1000000 >> 20), done == total ? "\r\n" : "");
}

void controller_create_snapshot(struct controller *ctl, struct api_request *req,
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
	ctl->snapshot_us = controller_elapsed_us(ctl->snapshot_started);
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
