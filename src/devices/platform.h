/* What a device may ask of the machine around it, so devices never see struct vm. */
#ifndef SKIFF_PLATFORM_H
#define SKIFF_PLATFORM_H

#include <stdbool.h>

/* An interrupt line into the interrupt controller. */
struct irq_line {
	void (*set)(void *opaque, unsigned pin, bool level);
	void *opaque;
	unsigned pin;
};

static inline void irq_line_set(const struct irq_line *line, bool level)
{
	if (line->set)
		line->set(line->opaque, line->pin, level);
}

enum power_event {
	POWER_RESET,	  /* i8042 reset line, ACPI reset register */
	POWER_OFF,	  /* ACPI S5 */
	POWER_DEBUG_EXIT, /* isa-debug-exit: status carries the guest's value */
};

/* Ends the machine; the first request wins. */
struct power_ctl {
	void (*request)(void *opaque, enum power_event event, int status);
	void *opaque;
};

static inline void power_request(const struct power_ctl *ctl, enum power_event event,
				 int status)
{
	ctl->request(ctl->opaque, event, status);
}

#endif
