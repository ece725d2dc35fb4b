/* The controller's metrics: PUT /metrics, FlushMetrics and GET /metrics. */
#include "controller_parts.h"

#include "../log.h"
#include "../vmm/vcpu.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void controller_set_metrics(struct controller *ctl, struct api_request *req,
			    struct api_response *resp)
{
	const char *path = json_string_value(json_object_get(req->body, "metrics_path"));
	int fd;

	if (ctl->metrics.fd >= 0) {
		api_fault(resp, 400, "metrics: already set up");
		return;
	}
	/* O_NONBLOCK: a named pipe without a reader fails here instead of blocking the VM. */
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0) {
		api_fault(resp, 400, "metrics_path %s: %s", path, strerror(errno));
		return;
	}
	ctl->metrics.fd = fd;
	ctl->metrics.properties = json_incref(json_object_get(req->body, "properties"));
	resp->status = 204;
}

/* Per virtio device, labelled by its kind and slot, e.g. "virtio-blk.0". */
static void collect_devices(struct vm *vm, struct metrics *m)
{
	char labels[MAX_VIRTIO_DEVICES][32];
	uint64_t notes[MAX_VIRTIO_DEVICES], irqs[MAX_VIRTIO_DEVICES];
	struct net_stats net[MAX_VIRTIO_DEVICES] = { 0 };
	bool is_net[MAX_VIRTIO_DEVICES];
	unsigned n = vm->nr_virtio;

	for (unsigned i = 0; i < n; i++) {
		struct virtio_mmio *t = &vm->virtio[i];

		snprintf(labels[i], sizeof(labels[i]), "%s.%u", t->ops->name, i);
		virtio_mmio_lock(t);
		notes[i] = t->notifications;
		irqs[i] = t->interrupts;
		virtio_mmio_unlock(t);
		is_net[i] = !strcmp(t->ops->name, "virtio-net");
		if (is_net[i])
			virtio_net_stats(t->dev, &net[i]);
	}
	/* Grouped by name, as the renderers want. */
	for (unsigned i = 0; i < n; i++)
		metrics_add(m, "virtio_notifications_total", "Queue notifications from the guest",
			    "device", labels[i], notes[i]);
	for (unsigned i = 0; i < n; i++)
		metrics_add(m, "virtio_interrupts_total", "Interrupts raised to the guest",
			    "device", labels[i], irqs[i]);
	for (unsigned i = 0; i < n; i++)
		if (is_net[i])
			metrics_add(m, "net_rx_packets_total", "Frames delivered to the guest",
				    "device", labels[i], net[i].rx_packets);
	for (unsigned i = 0; i < n; i++)
		if (is_net[i])
			metrics_add(m, "net_tx_packets_total", "Frames sent by the guest", "device",
				    labels[i], net[i].tx_packets);
}

/* Every counter, grouped by name. */
static void collect(struct controller *ctl, struct metrics *m)
{
	static const char *const classes[] = { "", "1xx", "2xx", "3xx", "4xx", "5xx" };
	struct vm *vm = ctl->vm;

	metrics_add(m, "uptime_us", "Microseconds since skiff started", NULL, NULL,
		    controller_elapsed_us(ctl->base.start));
	metrics_add(m, "snapshots_total", "Snapshots created", NULL, NULL, ctl->snapshots);
	metrics_add(m, "snapshot_memory_bytes", "RAM bytes the last snapshot has written", NULL,
		    NULL, ctl->snapshot_bytes);
	metrics_add(m, "snapshot_create_us", "Microseconds the last snapshot took", NULL, NULL,
		    ctl->snapshot_us);
	for (unsigned c = 1; c < 6; c++)
		metrics_add(m, "api_responses_total", "API answers by status class", "status",
			    classes[c], atomic_load(&ctl->counters->by_class[c]));
	for (unsigned op = 0; op < API_OPS; op++)
		metrics_add(m, "api_requests_total", "API requests that reached the VM",
			    "request", controller_op_names[op], ctl->requests[op]);
	if (!vm)
		return;
	for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++) {
		uint64_t sum = 0;

		for (unsigned i = 0; i < vm->nr_vcpus; i++)
			sum += vcpu_exit_count(&vm->vcpus[i], k);
		metrics_add(m, "vcpu_exits_total", "vCPU exits to skiff by reason", "reason",
			    vcpu_exit_names[k], sum);
	}
	collect_devices(vm, m);
}

void controller_flush_metrics(struct controller *ctl, struct api_response *resp)
{
	struct metrics m = { 0 };
	int ret;

	if (ctl->metrics.fd < 0) {
		api_fault(resp, 400, "FlushMetrics: no metrics_path yet (PUT /metrics)");
		return;
	}
	collect(ctl, &m);
	ret = metrics_flush(&ctl->metrics, &m);
	metrics_free(&m);
	if (ret)
		api_fault(resp, 400, "FlushMetrics: %s", strerror(-ret));
	else
		resp->status = 204;
}

void controller_get_metrics(struct controller *ctl, struct api_response *resp)
{
	struct metrics m = { 0 };

	collect(ctl, &m);
	resp->body = metrics_to_prometheus(&m);
	resp->status = resp->body ? 200 : 500;
	resp->text = true;
	metrics_free(&m);
}
