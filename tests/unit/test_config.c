#include "test.h"

#include "../../src/config.h"

#include <arpa/inet.h>
#include <string.h>

static enum config_result parse(struct run_options *o, const char *a, const char *b,
				const char *c, const char *d)
{
	char *argv[4] = { NULL };
	int argc = 0;

	for (const char **s = (const char *[]){ a, b, c, d, NULL }; *s; s++)
		argv[argc++] = (char *)*s;
	return config_parse_run(argc, argv, o);
}

TEST(size_suffixes)
{
	uint64_t v;

	CHECK(config_parse_size("512K", &v) == 0 && v == 512ULL << 10);
	CHECK(config_parse_size("128M", &v) == 0 && v == 128ULL << 20);
	CHECK(config_parse_size("128m", &v) == 0 && v == 128ULL << 20);
	CHECK(config_parse_size("16G", &v) == 0 && v == 16ULL << 30);
	CHECK(config_parse_size("1T", &v) == 0 && v == 1ULL << 40);
	CHECK(config_parse_size("64", &v) == 0 && v == 64ULL << 20); /* bare: MiB */
}

TEST(size_rejects_garbage)
{
	uint64_t v;

	CHECK(config_parse_size("", &v) < 0);
	CHECK(config_parse_size("M", &v) < 0);
	CHECK(config_parse_size("-1M", &v) < 0);
	CHECK(config_parse_size("12MB", &v) < 0);
	CHECK(config_parse_size("1.5G", &v) < 0);
	CHECK(config_parse_size("4X", &v) < 0);
	CHECK(config_parse_size("99999999999999999999", &v) < 0);
	CHECK(config_parse_size("17179869184T", &v) < 0); /* overflows 64 bits */
}

TEST(defaults)
{
	struct run_options o;

	CHECK(parse(&o, "--kernel", "k", NULL, NULL) == CONFIG_OK);
	CHECK(!strcmp(o.vm.kernel_path, "k"));
	CHECK(o.vm.cpus == 1);
	CHECK(o.vm.memory == 128ULL << 20);
	CHECK(!o.vm.debug_exit && !o.vm.initrd_path && !o.vm.cmdline);
}

TEST(all_options)
{
	char *argv[] = { "--kernel=k", "--initrd", "i", "--cmdline", "a b", "--cpus", "4",
			 "--memory=5G", "--debug-exit", "--log-level", "debug", "--no-unpack" };
	struct run_options o;

	CHECK(config_parse_run(12, argv, &o) == CONFIG_OK);
	CHECK(o.vm.no_unpack);
	CHECK(!strcmp(o.vm.kernel_path, "k") && !strcmp(o.vm.initrd_path, "i"));
	CHECK(!strcmp(o.vm.cmdline, "a b"));
	CHECK(o.vm.cpus == 4 && o.vm.memory == 5ULL << 30 && o.vm.debug_exit);
	CHECK(o.log_level == LOG_DEBUG);
}

TEST(bad_options)
{
	struct run_options o;

	CHECK(parse(&o, NULL, NULL, NULL, NULL) == CONFIG_ERROR);	/* no --kernel */
	CHECK(parse(&o, "--kernel", NULL, NULL, NULL) == CONFIG_ERROR); /* no value */
	CHECK(parse(&o, "--kernel", "k", "--cpus", "0") == CONFIG_ERROR);
	CHECK(parse(&o, "--kernel", "k", "--cpus", "255") == CONFIG_ERROR);
	CHECK(parse(&o, "--kernel", "k", "--cpus", "2x") == CONFIG_ERROR);
	CHECK(parse(&o, "--kernel", "k", "--cpus", "-1") == CONFIG_ERROR);
	CHECK(parse(&o, "--kernel", "k", "--memory", "4M") == CONFIG_ERROR);
	CHECK(parse(&o, "--kernel", "k", "--memory", "2T") == CONFIG_ERROR);
	CHECK(parse(&o, "--kernel", "k", "--memory", "8193K") == CONFIG_ERROR);
	CHECK(parse(&o, "--kernel", "k", "--log-level", "loud") == CONFIG_ERROR);
	CHECK(parse(&o, "--kernel", "k", "--kernel", "j") == CONFIG_ERROR);
	CHECK(parse(&o, "--kernel", "k", "--frobnicate", NULL) == CONFIG_ERROR);
	CHECK(parse(&o, "--kernel", "k", "--debug-exit=1", NULL) == CONFIG_ERROR);
	CHECK(parse(&o, "--kernel", "k", "--cpus", "254") == CONFIG_OK);
	CHECK(parse(&o, "--kernel", "k", "--memory", "16G") == CONFIG_OK);
}

