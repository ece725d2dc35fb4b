#include "test.h"

#include "../../src/util/dynlib.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* Runs dynlib_load with errors logged into a buffer, as a user would see them. */
static int load_logged(const char *soname, const struct dynlib_symbol *symbols, size_t count,
		       void **handle, char *log, size_t size)
{
	FILE *err = tmpfile();
	int saved = dup(STDERR_FILENO), ret;
	size_t n;

	dup2(fileno(err), STDERR_FILENO);
	log_set_level(LOG_ERROR);
	ret = dynlib_load(soname, "test", symbols, count, handle);
	log_set_level(LOG_OFF);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(err);
	n = fread(log, 1, size - 1, err);
	log[n] = '\0';
	fclose(err);
	return ret;
}

TEST(resolves_functions)
{
	size_t (*length)(const char *) = NULL;
	int (*compare)(const char *, const char *) = NULL;
	const struct dynlib_symbol symbols[] = { { "strlen", &length }, { "strcmp", &compare } };
	void *handle = NULL;
	char log[256];

	CHECK(load_logged("libc.so.6", symbols, 2, &handle, log, sizeof(log)) == 0);
	CHECK(handle && log[0] == '\0');
	CHECK(length && length("skiff") == 5);
	CHECK(compare && compare("a", "a") == 0);
}

TEST(missing_library)
{
	static const char prefix[] = "skiff: test: cannot load libskiff-none.so.9: ";
	void *slot = (void *)1, *handle = NULL;
	const struct dynlib_symbol symbols[] = { { "f", &slot } };
	char log[256];

	CHECK(load_logged("libskiff-none.so.9", symbols, 1, &handle, log, sizeof(log)) == -ENOENT);
	CHECK(!slot && !handle);
	/* One line, and the library's name said once. */
	CHECK(!strncmp(log, prefix, strlen(prefix)));
	CHECK(strchr(log, '\n') == log + strlen(log) - 1);
	CHECK(!strstr(log + strlen(prefix), "libskiff-none.so.9"));
}

TEST(missing_symbol)
{
	void *first = NULL, *second = (void *)1;
	const struct dynlib_symbol symbols[] = { { "strlen", &first },
						 { "skiff_no_such_function", &second } };
	char log[256];

	CHECK(load_logged("libc.so.6", symbols, 2, NULL, log, sizeof(log)) == -ENOSYS);
	CHECK(!first && !second);
	CHECK(!strcmp(log, "skiff: test: libc.so.6 lacks skiff_no_such_function\n"));
}

TEST_MAIN(T(resolves_functions), T(missing_library), T(missing_symbol))
