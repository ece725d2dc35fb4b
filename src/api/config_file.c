#include "config_file.h"

#include "../arch/x86/tables.h"
#include "../config.h"
#include "../log.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the VM config points into: the parsed document, and the command line made here. */
struct config_file {
	json_t *root;
	char *cmdline;
};

/* Sections and fields of FullVmConfiguration skiff does not offer yet: refused, by name. */
static const char *const unsupported_sections[] = {
	"balloon", "cpu-config", "logger", "metrics", "memory-hotplug", "mmds-config", "pmem",
	"vsock", "serial", NULL,
};

static bool in_list(const char *key, const char *const *list)
{
	for (; list && *list; list++)
		if (!strcmp(key, *list))
			return true;
	return false;
}

/* Every key of obj must be known; unsupported ones get their own message. */
static int check_keys(const char *name, json_t *obj, const char *const *known,
		      const char *const *unsupported)
{
	const char *key;
	json_t *value;

	if (!json_is_object(obj)) {
		log_error("%s: must be an object", name);
		return -EINVAL;
	}
	json_object_foreach(obj, key, value) {
		if (in_list(key, unsupported)) {
			log_error("%s: '%s' is not supported by skiff yet", name, key);
			return -EINVAL;
		}
		if (!in_list(key, known)) {
			log_error("%s: unknown field '%s'", name, key);
			return -EINVAL;
		}
	}
	return 0;
}

/* A string field: required or NULL when absent; -EINVAL when present but not a string. */
static int get_string(const char *name, json_t *obj, const char *key, bool required,
		      const char **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v) {
		if (!required)
			return 0;
		log_error("%s: '%s' is required", name, key);
		return -EINVAL;
	}
	if (!json_is_string(v) || !json_string_length(v) ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		log_error("%s: '%s' must be a non-empty string", name, key);
		return -EINVAL;
	}
	*out = json_string_value(v);
	return 0;
}

static int get_bool(const char *name, json_t *obj, const char *key, bool required, bool *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v) {
		if (!required)
			return 0;
		log_error("%s: '%s' is required", name, key);
		return -EINVAL;
	}
	if (!json_is_boolean(v)) {
		log_error("%s: '%s' must be true or false", name, key);
		return -EINVAL;
	}
	*out = json_is_true(v);
	return 0;
}

static int get_int(const char *name, json_t *obj, const char *key, long long min,
		   long long max, long long *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v) {
		log_error("%s: '%s' is required", name, key);
		return -EINVAL;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		log_error("%s: '%s' must be a whole number from %lld to %lld", name, key, min, max);
		return -EINVAL;
	}
	*out = json_integer_value(v);
	return 0;
}

/* A string field that, when present, must be one of choices (the first is the default). */
static int get_choice(const char *name, json_t *obj, const char *key,
		      const char *const *choices, const char **out)
{
	int ret = get_string(name, obj, key, false, out);

	if (ret || !*out) {
		*out = choices[0];
		return ret;
	}
	if (!in_list(*out, choices)) {
		log_error("%s: '%s' cannot be \"%s\"", name, key, *out);
		return -EINVAL;
	}
	return 0;
}

static int parse_boot_source(json_t *obj, struct vm_config *vm)
{
	static const char *const known[] = { "kernel_image_path", "initrd_path", "boot_args",
					     NULL };
	const char *name = "boot-source";

	if (!obj) {
		log_error("%s is required", name);
		return -EINVAL;
	}
	return check_keys(name, obj, known, NULL) ?:
	       get_string(name, obj, "kernel_image_path", true, &vm->kernel_path) ?:
	       get_string(name, obj, "initrd_path", false, &vm->initrd_path) ?:
	       get_string(name, obj, "boot_args", false, &vm->cmdline);
}

