/*
 * igt_core_abi.h - the IGT test framework, as exported by Debian's
 * libigt.so.0 (intel-gpu-tools 1.27.1), declared without IGT's headers.
 *
 * Debian ships the library but no headers. This file declares the exported
 * functions and the two jump buffers the framework's control-flow blocks
 * are built on (ABI facts: names, argument lists, the 200-byte glibc x86-64
 * jmp_buf), and defines the blocks tests are written with:
 *
 *   int igt_main() {                      // main(): option parsing, igt_exit()
 *     igt_fixture() { ... }              // setup; skipped while listing
 *     igt_subtest("name") { ... }        // one subtest; SUCCESS/SKIP/FAIL
 *     igt_subtest_f("fmt-%d", i) { ... }
 *     igt_subtest_with_dynamic("name") {
 *       igt_dynamic("part") { ... }      // one dynamic part
 *     }
 *     igt_subtest_group() { ... }        // fixture skips stay inside
 *   }
 *
 * How a block works: the subtest body runs after sigsetjmp() on
 * igt_subtest_jmpbuf returned 0; igt_skip(), igt_fail() and a failing
 * igt_assert*() siglongjmp() back to it, and the library records the
 * result and prints "Subtest NAME: RESULT (t)". Nothing is unwound on the
 * way: a subtest body must not rely on automatic variables it modified
 * after the block was entered unless they are volatile, and it must not
 * hold resources it cannot release from a later fixture (write tests in C).
 *
 * Command line (library-handled): --list-subtests, --run-subtest PATTERN,
 * --dynamic-subtest PATTERN, --describe, --debug, --help. Exit codes
 * (IGT_EXIT_*): 0 at least one subtest passed and none failed, 77 all
 * selected subtests skipped, 98 a failure, 79 an invalid option or an
 * unknown --run-subtest, 112 abort.
 *
 * Concurrency: the framework is single-threaded. igt_assert*() and
 * igt_skip() may only be called from the test's main thread or from an
 * igt_fork() child; a child that fails exits with the failure code and
 * igt_waitchildren() turns that into a failure of the parent's subtest.
 *
 * ABI stability: libigt.so.0 has no symbol versions and promises no ABI.
 * The names and signatures below are those of 1.27.1 and are unchanged in
 * upstream IGT up to late 2025; tests/igt_framework_selftest.c proves they
 * behave as documented here against the installed library.
 */
#ifndef XESVM_IGT_CORE_ABI_H_
#define XESVM_IGT_CORE_ABI_H_

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef __cplusplus
#error "IGT tests unwind with siglongjmp: write them in C"
#endif

#define IGT_EXIT_SUCCESS 0
#define IGT_EXIT_SKIP 77
#define IGT_EXIT_INVALID 79
#define IGT_EXIT_FAILURE 98
#define IGT_EXIT_ABORT 112

#ifndef IGT_LOG_DOMAIN
#define IGT_LOG_DOMAIN (NULL)
#endif

/* The jump buffers the subtest and dynamic-subtest blocks return to. */
extern jmp_buf igt_subtest_jmpbuf;
extern jmp_buf igt_dynamic_jmpbuf;
_Static_assert(sizeof(jmp_buf) == 200, "libigt.so.0 exports 200-byte jmp_buf objects (glibc x86-64)");

/* Option handler for extra test options: returns 0, or -2 on a bad value. */
typedef int (*igt_opt_handler_t)(int opt, int opt_index, void *data);
struct option;

/* Parses the command line (library options plus the extra ones), prints
 * the IGT-Version line unless listing. Returns 0 (exits on --help). */
int igt_subtest_init_parse_opts(int *argc, char **argv, const char *extra_short_opts,
                                const struct option *extra_long_opts, const char *help_str,
                                igt_opt_handler_t extra_opt_handler, void *handler_data);
/* Prints the summary and exits with the IGT_EXIT_* code of the run. */
__attribute__((noreturn)) void igt_exit(void);

