#include "event.h"

#include "../log.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

int event_loop_init(struct event_loop *loop)
{
	loop->stop = false;
	loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	return loop->epoll_fd < 0 ? -errno : 0;
}

void event_loop_destroy(struct event_loop *loop)
{
	if (loop->epoll_fd >= 0)
		close(loop->epoll_fd);
	loop->epoll_fd = -1;
}

int event_add(struct event_loop *loop, struct event_source *src, int fd, event_fn fn,
	      void *opaque)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = src };

	*src = (struct event_source){ fd, fn, opaque };
	return epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

void event_del(struct event_loop *loop, struct event_source *src)
{
	epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, src->fd, NULL);
}

void event_loop_stop(struct event_loop *loop)
{
	loop->stop = true;
}

int event_loop_run(struct event_loop *loop)
{
	while (!loop->stop) {
		struct epoll_event events[16];
		int n = epoll_wait(loop->epoll_fd, events, 16, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_error("epoll_wait: %s", strerror(errno));
			return -errno;
		}
		for (int i = 0; i < n && !loop->stop; i++) {
			struct event_source *src = events[i].data.ptr;

			src->fn(src->opaque);
		}
	}
	return 0;
}
