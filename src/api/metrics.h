/*
 * Counters as a list of samples, rendered two ways: one JSON object per flush to the file
 * of PUT /metrics (Firecracker's way), and Prometheus's text format for GET /metrics.
 */
#ifndef SKIFF_METRICS_H
#define SKIFF_METRICS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* API answers by status class (index 2 counts 2xx), counted on the API thread. */
struct api_counters {
	atomic_ulong by_class[6];
};

/* One value; label, when set, tells it apart from others of the same name. */
struct metric_sample {
	const char *name;	/* e.g. "vcpu_exits_total" */
	const char *help;	/* one line, for Prometheus's HELP */
	const char *label_key;	/* e.g. "reason"; NULL: no label */
	char label[48];
	uint64_t value;
};

struct metrics {
	struct metric_sample *samples;
	size_t count, cap;
	int error; /* -ENOMEM once an add failed: the list is incomplete */
};

/* PUT /metrics: where flushes go. */
struct metrics_sink {
	int fd;		  /* -1: none configured */
	json_t *properties; /* object of strings, copied into every line; or NULL */
};

void metrics_add(struct metrics *m, const char *name, const char *help, const char *label_key,
		 const char *label, uint64_t value);
void metrics_free(struct metrics *m);
/* {"name": value, "name": {"label": value, ...}, ...}; NULL when out of memory. */
json_t *metrics_to_json(const struct metrics *m);
/* Prometheus text exposition format 0.0.4, names prefixed "skiff_"; malloc'd, or NULL. */
char *metrics_to_prometheus(const struct metrics *m);
/* One line of JSON (with the sink's properties and a timestamp) to the sink. 0 or -errno. */
int metrics_flush(const struct metrics_sink *sink, const struct metrics *m);

#endif