/* Block entry/exit hooks used by the macros below. */
bool __igt_fixture(void);
void __igt_fixture_complete(void);
__attribute__((noreturn)) void __igt_fixture_end(void);
bool __igt_run_subtest(const char *subtest_name, const char *file, const int line);
bool __igt_enter_dynamic_container(void);
bool __igt_run_dynamic_subtest(const char *dynamic_subtest_name);
void __igt_subtest_group_save(int *save, int *desc);
void __igt_subtest_group_restore(int save, int desc);

/* Current subtest name, or NULL outside a subtest. */
const char *igt_subtest_name(void);
/* True when the binary was started with --list-subtests. */
bool igt_only_list_subtests(void);
/* The test binary's name. */
const char *igt_test_name(void);

/* Results. All but igt_success() leave the block through the jump buffer. */
void igt_success(void);
__attribute__((noreturn, format(printf, 1, 2))) void igt_skip(const char *f, ...);
__attribute__((noreturn, format(printf, 5, 6))) void __igt_skip_check(const char *file, const int line,
                                                                      const char *func, const char *check,
                                                                      const char *format, ...);
__attribute__((noreturn)) void igt_fail(int exitcode);
__attribute__((noreturn, format(printf, 6, 7))) void __igt_fail_assert(const char *domain, const char *file,
                                                                       const int line, const char *func,
                                                                       const char *assertion, const char *format, ...);
bool igt_can_fail(void);

/* Logging. Levels DEBUG=0 (printed with --debug), INFO, WARN, CRITICAL. */
enum igt_log_level { IGT_LOG_DEBUG, IGT_LOG_INFO, IGT_LOG_WARN, IGT_LOG_CRITICAL, IGT_LOG_NONE };
_Static_assert(sizeof(enum igt_log_level) == 4, "libigt.so.0 exports a 4-byte igt_log_level");
extern enum igt_log_level igt_log_level;
__attribute__((format(printf, 3, 4))) void igt_log(const char *domain, enum igt_log_level level, const char *format,
                                                   ...);
__attribute__((format(printf, 3, 0))) void igt_vlog(const char *domain, enum igt_log_level level, const char *format,
                                                    va_list args);
__attribute__((format(printf, 1, 2))) void igt_describe_f(const char *fmt, ...);

/* Children. __igt_fork() returns true in the child (and in the parent's
 * loop never), igt_waitchildren() reaps them and fails the subtest if any
 * child failed. */
bool __igt_fork(void);
int __igt_waitchildren(void);
void igt_waitchildren(void);
void igt_waitchildren_timeout(int seconds, const char *reason);
void igt_kill_children(int signal);

/* Helpers. igt_nsec_elapsed(): ns since *start (set on the first call
 * when zeroed). igt_get_avail_ram_mb(): MemAvailable plus swap budget. */
uint64_t igt_nsec_elapsed(struct timespec *start);
uint64_t igt_get_avail_ram_mb(void);
typedef void (*igt_exit_handler_t)(int sig);
void igt_install_exit_handler(igt_exit_handler_t fn);

/* ---- control-flow blocks ---------------------------------------------- */

#define igt_tokencat_(x, y) x##y
#define igt_tokencat(x, y) igt_tokencat_(x, y)
#define igt_unique(prefix) igt_tokencat(igt_tokencat(igt_unique_, prefix), __LINE__)

/* `int igt_main() { body }` defines main(). */
#define igt_main_args(short_opts, long_opts, help_str, opt_handler, handler_data)                         \
  main(int argc, char **argv);                                                                            \
  static void igt_unique(igt_real_main)(void);                                                            \
  int main(int argc, char **argv) {                                                                       \
    igt_subtest_init_parse_opts(&argc, argv, short_opts, long_opts, help_str, opt_handler, handler_data); \
    igt_unique(igt_real_main)();                                                                          \
    igt_exit();                                                                                           \
  }                                                                                                       \
  static void igt_unique(igt_real_main)(void)
