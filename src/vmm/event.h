/* The main thread's epoll loop: console input, signals, and the VM's stop request. */
#ifndef SKIFF_EVENT_H
#define SKIFF_EVENT_H

#include "vm.h"

#include "../terminal.h"

/*
 * Runs until the VM is asked to stop. in_fd feeds COM1 (through term's escapes);
 * signal_fd is a signalfd whose signals stop the VM with status 128 + signal.
 */
int event_loop_run(struct vm *vm, struct terminal *term, int in_fd, int signal_fd);

#endif
