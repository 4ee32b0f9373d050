/* Out-of-tree C consumer: the C API, a kernel that adds 1 to every word. */
#include <stdint.h>
#include <stdio.h>
#include <xesvm/xesvm.h>

static void add_one(uint64_t id, uint64_t size, xesvm_accessor* acc, void* user) {
  (void)size;
  uint32_t* a = (uint32_t*)user;
  uint32_t v;
  if (xesvm_read(acc, (uint64_t)(uintptr_t)(a + id), &v, sizeof v) == XESVM_OK) {
    v += 1;
    xesvm_write(acc, (uint64_t)(uintptr_t)(a + id), &v, sizeof v);
  }
}

int main(void) {
  xesvm_runtime* rt = NULL;
  void* p = NULL;
  const uint64_t n = 1u << 18;
  if (xesvm_open("sim:vram=16M,workers=2", &rt) != XESVM_OK || xesvm_alloc_shared(rt, n * 4, 0, &p) != XESVM_OK) {
    printf("consumer_c: FAILED: %s\n", xesvm_last_error());
    return 1;
  }
  uint32_t* a = (uint32_t*)p;
  for (uint64_t i = 0; i < n; ++i) a[i] = (uint32_t)i;
  if (xesvm_launch(rt, n, add_one, a) != XESVM_OK) {
    printf("consumer_c: FAILED: launch: %s\n", xesvm_last_error());
    return 1;
  }
  uint64_t bad = 0;
  for (uint64_t i = 0; i < n; ++i) bad += a[i] != (uint32_t)i + 1;
  xesvm_free(rt, p);
  xesvm_close(rt);
  if (bad) {
    printf("consumer_c: FAILED: %llu wrong words\n", (unsigned long long)bad);
    return 1;
  }
  printf("consumer_c: ok\n");
  return 0;
}
