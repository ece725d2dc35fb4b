#include "config.h"

#include "api/config_file.h"
#include "arch/x86/tables.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int config_parse_size(const char *text, uint64_t *bytes)
{
	uint64_t value = 0, shift = 20;
	const char *p = text;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (value > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		value = value * 10 + (*p - '0');
	}
	switch (*p) {
	case '\0':
		break;
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	case 't': case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (*p && p[1])
		return -EINVAL;
	if (value > (UINT64_MAX >> shift))
		return -EINVAL;
	*bytes = value << shift;
	return 0;
}

void config_print_run_help(FILE *out)
{
	fprintf(out,
		"Usage: skiff run --kernel FILE [options]\n"
		"       skiff run --api-sock PATH [options]\n"
		"       skiff run --restore SNAPSHOT --mem MEMFILE [options]\n"
		"       skiff run --incoming tcp:ADDR:PORT [options]\n"
		"\n"
		"Boots a virtual machine on KVM. The guest's COM1 is this terminal: its output\n"
		"goes to stdout and stdin goes to the guest (a terminal is put in raw mode;\n"
		"Ctrl-A x quits, Ctrl-A a sends Ctrl-A).\n"
		"\n"
		"Options:\n"
		"  --kernel FILE      kernel to boot: an ELF with a Xen PVH note, a Linux vmlinux\n"
		"                     ELF, or a Linux bzImage; a bzImage's kernel is\n"
		"                     decompressed on the host and booted directly\n"
		"  --no-unpack        boot a bzImage through its own in-guest decompressor\n"
		"  --initrd FILE      initial ramdisk, loaded below the 32-bit MMIO hole\n"
		"  --cmdline STR      kernel command line (default: empty)\n"
		"  --cpus N           number of vCPUs, 1 to %u (default: %u)\n"
		"  --memory SIZE      guest RAM, with a K, M, G or T suffix; a bare number is MiB;\n"
		"                     %" PRIu64 "M to %" PRIu64 "T, a multiple of 4K (default: %" PRIu64 "M)\n"
		"  --debug-exit       a 4-byte write of V to I/O port 0xf4 ends skiff with exit\n"
		"                     status (V << 1) | 1, like QEMU's isa-debug-exit device\n"
		"  --disk PATH[,readonly][,id=NAME]\n"
		"                     a virtio-blk disk on a raw image (repeatable, up to %d); a\n"
		"                     read-only disk fails guest writes; NAME (1-20 of A-Z a-z\n"
		"                     0-9 _ . -) is what the guest reads as the disk's serial\n"
		"  --net tap=IFNAME[,mac=MAC]\n"
		"  --net user[,hostfwd=[tcp|udp]:[HADDR]:HPORT-[GADDR]:GPORT][,mac=MAC]\n"
		"                     a virtio-net device on an existing TAP interface, or on\n"
		"                     user-mode networking (libslirp: guest 10.0.2.15, host\n"
		"                     10.0.2.2); repeatable, up to %d; device N's default MAC\n"
		"                     is 52:54:00:12:34:56 + N unless mac= is given\n"
		"  --rng              a virtio-rng device fed by the host's getrandom()\n"
		"  --config-file FILE the VM in the JSON of Firecracker's GET /vm/config:\n"
		"                     boot-source, machine-config, drives, network-interfaces\n"
		"                     (TAP), entropy; instead of the options that describe a VM\n"
		"  --api-sock PATH    serve Firecracker's REST API (HTTP/1.1) on a Unix socket\n"
		"                     created mode 0600 (a stale socket there is replaced);\n"
		"                     without --kernel skiff waits for the API to configure the\n"
		"                     VM and send InstanceStart, with the other options as the\n"
		"                     pre-boot configuration\n"
		"  --restore SNAPSHOT with --mem MEMFILE: resume the VM a snapshot holds (PUT\n"
		"                     /snapshot/create); its RAM is MEMFILE, mapped copy-on-write\n"
		"                     and never written; instead of the options that describe a VM\n"
		"  --incoming tcp:ADDR:PORT\n"
		"                     wait there for a live migration (PUT /migrate on the source)\n"
		"                     and run the VM it brings; instead of the options that\n"
		"                     describe a VM, but for --disk PATH[,id=ID]: where this host\n"
		"                     keeps the drive of that id (or place), and with_disks where\n"
		"                     its contents are written; and --net tap=IFNAME: the TAP the\n"
		"                     interface in that place uses here\n"
		"  --console KIND     serial (default): COM1 is the terminal; virtio: a\n"
		"                     virtio-console takes the terminal's input (both print)\n"
		"  --log-level LEVEL  off, error, warn, info or debug, on stderr (default: warn)\n"
		"  -h, --help         show this help\n"
		"\n"
		"Exit status: 0 when the guest resets or powers off, (V << 1) | 1 after a\n"
		"debug-exit write of V, 128+N after signal N, 2 on any error of skiff's own.\n",
		TABLES_MAX_CPUS, CONFIG_DEFAULT_CPUS, CONFIG_MIN_MEMORY >> 20, CONFIG_MAX_MEMORY >> 40,
		CONFIG_DEFAULT_MEMORY >> 20, VM_MAX_DISKS, VM_MAX_NETS);
}

static int parse_cpus(const char *text, unsigned *cpus)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || n < 1 || n > TABLES_MAX_CPUS) {
		fprintf(stderr, "skiff: --cpus %s: must be a whole number from 1 to %u\n", text,
			TABLES_MAX_CPUS);
		return -EINVAL;
	}
	*cpus = n;
	return 0;
}

