/*
 * Checked access to the fields of a JSON object, for the API's bodies and config files:
 * each getter either stores the value or fills a field_error naming the field at fault.
 */
#ifndef SKIFF_JSON_FIELDS_H
#define SKIFF_JSON_FIELDS_H

#include <jansson.h>
#include <stdbool.h>

/* One line naming the field at fault, for a log line or an API fault_message. */
struct field_error {
	char msg[256];
};

/* Fills err and returns -EINVAL. */
int field_fail(struct field_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Whether key is in the NULL-terminated list (a NULL list is empty). */
bool field_in_list(const char *key, const char *const *list);
/* obj (called name) must be an object whose keys are all in known; keys in unsupported get
 * a "not supported by skiff yet" message. */
int field_check_keys(const char *name, json_t *obj, const char *const *known,
		     const char *const *unsupported, struct field_error *err);
/* A non-empty string without NULs; *out is NULL when absent and not required. */
int field_string(const char *name, json_t *obj, const char *key, bool required,
		 const char **out, struct field_error *err);
/* *out is left alone when absent and not required. */
int field_bool(const char *name, json_t *obj, const char *key, bool required, bool *out,
	       struct field_error *err);
/* Required, whole, in [min, max]. */
int field_int(const char *name, json_t *obj, const char *key, long long min, long long max,
	      long long *out, struct field_error *err);
/* One of the NULL-terminated choices, stored as its index; absent: 0. */
int field_choice(const char *name, json_t *obj, const char *key, const char *const *choices,
		 unsigned *index, struct field_error *err);

#endif