#define igt_main() igt_main_args(NULL, NULL, NULL, NULL, NULL)

#define igt_fixture()                                                                            \
  for (volatile int igt_unique(fixture_once) = 0;                                                \
       igt_unique(fixture_once) < 1 && __igt_fixture() && sigsetjmp(igt_subtest_jmpbuf, 1) == 0; \
       igt_unique(fixture_once)++, __igt_fixture_complete())

#define igt_subtest(name) \
  for (; __igt_run_subtest((name), __FILE__, __LINE__) && sigsetjmp(igt_subtest_jmpbuf, 1) == 0; igt_success())

#define igt_subtest_f_(tmp, ...)                                                                           \
  for (char tmp[256]; snprintf(tmp, sizeof(tmp), __VA_ARGS__),                                             \
                      __igt_run_subtest(tmp, __FILE__, __LINE__) && sigsetjmp(igt_subtest_jmpbuf, 1) == 0; \
       igt_success())
#define igt_subtest_f(...) igt_subtest_f_(igt_unique(subtest_name), __VA_ARGS__)

#define igt_subtest_with_dynamic(name)                                                       \
  for (; __igt_run_subtest((name), __FILE__, __LINE__) && __igt_enter_dynamic_container() && \
         sigsetjmp(igt_subtest_jmpbuf, 1) == 0;                                              \
       igt_success())

#define igt_dynamic(name) \
  for (; __igt_run_dynamic_subtest((name)) && sigsetjmp(igt_dynamic_jmpbuf, 1) == 0; igt_success())
#define igt_dynamic_f_(tmp, ...)                                                               \
  for (char tmp[256]; snprintf(tmp, sizeof(tmp), __VA_ARGS__),                                 \
                      __igt_run_dynamic_subtest(tmp) && sigsetjmp(igt_dynamic_jmpbuf, 1) == 0; \
       igt_success())
#define igt_dynamic_f(...) igt_dynamic_f_(igt_unique(dynamic_name), __VA_ARGS__)

/* s[0], s[1]: the saved group state; s[2]: the one-shot flag. An array
 * whose address escapes stays in memory across the blocks' sigsetjmp. */
#define igt_subtest_group()                                                                                        \
  for (int igt_unique(group)[3] = {0, 0, 0};                                                                       \
       igt_unique(group)[2] < 1 && (__igt_subtest_group_save(&igt_unique(group)[0], &igt_unique(group)[1]), true); \
       igt_unique(group)[2]++, __igt_subtest_group_restore(igt_unique(group)[0], igt_unique(group)[1]))

#define igt_describe(dsc) igt_describe_f("%s", dsc)

/* ---- assertions and requirements --------------------------------------- */

