#include "rtc.h"

#include <errno.h>
#include <string.h>

#define REG_SECONDS	0x00
#define REG_MINUTES	0x02
#define REG_HOURS	0x04
#define REG_WEEKDAY	0x06
#define REG_DAY		0x07
#define REG_MONTH	0x08
#define REG_YEAR	0x09
#define REG_A		0x0a
#define REG_B		0x0b
#define REG_C		0x0c
#define REG_D		0x0d
#define REG_CENTURY	0x32
#define B_24H		0x02
#define B_BINARY	0x04
#define D_VALID		0x80
#define INDEX_MASK	0x7f /* bit 7 is the NMI mask, which has nothing to mask here */

static time_t host_time(void)
{
	return time(NULL);
}

void rtc_init(struct rtc *rtc, time_t (*now)(void))
{
	memset(rtc, 0, sizeof(*rtc));
	pthread_mutex_init(&rtc->lock, NULL);
	rtc->now = now ? now : host_time;
	rtc->cmos[REG_A] = 0x26; /* 32.768 kHz base, 1024 Hz rate, no update in progress */
	rtc->cmos[REG_B] = B_24H;
	rtc->cmos[REG_D] = D_VALID;
}

void rtc_destroy(struct rtc *rtc)
{
	pthread_mutex_destroy(&rtc->lock);
}

static uint8_t encode(const struct rtc *rtc, int v)
{
	return (rtc->cmos[REG_B] & B_BINARY) ? v : ((v / 10) << 4) | (v % 10);
}

static uint8_t read_clock(const struct rtc *rtc, uint8_t reg)
{
	time_t t = rtc->now();
	struct tm tm;

	gmtime_r(&t, &tm);
	switch (reg) {
	case REG_SECONDS:
		return encode(rtc, tm.tm_sec);
	case REG_MINUTES:
		return encode(rtc, tm.tm_min);
	case REG_HOURS:
		return encode(rtc, tm.tm_hour); /* 24-hour mode is the only one offered */
	case REG_WEEKDAY:
		return encode(rtc, tm.tm_wday + 1);
	case REG_DAY:
		return encode(rtc, tm.tm_mday);
	case REG_MONTH:
		return encode(rtc, tm.tm_mon + 1);
	case REG_YEAR:
		return encode(rtc, tm.tm_year % 100);
	default: /* REG_CENTURY */
		return encode(rtc, 19 + tm.tm_year / 100);
	}
}

static bool is_clock(uint8_t reg)
{
	return reg <= REG_YEAR || reg == REG_CENTURY;
}

void rtc_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rtc *rtc = opaque;

	pthread_mutex_lock(&rtc->lock);
	if (is_write) {
		if (offset == 0) {
			rtc->index = data[0] & INDEX_MASK;
		} else if (rtc->index == REG_B) {
			rtc->cmos[REG_B] = (data[0] & B_BINARY) | B_24H;
		} else if (!is_clock(rtc->index) && rtc->index > REG_D) {
			rtc->cmos[rtc->index] = data[0]; /* NVRAM; the clock follows the host */
		}
	} else {
		memset(data, 0, len);
		if (offset == 0)
			data[0] = 0xff;
		else if (is_clock(rtc->index))
			data[0] = read_clock(rtc, rtc->index);
		else
			data[0] = rtc->cmos[rtc->index];
	}
	pthread_mutex_unlock(&rtc->lock);
}

void rtc_save(struct rtc *rtc, struct state_writer *w)
{
	pthread_mutex_lock(&rtc->lock);
	state_begin(w, "CMOS", 1);
	state_put_u8(w, rtc->index);
	state_put_bytes(w, rtc->cmos, sizeof(rtc->cmos));
	state_end(w);
	pthread_mutex_unlock(&rtc->lock);
}

int rtc_load(struct rtc *rtc, struct state_reader *r)
{
	uint8_t index, cmos[sizeof(rtc->cmos)];

	if (state_open(r, "CMOS") != 1)
		return -EINVAL;
	index = state_get_u8(r);
	state_get_bytes(r, cmos, sizeof(cmos));
	if (state_close(r) || index > INDEX_MASK)
		return -EINVAL;
	pthread_mutex_lock(&rtc->lock);
	rtc->index = index;
	memcpy(rtc->cmos, cmos, sizeof(cmos));
	pthread_mutex_unlock(&rtc->lock);
	return 0;
}
