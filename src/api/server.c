#include "server.h"

#include "routes.h"

#include "../log.h"
#include "../util/dynlib.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Slow or half-closed clients are dropped after this long idle. */
#define CONNECTION_TIMEOUT_S 10
#define MAX_CONNECTIONS	     64

/* libmicrohttpd is loaded only when the API is on: it and its TLS stack cost every start. */
static struct {
	__typeof__(MHD_start_daemon) *start_daemon;
	__typeof__(MHD_stop_daemon) *stop_daemon;
	__typeof__(MHD_create_response_from_buffer) *create_response;
	__typeof__(MHD_add_response_header) *add_header;
	__typeof__(MHD_queue_response) *queue_response;
	__typeof__(MHD_destroy_response) *destroy_response;
	__typeof__(MHD_lookup_connection_value) *lookup_value;
} mhd;

struct api_server {
	struct MHD_Daemon *daemon;
	/* Requests being answered: stopping waits (a little) for their answers to go out. */
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned answering;
	struct api_queue *queue;
	struct api_counters *counters;
	int fd;
	char *path;
};

/* One request in progress: its body so far. */
struct request {
	char *body;
	size_t len;
	bool too_big;
	bool answering; /* counted in the server's answering */
};

/* How long stopping waits for answers already on their way (InstanceStop's own, say). */
#define STOP_GRACE_MS 1000

static int load_mhd(void)
{
	const struct dynlib_symbol symbols[] = {
		{ "MHD_start_daemon", &mhd.start_daemon },
		{ "MHD_stop_daemon", &mhd.stop_daemon },
		{ "MHD_create_response_from_buffer", &mhd.create_response },
		{ "MHD_add_response_header", &mhd.add_header },
		{ "MHD_queue_response", &mhd.queue_response },
		{ "MHD_destroy_response", &mhd.destroy_response },
		{ "MHD_lookup_connection_value", &mhd.lookup_value },
	};

	return dynlib_load("libmicrohttpd.so.12", "--api-sock", symbols,
			   sizeof(symbols) / sizeof(symbols[0]), NULL);
}

static enum MHD_Result send_response(struct api_server *server,
				     struct MHD_Connection *conn, const char *path,
				     struct api_response *resp)
{
	size_t len = resp->body ? strlen(resp->body) : 0;
	struct MHD_Response *r;
	const char *allow;
	enum MHD_Result ret;

	if (resp->status == 200 && !len)
		resp->status = 204;
	r = mhd.create_response(len, resp->body, resp->body ? MHD_RESPMEM_MUST_FREE
							     : MHD_RESPMEM_PERSISTENT);
	if (!r) {
		api_response_release(resp);
		return MHD_NO;
	}
	resp->body = NULL; /* MHD frees it with the response */
	if (len)
		mhd.add_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
			       resp->text ? "text/plain; version=0.0.4" : "application/json");
	allow = resp->status == 405 ? api_allowed_methods(path) : NULL;
	if (allow)
		mhd.add_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = mhd.queue_response(conn, resp->status, r);
	mhd.destroy_response(r);
	if (resp->status / 100 < 6)
		atomic_fetch_add(&server->counters->by_class[resp->status / 100], 1);
	return ret;
}

static void answer(struct api_server *server, const char *method, const char *path,
		   struct request *rq, struct api_response *resp)
{
	struct api_call call;

	if (rq->too_big) {
		api_fault(resp, 413, "the body is larger than %d bytes", API_MAX_BODY);
		return;
	}
	if (!api_route(method, path, rq->body, rq->len, &call.req, resp))
		return;
	api_queue_call(server->queue, &call);
	api_request_release(&call.req);
	*resp = call.resp;
}

static enum MHD_Result handle(void *opaque, struct MHD_Connection *conn, const char *path,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **state)
{
	struct api_server *server = opaque;
	struct request *rq = *state;
	struct api_response resp = { 0 };
	const char *length;

