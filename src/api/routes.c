#include "routes.h"

#include "vm_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checks req->body (present, an object) and may pick req->op from it. */
typedef int (*body_check)(struct api_request *req, struct field_error *err);

struct route {
	const char *path; /* ending in '/': the rest of the path is an id */
	const char *method;
	enum api_op op;
	body_check check; /* NULL: no body wanted */
};

/* Each checker looks only at the body; what depends on the VM's state is the VM's to say. */
static int check_boot_source(struct api_request *req, struct field_error *err)
{
	struct vm_config scratch = { 0 };

	return vm_json_boot_source(req->body, &scratch, err);
}

static int check_machine(struct api_request *req, struct field_error *err)
{
	struct vm_config scratch = { 0 };

	return vm_json_machine(req->body, &scratch, err);
}

/* A PATCH may name any subset: the VM checks the merged whole. */
static int check_machine_patch(struct api_request *req, struct field_error *err)
{
	static const char *const known[] = { "vcpu_count", "mem_size_mib", "smt",
					     "track_dirty_pages", "huge_pages", NULL };
	static const char *const unsupported[] = { "cpu_template", NULL };

	return field_check_keys("machine-config", req->body, known, unsupported, err);
}

/* The id in the body must be the path's, as Firecracker requires. */
static int check_id(struct api_request *req, const char *key, struct field_error *err)
{
	json_t *id = json_object_get(req->body, key);

	if (id && json_is_string(id) && strcmp(json_string_value(id), req->id))
		return field_fail(err, "'%s' \"%s\" differs from the path's \"%s\"", key,
				  json_string_value(id), req->id);
	return 0;
}

static int check_drive(struct api_request *req, struct field_error *err)
{
	struct vm_config scratch = { 0 };

	return vm_json_drive("drive", req->body, &scratch, err) ?: check_id(req, "drive_id", err);
}

static int check_drive_patch(struct api_request *req, struct field_error *err)
{
	static const char *const known[] = { "drive_id", "path_on_host", NULL };
	static const char *const unsupported[] = { "rate_limiter", NULL };
	const char *unused;

	return field_check_keys("drive", req->body, known, unsupported, err) ?:
	       field_string("drive", req->body, "drive_id", true, &unused, err) ?:
	       field_string("drive", req->body, "path_on_host", true, &unused, err) ?:
	       check_id(req, "drive_id", err);
}

static int check_net(struct api_request *req, struct field_error *err)
{
	struct vm_config scratch = { 0 };

	return vm_json_net("network-interface", req->body, &scratch, err) ?:
	       check_id(req, "iface_id", err);
}

static int check_entropy(struct api_request *req, struct field_error *err)
{
	struct vm_config scratch = { 0 };

	return vm_json_entropy(req->body, &scratch, err);
}

static int check_serial(struct api_request *req, struct field_error *err)
{
	static const char *const known[] = { "serial_out_path", NULL };
	static const char *const unsupported[] = { "rate_limiter", NULL };
	const char *unused;

	return field_check_keys("serial", req->body, known, unsupported, err) ?:
	       field_string("serial", req->body, "serial_out_path", false, &unused, err);
}

static int check_action(struct api_request *req, struct field_error *err)
{
	static const char *const known[] = { "action_type", NULL };
	static const char *const actions[] = { "InstanceStart", "SendCtrlAltDel", "FlushMetrics",
					       "InstanceStop", NULL };
	static const enum api_op ops[] = { API_INSTANCE_START, API_SEND_CTRL_ALT_DEL,
					   API_FLUSH_METRICS, API_INSTANCE_STOP };
	const char *action;
	unsigned index;
	int ret;

	ret = field_check_keys("action", req->body, known, NULL, err) ?:
	      field_string("action", req->body, "action_type", true, &action, err) ?:
	      field_choice("action", req->body, "action_type", actions, &index, err);
	if (!ret)
		req->op = ops[index];
	return ret;
}

