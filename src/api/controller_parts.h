/* What the controller's files (controller*.c) share; not for anyone else. */
#ifndef SKIFF_CONTROLLER_PARTS_H
#define SKIFF_CONTROLLER_PARTS_H

#include "controller.h"

#include <stdint.h>
#include <time.h>

extern const char *const controller_op_names[API_OPS];

uint64_t controller_elapsed_us(struct timespec from);
/* The command line's devices and options, less what the configuration document describes. */
struct vm_config controller_undescribed(const struct controller *ctl);

/* controller_snapshot.c */
void controller_create_snapshot(struct controller *ctl, struct api_request *req,
				struct api_response *resp);
void controller_load_snapshot(struct controller *ctl, struct api_request *req,
			      struct api_response *resp);

/* controller_metrics.c */
void controller_set_metrics(struct controller *ctl, struct api_request *req,
			    struct api_response *resp);
void controller_flush_metrics(struct controller *ctl, struct api_response *resp);
void controller_get_metrics(struct controller *ctl, struct api_response *resp);

#endif
