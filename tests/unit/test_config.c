#include "test.h"

#include "../../src/config.h"

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
			 "--memory=5G", "--debug-exit", "--log-level", "debug" };
	struct run_options o;

	CHECK(config_parse_run(11, argv, &o) == CONFIG_OK);
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

TEST_MAIN(T(size_suffixes), T(size_rejects_garbage), T(defaults), T(all_options), T(bad_options))
