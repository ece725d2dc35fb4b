#include "slirp.h"

#include "slirp_lib.h"

#include "../log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* One of slirp's timers: a timerfd on the event loop. */
struct slirp_timer {
	struct net_slirp *s;
	SlirpTimerCb cb;
	void *cb_opaque;
	int fd;
	struct event_source src;
};

/* A socket of the last slirp_pollfds_fill(), at the index slirp was given for it. */
struct slirp_pollfd {
	int fd;
	int revents; /* SLIRP_POLL_* */
};

struct net_slirp {
	const struct slirp_lib *lib;
	Slirp *slirp;
	struct event_loop *loop;
	struct net_slirp_client client;
	int poll_fd;	/* epoll set of the sockets slirp wants polled */
	int timeout_fd; /* timerfd: slirp_pollfds_fill()'s timeout */
	int kick_fd;	/* eventfd: rebuild the set on the next loop turn */
	bool kicked;
	struct event_source poll_src, timeout_src, kick_src;
	struct slirp_pollfd *fds;
	struct epoll_event *events; /* as many as fds can hold */
	unsigned nr_fds, max_fds;
};

static void lock(struct net_slirp *s)
{
	s->client.lock(s->client.opaque);
}

static void unlock(struct net_slirp *s)
{
	s->client.unlock(s->client.opaque);
}

static void kick(struct net_slirp *s)
{
	if (s->kicked)
		return;
	s->kicked = true;
	eventfd_write(s->kick_fd, 1);
}

static int grow(struct net_slirp *s)
{
	unsigned max = s->max_fds ? 2 * s->max_fds : 16;
	struct slirp_pollfd *fds = realloc(s->fds, max * sizeof(*fds));
	struct epoll_event *events;

	if (!fds)
		return -ENOMEM;
	s->fds = fds;
	events = realloc(s->events, max * sizeof(*events));
	if (!events)
		return -ENOMEM;
	s->events = events;
	s->max_fds = max;
	return 0;
}

