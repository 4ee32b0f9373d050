/*
 * xe_batch.h - batch buffers of the GPU commands SVM tests emit, with the
 * exact encodings of IGT's intel_gpu_commands.h / intel_reg.h:
 *
 *   MI_BATCH_BUFFER_END      0x05000000                    1 dword
 *   MI_STORE_DWORD_IMM_GEN4  0x10000002, lo, hi, value     4 dwords
 *   MI_ATOMIC | MI_ATOMIC_INC 0x17800501, lo, hi           3 dwords (32-bit
 *                            increment at a PPGTT address, no inline data)
 *   MEM_COPY (linear, byte)  0x56800008, width-1, height-1, src_pitch-1,
 *                            dst_pitch-1, src lo, src hi, dst lo, dst hi,
 *                            mocs                          10 dwords
 *   MEM_SET (linear, byte)   0x56C00005, width-1, height-1, pitch-1,
 *                            dst lo, dst hi, byte << 24 | mocs  7 dwords
 *
 * Addresses are GPU VAs (PPGTT; bit 22 "global GTT" clear). A MEM_COPY or
 * MEM_SET row is at most XE_MEM_ROW_MAX bytes (an 18-bit width field);
 * larger spans are split into one-row commands (height 1), which every
 * implementation of the command handles, at the price of more dwords.
 * IGT writes `addr << 32` into MEM_SET's high address dword (always 0 once
 * truncated); this builder writes the real high dword, as the hardware
 * field wants.
 *
 * A builder writes into caller-owned memory (for SVM tests: the test's own
 * malloc/mmap memory, executed from there). Errors are sticky: after the
 * first failing emit, later emits do nothing and return the same error.
 */
#ifndef XESVM_IGT_XE_BATCH_H_
#define XESVM_IGT_XE_BATCH_H_

#include <stddef.h>
#include <stdint.h>

#define XE_MI_INSTR(opcode, flags) (((uint32_t)(opcode) << 23) | (flags))
#define XE_MI_NOOP 0x00000000u
#define XE_MI_BATCH_BUFFER_END XE_MI_INSTR(0x0a, 0)
#define XE_MI_STORE_DWORD_IMM_GEN4 XE_MI_INSTR(0x20, 2)
#define XE_MI_ATOMIC XE_MI_INSTR(0x2f, 1)
#define XE_MI_ATOMIC_INC (0x5u << 8)
#define XE_BLT_INSTR(opcode, len) ((2u << 29) | ((uint32_t)(opcode) << 22) | (len))
#define XE_MEM_COPY_CMD XE_BLT_INSTR(0x5a, 8)
#define XE_MEM_SET_CMD XE_BLT_INSTR(0x5b, 5)
#define XE_MEM_ROW_MAX (1u << 18)

#define XE_STORE_DWORD_DWORDS 4
#define XE_ATOMIC_INC_DWORDS 3
#define XE_MEM_COPY_DWORDS 10
#define XE_MEM_SET_DWORDS 7

struct xe_batch {
  uint32_t *dw; /* caller-owned, cap dwords */
  size_t cap;
  size_t len; /* dwords written */
  int error;  /* 0, -ENOSPC (capacity) or -EINVAL (bad argument) */
};

/* Starts an empty batch over dw[0..cap). */
void xe_batch_init(struct xe_batch *b, uint32_t *dw, size_t cap);

/* Each returns 0 or the batch's sticky error. */
int xe_batch_store_dword(struct xe_batch *b, uint64_t addr, uint32_t value); /* REQUIRES addr % 4 == 0 */
int xe_batch_atomic_inc(struct xe_batch *b, uint64_t addr);                  /* REQUIRES addr % 4 == 0, addr < 2^48 */
int xe_batch_mem_copy(struct xe_batch *b, uint64_t src, uint64_t dst, uint64_t size);
int xe_batch_mem_set(struct xe_batch *b, uint64_t dst, uint64_t size, uint8_t byte);
int xe_batch_end(struct xe_batch *b);

/* Dwords xe_batch_mem_copy()/xe_batch_mem_set() emit for `size` bytes. */
size_t xe_batch_mem_copy_dwords(uint64_t size);
size_t xe_batch_mem_set_dwords(uint64_t size);

#endif /* XESVM_IGT_XE_BATCH_H_ */