static int check_vm_state(struct api_request *req, struct field_error *err)
{
	static const char *const known[] = { "state", NULL };
	static const char *const states[] = { "Paused", "Resumed", NULL };
	const char *state;
	unsigned index;
	int ret;

	ret = field_check_keys("vm", req->body, known, NULL, err) ?:
	      field_string("vm", req->body, "state", true, &state, err) ?:
	      field_choice("vm", req->body, "state", states, &index, err);
	if (!ret)
		req->op = index ? API_RESUME : API_PAUSE;
	return ret;
}

static int check_logger(struct api_request *req, struct field_error *err)
{
	static const char *const known[] = { "level", "log_path", "show_level",
					     "show_log_origin", "module", NULL };
	const char *unused;
	bool flag;

	return field_check_keys("logger", req->body, known, NULL, err) ?:
	       field_string("logger", req->body, "level", false, &unused, err) ?:
	       field_string("logger", req->body, "log_path", false, &unused, err) ?:
	       field_string("logger", req->body, "module", false, &unused, err) ?:
	       field_bool("logger", req->body, "show_level", false, &flag, err) ?:
	       field_bool("logger", req->body, "show_log_origin", false, &flag, err);
}

static int check_metrics(struct api_request *req, struct field_error *err)
{
	static const char *const known[] = { "metrics_path", "emit_id", "properties", NULL };
	json_t *props = json_object_get(req->body, "properties"), *value;
	const char *unused, *key;
	bool flag;
	int ret;

	ret = field_check_keys("metrics", req->body, known, NULL, err) ?:
	      field_string("metrics", req->body, "metrics_path", true, &unused, err) ?:
	      field_bool("metrics", req->body, "emit_id", false, &flag, err);
	if (ret || !props)
		return ret;
	if (!json_is_object(props))
		return field_fail(err, "metrics: 'properties' must be an object");
	json_object_foreach(props, key, value)
		if (!json_is_string(value))
			return field_fail(err, "metrics: properties: '%s' must be a string", key);
	return 0;
}

static int check_snapshot_create(struct api_request *req, struct field_error *err)
{
	static const char *const known[] = { "snapshot_path", "mem_file_path", "snapshot_type",
					     NULL };
	static const char *const types[] = { "Full", "Diff", NULL };
	const char *unused;
	unsigned type;

	return field_check_keys("snapshot", req->body, known, NULL, err) ?:
	       field_string("snapshot", req->body, "snapshot_path", true, &unused, err) ?:
	       field_string("snapshot", req->body, "mem_file_path", true, &unused, err) ?:
	       field_choice("snapshot", req->body, "snapshot_type", types, &type, err);
}

static int check_network_overrides(json_t *list, struct field_error *err)
{
	static const char *const known[] = { "iface_id", "host_dev_name", NULL };
	const char *unused;
	json_t *item;
	size_t i;
	int ret = 0;

	if (!json_is_array(list))
		return field_fail(err, "snapshot: 'network_overrides' must be an array");
	json_array_foreach(list, i, item) {
		ret = field_check_keys("network_overrides", item, known, NULL, err) ?:
		      field_string("network_overrides", item, "iface_id", true, &unused, err) ?:
		      field_string("network_overrides", item, "host_dev_name", true, &unused, err);
		if (ret)
			break;
	}
	return ret;
}

