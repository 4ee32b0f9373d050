/*
 * xe_exec_queue.h - exec queues: a submission queue on one engine of a VM.
 * Execs on one queue complete in submission order.
 */
#ifndef XESVM_IGT_XE_EXEC_QUEUE_H_
#define XESVM_IGT_XE_EXEC_QUEUE_H_

#include <stdint.h>

#include "xe_uapi.h"

/* Creates a width-1 queue on engine `eci` of vm_id; id to *exec_queue_id.
 * Returns 0 or the ioctl's -errno. */
int xe_exec_queue_create(int fd, uint32_t vm_id, const struct drm_xe_engine_class_instance *eci,
                         uint32_t *exec_queue_id);
int xe_exec_queue_destroy(int fd, uint32_t exec_queue_id);

#endif /* XESVM_IGT_XE_EXEC_QUEUE_H_ */
