/*
 * igt_runner_selftest: an IGT program whose subtests misbehave on purpose,
 * for proving that scripts/guest-suite.sh's batch mode (one process for
 * all of a program's subtests) reports each misbehaviour and goes on with
 * the subtests after it: a subtest killed by a signal (abort(): the
 * process dies), one that segfaults (IGT catches SIGSEGV, prints a CRASH
 * result line and runs on), one that exits without a result line, and one
 * that runs past the suite's per-subtest timeout. It needs no device; the suite runs it on the host
 * only when IGT_PROGRAMS names it (the ctest case
 * igt.SuiteRunnerReportsCrashAndTimeoutAndGoesOn), never by default.
 *
 * The subtest `hang-past-timeout` sleeps IGT_RUNNER_SELFTEST_HANG seconds
 * (default 600), far past the timeout the ctest case gives the suite.
 */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "igt_core_abi.h"

static volatile int one = 1;

int igt_main() {
  igt_subtest("pass-first") igt_assert(one == 1);

  igt_subtest("abort-in-subtest") {
    igt_info("abort-in-subtest: aborting on purpose\n");
    abort();
  }

  igt_subtest("pass-after-abort") igt_assert(one == 1);

  igt_subtest("segfault-in-subtest") {
    igt_info("segfault-in-subtest: writing through a null pointer on purpose\n");
    *(volatile int *)(uintptr_t)(one - 1) = 1;
  }

  igt_subtest("pass-after-segfault") igt_assert(one == 1);

  igt_subtest("exit-without-result") {
    igt_info("exit-without-result: exiting with status 3 on purpose\n");
    _exit(3);
  }

  igt_subtest("pass-after-exit") igt_assert(one == 1);

  igt_subtest("hang-past-timeout") {
    const char *e = getenv("IGT_RUNNER_SELFTEST_HANG");
    unsigned secs = e ? (unsigned)atoi(e) : 600;
    igt_info("hang-past-timeout: sleeping %u s on purpose\n", secs);
    sleep(secs);
  }

  igt_subtest("pass-after-hang") igt_assert(one == 1);

  igt_subtest("fail-last") igt_assert_eq(one, 2);
}
