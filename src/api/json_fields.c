#include "json_fields.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int field_fail(struct field_error *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

bool field_in_list(const char *key, const char *const *list)
{
	for (; list && *list; list++)
		if (!strcmp(key, *list))
			return true;
	return false;
}

/* Every key of obj must be known; unsupported ones get their own message. */
int field_check_keys(const char *name, json_t *obj, const char *const *known,
		      const char *const *unsupported, struct field_error *err)
{
	const char *key;
	json_t *value;

	if (!json_is_object(obj))
		return field_fail(err, "%s: must be an object", name);
	json_object_foreach(obj, key, value) {
		if (field_in_list(key, unsupported))
			return field_fail(err, "%s: '%s' is not supported by skiff yet", name, key);
		if (!field_in_list(key, known))
			return field_fail(err, "%s: unknown field '%s'", name, key);
	}
	return 0;
}

/* A string field: required, or NULL when absent; -EINVAL when present but not a string. */
int field_string(const char *name, json_t *obj, const char *key, bool required,
		      const char **out, struct field_error *err)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v)
		return required ? field_fail(err, "%s: '%s' is required", name, key) : 0;
	if (!json_is_string(v) || !json_string_length(v) ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return field_fail(err, "%s: '%s' must be a non-empty string", name, key);
	*out = json_string_value(v);
	return 0;
}

int field_bool(const char *name, json_t *obj, const char *key, bool required, bool *out,
		    struct field_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return required ? field_fail(err, "%s: '%s' is required", name, key) : 0;
	if (!json_is_boolean(v))
		return field_fail(err, "%s: '%s' must be true or false", name, key);
	*out = json_is_true(v);
	return 0;
}

int field_int(const char *name, json_t *obj, const char *key, long long min,
		   long long max, long long *out, struct field_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return field_fail(err, "%s: '%s' is required", name, key);
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return field_fail(err, "%s: '%s' must be a whole number from %lld to %lld", name, key,
			    min, max);
	*out = json_integer_value(v);
	return 0;
}

/* A string field that, when present, must be one of choices; absent: index 0. */
int field_choice(const char *name, json_t *obj, const char *key,
		      const char *const *choices, unsigned *index, struct field_error *err)
{
	const char *value;
	int ret = field_string(name, obj, key, false, &value, err);

	*index = 0;
	if (ret || !value)
		return ret;
	for (unsigned i = 0; choices[i]; i++) {
		if (!strcmp(value, choices[i])) {
			*index = i;
			return 0;
		}
	}
	return field_fail(err, "%s: '%s' cannot be \"%s\"", name, key, value);
}