	(void)version;
	if (!rq) {
		/* Headers are in: refuse what is announced too big before reading it. */
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		*state = rq;
		length = mhd.lookup_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		rq->too_big = length && strtoull(length, NULL, 10) > API_MAX_BODY;
		if (!rq->too_big)
			return MHD_YES;
	} else if (*upload_size) {
		if (!rq->too_big && rq->len + *upload_size <= API_MAX_BODY) {
			if (!rq->body)
				rq->body = malloc(API_MAX_BODY);
			if (!rq->body)
				return MHD_NO;
			memcpy(rq->body + rq->len, upload, *upload_size);
			rq->len += *upload_size;
		} else {
			rq->too_big = true;
		}
		*upload_size = 0;
		if (!rq->too_big)
			return MHD_YES;
	}
	/* The whole request is in, or it is too big: answer (MHD drops the rest). */
	pthread_mutex_lock(&server->lock);
	server->answering++;
	rq->answering = true;
	pthread_mutex_unlock(&server->lock);
	answer(server, method, path, rq, &resp);
	return send_response(server, conn, path, &resp);
}

static void request_done(void *opaque, struct MHD_Connection *conn, void **state,
			 enum MHD_RequestTerminationCode why)
{
	struct api_server *server = opaque;
	struct request *rq = *state;

	(void)conn, (void)why;
	if (rq && rq->answering) {
		pthread_mutex_lock(&server->lock);
		server->answering--;
		pthread_cond_broadcast(&server->idle);
		pthread_mutex_unlock(&server->lock);
	}
	if (rq) {
		free(rq->body);
		free(rq);
	}
	*state = NULL;
}

/* A socket at path that no one listens on is left over from a skiff that died: remove it. */
static int clear_path(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, ret;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_error("--api-sock %s: exists and is not a socket", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strcpy(addr.sun_path, path);
	ret = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
	close(fd);
	if (ret == 0) {
		log_error("--api-sock %s: another process is serving it", path);
		return -EADDRINUSE;
	}
	if (errno != ECONNREFUSED) {
		log_error("--api-sock %s: %s", path, strerror(errno));
		return -errno;
	}
	log_info("--api-sock %s: removing a stale socket", path);
	return unlink(path) < 0 ? -errno : 0;
}

static int listen_on(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	mode_t old_mask;
	int fd, ret;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_error("--api-sock %s: longer than %zu bytes", path, sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	ret = clear_path(path);
	if (ret)
		return ret;
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Created 0600 from the start: no moment where another user could connect. */
	old_mask = umask(0177);
	ret = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old_mask);
	if (ret < 0 || listen(fd, MAX_CONNECTIONS) < 0) {
		ret = -errno;
		log_error("--api-sock %s: %s", path, strerror(errno));
		close(fd);
		return ret;
	}
	return fd;
}

struct api_server *api_server_start(const char *path, struct api_queue *queue,
				    struct api_counters *counters)
{
	struct api_server *server;
	int fd;

	if (load_mhd())
		return NULL;
	server = calloc(1, sizeof(*server));
	if (!server || !(server->path = strdup(path))) {
		free(server);
		log_error("--api-sock: out of memory");
		return NULL;
	}
	fd = listen_on(path);
	if (fd < 0) {
		free(server->path);
		free(server);
		return NULL;
	}
	pthread_mutex_init(&server->lock, NULL);
	pthread_cond_init(&server->idle, NULL);
	server->fd = fd;
	server->queue = queue;
	server->counters = counters;
	server->daemon = mhd.start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, handle, server,
		MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)MAX_CONNECTIONS, MHD_OPTION_NOTIFY_COMPLETED, request_done, server,
		MHD_OPTION_END);
	if (!server->daemon) {
		log_error("--api-sock %s: libmicrohttpd cannot serve it", path);
		api_server_stop(server);
		return NULL;
	}
	log_info("serving the API on %s", path);
	return server;
}

/* Lets answers being sent finish, for at most STOP_GRACE_MS. */
static void wait_for_answers(struct api_server *server)
{
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += STOP_GRACE_MS / 1000;
	pthread_mutex_lock(&server->lock);
	while (server->answering &&
	       pthread_cond_timedwait(&server->idle, &server->lock, &deadline) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&server->lock);
}

void api_server_stop(struct api_server *server)
{
	if (!server)
		return;
	if (server->daemon) {
		wait_for_answers(server);
		mhd.stop_daemon(server->daemon); /* which closes the listening socket */
	} else {
		close(server->fd);
	}
	pthread_cond_destroy(&server->idle);
	pthread_mutex_destroy(&server->lock);
	unlink(server->path);
	free(server->path);
	free(server);
}
