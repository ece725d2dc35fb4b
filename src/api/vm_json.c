#include "vm_json.h"

#include "json_fields.h"

#include "../arch/x86/tables.h"
#include "../config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>


/* Sections and fields of FullVmConfiguration skiff does not offer yet: refused, by name. */
static const char *const unsupported_sections[] = {
	"balloon", "cpu-config", "logger", "metrics", "memory-hotplug", "mmds-config", "pmem",
	"vsock", "serial", NULL,
};

static const char *const huge_page_names[] = {
	[HUGE_PAGES_NONE] = "None", [HUGE_PAGES_2M] = "2M", [HUGE_PAGES_TRANSPARENT] = "Transparent",
	NULL,
};

bool vm_json_valid_id(const char *id)
{
	size_t len = strlen(id);

	if (!len || len > API_ID_MAX)
		return false;
	return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
	       len;
}

int vm_json_boot_source(json_t *obj, struct vm_config *vm, struct field_error *err)
{
	static const char *const known[] = { "kernel_image_path", "initrd_path", "boot_args",
					     NULL };
	const char *name = "boot-source";

	return field_check_keys(name, obj, known, NULL, err) ?:
	       field_string(name, obj, "kernel_image_path", true, &vm->kernel_path, err) ?:
	       field_string(name, obj, "initrd_path", false, &vm->initrd_path, err) ?:
	       field_string(name, obj, "boot_args", false, &vm->cmdline, err);
}

int vm_json_machine(json_t *obj, struct vm_config *vm, struct field_error *err)
{
	static const char *const known[] = { "vcpu_count", "mem_size_mib", "smt",
					     "track_dirty_pages", "huge_pages", NULL };
	static const char *const unsupported[] = { "cpu_template", NULL };
	const char *name = "machine-config";
	bool smt = false, dirty = false;
	long long cpus, mib;
	unsigned pages;
	int ret;

	ret = field_check_keys(name, obj, known, unsupported, err) ?:
	      field_int(name, obj, "vcpu_count", 1, TABLES_MAX_CPUS, &cpus, err) ?:
	      field_int(name, obj, "mem_size_mib", CONFIG_MIN_MEMORY >> 20,
		      CONFIG_MAX_MEMORY >> 20, &mib, err) ?:
	      field_bool(name, obj, "smt", false, &smt, err) ?:
	      field_bool(name, obj, "track_dirty_pages", false, &dirty, err) ?:
	      field_choice(name, obj, "huge_pages", huge_page_names, &pages, err);
	if (ret)
		return ret;
	if (smt)
		return field_fail(err, "%s: 'smt' is not supported by skiff yet", name);
	if (pages == HUGE_PAGES_2M && mib % 2)
		return field_fail(err, "%s: 'mem_size_mib' must be even with 2M huge pages", name);
	vm->cpus = cpus;
	vm->memory = (uint64_t)mib << 20;
	vm->track_dirty_pages = dirty;
	vm->huge_pages = pages;
	return 0;
}

int vm_json_drive(const char *name, json_t *obj, struct vm_config *vm,
		  struct field_error *err)
{
	static const char *const known[] = { "drive_id", "path_on_host", "is_root_device",
					     "is_read_only", "cache_type", "io_engine", NULL };
	static const char *const unsupported[] = { "partuuid", "rate_limiter", "socket", NULL };
	static const char *const caches[] = { "Unsafe", "Writeback", NULL };
	static const char *const engines[] = { "Sync", "Async", NULL };
	struct blk_config *disk = &vm->disks[vm->nr_disks];
	bool root = false, readonly = false;
	const char *id, *path;
	unsigned unused;
	int ret;

	if (vm->nr_disks == VM_MAX_DISKS)
		return field_fail(err, "%s: at most %d drives", name, VM_MAX_DISKS);
	ret = field_check_keys(name, obj, known, unsupported, err) ?:
	      field_string(name, obj, "drive_id", true, &id, err) ?:
	      field_string(name, obj, "path_on_host", true, &path, err) ?:
	      field_bool(name, obj, "is_root_device", true, &root, err) ?:
	      field_bool(name, obj, "is_read_only", false, &readonly, err) ?:
	      field_choice(name, obj, "cache_type", caches, &unused, err) ?:
	      field_choice(name, obj, "io_engine", engines, &unused, err);
	if (ret)
		return ret;
	if (!vm_json_valid_id(id) || strlen(id) > BLK_ID_MAX)
		return field_fail(err, "%s: 'drive_id' must be 1 to %d of A-Z a-z 0-9 _ . -", name,
			    BLK_ID_MAX);
	for (unsigned i = 0; i < vm->nr_disks; i++)
		if (!strcmp(vm->disks[i].id, id))
			return field_fail(err, "%s: drive_id \"%s\" is used twice", name, id);
	if (root && vm->has_root)
		return field_fail(err, "%s: only one drive can be the root device", name);
	memset(disk, 0, sizeof(*disk));
	disk->path = path;
	disk->readonly = readonly;
	strcpy(disk->id, id);
	if (root) {
		vm->has_root = true;
		vm->root_disk = vm->nr_disks;
	}
	vm->nr_disks++;
	return 0;
}