static int parse_machine(json_t *obj, struct vm_config *vm)
{
	static const char *const known[] = { "vcpu_count", "mem_size_mib", "smt",
					     "track_dirty_pages", "huge_pages", NULL };
	static const char *const unsupported[] = { "cpu_template", NULL };
	static const char *const huge_pages[] = { "None", NULL };
	const char *name = "machine-config", *pages;
	bool smt = false, dirty = false;
	long long cpus, mib;
	int ret;

	if (!obj)
		return 0; /* skiff's defaults */
	ret = check_keys(name, obj, known, unsupported) ?:
	      get_int(name, obj, "vcpu_count", 1, TABLES_MAX_CPUS, &cpus) ?:
	      get_int(name, obj, "mem_size_mib", CONFIG_MIN_MEMORY >> 20,
		      CONFIG_MAX_MEMORY >> 20, &mib) ?:
	      get_bool(name, obj, "smt", false, &smt) ?:
	      get_bool(name, obj, "track_dirty_pages", false, &dirty) ?:
	      get_choice(name, obj, "huge_pages", huge_pages, &pages);
	if (ret)
		return ret;
	if (smt || dirty) {
		log_error("%s: '%s' is not supported by skiff yet", name,
			  smt ? "smt" : "track_dirty_pages");
		return -EINVAL;
	}
	vm->cpus = cpus;
	vm->memory = (uint64_t)mib << 20;
	return 0;
}

/* Firecracker's root device: root=/dev/vdX, read-only or not, at the command line's end. */
static int root_param(struct vm_config *vm, unsigned index, bool readonly,
		      struct config_file *cf)
{
	const char *user = vm->cmdline ? vm->cmdline : "";

	if (asprintf(&cf->cmdline, "%s%sroot=/dev/vd%c %s", user, *user ? " " : "",
		     'a' + index, readonly ? "ro" : "rw") < 0) {
		cf->cmdline = NULL;
		return -ENOMEM;
	}
	vm->cmdline = cf->cmdline;
	return 0;
}

static int parse_drive(const char *name, json_t *obj, struct vm_config *vm,
		       struct config_file *cf, bool *root_seen)
{
	static const char *const known[] = { "drive_id", "path_on_host", "is_root_device",
					     "is_read_only", "cache_type", "io_engine", NULL };
	static const char *const unsupported[] = { "partuuid", "rate_limiter", "socket", NULL };
	static const char *const caches[] = { "Unsafe", "Writeback", NULL };
	static const char *const engines[] = { "Sync", "Async", NULL };
	struct blk_config *disk = &vm->disks[vm->nr_disks];
	bool root = false, readonly = false;
	const char *id, *path, *unused;
	int ret;

	ret = check_keys(name, obj, known, unsupported) ?:
	      get_string(name, obj, "drive_id", true, &id) ?:
	      get_string(name, obj, "path_on_host", true, &path) ?:
	      get_bool(name, obj, "is_root_device", true, &root) ?:
	      get_bool(name, obj, "is_read_only", false, &readonly) ?:
	      get_choice(name, obj, "cache_type", caches, &unused) ?:
	      get_choice(name, obj, "io_engine", engines, &unused);
	if (ret)
		return ret;
	if (strlen(id) > BLK_ID_MAX) {
		log_error("%s: 'drive_id' is longer than %d characters", name, BLK_ID_MAX);
		return -EINVAL;
	}
	for (unsigned i = 0; i < vm->nr_disks; i++) {
		if (!strcmp(vm->disks[i].id, id)) {
			log_error("%s: drive_id \"%s\" is used twice", name, id);
			return -EINVAL;
		}
	}
	if (root && *root_seen) {
		log_error("%s: only one drive can be the root device", name);
		return -EINVAL;
	}
	memset(disk, 0, sizeof(*disk));
	disk->path = path;
	disk->readonly = readonly;
	strcpy(disk->id, id);
	vm->nr_disks++;
	if (root) {
		*root_seen = true;
		return root_param(vm, vm->nr_disks - 1, readonly, cf);
	}
	return 0;
}

