/* The C API: a round trip through the device with byte checks, and errors
 * that carry a message. Prints "N passed, N failed". */
#include <stdio.h>
#include <string.h>

#include "xesvm/xesvm.h"

static int passed, failed;

/* Touches memory that is not SVM and ignores the error, as C code may. */
static void touch_foreign(uint64_t gid, uint64_t gsize, xesvm_accessor* acc, void* user) {
  uint32_t v = 1;
  (void)gsize;
  (void)gid;
  (void)xesvm_write(acc, (uint64_t)(uintptr_t)user, &v, sizeof v);
}
#define CHECK(cond)                                                                                    \
  do {                                                                                                 \
    if (cond) {                                                                                        \
      ++passed;                                                                                        \
    } else {                                                                                           \
      ++failed;                                                                                        \
      fprintf(stderr, "%s:%d: CHECK(%s) failed: %s\n", __FILE__, __LINE__, #cond, xesvm_last_error()); \
    }                                                                                                  \
  } while (0)

static void add_one(uint64_t gid, uint64_t gsize, xesvm_accessor* acc, void* user) {
  uint32_t* p = (uint32_t*)user;
  uint32_t v = 0;
  (void)gsize;
  xesvm_read(acc, (uint64_t)(uintptr_t)(p + gid), &v, sizeof v);
  v += 1;
  xesvm_write(acc, (uint64_t)(uintptr_t)(p + gid), &v, sizeof v);
}

int main(void) {
  xesvm_runtime* rt = NULL;
  CHECK(xesvm_open("sim:vram=16M,workers=2", &rt) == XESVM_OK);
  if (!rt) return 1;
  void* mem = NULL;
  const size_t n = 1u << 20;
  CHECK(xesvm_alloc_shared(rt, n * sizeof(uint32_t), 0, &mem) == XESVM_OK);
  uint32_t* p = (uint32_t*)mem;
  for (size_t i = 0; i < n; ++i) p[i] = (uint32_t)i;
  CHECK(xesvm_launch(rt, n, add_one, p) == XESVM_OK);
  uint64_t dev = 0;
  CHECK(xesvm_residency(rt, p, n * sizeof(uint32_t), &dev) == XESVM_OK && dev > 0);
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) bad += p[i] != (uint32_t)i + 1;
  CHECK(bad == 0);
  xesvm_stats s;
  CHECK(xesvm_get_stats(rt, &s) == XESVM_OK && s.gpu_faults > 0 && s.cpu_faults > 0);

  /* The counters appended after 0.1.0 are filled (0xff bytes would survive
   * otherwise), and the 0.1.0 entry point writes nothing past its layout. */
  memset(&s, 0xff, sizeof s);
  CHECK(xesvm_get_stats(rt, &s) == XESVM_OK);
  CHECK(s.pages_evict_skipped == 0 && s.cpu_mapping_lookups_in_eviction == 0);
  CHECK(s.link_bytes >= n * sizeof(uint32_t)); /* the buffer crossed the link to the device */
  CHECK(s.link_bytes != UINT64_MAX);
  xesvm_stats old;
  memset(&old, 0xff, sizeof old);
  CHECK((xesvm_get_stats)(rt, &old) == XESVM_OK);
  CHECK(old.gpu_faults == s.gpu_faults && old.modelled_device_ns != UINT64_MAX);
  CHECK(old.pages_evict_skipped == UINT64_MAX && old.cpu_mapping_lookups_in_eviction == UINT64_MAX &&
        old.link_bytes == UINT64_MAX);
  CHECK(xesvm_get_stats_sized(rt, &s, XESVM_STATS_SIZE_0_1_0 - 8) == XESVM_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(xesvm_last_error(), "expected sizeof(xesvm_stats)") != NULL);
  CHECK(xesvm_get_stats_sized(rt, &s, sizeof s + 4) == XESVM_ERROR_INVALID_ARGUMENT);

  /* Errors: a code and a message naming the problem. */
  void* none = NULL;
  CHECK(xesvm_alloc_shared(rt, 0, 0, &none) == XESVM_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(xesvm_last_error(), "size is 0") != NULL);
  CHECK(xesvm_free(rt, (void*)0x1000) == XESVM_ERROR_INVALID_ARGUMENT);
  xesvm_runtime* bad_rt = NULL;
  CHECK(xesvm_open("nonsense:", &bad_rt) == XESVM_ERROR_INVALID_ARGUMENT && bad_rt == NULL);
  CHECK(strstr(xesvm_last_error(), "unknown backend") != NULL);
  CHECK(xesvm_open("sim:vram=3M", &bad_rt) == XESVM_ERROR_INVALID_ARGUMENT);
  CHECK(xesvm_launch(rt, 1, NULL, NULL) == XESVM_ERROR_INVALID_ARGUMENT);
  /* A kernel whose device access failed fails the launch, with the reason. */
  static uint32_t foreign[1024];
  CHECK(xesvm_launch(rt, 4, touch_foreign, foreign) == XESVM_ERROR_DEVICE_LOST);
  CHECK(strstr(xesvm_last_error(), "not SVM memory") != NULL);
  CHECK(xesvm_launch(rt, n, add_one, p) == XESVM_OK && strcmp(xesvm_last_error(), "") == 0);
  CHECK(xesvm_prefetch(rt, p, 4096, (xesvm_location)9, NULL) == XESVM_ERROR_INVALID_ARGUMENT);

  /* Capabilities as values. */
  xesvm_capabilities caps;
  CHECK(xesvm_get_capabilities(rt, &caps) == XESVM_OK);
  CHECK(strcmp(caps.backend, "sim") == 0 && caps.has_engine && caps.engine_workers == 2 && caps.has_mechanism &&
        caps.host_kernels && caps.device_memory_bytes == (16u << 20));
  CHECK(xesvm_get_capabilities(rt, NULL) == XESVM_ERROR_INVALID_ARGUMENT);

  /* Discard of an alloc_shared pointer is refused; of a mirror, it ends it. */
  CHECK(xesvm_discard(rt, mem, n * sizeof(uint32_t)) == XESVM_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(xesvm_last_error(), "alloc_shared") != NULL);

  /* Device copy and fill with a completion; residency with its unknown part. */
  {
    void *a = NULL, *b = NULL;
    const size_t len = 1u << 20;
    CHECK(xesvm_alloc_shared(rt, len, 0, &a) == XESVM_OK && xesvm_alloc_shared(rt, len, 0, &b) == XESVM_OK);
    const uint16_t pat = 0xbeef;
    xesvm_completion* c = NULL;
    CHECK(xesvm_fill(rt, a, &pat, 2, len, &c) == XESVM_OK && c != NULL);
    CHECK(xesvm_completion_wait(c, -1) == XESVM_OK);
    xesvm_completion_destroy(c);
    c = NULL;
    CHECK(xesvm_copy(rt, b, a, len, &c) == XESVM_OK);
    CHECK(xesvm_completion_wait(c, 10000000000LL) == XESVM_OK);
    xesvm_completion_destroy(c);
    int wrong = 0;
    for (size_t i = 0; i < len / 2; ++i) wrong += ((const uint16_t*)b)[i] != pat;
    CHECK(wrong == 0);
    c = NULL;
    CHECK(xesvm_copy(rt, a, (char*)a + 8, 64, &c) == XESVM_ERROR_INVALID_ARGUMENT && c == NULL);
    CHECK(strstr(xesvm_last_error(), "overlap") != NULL);
    CHECK(xesvm_fill(rt, a, &pat, 3, 64, &c) == XESVM_ERROR_INVALID_ARGUMENT && c == NULL);
    uint64_t d = 1, sys = 1, unk = 1;
    CHECK(xesvm_residency_ex(rt, b, len, &d, &sys, &unk) == XESVM_OK && d + sys == len && unk == 0);
    CHECK(xesvm_free(rt, a) == XESVM_OK && xesvm_free(rt, b) == XESVM_OK);
  }

  CHECK(xesvm_free(rt, mem) == XESVM_OK);
  xesvm_close(rt);
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
