/* The few libc pieces the probe needs: GCC may emit calls to the mem* functions itself. */
#include "probe.h"

void *memset(void *dst, int c, size_t n)
{
	uint8_t *d = dst;

	while (n--)
		*d++ = (uint8_t)c;
	return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;

	while (n--)
		*d++ = *s++;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;

	for (; n; n--, x++, y++) {
		if (*x != *y)
			return *x - *y;
	}
	return 0;
}

bool str_eq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

uint8_t checksum8(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (n--)
		sum += *b++;
	return sum;
}

static void put_str(const char *s)
{
	while (*s)
		serial_putc(*s++);
}

static void put_decimal(uint64_t v)
{
	char buf[20];
	int i = 0;

	do {
		buf[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i)
		serial_putc(buf[--i]);
}

/* Supports %s, %u and %lu: all that the probe's protocol lines need. */
void printk(const char *fmt, ...)
{
	va_list ap;
	bool is_long;
	uint64_t v;

	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			serial_putc(*fmt);
			continue;
		}
		is_long = fmt[1] == 'l';
		fmt += is_long ? 2 : 1;
		switch (*fmt) {
		case 's':
			put_str(va_arg(ap, const char *));
			break;
		case 'u':
			v = is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
			put_decimal(v);
			break;
		case '\0':
			va_end(ap);
			return;
		default:
			serial_putc(*fmt);
		}
	}
	va_end(ap);
}
