/*
 * Shared libraries loaded on first use. Each library linked into skiff costs every start its
 * loading, so ones that only some commands or options need are opened when first needed.
 */
#ifndef SKIFF_DYNLIB_H
#define SKIFF_DYNLIB_H

#include <stddef.h>

/* A symbol to resolve, and where its address goes: a data or a function pointer. */
struct dynlib_symbol {
	const char *name;
	void *slot;
};

/*
 * Opens soname and stores each symbol's address in its slot. On failure logs one line,
 * "NEEDED_BY: cannot load SONAME: reason" or "NEEDED_BY: SONAME lacks NAME", where
 * NEEDED_BY names what wanted the library (an option, a command); then clears every slot
 * and returns -ENOENT (no such library) or -ENOSYS (a symbol missing). On success, *handle
 * (when handle is not NULL) is the dlopen() handle; with a NULL handle the library stays
 * loaded for the life of the process.
 */
int dynlib_load(const char *soname, const char *needed_by, const struct dynlib_symbol *symbols,
		size_t count, void **handle);

#endif
