/* The `skiff run` command line, parsed and validated into a vm_config. */
#ifndef SKIFF_CONFIG_H
#define SKIFF_CONFIG_H

#include "log.h"
#include "vmm/vm.h"

#include <stdint.h>
#include <stdio.h>

#define CONFIG_DEFAULT_CPUS	1
#define CONFIG_DEFAULT_MEMORY	((uint64_t)128 << 20)
#define CONFIG_MIN_MEMORY	((uint64_t)8 << 20)
#define CONFIG_MAX_MEMORY	((uint64_t)1 << 40)

struct run_options {
	struct vm_config vm;
	enum log_level log_level;
	void *config_file; /* with --config-file: what vm points into (config_file_free) */
	const char *api_sock; /* NULL: no API */
	const char *restore;  /* --restore SNAPSHOT (its RAM: vm.mem_file) */
	const char *incoming; /* --incoming tcp:ADDR:PORT */
};

enum config_result { CONFIG_OK, CONFIG_HELP, CONFIG_ERROR };

/* "512K", "128M", "16G", "1T"; a bare number is MiB, as in QEMU's -m. Returns 0 or -EINVAL. */
int config_parse_size(const char *text, uint64_t *bytes);
/*
 * Parses the arguments after "run". On CONFIG_ERROR one line naming the bad input has been
 * printed to stderr; on CONFIG_HELP the help has been printed to stdout.
 */
enum config_result config_parse_run(int argc, char *const argv[], struct run_options *opts);
void config_print_run_help(FILE *out);

/* Device options (config_devices.c). Each prints one error line and returns -EINVAL. */
int config_parse_disk(char *text, struct vm_config *vm);	/* ends the path in text */
int config_parse_net(const char *text, struct vm_config *vm);
int config_parse_mac(const char *text, uint8_t mac[6]);
int config_parse_hostfwd(const char *text, struct net_hostfwd *fwd);

#endif
