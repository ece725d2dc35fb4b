/* skiff: a virtual machine monitor on Linux KVM. */
#include "config.h"
#include "log.h"
#include "terminal.h"
#include "vmm/console.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "api/config_file.h"
#include "api/controller.h"
#include "api/server.h"
#include "migrate/migrate.h"
#include "vmm/vm_snapshot.h"
#include "ctl/ctl.h"
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
		     "  ctl            control a running skiff through its API socket\n"
		     "                 (see skiff ctl --help)\n"
		     "  merge-memory BASE DIFF\n"
		     "                 lay a Diff snapshot's memory file over the memory file of\n"
		     "                 the snapshot before it (in place), for restoring the Diff\n"
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

/* One skiff run: the VM, the terminal, and the API when there is one. */
struct runner {
	struct vm vm;
	bool vm_created;
	struct terminal term;
	struct console con;
	int signal_fd;
	struct event_source signal_src;
	struct event_loop preboot; /* what runs until InstanceStart */
	int preboot_status;
	/* With --api-sock: */
	struct api_server *server;
	struct api_queue queue;
	struct api_counters counters;
	struct controller ctl;
	bool ctl_ready;
	struct event_source queue_src;
};

/* SIGINT, SIGTERM, SIGHUP and SIGQUIT arrive on a signalfd and stop the VM. */
static void stop_on_signal(void *opaque)
{
	struct runner *r = opaque;
	struct signalfd_siginfo si;

	if (read(r->signal_fd, &si, sizeof(si)) != sizeof(si))
		return;
	log_info("stopping %s on signal %s", r->vm_created ? "the VM" : "skiff",
		 strsignal(si.ssi_signo));
	if (r->vm_created) {
		vm_request_stop(&r->vm, 128 + si.ssi_signo);
	} else {
		r->preboot_status = 128 + si.ssi_signo;
		event_loop_stop(&r->preboot);
	}
}

static void stop_on_escape(void *opaque)
{
	vm_request_stop(opaque, 0);
}

static void serve_api(void *opaque)
{
	struct runner *r = opaque;

	api_queue_serve(&r->queue, controller_handle, &r->ctl);
}

/* InstanceStop before any VM. */
static void quit_preboot(void *opaque)
{
	struct runner *r = opaque;

	r->preboot_status = 0;
	event_loop_stop(&r->preboot);
}

/*
 * Builds and starts the VM, and moves the signals and the API from the pre-boot loop to
 * the VM's. serial_fd < 0: the guest's console is the terminal.
 */
static int boot(void *opaque, const struct vm_config *cfg, int serial_fd,
		struct vm_snapshot *snap, bool paused)
{
	struct runner *r = opaque;
	int ret = vm_create(&r->vm, cfg, serial_fd >= 0 ? serial_fd : STDOUT_FILENO);

	if (!ret && snap)
		ret = vm_snapshot_load(&r->vm, snap);
	if (ret) {
		vm_destroy(&r->vm);
		return ret;
	}
	r->vm_created = true;
	if (terminal_setup(&r->term, STDIN_FILENO))
		log_warn("stdin: cannot switch the terminal to raw mode: %m");
	event_add(&r->vm.loop, &r->signal_src, r->signal_fd, stop_on_signal, r);
	if (r->server)
		event_add(&r->vm.loop, &r->queue_src, r->queue.fd, serve_api, r);
	if (r->ctl_ready)
		controller_set_vm(&r->ctl, &r->vm);
	console_start(&r->con, &r->vm.loop, STDIN_FILENO, vm_console_sink(&r->vm), &r->term,
		      stop_on_escape, &r->vm);
	event_loop_stop(&r->preboot);
	if (paused)
		vm_pause(&r->vm); /* before they start: the vCPUs park at once */
	/* A vCPU that cannot start stops the VM, whose exit status then says so. */
	vm_start(&r->vm);
	return 0;
}

