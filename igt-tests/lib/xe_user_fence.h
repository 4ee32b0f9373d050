/*
 * xe_user_fence.h - user fences: a u64 in the caller's memory that the
 * device writes with a chosen value when a bind or an exec completes, and
 * DRM_IOCTL_XE_WAIT_USER_FENCE, which sleeps until it holds that value.
 *
 * On a VM in LR mode (every SVM VM) user fences are the only completion
 * signal an exec may carry. An exec's fence is written by the device
 * through the VM (a GPU VA; with the CPU address mirror that equals the CPU
 * address); a bind's fence is written to the caller's CPU address.
 */
#ifndef XESVM_IGT_XE_USER_FENCE_H_
#define XESVM_IGT_XE_USER_FENCE_H_

#include <stdint.h>

#include "xe_uapi.h"

/* The value IGT's Xe tests signal with. */
#define XE_USER_FENCE_VALUE 0xdeadbeefdeadbeefull

#define XE_NSEC_PER_SEC 1000000000ll
#define XE_FIVE_SEC (5 * XE_NSEC_PER_SEC)
#define XE_QUARTER_SEC (XE_NSEC_PER_SEC / 4)

/* A signalling user-fence sync writing `value` to `addr`.
 * REQUIRES: addr is 8-byte aligned. */
struct drm_xe_sync xe_user_fence_sync(uint64_t *addr, uint64_t value);

/* Waits until *addr == value (all 64 bits), for at most timeout_ns
 * (relative; negative waits forever). exec_queue_id 0 waits on the address
 * alone; a queue id makes the wait fail early with -EIO if that queue is
 * reset or banned. Returns 0, -ETIME on timeout, -EIO, or another -errno
 * from the ioctl (-EINVAL for a misaligned address). */
int xe_wait_user_fence(int fd, uint64_t *addr, uint64_t value, uint32_t exec_queue_id, int64_t timeout_ns);

#endif /* XESVM_IGT_XE_USER_FENCE_H_ */
