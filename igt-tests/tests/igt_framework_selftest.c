/*
 * igt_framework_selftest: proves that the blocks of igt_core_abi.h, linked
 * against the installed libigt.so.0, behave as IGT's protocol says: listing,
 * selection, result lines, exit codes, failing asserts that really stop the
 * subtest, dynamic subtests, fixture skips confined to a group, and failures
 * of igt_fork() children reaching the parent. It needs no device. The
 * ctest cases in igt-tests/CMakeLists.txt run it with one subtest selected
 * at a time and check its output and exit code.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "igt_core_abi.h"

/* Set by a subtest through a volatile path so the compiler cannot prove the
 * comparison in fail-assert-stops-subtest true or false. */
static volatile int one = 1;

int igt_main() {
  igt_subtest("pass") {
    igt_assert(one == 1);
    igt_assert_eq(one + 1, 2);
    igt_assert_eq_u64((uint64_t)one << 40, 1ull << 40);
    igt_info("pass: reached the end\n");
  }

  igt_subtest("skip-with-reason") {
    igt_require_f(one == 2, "the selftest skips here on purpose (%d != 2)\n", one);
    igt_info("skip-with-reason: unreachable after the skip\n");
  }

  igt_subtest("fail-assert-stops-subtest") {
    igt_assert_eq(one, 2);
    igt_info("fail-assert-stops-subtest: unreachable after the assert\n");
  }

  igt_subtest("fail-assert-u64") {
    uint64_t big = (uint64_t)one << 33;
    igt_assert_eq_u64(big, 1ull << 32);
  }

  igt_subtest("fork-children-pass") {
    igt_fork(child, 3) {
      igt_assert(child >= 0 && child < 3);
      igt_info("fork-children-pass: child %d of pid %d done\n", child, (int)getppid());
    }
    igt_waitchildren();
    igt_info("fork-children-pass: all children reaped\n");
  }

  igt_subtest("fork-child-fails") {
    igt_fork(child, 3) {
      /* Child 1 fails; its failure must fail this subtest in the parent. */
      igt_assert_f(child != 1, "child %d fails on purpose\n", child);
    }
    igt_waitchildren();
    igt_info("fork-child-fails: unreachable after a child failed\n");
  }

  igt_subtest_with_dynamic("dynamic-all-pass") {
    for (volatile int i = 0; i < 2; i++) {
      igt_dynamic_f("part-%d", i) { igt_assert(i < 2); }
    }
  }

  igt_subtest_with_dynamic("dynamic-one-fails") {
    igt_dynamic("good") { igt_assert(one == 1); }
    igt_dynamic("bad") { igt_assert(one == 0); }
  }

  igt_subtest_with_dynamic("dynamic-none-run") { /* No dynamic part entered: the container is a SKIP. */
  }

  /* A fixture that skips only skips the subtests of its own group. */
  igt_subtest_group() {
    igt_fixture() {
      const char *e = getenv("IGT_SELFTEST_FIXTURE_SKIP");
      igt_require_f(!e || strcmp(e, "1") != 0, "IGT_SELFTEST_FIXTURE_SKIP=1\n");
    }
    igt_subtest("group-a") { igt_assert(one); }
    igt_subtest("group-b") { igt_assert(one); }
  }

  igt_subtest("after-group") { igt_assert(one); }
}
