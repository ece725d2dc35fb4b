/*
 * A minimal unit-test harness: each TEST is a function; CHECK records a failure and goes on.
 * A test binary prints "PASS name" or "FAIL name: file:line: expression" per test and exits
 * non-zero if any failed; tests/run counts the lines.
 */
#ifndef SKIFF_TEST_H
#define SKIFF_TEST_H

#include <stdio.h>
#include <stdlib.h>

#include "../../src/log.h"

struct test_case {
	const char *name;
	void (*fn)(void);
};

extern int test_failed_checks;

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			printf("  check failed: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			test_failed_checks++;                                            \
		}                                                                        \
	} while (0)

#define TEST(name) static void name(void)

int test_main(const struct test_case *cases, size_t count);

#define TEST_MAIN(...)                                                                   \
	int test_failed_checks;                                                          \
	int test_main(const struct test_case *cases, size_t count)                       \
	{                                                                                \
		int failed = 0;                                                          \
		for (size_t i = 0; i < count; i++) {                                     \
			test_failed_checks = 0;                                          \
			cases[i].fn();                                                   \
			printf("%s %s\n", test_failed_checks ? "FAIL" : "PASS", cases[i].name); \
			failed += test_failed_checks != 0;                               \
		}                                                                        \
		return failed ? 1 : 0;                                                   \
	}                                                                                \
	int main(void)                                                                   \
	{                                                                                \
		static const struct test_case cases[] = { __VA_ARGS__ };                \
		log_set_level(LOG_OFF);                                                  \
		return test_main(cases, sizeof(cases) / sizeof(cases[0]));              \
	}

#define T(fn) { #fn, fn }

#endif