static int parse_net(const char *name, json_t *obj, struct vm_config *vm)
{
	static const char *const known[] = { "iface_id", "host_dev_name", "guest_mac", NULL };
	static const char *const unsupported[] = { "mtu", "rx_rate_limiter", "tx_rate_limiter",
						   NULL };
	struct net_config *net = &vm->nets[vm->nr_nets];
	const char *iface, *dev, *mac;
	int ret;

	ret = check_keys(name, obj, known, unsupported) ?:
	      get_string(name, obj, "iface_id", true, &iface) ?:
	      get_string(name, obj, "host_dev_name", true, &dev) ?:
	      get_string(name, obj, "guest_mac", false, &mac);
	if (ret)
		return ret;
	memset(net, 0, sizeof(*net));
	if (strlen(dev) >= IFNAMSIZ) {
		log_error("%s: 'host_dev_name' is longer than %d characters", name, IFNAMSIZ - 1);
		return -EINVAL;
	}
	net->backend = NET_TAP;
	strcpy(net->ifname, dev);
	if (mac && config_parse_mac(mac, net->mac)) {
		log_error("%s: 'guest_mac' \"%s\" is not a unicast XX:XX:XX:XX:XX:XX", name, mac);
		return -EINVAL;
	}
	net->mac_set = mac != NULL;
	vm->nr_nets++;
	return 0;
}

/* drives or network-interfaces: at most max items, each parsed in order. */
static int parse_array(json_t *root, const char *key, unsigned max, struct vm_config *vm,
		       struct config_file *cf)
{
	json_t *array = json_object_get(root, key), *item;
	bool root_seen = false;
	char name[40];
	size_t i;
	int ret = 0;

	if (!array)
		return 0;
	if (!json_is_array(array)) {
		log_error("%s: must be an array", key);
		return -EINVAL;
	}
	json_array_foreach(array, i, item) {
		snprintf(name, sizeof(name), "%s[%zu]", key, i);
		if (i == max) {
			log_error("%s: at most %u %s", name, max, key);
			return -EINVAL;
		}
		ret = !strcmp(key, "drives") ? parse_drive(name, item, vm, cf, &root_seen)
					     : parse_net(name, item, vm);
		if (ret)
			break;
	}
	return ret;
}

static int parse_entropy(json_t *obj, struct vm_config *vm)
{
	static const char *const unsupported[] = { "rate_limiter", NULL };

	if (!obj)
		return 0;
	vm->rng = true;
	return check_keys("entropy", obj, NULL, unsupported);
}

int config_file_parse(const char *buf, size_t len, const char *name, struct vm_config *vm,
		      void **keep)
{
	static const char *const known[] = { "boot-source", "machine-config", "drives",
					     "network-interfaces", "entropy", NULL };
	struct config_file *cf = calloc(1, sizeof(*cf));
	json_error_t error;
	int ret;

	*keep = NULL;
	if (!cf)
		return -ENOMEM;
	cf->root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &error);
	if (!cf->root) {
		log_error("%s: line %d: %s", name, error.line, error.text);
		free(cf);
		return -EINVAL;
	}
	ret = check_keys(name, cf->root, known, unsupported_sections) ?:
	      parse_boot_source(json_object_get(cf->root, "boot-source"), vm) ?:
	      parse_machine(json_object_get(cf->root, "machine-config"), vm) ?:
	      parse_array(cf->root, "drives", VM_MAX_DISKS, vm, cf) ?:
	      parse_array(cf->root, "network-interfaces", VM_MAX_NETS, vm, cf) ?:
	      parse_entropy(json_object_get(cf->root, "entropy"), vm);
	if (ret) {
		config_file_free(cf);
		return ret;
	}
	*keep = cf;
	return 0;
}

int config_file_load(const char *path, struct vm_config *vm, void **keep)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "re");
	int ret;

	if (!f) {
		ret = -errno;
		log_error("%s: %s", path, strerror(errno));
		return ret;
	}
	/* A config is small; anything past 1 MiB is not one. */
	buf = malloc(1 << 20);
	if (buf)
		len = fread(buf, 1, 1 << 20, f);
	if (!buf || ferror(f) || !feof(f)) {
		log_error("%s: unreadable or larger than 1 MiB", path);
		ret = -EINVAL;
	} else {
		ret = config_file_parse(buf, len, path, vm, keep);
	}
	free(buf);
	fclose(f);
	return ret;
}

void config_file_free(void *keep)
{
	struct config_file *cf = keep;

	if (!cf)
		return;
	json_decref(cf->root);
	free(cf->cmdline);
	free(cf);
}
