#include "test.h"

#include "../../src/api/config_file.h"

#include <string.h>

static int parse(const char *json, struct vm_config *vm, void **keep)
{
	memset(vm, 0, sizeof(*vm));
	return config_file_parse(json, strlen(json), "test.json", vm, keep);
}

TEST(full_configuration)
{
	struct vm_config vm;
	void *keep;

	CHECK(parse("{\"boot-source\": {\"kernel_image_path\": \"/k\", \"initrd_path\": \"/i\","
		    " \"boot_args\": \"console=ttyS0\"},"
		    " \"machine-config\": {\"vcpu_count\": 4, \"mem_size_mib\": 1024,"
		    " \"smt\": false, \"huge_pages\": \"None\"},"
		    " \"drives\": [{\"drive_id\": \"data\", \"path_on_host\": \"/d0\","
		    " \"is_root_device\": false, \"is_read_only\": true, \"cache_type\": \"Unsafe\"},"
		    " {\"drive_id\": \"rootfs\", \"path_on_host\": \"/d1\", \"is_root_device\": true,"
		    " \"io_engine\": \"Async\"}],"
		    " \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\","
		    " \"guest_mac\": \"02:fc:00:00:00:05\"}],"
		    " \"entropy\": {}}",
		    &vm, &keep) == 0);
	CHECK(!strcmp(vm.kernel_path, "/k") && !strcmp(vm.initrd_path, "/i"));
	CHECK(vm.cpus == 4 && vm.memory == 1024ULL << 20);
	CHECK(vm.nr_disks == 2 && vm.disks[0].readonly && !strcmp(vm.disks[0].id, "data"));
	CHECK(!strcmp(vm.disks[1].path, "/d1") && !vm.disks[1].readonly);
	/* the root device: vm.c adds root=/dev/vdb rw after the boot arguments */
	CHECK(!strcmp(vm.cmdline, "console=ttyS0") && vm.has_root && vm.root_disk == 1);
	CHECK(vm.nr_nets == 1 && vm.nets[0].backend == NET_TAP && vm.nets[0].mac_set);
	CHECK(!strcmp(vm.nets[0].ifname, "tap0") && vm.nets[0].mac[5] == 5);
	CHECK(vm.rng);
	config_file_free(keep);
}

TEST(minimal_configuration)
{
	struct vm_config vm;
	void *keep;

	CHECK(parse("{\"boot-source\": {\"kernel_image_path\": \"/k\"}}", &vm, &keep) == 0);
	CHECK(!strcmp(vm.kernel_path, "/k") && !vm.cmdline && !vm.nr_disks && !vm.rng);
	CHECK(vm.cpus == 0); /* left to the command line's defaults */
	config_file_free(keep);
}

TEST(bad_configurations)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}",	/* truncated */
		"{}",							/* no boot-source */
		"{\"boot-source\": {}}",
		"{\"boot-source\": {\"kernel_image_path\": 5}}",
		"{\"boot-source\": {\"kernel_image_path\": \"\"}}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\", \"x\": 1}}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"boot-source\": {}}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"balloon\": {}}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"wat\": {}}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"machine-config\": "
		"{\"vcpu_count\": 0, \"mem_size_mib\": 128}}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"machine-config\": "
		"{\"vcpu_count\": 1, \"mem_size_mib\": 1.5}}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"machine-config\": "
		"{\"vcpu_count\": 1, \"mem_size_mib\": 4}}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"machine-config\": "
		"{\"vcpu_count\": 2, \"mem_size_mib\": 128, \"smt\": true}}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"machine-config\": "
		"{\"vcpu_count\": 2, \"mem_size_mib\": 129, \"huge_pages\": \"2M\"}}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"machine-config\": "
		"{\"vcpu_count\": 2, \"mem_size_mib\": 128, \"huge_pages\": \"1G\"}}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"machine-config\": "
		"{\"vcpu_count\": 2, \"mem_size_mib\": 128, \"smt\": \"no\"}}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"drives\": {}}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"drives\": "
		"[{\"drive_id\": \"a\", \"path_on_host\": \"/d\"}]}",		/* no is_root_device */
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"drives\": "
		"[{\"drive_id\": \"a\", \"path_on_host\": \"/d\", \"is_root_device\": false},"
		" {\"drive_id\": \"a\", \"path_on_host\": \"/e\", \"is_root_device\": false}]}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"drives\": "
		"[{\"drive_id\": \"a\", \"path_on_host\": \"/d\", \"is_root_device\": true},"
		" {\"drive_id\": \"b\", \"path_on_host\": \"/e\", \"is_root_device\": true}]}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"drives\": "
		"[{\"drive_id\": \"a\", \"path_on_host\": \"/d\", \"is_root_device\": false,"
		" \"rate_limiter\": {}}]}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"drives\": "
		"[{\"drive_id\": \"a\", \"path_on_host\": \"/d\", \"is_root_device\": false,"
		" \"cache_type\": \"Fast\"}]}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"network-interfaces\": "
		"[{\"iface_id\": \"e\", \"host_dev_name\": \"tap0\", \"guest_mac\": \"01:00:00:00:00:01\"}]}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"network-interfaces\": "
		"[{\"iface_id\": \"e\", \"host_dev_name\": \"averyveryverylongname\"}]}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"network-interfaces\": "
		"[{\"iface_id\": \"e\", \"host_dev_name\": \"tap0\"},"
		" {\"iface_id\": \"e\", \"host_dev_name\": \"tap1\"}]}",		/* iface_id twice */
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"network-interfaces\": "
		"[{\"iface_id\": \"e\", \"host_dev_name\": \"tap0\", \"guest_mac\": \"02:00:00:00:00:01\"},"
		" {\"iface_id\": \"f\", \"host_dev_name\": \"tap1\", \"guest_mac\": \"02:00:00:00:00:01\"}]}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"network-interfaces\": "
		"[{\"iface_id\": \"e\", \"user_net\": {\"hostfwd\": [\"tcp::80\"]}}]}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"network-interfaces\": "
		"[{\"iface_id\": \"e\", \"host_dev_name\": \"tap0\", \"user_net\": {}}]}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"drives\": "
		"[{\"drive_id\": \"a/b\", \"path_on_host\": \"/d\", \"is_root_device\": false}]}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"entropy\": {\"x\": 1}}",
		"{\"boot-source\": {\"kernel_image_path\": \"/k\\u0000x\"}}",	/* embedded NUL */
	};
	struct vm_config vm;
	void *keep;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &vm, &keep) == 0) {
			printf("  accepted: %s\n", bad[i]);
			CHECK(!"a bad configuration was accepted");
			config_file_free(keep);
		}
	}
}

TEST_MAIN(T(full_configuration), T(minimal_configuration), T(bad_configurations))