TEST(disk_options)
{
	char a[] = "a.img", b[] = "b.img,readonly,id=data", c[] = "c.img,id=data";
	char d[] = "d.img,bogus", e[] = ",readonly", f[] = "f.img,id=012345678901234567890";
	char *argv[] = { "--kernel", "k", "--disk", a, "--disk", b };
	struct run_options o;

	CHECK(config_parse_run(6, argv, &o) == CONFIG_OK);
	CHECK(o.vm.nr_disks == 2);
	CHECK(!strcmp(o.vm.disks[0].path, "a.img") && !o.vm.disks[0].readonly);
	CHECK(!strcmp(o.vm.disks[1].path, "b.img") && o.vm.disks[1].readonly);
	CHECK(!strcmp(o.vm.disks[1].id, "data"));
	CHECK(config_parse_disk(c, &o.vm) < 0); /* id used twice */
	CHECK(config_parse_disk(d, &o.vm) < 0);
	CHECK(config_parse_disk(e, &o.vm) < 0);
	CHECK(config_parse_disk(f, &o.vm) < 0); /* id longer than 20 */
	CHECK(o.vm.nr_disks == 2);
}

TEST(net_options)
{
	struct vm_config vm = { 0 };
	struct net_hostfwd fwd;
	uint8_t mac[6];

	CHECK(config_parse_net("tap=tap0,mac=02:00:00:00:00:01", &vm) == 0);
	CHECK(vm.nets[0].backend == NET_TAP && !strcmp(vm.nets[0].ifname, "tap0"));
	CHECK(vm.nets[0].mac_set && vm.nets[0].mac[5] == 1);
	CHECK(config_parse_net("user,hostfwd=tcp::8080-:80,hostfwd=udp:127.0.0.1:53-10.0.2.15:53",
			       &vm) == 0);
	CHECK(vm.nets[1].backend == NET_USER && vm.nets[1].nr_hostfwd == 2);
	CHECK(vm.nets[1].hostfwd[0].host_port == 8080 && vm.nets[1].hostfwd[0].guest_port == 80);
	CHECK(vm.nets[1].hostfwd[1].udp && vm.nets[1].hostfwd[1].host_addr == htonl(0x7f000001));
	CHECK(config_parse_net("tap=tap1,mac=02:00:00:00:00:01", &vm) < 0); /* same MAC */
	CHECK(config_parse_net("tap=", &vm) < 0);
	CHECK(config_parse_net("tap=averyveryverylongname", &vm) < 0);
	CHECK(config_parse_net("bridge=br0", &vm) < 0);
	CHECK(config_parse_net("tap=t,hostfwd=tcp::1-:1", &vm) < 0); /* user only */
	CHECK(vm.nr_nets == 2);
	CHECK(config_parse_mac("52:54:00:12:34:56", mac) == 0 && mac[5] == 0x56);
	CHECK(config_parse_mac("01:00:5e:00:00:01", mac) < 0); /* multicast */
	CHECK(config_parse_mac("00:00:00:00:00:00", mac) < 0);
	CHECK(config_parse_mac("52:54:00:12:34", mac) < 0);
	CHECK(config_parse_mac("52:54:00:12:34:56:78", mac) < 0);
	CHECK(config_parse_mac("52:54:00:12:34:5g", mac) < 0);
	CHECK(config_parse_hostfwd("tcp::0-:80", &fwd) < 0);
	CHECK(config_parse_hostfwd("tcp::80:80", &fwd) < 0);
	CHECK(config_parse_hostfwd("sctp::80-:80", &fwd) < 0);
	CHECK(config_parse_hostfwd("tcp:1.2.3:80-:80", &fwd) < 0);
	CHECK(config_parse_hostfwd("::2222-:22", &fwd) == 0 && !fwd.udp);
}

TEST(console_option)
{
	struct run_options o;

	CHECK(parse(&o, "--kernel", "k", "--console", "virtio") == CONFIG_OK);
	CHECK(o.vm.console == CONSOLE_VIRTIO);
	CHECK(parse(&o, "--kernel", "k", "--console", "tty") == CONFIG_ERROR);
	CHECK(parse(&o, "--kernel", "k", NULL, NULL) == CONFIG_OK && o.vm.console == CONSOLE_SERIAL);
}

TEST_MAIN(T(size_suffixes), T(size_rejects_garbage), T(defaults), T(all_options), T(bad_options),
	  T(disk_options), T(net_options), T(console_option))