#define igt_assert(expr)                                                                       \
  do {                                                                                         \
    if (!(expr)) __igt_fail_assert(IGT_LOG_DOMAIN, __FILE__, __LINE__, __func__, #expr, NULL); \
  } while (0)
#define igt_assert_f(expr, ...)                                                                       \
  do {                                                                                                \
    if (!(expr)) __igt_fail_assert(IGT_LOG_DOMAIN, __FILE__, __LINE__, __func__, #expr, __VA_ARGS__); \
  } while (0)
#define igt_fail_on(expr) igt_assert(!(expr))
#define igt_fail_on_f(expr, ...) igt_assert_f(!(expr), __VA_ARGS__)

/* Typed comparisons: both sides are evaluated once into typed locals and
 * printed on failure. */
#define igt_assert_cmp_(type, fmt, cast, n1, cmp, ncmp, n2)                                  \
  do {                                                                                       \
    type igt_n1_ = (n1), igt_n2_ = (n2);                                                     \
    if (!(igt_n1_ cmp igt_n2_))                                                              \
      __igt_fail_assert(IGT_LOG_DOMAIN, __FILE__, __LINE__, __func__, #n1 " " #cmp " " #n2,  \
                        "error: " fmt " " #ncmp " " fmt "\n", (cast)igt_n1_, (cast)igt_n2_); \
  } while (0)
#define igt_assert_cmpint(n1, cmp, ncmp, n2) igt_assert_cmp_(int, "%d", int, n1, cmp, ncmp, n2)
#define igt_assert_cmpuint(n1, cmp, ncmp, n2) igt_assert_cmp_(uint32_t, "%#x", unsigned, n1, cmp, ncmp, n2)
#define igt_assert_cmps64(n1, cmp, ncmp, n2) igt_assert_cmp_(int64_t, "%lld", long long, n1, cmp, ncmp, n2)
#define igt_assert_cmpu64(n1, cmp, ncmp, n2) igt_assert_cmp_(uint64_t, "%#llx", unsigned long long, n1, cmp, ncmp, n2)

#define igt_assert_eq(n1, n2) igt_assert_cmpint(n1, ==, !=, n2)
#define igt_assert_neq(n1, n2) igt_assert_cmpint(n1, !=, ==, n2)
#define igt_assert_lt(n1, n2) igt_assert_cmpint(n1, <, >=, n2)
#define igt_assert_lte(n1, n2) igt_assert_cmpint(n1, <=, >, n2)
#define igt_assert_eq_u32(n1, n2) igt_assert_cmpuint(n1, ==, !=, n2)
#define igt_assert_neq_u32(n1, n2) igt_assert_cmpuint(n1, !=, ==, n2)
#define igt_assert_eq_s64(n1, n2) igt_assert_cmps64(n1, ==, !=, n2)
#define igt_assert_eq_u64(n1, n2) igt_assert_cmpu64(n1, ==, !=, n2)
#define igt_assert_neq_u64(n1, n2) igt_assert_cmpu64(n1, !=, ==, n2)
#define igt_assert_lt_u64(n1, n2) igt_assert_cmpu64(n1, <, >=, n2)
#define igt_assert_lte_u64(n1, n2) igt_assert_cmpu64(n1, <=, >, n2)

#define igt_require(expr)                                                             \
  do {                                                                                \
    if (!(expr))                                                                      \
      __igt_skip_check(__FILE__, __LINE__, __func__, #expr, NULL);                    \
    else                                                                              \
      igt_log(IGT_LOG_DOMAIN, IGT_LOG_DEBUG, "Test requirement passed: %s\n", #expr); \
  } while (0)
#define igt_require_f(expr, ...)                                                      \
  do {                                                                                \
    if (!(expr))                                                                      \
      __igt_skip_check(__FILE__, __LINE__, __func__, #expr, __VA_ARGS__);             \
    else                                                                              \
      igt_log(IGT_LOG_DOMAIN, IGT_LOG_DEBUG, "Test requirement passed: %s\n", #expr); \
  } while (0)
#define igt_skip_on(expr) igt_require(!(expr))
#define igt_skip_on_f(expr, ...) igt_require_f(!(expr), __VA_ARGS__)

/* ---- logging ------------------------------------------------------------ */

#define igt_debug(...) igt_log(IGT_LOG_DOMAIN, IGT_LOG_DEBUG, __VA_ARGS__)
#define igt_info(...) igt_log(IGT_LOG_DOMAIN, IGT_LOG_INFO, __VA_ARGS__)
#define igt_warn(...) igt_log(IGT_LOG_DOMAIN, IGT_LOG_WARN, __VA_ARGS__)
#define igt_critical(...) igt_log(IGT_LOG_DOMAIN, IGT_LOG_CRITICAL, __VA_ARGS__)

/* ---- children ------------------------------------------------------------ */

/* Runs the body in num_children forked processes (child = 0..n-1); each
 * child exits 0 at the end of the body. Join with igt_waitchildren(). */
#define igt_fork(child, num_children)                  \
  for (int child = 0; child < (num_children); child++) \
    for (; __igt_fork(); exit(0))

#endif /* XESVM_IGT_CORE_ABI_H_ */
