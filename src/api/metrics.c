#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void metrics_add(struct metrics *m, const char *name, const char *help, const char *label_key,
		 const char *label, uint64_t value)
{
	struct metric_sample *s;

	if (m->count == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 32;
		struct metric_sample *bigger = realloc(m->samples, cap * sizeof(*bigger));

		if (!bigger) {
			m->error = -ENOMEM;
			return;
		}
		m->samples = bigger;
		m->cap = cap;
	}
	s = &m->samples[m->count++];
	*s = (struct metric_sample){ name, help, label_key, "", value };
	if (label)
		snprintf(s->label, sizeof(s->label), "%s", label);
}

void metrics_free(struct metrics *m)
{
	free(m->samples);
	*m = (struct metrics){ 0 };
}

json_t *metrics_to_json(const struct metrics *m)
{
	json_t *root = m->error ? NULL : json_object();
	bool ok = root != NULL;

	for (size_t i = 0; ok && i < m->count; i++) {
		const struct metric_sample *s = &m->samples[i];
		json_t *group;

		if (!s->label_key) {
			ok = !json_object_set_new(root, s->name, json_integer(s->value));
			continue;
		}
		group = json_object_get(root, s->name);
		if (!group) {
			group = json_object();
			ok = !json_object_set_new(root, s->name, group);
		}
		ok = ok && !json_object_set_new(group, s->label, json_integer(s->value));
	}
	if (!ok) {
		json_decref(root);
		return NULL;
	}
	return root;
}

char *metrics_to_prometheus(const struct metrics *m)
{
	char *text = NULL;
	size_t size = 0;
	FILE *out;

	if (m->error)
		return NULL;
	out = open_memstream(&text, &size);
	if (!out)
		return NULL;
	for (size_t i = 0; i < m->count; i++) {
		const struct metric_sample *s = &m->samples[i];

		/* HELP and TYPE once, before a name's first sample: samples come grouped. */
		if (!i || strcmp(m->samples[i - 1].name, s->name))
			fprintf(out, "# HELP skiff_%s %s\n# TYPE skiff_%s %s\n", s->name, s->help,
				s->name, strstr(s->name, "_total") ? "counter" : "gauge");
		if (s->label_key)
			fprintf(out, "skiff_%s{%s=\"%s\"} %" PRIu64 "\n", s->name, s->label_key,
				s->label, s->value);
		else
			fprintf(out, "skiff_%s %" PRIu64 "\n", s->name, s->value);
	}
	if (fclose(out)) {
		free(text);
		return NULL;
	}
	return text;
}

int metrics_flush(const struct metrics_sink *sink, const struct metrics *m)
{
	json_t *line = metrics_to_json(m);
	struct timespec now;
	char *text;
	size_t len, off = 0;
	int ret = 0;

	if (!line)
		return -ENOMEM;
	clock_gettime(CLOCK_REALTIME, &now);
	json_object_set_new(line, "utc_timestamp_ms",
			    json_integer((json_int_t)now.tv_sec * 1000 + now.tv_nsec / 1000000));
	if (sink->properties)
		json_object_set(line, "properties", sink->properties);
	text = json_dumps(line, JSON_COMPACT);
	json_decref(line);
	if (!text)
		return -ENOMEM;
	len = strlen(text);
	text[len++] = '\n'; /* over the terminating NUL: the line goes out as one write */
	while (off < len) {
		ssize_t n = write(sink->fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		off += n;
	}
	free(text);
	return ret;
}