static int add_poll(int fd, int events, void *opaque)
{
	struct net_slirp *s = opaque;
	struct epoll_event ev = { .data.u32 = s->nr_fds };

	/* epoll always reports errors and hang-ups. */
	ev.events = (events & SLIRP_POLL_IN ? EPOLLIN : 0) |
		    (events & SLIRP_POLL_OUT ? EPOLLOUT : 0) |
		    (events & SLIRP_POLL_PRI ? EPOLLPRI : 0);
	if (s->nr_fds == s->max_fds && grow(s))
		return -1; /* slirp then leaves the socket alone this turn */
	if (epoll_ctl(s->poll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -1;
	s->fds[s->nr_fds] = (struct slirp_pollfd){ fd, 0 };
	return s->nr_fds++;
}

static int get_revents(int idx, void *opaque)
{
	struct net_slirp *s = opaque;

	return idx >= 0 && (unsigned)idx < s->nr_fds ? s->fds[idx].revents : 0;
}

/* Rebuilds the epoll set and the timeout from what slirp wants now. */
static void poll_rearm(struct net_slirp *s)
{
	uint32_t timeout = UINT32_MAX;
	struct itimerspec when = { 0 };

	/* A socket slirp closed since has left the set by itself. */
	for (unsigned i = 0; i < s->nr_fds; i++)
		epoll_ctl(s->poll_fd, EPOLL_CTL_DEL, s->fds[i].fd, NULL);
	s->nr_fds = 0;
	s->lib->pollfds_fill(s->slirp, &timeout, add_poll, s);
	if (timeout != UINT32_MAX) {
		when.it_value.tv_sec = timeout / 1000;
		/* All zeroes would disarm it. */
		when.it_value.tv_nsec = timeout ? timeout % 1000 * 1000000L : 1;
	}
	timerfd_settime(s->timeout_fd, 0, &when, NULL);
}

/* Lets slirp handle the sockets that are ready and its timeouts, then re-arms. */
static void poll_ready(struct net_slirp *s)
{
	int n = epoll_wait(s->poll_fd, s->events, s->max_fds, 0);

	for (int i = 0; i < n; i++) {
		uint32_t idx = s->events[i].data.u32, ev = s->events[i].events;

		if (idx < s->nr_fds)
			s->fds[idx].revents = (ev & EPOLLIN ? SLIRP_POLL_IN : 0) |
					      (ev & EPOLLOUT ? SLIRP_POLL_OUT : 0) |
					      (ev & EPOLLPRI ? SLIRP_POLL_PRI : 0) |
					      (ev & EPOLLERR ? SLIRP_POLL_ERR : 0) |
					      (ev & EPOLLHUP ? SLIRP_POLL_HUP : 0);
	}
	lock(s);
	s->lib->pollfds_poll(s->slirp, n < 0, get_revents, s);
	poll_rearm(s);
	unlock(s);
}

static void sockets_ready(void *opaque)
{
	poll_ready(opaque);
}

static void timeout_expired(void *opaque)
{
	struct net_slirp *s = opaque;
	uint64_t expirations;

	if (read(s->timeout_fd, &expirations, sizeof(expirations)) == sizeof(expirations))
		poll_ready(s);
}

static void kicked(void *opaque)
{
	struct net_slirp *s = opaque;
	eventfd_t count;

	eventfd_read(s->kick_fd, &count);
	lock(s);
	s->kicked = false;
	poll_rearm(s);
	unlock(s);
}

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct net_slirp *s = opaque;

	s->client.receive(s->client.opaque, buf, len);
	return len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	(void)opaque;
	log_debug("--net user: guest error: %s", msg); /* the guest's doing: no louder */
}

/* CLOCK_MONOTONIC, the timerfds' clock. */
static int64_t cb_clock_get_ns(void *opaque)
{
	struct timespec now;

	(void)opaque;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec * 1000000000LL + now.tv_nsec;
}

static void timer_fired(void *opaque)
{
	struct slirp_timer *timer = opaque;
	struct net_slirp *s = timer->s;
	uint64_t expirations;

	if (read(timer->fd, &expirations, sizeof(expirations)) != sizeof(expirations))
		return; /* re-armed since it fired */
	lock(s);
	timer->cb(timer->cb_opaque);
	poll_rearm(s);
	unlock(s);
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct net_slirp *s = opaque;
	struct slirp_timer *timer = calloc(1, sizeof(*timer));

	if (!timer)
		goto fail;
	*timer = (struct slirp_timer){ s, cb, cb_opaque, -1, { .fd = -1 } };
	timer->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (timer->fd < 0)
		goto fail;
	if (event_add(s->loop, &timer->src, timer->fd, timer_fired, timer) == 0)
		return timer;
	close(timer->fd);
fail:
	/* slirp cannot take a failure: this timer will just never fire. */
	log_error("--net user: cannot create a timer: %s", strerror(errno));
	free(timer);
	return NULL;
}

static void cb_timer_free(void *opaque_timer, void *opaque)
{
	struct slirp_timer *timer = opaque_timer;

	(void)opaque;
	if (!timer)
		return;
	event_del(timer->s->loop, &timer->src);
	close(timer->fd);
	free(timer);
}

/* expire_ms is absolute, on cb_clock_get_ns()'s clock. */
static void cb_timer_mod(void *opaque_timer, int64_t expire_ms, void *opaque)
{
	struct slirp_timer *timer = opaque_timer;
	struct itimerspec when = { .it_value.tv_nsec = 1 }; /* past: fire now, not disarm */

	(void)opaque;
	if (!timer)
		return;
	if (expire_ms > 0)
		when.it_value = (struct timespec){ expire_ms / 1000, expire_ms % 1000 * 1000000 };
	timerfd_settime(timer->fd, TFD_TIMER_ABSTIME, &when, NULL);
}

/* slirp opens and closes sockets itself; the set is rebuilt after every call anyway. */
static void cb_register_poll_fd(int fd, void *opaque)
{
	(void)fd;
	(void)opaque;
}

static void cb_unregister_poll_fd(int fd, void *opaque)
{
	(void)fd;
	(void)opaque;
}

/* A socket can take more data: slirp wants to be polled again. */
static void cb_notify(void *opaque)
{
	kick(opaque);
}

static const SlirpCb callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register_poll_fd,
	.unregister_poll_fd = cb_unregister_poll_fd,
	.notify = cb_notify,
};