/* skiff's own: "user_net": {"hostfwd": ["tcp::2222-:22", ...]}, libslirp's networking. */
static int parse_user_net(const char *name, json_t *obj, struct net_config *net,
			  struct field_error *err)
{
	static const char *const known[] = { "hostfwd", NULL };
	json_t *list = json_object_get(obj, "hostfwd"), *item;
	size_t i;
	int ret = field_check_keys("user_net", obj, known, NULL, err);

	if (ret || !list)
		return ret;
	if (!json_is_array(list) || json_array_size(list) > NET_MAX_HOSTFWD)
		return field_fail(err, "%s: 'hostfwd' must be a list of at most %d forwards", name,
				  NET_MAX_HOSTFWD);
	json_array_foreach(list, i, item) {
		if (!json_is_string(item) ||
		    config_parse_hostfwd(json_string_value(item), &net->hostfwd[i]))
			return field_fail(err, "%s: hostfwd[%zu] is not "
					  "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT",
					  name, i);
	}
	net->nr_hostfwd = i;
	return 0;
}

int vm_json_net(const char *name, json_t *obj, struct vm_config *vm, struct field_error *err)
{
	static const char *const known[] = { "iface_id", "host_dev_name", "guest_mac", "user_net",
					     NULL };
	static const char *const unsupported[] = { "mtu", "rx_rate_limiter", "tx_rate_limiter",
						   NULL };
	struct net_config *net = &vm->nets[vm->nr_nets];
	json_t *user = json_object_get(obj, "user_net");
	const char *iface, *dev, *mac;
	int ret;

	if (vm->nr_nets == VM_MAX_NETS)
		return field_fail(err, "%s: at most %d network interfaces", name, VM_MAX_NETS);
	ret = field_check_keys(name, obj, known, unsupported, err) ?:
	      field_string(name, obj, "iface_id", true, &iface, err) ?:
	      field_string(name, obj, "host_dev_name", !user, &dev, err) ?:
	      field_string(name, obj, "guest_mac", false, &mac, err);
	if (ret)
		return ret;
	if (!vm_json_valid_id(iface))
		return field_fail(err, "%s: 'iface_id' must be 1 to %d of A-Z a-z 0-9 _ . -", name,
				  NET_ID_MAX);
	if (user && dev)
		return field_fail(err, "%s: 'host_dev_name' and 'user_net' exclude each other",
				  name);
	if (dev && strlen(dev) >= IFNAMSIZ)
		return field_fail(err, "%s: 'host_dev_name' is longer than %d characters", name,
				  IFNAMSIZ - 1);
	memset(net, 0, sizeof(*net));
	if (mac && config_parse_mac(mac, net->mac))
		return field_fail(err, "%s: 'guest_mac' \"%s\" is not a unicast XX:XX:XX:XX:XX:XX",
				  name, mac);
	for (unsigned i = 0; i < vm->nr_nets; i++) {
		if (!strcmp(vm->nets[i].id, iface))
			return field_fail(err, "%s: iface_id \"%s\" is used twice", name, iface);
		if (mac && vm->nets[i].mac_set && !memcmp(vm->nets[i].mac, net->mac, 6))
			return field_fail(err, "%s: guest_mac %s is used twice", name, mac);
	}
	if (user) {
		net->backend = NET_USER;
		ret = parse_user_net(name, user, net, err);
		if (ret)
			return ret;
	} else {
		net->backend = NET_TAP;
		strcpy(net->ifname, dev);
	}
	strcpy(net->id, iface);
	net->mac_set = mac != NULL;
	vm->nr_nets++;
	return 0;
}

int vm_json_entropy(json_t *obj, struct vm_config *vm, struct field_error *err)
{
	static const char *const unsupported[] = { "rate_limiter", NULL };

	vm->rng = true;
	return field_check_keys("entropy", obj, NULL, unsupported, err);
}

/* drives or network-interfaces: each item parsed in order. */
static int parse_array(json_t *root, const char *key, struct vm_config *vm,
		       struct field_error *err)
{
	json_t *array = json_object_get(root, key), *item;
	char name[48];
	size_t i;
	int ret = 0;

	if (!array)
		return 0;
	if (!json_is_array(array))
		return field_fail(err, "%s: must be an array", key);
	json_array_foreach(array, i, item) {
		snprintf(name, sizeof(name), "%s[%zu]", key, i);
		ret = !strcmp(key, "drives") ? vm_json_drive(name, item, vm, err)
					     : vm_json_net(name, item, vm, err);
		if (ret)
			break;
	}
	return ret;
}

int vm_json_parse(json_t *root, bool need_boot_source, struct vm_config *vm,
		  struct field_error *err)
{
	static const char *const known[] = { "boot-source", "machine-config", "drives",
					     "network-interfaces", "entropy", NULL };
	json_t *boot = json_object_get(root, "boot-source");
	json_t *machine = json_object_get(root, "machine-config");
	json_t *entropy = json_object_get(root, "entropy");
	int ret = field_check_keys("the configuration", root, known, unsupported_sections, err);

