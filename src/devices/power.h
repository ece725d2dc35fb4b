/*
 * The ways a guest ends the machine through ports: QEMU's isa-debug-exit (a 4-byte port
 * at 0xf4) and the ACPI hardware-reduced sleep control and reset registers that skiff's
 * FADT points at.
 */
#ifndef SKIFF_POWER_H
#define SKIFF_POWER_H

#include "platform.h"

#include <stdbool.h>
#include <stdint.h>

#define ACPI_PM_PORTS 3 /* sleep control, sleep status, reset */

void debug_exit_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
		       bool is_write);
void acpi_pm_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
