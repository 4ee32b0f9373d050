/*
 * xe_exec.h - EXEC: run one batch buffer at a GPU VA on an exec queue.
 *
 * The batch is fetched through the queue's VM, so with the CPU address
 * mirror it may live in plain malloc/mmap memory at its CPU address. The
 * ioctl returns once the job is queued; completion is a user fence.
 */
#ifndef XESVM_IGT_XE_EXEC_H_
#define XESVM_IGT_XE_EXEC_H_

#include <stdint.h>

#include "xe_uapi.h"

/* Submits the batch at batch_addr with the given syncs (num_syncs may be
 * 0). Returns 0 or the ioctl's -errno. The batch address is not checked at
 * submission: a bad one shows as a fence that never signals. */
int xe_exec(int fd, uint32_t exec_queue_id, uint64_t batch_addr, struct drm_xe_sync *syncs, uint32_t num_syncs);

/* xe_exec() with one user fence: `value` is written to *fence after the
 * batch. REQUIRES: fence 8-byte aligned and reachable through the VM. */
int xe_exec_with_user_fence(int fd, uint32_t exec_queue_id, uint64_t batch_addr, uint64_t *fence, uint64_t value);

#endif /* XESVM_IGT_XE_EXEC_H_ */