	if (ret)
		return ret;
	if (!boot && need_boot_source)
		return field_fail(err, "boot-source is required");
	return (boot ? vm_json_boot_source(boot, vm, err) : 0) ?:
	       (machine ? vm_json_machine(machine, vm, err) : 0) ?:
	       parse_array(root, "drives", vm, err) ?:
	       parse_array(root, "network-interfaces", vm, err) ?:
	       (entropy ? vm_json_entropy(entropy, vm, err) : 0);
}

/* json_object_set_new() that remembers a failure, so export checks once at the end. */
static void set(json_t *obj, const char *key, json_t *value, bool *ok)
{
	if (!value || json_object_set_new(obj, key, value))
		*ok = false;
}

static json_t *export_drive(const struct vm_config *vm, unsigned i, bool *ok)
{
	const struct blk_config *disk = &vm->disks[i];
	json_t *obj = json_object();
	char id[16];

	if (!obj) {
		*ok = false;
		return NULL;
	}
	/* A --disk without id= gets the name the guest knows it by. */
	snprintf(id, sizeof(id), "vd%c", 'a' + i);
	set(obj, "drive_id", json_string(disk->id[0] ? disk->id : id), ok);
	set(obj, "path_on_host", json_string(disk->path), ok);
	set(obj, "is_root_device", json_boolean(vm->has_root && vm->root_disk == i), ok);
	set(obj, "is_read_only", json_boolean(disk->readonly), ok);
	return obj;
}

/* Back to the text config_parse_hostfwd() reads; 0 addresses stay empty. */
static json_t *export_hostfwd(const struct net_hostfwd *fwd)
{
	char host[INET_ADDRSTRLEN] = "", guest[INET_ADDRSTRLEN] = "", text[96];

	if (fwd->host_addr)
		inet_ntop(AF_INET, &fwd->host_addr, host, sizeof(host));
	if (fwd->guest_addr)
		inet_ntop(AF_INET, &fwd->guest_addr, guest, sizeof(guest));
	snprintf(text, sizeof(text), "%s:%s:%u-%s:%u", fwd->udp ? "udp" : "tcp", host,
		 fwd->host_port, guest, fwd->guest_port);
	return json_string(text);
}

static json_t *export_net(const struct net_config *net, unsigned i, bool *ok)
{
	json_t *obj = json_object(), *user, *list;
	char text[32];

	if (!obj) {
		*ok = false;
		return NULL;
	}
	snprintf(text, sizeof(text), "eth%u", i);
	set(obj, "iface_id", json_string(net->id[0] ? net->id : text), ok);
	if (net->backend == NET_TAP) {
		set(obj, "host_dev_name", json_string(net->ifname), ok);
	} else {
		user = json_object();
		list = json_array();
		for (unsigned f = 0; list && f < net->nr_hostfwd; f++)
			*ok = !json_array_append_new(list, export_hostfwd(&net->hostfwd[f])) && *ok;
		set(user, "hostfwd", list, ok);
		set(obj, "user_net", user, ok);
	}
	if (net->mac_set) {
		snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", net->mac[0],
			 net->mac[1], net->mac[2], net->mac[3], net->mac[4], net->mac[5]);
		set(obj, "guest_mac", json_string(text), ok);
	}
	return obj;
}

json_t *vm_json_export(const struct vm_config *vm)
{
	json_t *root = json_object(), *boot = json_object(), *machine = json_object();
	json_t *drives = json_array(), *nets = json_array();
	bool ok = root && boot && machine && drives && nets;

	if (vm->kernel_path)
		set(boot, "kernel_image_path", json_string(vm->kernel_path), &ok);
	if (vm->initrd_path)
		set(boot, "initrd_path", json_string(vm->initrd_path), &ok);
	if (vm->cmdline)
		set(boot, "boot_args", json_string(vm->cmdline), &ok);
	set(machine, "vcpu_count", json_integer(vm->cpus), &ok);
	set(machine, "mem_size_mib", json_integer(vm->memory >> 20), &ok);
	set(machine, "smt", json_false(), &ok);
	set(machine, "track_dirty_pages", json_boolean(vm->track_dirty_pages), &ok);
	set(machine, "huge_pages", json_string(huge_page_names[vm->huge_pages]), &ok);
	for (unsigned i = 0; ok && i < vm->nr_disks; i++)
		ok = !json_array_append_new(drives, export_drive(vm, i, &ok)) && ok;
	for (unsigned i = 0; ok && i < vm->nr_nets; i++)
		ok = !json_array_append_new(nets, export_net(&vm->nets[i], i, &ok)) && ok;
	if (ok && vm->kernel_path) {
		set(root, "boot-source", boot, &ok);
		boot = NULL;
	}
	set(root, "machine-config", machine, &ok);
	set(root, "drives", drives, &ok);
	set(root, "network-interfaces", nets, &ok);
	if (ok && vm->rng)
		set(root, "entropy", json_object(), &ok);
	json_decref(boot);
	if (!ok) {
		json_decref(root);
		return NULL;
	}
	return root;
}
