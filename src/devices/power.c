#include "power.h"

#include "../arch/x86/layout.h"

#include <string.h>

#define SLP_EN		(1u << 5)
#define SLP_TYP(v)	(((v) >> 2) & 7)

/* opaque is a struct power_ctl. QEMU exits with (value << 1) | 1; skiff does the same. */
void debug_exit_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
		       bool is_write)
{
	uint32_t value = 0;

	(void)offset;
	if (!is_write) {
		memset(data, 0xff, len);
		return;
	}
	memcpy(&value, data, len < 4 ? len : 4);
	power_request(opaque, POWER_DEBUG_EXIT, ((value << 1) | 1) & 0xff);
}

/* ACPI 6.4 §4.8.3.7 (sleep control/status) and §4.8.3.6 (reset register). */
void acpi_pm_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	if (!is_write) {
		memset(data, 0, len); /* sleep status: never asleep, wake status clear */
		return;
	}
	if (offset == PORT_ACPI_SLEEP_CTL - PORT_ACPI_SLEEP_CTL && (data[0] & SLP_EN) &&
	    SLP_TYP(data[0]) == ACPI_S5_SLP_TYP)
		power_request(opaque, POWER_OFF, 0);
	else if (offset == PORT_ACPI_RESET - PORT_ACPI_SLEEP_CTL && data[0] == ACPI_RESET_VALUE)
		power_request(opaque, POWER_RESET, 0);
}