static int parse_memory(const char *text, uint64_t *bytes)
{
	if (config_parse_size(text, bytes)) {
		fprintf(stderr, "skiff: --memory %s: not a size (examples: 512M, 4G)\n", text);
		return -EINVAL;
	}
	if (*bytes < CONFIG_MIN_MEMORY || *bytes > CONFIG_MAX_MEMORY) {
		fprintf(stderr, "skiff: --memory %s: must be from %" PRIu64 "M to %" PRIu64 "T\n",
			text, CONFIG_MIN_MEMORY >> 20, CONFIG_MAX_MEMORY >> 40);
		return -EINVAL;
	}
	if (*bytes & 0xfff) {
		fprintf(stderr, "skiff: --memory %s: must be a multiple of 4K\n", text);
		return -EINVAL;
	}
	return 0;
}

enum option_id { OPT_KERNEL, OPT_INITRD, OPT_CMDLINE, OPT_CPUS, OPT_MEMORY, OPT_DEBUG_EXIT,
		 OPT_DISK, OPT_NET, OPT_RNG, OPT_CONSOLE, OPT_NO_UNPACK, OPT_LOG_LEVEL, OPT_HELP,
		 OPT_CONFIG_FILE, OPT_API_SOCK, OPT_RESTORE, OPT_MEM, OPT_INCOMING, OPT_COUNT };

static const struct {
	const char *name;
	bool takes_value;
	bool repeatable;
	bool describes_vm; /* conflicts with --config-file and --restore, which describe the VM */
} options[OPT_COUNT] = {
	[OPT_KERNEL] = { "--kernel", true, false, true },
	[OPT_INITRD] = { "--initrd", true, false, true },
	[OPT_CMDLINE] = { "--cmdline", true, false, true },
	[OPT_CPUS] = { "--cpus", true, false, true },
	[OPT_MEMORY] = { "--memory", true, false, true },
	[OPT_DEBUG_EXIT] = { "--debug-exit", false, false, false },
	[OPT_DISK] = { "--disk", true, true, true },
	[OPT_NET] = { "--net", true, true, true },
	[OPT_RNG] = { "--rng", false, false, true },
	[OPT_CONSOLE] = { "--console", true, false, false },
	[OPT_NO_UNPACK] = { "--no-unpack", false, false, false },
	[OPT_LOG_LEVEL] = { "--log-level", true, false, false },
	[OPT_CONFIG_FILE] = { "--config-file", true, false, false },
	[OPT_API_SOCK] = { "--api-sock", true, false, false },
	[OPT_RESTORE] = { "--restore", true, false, false },
	[OPT_MEM] = { "--mem", true, false, false },
	[OPT_INCOMING] = { "--incoming", true, false, false },
	[OPT_HELP] = { "--help", false, false, false },
};

/* Matches "--name", "--name=value"; returns the option or -1. */
static int match_option(char *arg, char **inline_value)
{
	if (!strcmp(arg, "-h"))
		return OPT_HELP;
	for (int i = 0; i < OPT_COUNT; i++) {
		size_t len = strlen(options[i].name);

		if (strncmp(arg, options[i].name, len))
			continue;
		if (arg[len] == '\0') {
			*inline_value = NULL;
			return i;
		}
		if (arg[len] == '=' && options[i].takes_value) {
			*inline_value = arg + len + 1;
			return i;
		}
	}
	return -1;
}

