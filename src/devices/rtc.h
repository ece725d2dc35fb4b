/* The MC146818 CMOS clock at ports 0x70/0x71, reading the host's time (UTC). */
#ifndef SKIFF_RTC_H
#define SKIFF_RTC_H

#include "../state/state.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128]; /* status registers and NVRAM; the clock registers come from now() */
	time_t (*now)(void); /* time() in production, fixed in tests */
};

void rtc_init(struct rtc *rtc, time_t (*now)(void));
void rtc_destroy(struct rtc *rtc);
void rtc_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* Index and CMOS bytes (the clock itself follows the host), as a state section. */
void rtc_save(struct rtc *rtc, struct state_writer *w);
int rtc_load(struct rtc *rtc, struct state_reader *r);

#endif
