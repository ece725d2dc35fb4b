#include "event.h"

#include "../log.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* Input the guest has not taken yet; while any is left, stdin is not read. */
struct console_input {
	int epoll_fd;
	int in_fd; /* -1 once closed */
	int space_fd;
	bool waiting_for_space;
	uint8_t buf[4096];
	size_t off, len;
};

static void watch(struct console_input *in, int fd, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	epoll_ctl(in->epoll_fd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev);
}

static void push_input(struct console_input *in, struct serial *serial)
{
	in->off += serial_receive(serial, in->buf + in->off, in->len - in->off);
	if (in->off < in->len) {
		if (!in->waiting_for_space) {
			if (in->in_fd >= 0)
				watch(in, in->in_fd, false);
			watch(in, in->space_fd, true);
			in->waiting_for_space = true;
		}
		return;
	}
	in->off = in->len = 0;
	if (in->waiting_for_space) {
		watch(in, in->space_fd, false);
		if (in->in_fd >= 0)
			watch(in, in->in_fd, true);
		in->waiting_for_space = false;
	}
}

static void read_input(struct console_input *in, struct vm *vm, struct terminal *term)
{
	ssize_t n = read(in->in_fd, in->buf, sizeof(in->buf));
	bool quit;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* End of input: the guest keeps running without a keyboard. */
		watch(in, in->in_fd, false);
		in->in_fd = -1;
		return;
	}
	in->off = 0;
	in->len = terminal_filter(term, in->buf, n, &quit);
	if (quit) {
		log_info("Ctrl-A x: stopping the VM");
		vm_request_stop(vm, 0);
		return;
	}
	push_input(in, &vm->serial);
}

static void handle_signal(int signal_fd, struct vm *vm)
{
	struct signalfd_siginfo si;

	if (read(signal_fd, &si, sizeof(si)) != sizeof(si))
		return;
	log_info("stopping the VM on signal %s", strsignal(si.ssi_signo));
	vm_request_stop(vm, 128 + si.ssi_signo);
}

int event_loop_run(struct vm *vm, struct terminal *term, int in_fd, int signal_fd)
{
	struct console_input in = { .in_fd = in_fd, .space_fd = vm->serial.space_fd };
	struct epoll_event ev = { .events = EPOLLIN };
	int ret = 0;

	in.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (in.epoll_fd < 0)
		return -errno;
	ev.data.fd = vm->stop_fd;
	epoll_ctl(in.epoll_fd, EPOLL_CTL_ADD, vm->stop_fd, &ev);
	ev.data.fd = signal_fd;
	epoll_ctl(in.epoll_fd, EPOLL_CTL_ADD, signal_fd, &ev);
	ev.data.fd = in_fd;
	/* A regular file or /dev/null cannot be polled: the guest then gets no input. */
	if (in_fd < 0 || epoll_ctl(in.epoll_fd, EPOLL_CTL_ADD, in_fd, &ev) < 0)
		in.in_fd = -1;

	for (;;) {
		struct epoll_event events[4];
		int n = epoll_wait(in.epoll_fd, events, 4, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			log_error("epoll_wait: %s", strerror(errno));
			vm_request_stop(vm, 2);
			break;
		}
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;

			if (fd == vm->stop_fd)
				goto out;
			if (fd == signal_fd) {
				handle_signal(signal_fd, vm);
			} else if (fd == in.space_fd) {
				eventfd_t unused;

				eventfd_read(in.space_fd, &unused);
				push_input(&in, &vm->serial);
			} else if (fd == in.in_fd) {
				read_input(&in, vm, term);
			}
		}
	}
out:
	close(in.epoll_fd);
	return ret;
}
