/*
 * xe_batch.c - batch builders with the exact command encodings.
 */
#include "xe_batch.h"

#include <errno.h>

void xe_batch_init(struct xe_batch *b, uint32_t *dw, size_t cap) {
  b->dw = dw;
  b->cap = cap;
  b->len = 0;
  b->error = 0;
}

/* Reserves n dwords; NULL (and the sticky error) when they do not fit. */
static uint32_t *reserve(struct xe_batch *b, size_t n) {
  if (b->error) return NULL;
  if (b->cap - b->len < n) {
    b->error = -ENOSPC;
    return NULL;
  }
  uint32_t *p = b->dw + b->len;
  b->len += n;
  return p;
}

static int invalid(struct xe_batch *b) {
  if (!b->error) b->error = -EINVAL;
  return b->error;
}

int xe_batch_store_dword(struct xe_batch *b, uint64_t addr, uint32_t value) {
  if (addr & 3) return invalid(b);
  uint32_t *p = reserve(b, XE_STORE_DWORD_DWORDS);
  if (!p) return b->error;
  p[0] = XE_MI_STORE_DWORD_IMM_GEN4;
  p[1] = (uint32_t)addr;
  p[2] = (uint32_t)(addr >> 32);
  p[3] = value;
  return 0;
}

int xe_batch_atomic_inc(struct xe_batch *b, uint64_t addr) {
  if ((addr & 3) || (addr >> 48)) return invalid(b);
  uint32_t *p = reserve(b, XE_ATOMIC_INC_DWORDS);
  if (!p) return b->error;
  p[0] = XE_MI_ATOMIC | XE_MI_ATOMIC_INC;
  p[1] = (uint32_t)addr;
  p[2] = (uint32_t)(addr >> 32);
  return 0;
}

static size_t rows(uint64_t size) { return (size_t)((size + XE_MEM_ROW_MAX - 1) / XE_MEM_ROW_MAX); }

size_t xe_batch_mem_copy_dwords(uint64_t size) { return rows(size) * XE_MEM_COPY_DWORDS; }
size_t xe_batch_mem_set_dwords(uint64_t size) { return rows(size) * XE_MEM_SET_DWORDS; }

/* Checks that a row-split command over `size` bytes (needing `dwords` in
 * all) may be emitted: 0, or the sticky error. */
static int check_rows(struct xe_batch *b, uint64_t size, size_t dwords) {
  if (size == 0) return invalid(b);
  if (!b->error && b->cap - b->len < dwords) b->error = -ENOSPC;
  return b->error;
}

/* Bytes in the row starting at offset `off` of a `size`-byte span. */
static uint32_t row_width(uint64_t size, uint64_t off) {
  return size - off < XE_MEM_ROW_MAX ? (uint32_t)(size - off) : XE_MEM_ROW_MAX;
}

int xe_batch_mem_copy(struct xe_batch *b, uint64_t src, uint64_t dst, uint64_t size) {
  if (check_rows(b, size, xe_batch_mem_copy_dwords(size))) return b->error;
  for (uint64_t off = 0; off < size; off += XE_MEM_ROW_MAX) {
    uint32_t width = row_width(size, off);
    uint32_t *p = reserve(b, XE_MEM_COPY_DWORDS);
    p[0] = XE_MEM_COPY_CMD; /* copy_type linear, mode byte, no compression */
    p[1] = width - 1;
    p[2] = 0;         /* height - 1 */
    p[3] = width - 1; /* src pitch - 1 */
    p[4] = width - 1; /* dst pitch - 1 */
    p[5] = (uint32_t)(src + off);
    p[6] = (uint32_t)((src + off) >> 32);
    p[7] = (uint32_t)(dst + off);
    p[8] = (uint32_t)((dst + off) >> 32);
    p[9] = 0; /* src/dst MOCS: default */
  }
  return 0;
}

int xe_batch_mem_set(struct xe_batch *b, uint64_t dst, uint64_t size, uint8_t byte) {
  if (check_rows(b, size, xe_batch_mem_set_dwords(size))) return b->error;
  for (uint64_t off = 0; off < size; off += XE_MEM_ROW_MAX) {
    uint32_t width = row_width(size, off);
    uint32_t *p = reserve(b, XE_MEM_SET_DWORDS);
    p[0] = XE_MEM_SET_CMD; /* linear, byte fill */
    p[1] = width - 1;
    p[2] = 0;         /* height - 1 */
    p[3] = width - 1; /* pitch - 1 */
    p[4] = (uint32_t)(dst + off);
    p[5] = (uint32_t)((dst + off) >> 32);
    p[6] = (uint32_t)byte << 24; /* fill byte; MOCS 0 */
  }
  return 0;
}

int xe_batch_end(struct xe_batch *b) {
  uint32_t *p = reserve(b, 1);
  if (!p) return b->error;
  p[0] = XE_MI_BATCH_BUFFER_END;
  return 0;
}