static int add_hostfwds(struct net_slirp *s, const struct net_config *cfg)
{
	for (unsigned i = 0; i < cfg->nr_hostfwd && i < NET_MAX_HOSTFWD; i++) {
		const struct net_hostfwd *f = &cfg->hostfwd[i];
		struct in_addr host = { f->host_addr }, guest = { f->guest_addr };
		char host_text[INET_ADDRSTRLEN] = "", guest_text[INET_ADDRSTRLEN] = "";

		/* A guest address of 0 is the DHCP start address to slirp too. */
		if (s->lib->add_hostfwd(s->slirp, f->udp, host, f->host_port, guest,
				      f->guest_port) == 0)
			continue;
		if (f->host_addr)
			inet_ntop(AF_INET, &host, host_text, sizeof(host_text));
		if (f->guest_addr)
			inet_ntop(AF_INET, &guest, guest_text, sizeof(guest_text));
		log_error("--net user: hostfwd=%s:%s:%u-%s:%u: %s", f->udp ? "udp" : "tcp",
			  host_text, f->host_port, guest_text, f->guest_port, strerror(errno));
		return -1;
	}
	return 0;
}

struct net_slirp *net_slirp_create(const struct net_config *cfg, struct event_loop *loop,
				   const struct net_slirp_client *client)
{
	/* QEMU's user network, so guests and habits carry over. */
	const SlirpConfig config = {
		.version = 4,
		.in_enabled = true,
		.vnetwork.s_addr = htonl(0x0a000200),	 /* 10.0.2.0 */
		.vnetmask.s_addr = htonl(0xffffff00),	 /* /24 */
		.vhost.s_addr = htonl(0x0a000202),	 /* 10.0.2.2 */
		.vdhcp_start.s_addr = htonl(0x0a00020f), /* 10.0.2.15 */
		.vnameserver.s_addr = htonl(0x0a000203), /* 10.0.2.3 */
	};
	struct net_slirp *s = calloc(1, sizeof(*s));

	if (!s) {
		log_error("--net user: slirp setup failed");
		return NULL;
	}
	s->loop = loop;
	s->client = *client;
	s->poll_src.fd = s->timeout_src.fd = s->kick_src.fd = -1;
	s->poll_fd = epoll_create1(EPOLL_CLOEXEC);
	s->timeout_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	s->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->poll_fd < 0 || s->timeout_fd < 0 || s->kick_fd < 0 || grow(s))
		goto fail;
	s->lib = slirp_lib();
	if (!s->lib)
		goto fail_logged;
	s->slirp = s->lib->create(&config, &callbacks, s);
	if (!s->slirp)
		goto fail;
	if (add_hostfwds(s, cfg))
		goto fail_logged;
	if (event_add(loop, &s->poll_src, s->poll_fd, sockets_ready, s) ||
	    event_add(loop, &s->timeout_src, s->timeout_fd, timeout_expired, s) ||
	    event_add(loop, &s->kick_src, s->kick_fd, kicked, s))
		goto fail;
	poll_rearm(s);
	return s;
fail:
	log_error("--net user: slirp setup failed");
fail_logged:
	net_slirp_free(s);
	return NULL;
}

void net_slirp_input(struct net_slirp *s, const uint8_t *frame, size_t len)
{
	s->lib->input(s->slirp, frame, len);
	/* The frame may have opened a socket or started a TCP timer. */
	kick(s);
}

void net_slirp_free(struct net_slirp *s)
{
	if (!s)
		return;
	/* A source never added is not in the loop: deleting it only fails. */
	event_del(s->loop, &s->poll_src);
	event_del(s->loop, &s->timeout_src);
	event_del(s->loop, &s->kick_src);
	if (s->slirp)
		s->lib->cleanup(s->slirp); /* closes its sockets, frees its timers */
	if (s->poll_fd >= 0)
		close(s->poll_fd);
	if (s->timeout_fd >= 0)
		close(s->timeout_fd);
	if (s->kick_fd >= 0)
		close(s->kick_fd);
	free(s->fds);
	free(s->events);
	free(s);
}