static int check_snapshot_load(struct api_request *req, struct field_error *err)
{
	static const char *const known[] = { "snapshot_path", "mem_file_path", "mem_backend",
					     "enable_diff_snapshots", "track_dirty_pages",
					     "resume_vm", "network_overrides", NULL };
	static const char *const unsupported[] = { "vsock_override", NULL };
	static const char *const backend_keys[] = { "backend_type", "backend_path", NULL };
	static const char *const backends[] = { "File", "Uffd", NULL };
	json_t *body = req->body, *backend = json_object_get(body, "mem_backend");
	json_t *overrides = json_object_get(body, "network_overrides");
	const char *unused, *mem_file;
	unsigned type;
	bool flag;
	int ret;

	ret = field_check_keys("snapshot", body, known, unsupported, err) ?:
	      field_string("snapshot", body, "snapshot_path", true, &unused, err) ?:
	      field_string("snapshot", body, "mem_file_path", false, &mem_file, err) ?:
	      field_bool("snapshot", body, "enable_diff_snapshots", false, &flag, err) ?:
	      field_bool("snapshot", body, "track_dirty_pages", false, &flag, err) ?:
	      field_bool("snapshot", body, "resume_vm", false, &flag, err) ?:
	      (overrides ? check_network_overrides(overrides, err) : 0);
	if (ret)
		return ret;
	if (!backend == !mem_file)
		return field_fail(err, "snapshot: give exactly one of 'mem_backend' and "
				  "'mem_file_path'");
	if (!backend)
		return 0;
	ret = field_check_keys("mem_backend", backend, backend_keys, NULL, err) ?:
	      field_string("mem_backend", backend, "backend_path", true, &unused, err) ?:
	      field_string("mem_backend", backend, "backend_type", true, &unused, err) ?:
	      field_choice("mem_backend", backend, "backend_type", backends, &type, err);
	if (!ret && type == 1)
		return field_fail(err, "mem_backend: 'Uffd' is not supported by skiff yet");
	return ret;
}

static int check_migrate(struct api_request *req, struct field_error *err)
{
	static const char *const known[] = { "destination", "downtime_ms", "with_disks", NULL };
	const char *uri;
	long long ms;
	bool disks;
	int ret;

	ret = field_check_keys("migrate", req->body, known, NULL, err) ?:
	      field_string("migrate", req->body, "destination", true, &uri, err) ?:
	      field_bool("migrate", req->body, "with_disks", false, &disks, err);
	if (!ret && json_object_get(req->body, "downtime_ms"))
		ret = field_int("migrate", req->body, "downtime_ms", 1, 60000, &ms, err);
	if (ret)
		return ret;
	if (strncmp(uri, "tcp:", 4) || strlen(uri) >= 256)
		return field_fail(err, "migrate: 'destination' must be tcp:HOST:PORT");
	return 0;
}

static const struct route routes[] = {
	{ "/", "GET", API_GET_INFO, NULL },
	{ "/boot-source", "PUT", API_PUT_BOOT_SOURCE, check_boot_source },
	{ "/machine-config", "GET", API_GET_MACHINE, NULL },
	{ "/machine-config", "PUT", API_PUT_MACHINE, check_machine },
	{ "/machine-config", "PATCH", API_PATCH_MACHINE, check_machine_patch },
	{ "/drives/", "PUT", API_PUT_DRIVE, check_drive },
	{ "/drives/", "PATCH", API_PATCH_DRIVE, check_drive_patch },
	{ "/network-interfaces/", "PUT", API_PUT_NET, check_net },
	{ "/entropy", "PUT", API_PUT_ENTROPY, check_entropy },
	{ "/serial", "PUT", API_PUT_SERIAL, check_serial },
	{ "/actions", "PUT", API_INSTANCE_START, check_action },
	{ "/vm", "PATCH", API_PAUSE, check_vm_state },
	{ "/vm/config", "GET", API_GET_VM_CONFIG, NULL },
	{ "/logger", "PUT", API_PUT_LOGGER, check_logger },
	{ "/metrics", "PUT", API_PUT_METRICS, check_metrics },
	{ "/metrics", "GET", API_GET_METRICS, NULL },
	{ "/snapshot/create", "PUT", API_SNAPSHOT_CREATE, check_snapshot_create },
	{ "/snapshot/load", "PUT", API_SNAPSHOT_LOAD, check_snapshot_load },
	{ "/migrate", "PUT", API_MIGRATE_START, check_migrate },
	{ "/migrate", "GET", API_MIGRATE_STATUS, NULL },
	{ "/migrate", "DELETE", API_MIGRATE_CANCEL, NULL },
	/* answered here: */
	{ "/version", "GET", API_OPS, NULL },
};

