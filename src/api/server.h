/*
 * skiff run --api-sock PATH: HTTP/1.1 on a Unix socket, served by libmicrohttpd on its own
 * thread. Each request is routed and checked there (routes.c); what needs the VM goes
 * through the queue to the VM's thread and the thread waits for the answer.
 */
#ifndef SKIFF_API_SERVER_H
#define SKIFF_API_SERVER_H

#include "metrics.h"
#include "queue.h"

struct api_server;

/*
 * Creates PATH mode 0600 (replacing a stale socket no one listens on; anything else at
 * PATH is refused) and starts serving. Logs one line naming PATH and returns NULL on
 * failure. counters count the answers by status class.
 */
struct api_server *api_server_start(const char *path, struct api_queue *queue,
				    struct api_counters *counters);
/* Stops serving, waits for the server's thread and removes the socket. */
void api_server_stop(struct api_server *server);

#endif
