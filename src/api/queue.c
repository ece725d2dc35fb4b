#include "queue.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

int api_queue_init(struct api_queue *q)
{
	q->head = NULL;
	q->tail = &q->head;
	q->closed = false;
	q->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->fd < 0)
		return -errno;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->answered, NULL);
	return 0;
}

void api_queue_destroy(struct api_queue *q)
{
	if (q->fd < 0)
		return;
	close(q->fd);
	q->fd = -1;
	pthread_cond_destroy(&q->answered);
	pthread_mutex_destroy(&q->lock);
}

static void refuse(struct api_call *call)
{
	api_fault(&call->resp, 503, "the VM has stopped");
	call->done = true;
}

void api_queue_call(struct api_queue *q, struct api_call *call)
{
	call->done = false;
	call->next = NULL;
	call->resp = (struct api_response){ 0 };
	pthread_mutex_lock(&q->lock);
	if (q->closed) {
		refuse(call);
	} else {
		*q->tail = call;
		q->tail = &call->next;
		eventfd_write(q->fd, 1);
	}
	while (!call->done)
		pthread_cond_wait(&q->answered, &q->lock);
	pthread_mutex_unlock(&q->lock);
}

void api_queue_serve(struct api_queue *q,
		     void (*handle)(void *opaque, struct api_request *req,
				    struct api_response *resp),
		     void *opaque)
{
	eventfd_t unused;

	eventfd_read(q->fd, &unused);
	pthread_mutex_lock(&q->lock);
	while (q->head) {
		struct api_call *call = q->head;

		q->head = call->next;
		if (!q->head)
			q->tail = &q->head;
		/* Unlocked while handling: a slow request must not hold up new arrivals. */
		pthread_mutex_unlock(&q->lock);
		handle(opaque, &call->req, &call->resp);
		pthread_mutex_lock(&q->lock);
		call->done = true;
		pthread_cond_broadcast(&q->answered);
	}
	pthread_mutex_unlock(&q->lock);
}

void api_queue_close(struct api_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	for (struct api_call *call = q->head; call; call = call->next)
		refuse(call);
	q->head = NULL;
	q->tail = &q->head;
	pthread_cond_broadcast(&q->answered);
	pthread_mutex_unlock(&q->lock);
}