static int apply_option(int id, char *value, struct run_options *opts)
{
	enum log_level level;

	switch (id) {
	case OPT_KERNEL:
		opts->vm.kernel_path = value;
		return 0;
	case OPT_INITRD:
		opts->vm.initrd_path = value;
		return 0;
	case OPT_CMDLINE:
		opts->vm.cmdline = value;
		return 0;
	case OPT_CPUS:
		return parse_cpus(value, &opts->vm.cpus);
	case OPT_MEMORY:
		return parse_memory(value, &opts->vm.memory);
	case OPT_DEBUG_EXIT:
		opts->vm.debug_exit = true;
		return 0;
	case OPT_DISK:
		return config_parse_disk(value, &opts->vm);
	case OPT_NET:
		return config_parse_net(value, &opts->vm);
	case OPT_RNG:
		opts->vm.rng = true;
		return 0;
	case OPT_NO_UNPACK:
		opts->vm.no_unpack = true;
		return 0;
	case OPT_CONFIG_FILE:
		return config_file_load(value, &opts->vm, &opts->config_file);
	case OPT_API_SOCK:
		opts->api_sock = value;
		return 0;
	case OPT_RESTORE:
		opts->restore = value;
		return 0;
	case OPT_MEM:
		opts->vm.mem_file = value;
		return 0;
	case OPT_INCOMING:
		if (strncmp(value, "tcp:", 4)) {
			fprintf(stderr, "skiff: --incoming %s: must be tcp:ADDR:PORT\n", value);
			return -EINVAL;
		}
		opts->incoming = value;
		return 0;
	case OPT_CONSOLE:
		if (!strcmp(value, "serial")) {
			opts->vm.console = CONSOLE_SERIAL;
		} else if (!strcmp(value, "virtio")) {
			opts->vm.console = CONSOLE_VIRTIO;
		} else {
			fprintf(stderr, "skiff: --console %s: must be serial or virtio\n", value);
			return -EINVAL;
		}
		return 0;
	case OPT_LOG_LEVEL:
		if (log_parse_level(value, &level)) {
			fprintf(stderr, "skiff: --log-level %s: must be off, error, warn, info or "
					"debug\n", value);
			return -EINVAL;
		}
		opts->log_level = level;
		return 0;
	}
	return -EINVAL;
}

enum config_result config_parse_run(int argc, char *const argv[], struct run_options *opts)
{
	bool seen[OPT_COUNT] = { false };

	memset(opts, 0, sizeof(*opts));
	opts->vm.cpus = CONFIG_DEFAULT_CPUS;
	opts->vm.memory = CONFIG_DEFAULT_MEMORY;
	opts->log_level = LOG_WARN;

	for (int i = 0; i < argc; i++) {
		char *value;
		int id = match_option(argv[i], &value);

		if (id < 0) {
			fprintf(stderr, "skiff: run: unknown option '%s' (see skiff run --help)\n",
				argv[i]);
			return CONFIG_ERROR;
		}
		if (id == OPT_HELP) {
			config_print_run_help(stdout);
			return CONFIG_HELP;
		}
		if (seen[id] && !options[id].repeatable) {
			fprintf(stderr, "skiff: %s given more than once\n", options[id].name);
			return CONFIG_ERROR;
		}
		seen[id] = true;
		if (options[id].takes_value && !value) {
			if (i + 1 == argc) {
				fprintf(stderr, "skiff: %s needs a value\n", options[id].name);
				return CONFIG_ERROR;
			}
			value = argv[++i];
		}
		if (apply_option(id, value, opts))
			return CONFIG_ERROR;
	}
	for (int id = 0; id < OPT_COUNT; id++) {
		if (seen[OPT_CONFIG_FILE] && seen[id] && options[id].describes_vm) {
			fprintf(stderr, "skiff: %s: the VM comes from --config-file; give it there\n",
				options[id].name);
			return CONFIG_ERROR;
		}
		if (seen[OPT_RESTORE] && seen[id] && (options[id].describes_vm ||
						      id == OPT_CONFIG_FILE || id == OPT_INCOMING)) {
			fprintf(stderr, "skiff: %s: the VM comes from the --restore snapshot\n",
				options[id].name);
			return CONFIG_ERROR;
		}
		/* --disk and --net with --incoming say where this host keeps a drive, a TAP. */
		if (seen[OPT_INCOMING] && seen[id] && id != OPT_DISK && id != OPT_NET &&
		    (options[id].describes_vm || id == OPT_CONFIG_FILE)) {
			fprintf(stderr, "skiff: %s: the VM comes from the --incoming migration\n",
				options[id].name);
			return CONFIG_ERROR;
		}
	}
	if (seen[OPT_RESTORE] != seen[OPT_MEM]) {
		fprintf(stderr, "skiff: run: --restore SNAPSHOT and --mem MEMFILE go together\n");
		return CONFIG_ERROR;
	}
	if (!opts->vm.kernel_path && !opts->api_sock && !opts->restore && !opts->incoming) {
		fprintf(stderr, "skiff: run: --kernel FILE is required, or --api-sock PATH or "
				"--restore SNAPSHOT (see skiff run --help)\n");
		return CONFIG_ERROR;
	}
	return CONFIG_OK;
}
