/*
 * The event thread: one epoll loop that runs everything that is not a vCPU — console
 * input, signals, virtqueue notifications (ioeventfds) and device back-ends — so that a
 * slow device never stalls a vCPU.
 */
#ifndef SKIFF_EVENT_H
#define SKIFF_EVENT_H

#include <stdbool.h>
#include <stdint.h>

typedef void (*event_fn)(void *opaque);

/* One watched fd; owned by whoever added it, and must outlive its registration. */
struct event_source {
	int fd;
	event_fn fn;
	void *opaque;
};

struct event_loop {
	int epoll_fd;
	bool stop;
};

int event_loop_init(struct event_loop *loop);
void event_loop_destroy(struct event_loop *loop);
/* Calls fn(opaque) on the loop's thread whenever fd is readable. Returns 0 or -errno. */
int event_add(struct event_loop *loop, struct event_source *src, int fd, event_fn fn,
	      void *opaque);
void event_del(struct event_loop *loop, struct event_source *src);
/* Runs handlers until one of them calls event_loop_stop(). */
int event_loop_run(struct event_loop *loop);
void event_loop_stop(struct event_loop *loop);

#endif
