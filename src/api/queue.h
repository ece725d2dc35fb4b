/*
 * The one way from the API thread to the VM: requests queue up, and the VM's thread
 * carries them out one at a time between its other events, so that API handling never
 * races a vCPU or a device.
 */
#ifndef SKIFF_API_QUEUE_H
#define SKIFF_API_QUEUE_H

#include "api.h"

#include <pthread.h>

struct api_call {
	struct api_request req;
	struct api_response resp;
	bool done;
	struct api_call *next;
};

struct api_queue {
	pthread_mutex_t lock;
	pthread_cond_t answered;
	struct api_call *head, **tail;
	int fd;	     /* eventfd, readable while calls wait: the VM thread polls it */
	bool closed; /* the VM is gone: calls get 503 */
};

int api_queue_init(struct api_queue *q);
void api_queue_destroy(struct api_queue *q);
/* API thread: hands call over and waits until the VM thread has answered it. */
void api_queue_call(struct api_queue *q, struct api_call *call);
/* VM thread: answers every waiting call with handle(opaque, req, resp). */
void api_queue_serve(struct api_queue *q,
		     void (*handle)(void *opaque, struct api_request *req,
				    struct api_response *resp),
		     void *opaque);
/* Answers what waits, and every later call, with 503. */
void api_queue_close(struct api_queue *q);

#endif