/* The controller, for the API and for restoring; the API's server with --api-sock. */
static int start_controller(struct runner *r, const struct run_options *opts)
{
	struct controller_hooks hooks = { boot, quit_preboot, r };
	int ret = api_queue_init(&r->queue);

	ret = ret ?: controller_init(&r->ctl, &opts->vm, &r->counters, &r->queue, hooks);
	if (ret) {
		log_error("setting up the controller: %s", strerror(-ret));
		return ret;
	}
	r->ctl_ready = true;
	if (!opts->api_sock)
		return 0;
	r->server = api_server_start(opts->api_sock, &r->queue, &r->counters);
	return r->server ? 0 : -EINVAL;
}

/* No --kernel: the API configures the VM; returns once it started one, or skiff must end. */
static int wait_for_instance_start(struct runner *r, const char *api_sock)
{
	int ret = event_loop_init(&r->preboot);

	ret = ret ?: event_add(&r->preboot, &r->signal_src, r->signal_fd, stop_on_signal, r);
	ret = ret ?: event_add(&r->preboot, &r->queue_src, r->queue.fd, serve_api, r);
	if (ret) {
		log_error("setting up the event loop: %s", strerror(-ret));
		return ret;
	}
	log_info("waiting on %s for the VM's configuration and InstanceStart", api_sock);
	ret = event_loop_run(&r->preboot);
	event_loop_destroy(&r->preboot);
	return ret;
}

/* Boots and runs the VM opts describes; returns skiff's exit status. */
static int run_vm(struct run_options *opts)
{
	struct runner r = { .signal_fd = -1, .preboot_status = EXIT_SKIFF_ERROR,
			    .preboot = { .epoll_fd = -1 }, .queue = { .fd = -1 } };
	int status = EXIT_SKIFF_ERROR;

	log_set_level(opts->log_level);
	opts->vm.start = started;
	r.signal_fd = setup_signals();
	if (r.signal_fd < 0) {
		log_error("setting up signals: %m");
		return EXIT_SKIFF_ERROR;
	}
	if ((opts->api_sock || opts->restore || opts->incoming) && start_controller(&r, opts))
		goto out;
	if (opts->incoming) {
		int ret = migrate_incoming(&r.ctl, opts->incoming, r.signal_fd);

		if (ret) {
			status = ret > 0 ? ret : EXIT_SKIFF_ERROR;
			if (r.vm_created) { /* built early, its vCPUs parked: they go first */
				vm_request_stop(&r.vm, status);
				vm_join(&r.vm);
				terminal_restore();
			}
			goto out;
		}
	} else if (opts->restore) {
		struct field_error err; /* already logged */

		if (controller_restore(&r.ctl, opts->restore, opts->vm.mem_file, NULL, true,
				       false, &err))
			goto out;
	} else if (opts->vm.kernel_path) {
		if (boot(&r, &opts->vm, -1, NULL, false))
			goto out;
	} else if (wait_for_instance_start(&r, opts->api_sock) || !r.vm_created) {
		status = r.preboot_status;
		goto out;
	}
	vm_run_events(&r.vm);
	status = vm_join(&r.vm);
	terminal_restore();
out:
	/* The API first: a request must never find the VM half gone. */
	if (r.queue.fd >= 0)
		api_queue_close(&r.queue);
	if (r.ctl_ready)
		controller_stop_migration(&r.ctl);
	api_server_stop(r.server);
	if (r.vm_created)
		vm_destroy(&r.vm);
	if (r.ctl_ready)
		controller_destroy(&r.ctl);
	api_queue_destroy(&r.queue);
	close(r.signal_fd);
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
	if (!strcmp(argv[1], "ctl"))
		return ctl_main(argc - 2, argv + 2);
	if (!strcmp(argv[1], "merge-memory")) {
		if (argc != 4) {
			fprintf(stderr, "skiff: usage: skiff merge-memory BASE DIFF\n");
			return EXIT_SKIFF_ERROR;
		}
		return snapshot_merge_memory(argv[2], argv[3]) ? EXIT_SKIFF_ERROR : 0;
	}
	if (!strcmp(argv[1], "unpack-kernel"))
		return cmd_unpack_kernel(argc - 2, argv + 2);
	fprintf(stderr, "skiff: unknown command '%s' (see skiff --help)\n", argv[1]);
	return EXIT_SKIFF_ERROR;
}
