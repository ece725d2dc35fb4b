#include "dynlib.h"

#include "../log.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>

/* POSIX's dlsym() hands functions back as data pointers: the two must be the same size. */
_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "function pointers fit in void *");

static void clear_slots(const struct dynlib_symbol *symbols, size_t count)
{
	static void *const none;

	for (size_t i = 0; i < count; i++)
		memcpy(symbols[i].slot, &none, sizeof(none));
}

int dynlib_load(const char *soname, const char *needed_by, const struct dynlib_symbol *symbols,
		size_t count, void **handle)
{
	size_t soname_len = strlen(soname);
	const char *reason;
	void *lib;

	lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		/* glibc's message begins with the name itself; say it once. */
		reason = dlerror();
		if (!strncmp(reason, soname, soname_len) && !strncmp(reason + soname_len, ": ", 2))
			reason += soname_len + 2;
		log_error("%s: cannot load %s: %s", needed_by, soname, reason);
		clear_slots(symbols, count);
		return -ENOENT;
	}
	for (size_t i = 0; i < count; i++) {
		void *address = dlsym(lib, symbols[i].name);

		if (!address) {
			log_error("%s: %s lacks %s", needed_by, soname, symbols[i].name);
			clear_slots(symbols, count);
			dlclose(lib);
			return -ENOSYS;
		}
		/* As bytes: the slot may be a function pointer, which void * cannot alias. */
		memcpy(symbols[i].slot, &address, sizeof(address));
	}
	if (handle)
		*handle = lib;
	return 0;
}
