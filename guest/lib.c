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

/* A decimal or 0x-prefixed hexadecimal number; returns what follows it, or NULL if no digits. */
const char *parse_u64(const char *s, uint64_t *v)
{
	unsigned int base = 10, digit;
	const char *digits;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	*v = 0;
	for (digits = s;; s++) {
		if (*s >= '0' && *s <= '9')
			digit = *s - '0';
		else if (base == 16 && (*s | 0x20) >= 'a' && (*s | 0x20) <= 'f')
			digit = (*s | 0x20) - 'a' + 10;
		else
			break;
		*v = *v * base + digit;
	}
	return s == digits ? NULL : s;
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

static void put_hex(uint64_t v)
{
	char buf[16];
	int i = 0;

	do {
		buf[i++] = "0123456789abcdef"[v % 16];
		v /= 16;
	} while (v);
	while (i)
		serial_putc(buf[--i]);
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

/* Supports %s, %u, %lu, %x and %lx: all that the probe's protocol lines need. */
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
		case 'x':
			v = is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
			put_hex(v);
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
