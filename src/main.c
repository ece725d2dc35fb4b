/* skiff: a virtual machine monitor on Linux KVM. */
#include "config.h"
#include "log.h"
#include "terminal.h"
#include "vmm/console.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "api/config_file.h"
#include "arch/x86/unpack.h"
#include "util/file.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define EXIT_SKIFF_ERROR 2

/* When main() began: the boot-time device measures from here. */
static struct timespec started;

static void print_help(FILE *out)
{
	fprintf(out, "Usage: skiff COMMAND [options]\n"
		     "\n"
		     "skiff is a virtual machine monitor on Linux KVM.\n"
		     "\n"
		     "Commands:\n"
		     "  run            boot a virtual machine (see skiff run --help)\n"
		     "  unpack-kernel BZIMAGE VMLINUX\n"
		     "                 write the ELF kernel inside a Linux bzImage to VMLINUX\n"
		     "\n"
		     "Options:\n"
		     "  -h, --help     show this help\n"
		     "  -V, --version  print skiff's version\n");
}

/* Signals that stop the VM are read from a signalfd; the kick signal is for vCPU threads. */
static int setup_signals(void)
{
	sigset_t set;
	sigset_t blocked;

	signal(SIGPIPE, SIG_IGN);
	if (vcpu_kick_signal_init())
		return -1;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	blocked = set;
	sigaddset(&blocked, SIGUSR1); /* the kick: unblocked only in vCPU threads */
	pthread_sigmask(SIG_BLOCK, &blocked, NULL);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* SIGINT, SIGTERM, SIGHUP and SIGQUIT arrive on a signalfd and stop the VM. */
struct signal_watch {
	int fd;
	struct vm *vm;
	struct event_source src;
};

static void stop_on_signal(void *opaque)
{
	struct signal_watch *w = opaque;
	struct signalfd_siginfo si;

	if (read(w->fd, &si, sizeof(si)) != sizeof(si))
		return;
	log_info("stopping the VM on signal %s", strsignal(si.ssi_signo));
	vm_request_stop(w->vm, 128 + si.ssi_signo);
}

static void stop_on_escape(void *opaque)
{
	vm_request_stop(opaque, 0);
}

/* Boots and runs the VM opts describes; returns skiff's exit status. */
static int run_vm(struct run_options *opts)
{
	struct signal_watch signals;
	struct terminal term;
	struct console con;
	struct vm vm;
	int signal_fd, status = EXIT_SKIFF_ERROR;

	log_set_level(opts->log_level);
	opts->vm.start = started;
	signal_fd = setup_signals();
	if (signal_fd < 0) {
		log_error("setting up signals: %m");
		return EXIT_SKIFF_ERROR;
	}
	if (vm_create(&vm, &opts->vm, STDOUT_FILENO))
		goto out;
	if (terminal_setup(&term, STDIN_FILENO))
		log_warn("stdin: cannot switch the terminal to raw mode: %m");
	signals = (struct signal_watch){ .fd = signal_fd, .vm = &vm };
	event_add(&vm.loop, &signals.src, signal_fd, stop_on_signal, &signals);
	console_start(&con, &vm.loop, STDIN_FILENO, vm_console_sink(&vm), &term, stop_on_escape,
		      &vm);
	if (vm_start(&vm) == 0)
		vm_run_events(&vm);
	status = vm_join(&vm);
	terminal_restore();
out:
	vm_destroy(&vm);
	close(signal_fd);
	return status;
}

static int cmd_run(int argc, char *const argv[])
{
	struct run_options opts;
	int status;

	switch (config_parse_run(argc, argv, &opts)) {
	case CONFIG_HELP:
		status = 0;
		break;
	case CONFIG_ERROR:
		status = EXIT_SKIFF_ERROR;
		break;
	default:
		status = run_vm(&opts);
		break;
	}
	config_file_free(opts.config_file);
	return status;
}

/* skiff unpack-kernel BZIMAGE VMLINUX: the host-side unpacking `run` does, to a file. */
static int cmd_unpack_kernel(int argc, char *const argv[])
{
	struct mapped_file in;
	struct boot_image img;
	uint8_t *elf = NULL;
	size_t size;
	FILE *out;
	int ret;

	if (argc != 2) {
		fprintf(stderr, "skiff: usage: skiff unpack-kernel BZIMAGE VMLINUX\n");
		return EXIT_SKIFF_ERROR;
	}
	if (file_map(argv[0], &in))
		return EXIT_SKIFF_ERROR;
	img = (struct boot_image){ argv[0], in.data, in.size };
	ret = bzimage_unpack(&img, &elf, &size);
	file_unmap(&in);
	if (ret == -ENOEXEC)
		fprintf(stderr, "skiff: %s: not a bzImage with a payload skiff can unpack\n",
			argv[0]);
	if (ret)
		return EXIT_SKIFF_ERROR;
	out = fopen(argv[1], "wb");
	if (!out || fwrite(elf, 1, size, out) != size || fclose(out)) {
		fprintf(stderr, "skiff: %s: %s\n", argv[1], strerror(errno));
		free(elf);
		return EXIT_SKIFF_ERROR;
	}
	free(elf);
	return 0;
}

int main(int argc, char *argv[])
{
	clock_gettime(CLOCK_MONOTONIC, &started);
	if (argc < 2) {
		print_help(stderr);
		return EXIT_SKIFF_ERROR;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		print_help(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("skiff %s\n", SKIFF_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 2, argv + 2);
	if (!strcmp(argv[1], "unpack-kernel"))
		return cmd_unpack_kernel(argc - 2, argv + 2);
	fprintf(stderr, "skiff: unknown command '%s' (see skiff --help)\n", argv[1]);
	return EXIT_SKIFF_ERROR;
}