/* Firecracker endpoints whose features skiff does not have (yet): a 400 that says so. */
static const char *const unsupported_paths[] = {
	"/balloon", "/mmds", "/vsock", "/cpu-config", "/pmem/", "/hotplug/memory",
	"/network-interfaces/", NULL,
};

#define ROUTES (sizeof(routes) / sizeof(routes[0]))

/* Whether path is route's: exactly, or its prefix and then an id (returned in *id). */
static bool path_matches(const struct route *route, const char *path, const char **id)
{
	size_t len = strlen(route->path);

	*id = NULL;
	if (len > 1 && route->path[len - 1] == '/') {
		if (strncmp(path, route->path, len))
			return false;
		*id = path + len;
		return true;
	}
	return !strcmp(path, route->path);
}

const char *api_allowed_methods(const char *path)
{
	static __thread char methods[32]; /* each API thread its own */
	const char *id;

	methods[0] = '\0';
	for (size_t i = 0; i < ROUTES; i++) {
		if (!path_matches(&routes[i], path, &id))
			continue;
		if (methods[0])
			strcat(methods, ", ");
		strcat(methods, routes[i].method);
	}
	return methods[0] ? methods : NULL;
}

static bool unsupported_path(const char *path)
{
	for (const char *const *p = unsupported_paths; *p; p++)
		if (!strncmp(path, *p, strlen(*p)))
			return true;
	return false;
}

static bool answer_version(struct api_response *resp)
{
	api_json(resp, json_pack("{s:s}", "firecracker_version", SKIFF_VERSION));
	return false;
}

/* Parses the body into req->body and checks it; false with resp filled when it is bad. */
static bool parse_body(const struct route *route, const char *body, size_t len,
		       struct api_request *req, struct api_response *resp)
{
	struct field_error err;
	json_error_t error;

	if (!len) {
		api_fault(resp, 400, "%s %s needs a JSON body", route->method, route->path);
		return false;
	}
	req->body = json_loadb(body, len, JSON_REJECT_DUPLICATES, &error);
	if (!req->body) {
		api_fault(resp, 400, "malformed JSON at line %d column %d: %s", error.line,
			  error.column, error.text);
		return false;
	}
	if (!json_is_object(req->body)) {
		api_fault(resp, 400, "the body must be a JSON object");
		return false;
	}
	if (route->check(req, &err)) {
		api_fault(resp, 400, "%s", err.msg);
		return false;
	}
	return true;
}

bool api_route(const char *method, const char *path, const char *body, size_t len,
	       struct api_request *req, struct api_response *resp)
{
	const struct route *route = NULL;
	const char *allowed, *id = NULL;
	bool ok;

	*req = (struct api_request){ 0 };
	*resp = (struct api_response){ 0 };
	for (size_t i = 0; i < ROUTES && !route; i++)
		if (!strcmp(routes[i].method, method) && path_matches(&routes[i], path, &id))
			route = &routes[i];
	if (!route) {
		allowed = api_allowed_methods(path);
		if (unsupported_path(path) && !allowed)
			api_fault(resp, 400, "%s %s: not supported by skiff yet", method, path);
		else if (unsupported_path(path))
			api_fault(resp, 400, "%s %s: not supported by skiff yet (it takes %s)",
				  method, path, allowed);
		else if (allowed)
			api_fault(resp, 405, "%s is not allowed on %s (it takes %s)", method, path,
				  allowed);
		else
			api_fault(resp, 404, "no such path: %s", path);
		return false;
	}
	if (route->op == API_OPS)
		return answer_version(resp);
	req->op = route->op;
	if (id) {
		if (!vm_json_valid_id(id)) {
			api_fault(resp, 400, "%s: the id must be 1 to 64 of A-Z a-z 0-9 _ -", path);
			return false;
		}
		strcpy(req->id, id);
	}
	ok = !route->check || parse_body(route, body, len, req, resp);
	if (!ok)
		api_request_release(req);
	return ok;
}
