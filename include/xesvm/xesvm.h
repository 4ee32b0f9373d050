/*
 * xesvm C API: the same shared virtual memory runtime as xesvm.hpp, for C
 * callers. Every function returning int returns XESVM_OK (0) or a negative
 * xesvm_status: the code of the xesvm::Error the C++ call threw (negated),
 * XESVM_ERROR_OUT_OF_MEMORY when host memory ran out, XESVM_ERROR_UNKNOWN
 * for any other exception. A NULL handle or a NULL required output pointer
 * is XESVM_ERROR_INVALID_ARGUMENT. After a failure xesvm_last_error()
 * returns a message (thread-local) saying what was wrong and what was
 * expected; a success clears it. Output pointers are written only on
 * success unless a function says otherwise. Each function has the contract
 * of the C++ method it names (xesvm.hpp): what it returns, requires and
 * leaves behind on failure; the comments below say what differs or what C
 * adds. Handles are owned by the caller and released with xesvm_close().
 * Functions are thread-safe like the C++ API, except that a handle must not
 * be closed while another thread uses it.
 */
#ifndef XESVM_XESVM_H
#define XESVM_XESVM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum xesvm_status {
  XESVM_OK = 0,
  XESVM_ERROR_INVALID_ARGUMENT = -1,
  XESVM_ERROR_OUT_OF_MEMORY = -2,
  XESVM_ERROR_BUSY = -3,
  XESVM_ERROR_UNSUPPORTED = -4,
  XESVM_ERROR_BACKEND = -5,
  XESVM_ERROR_DEVICE_LOST = -6,
  XESVM_ERROR_UNKNOWN = -99
} xesvm_status;

/* XESVM_LOCATION_FORCE_INT32 is no location: it makes every int a value of the
 * type in C++ too, so that the library can reject an out-of-range value a C
 * caller passes instead of reading it with undefined behaviour. */
typedef enum xesvm_location {
  XESVM_LOCATION_NONE = 0,
  XESVM_LOCATION_SYSTEM = 1,
  XESVM_LOCATION_DEVICE = 2,
  XESVM_LOCATION_FORCE_INT32 = 0x7fffffff
} xesvm_location;

typedef struct xesvm_runtime xesvm_runtime;       /* opaque */
typedef struct xesvm_accessor xesvm_accessor;     /* opaque: valid inside a kernel call only */
typedef struct xesvm_completion xesvm_completion; /* opaque: one device copy or fill in flight */

typedef struct xesvm_advice {
  xesvm_location preferred;
  int read_mostly;
  int atomic;
} xesvm_advice;

/* The counters of xesvm::Stats (xesvm.hpp says what each one counts).
 * Append-only: fields are only ever added at the end, so a caller built
 * against an older header has a shorter struct whose fields keep their
 * offsets; the library fills only the size the caller passes (see
 * xesvm_get_stats_sized). */
typedef struct xesvm_stats {
  uint64_t gpu_faults, cpu_faults;
  uint64_t migrations_to_device, bytes_to_device, migrations_to_system, bytes_to_system;
  uint64_t evictions, pages_evicted, invalidations, bind_retries, thrash_events;
  uint64_t device_bytes_in_use, device_bytes_high_water, device_bytes_total;
  uint64_t modelled_device_ns;
  /* Appended after 0.1.0 (whose layout ends above: XESVM_STATS_SIZE_0_1_0). */
  uint64_t pages_evict_skipped;             /* busy pages an eviction left on the device */
  uint64_t cpu_mapping_lookups_in_eviction; /* must stay 0 */
  uint64_t link_bytes;                      /* bytes charged to the host link */
} xesvm_stats;

/* The size of the 0.1.0 layout (its 15 counters). */
#define XESVM_STATS_SIZE_0_1_0 (15 * sizeof(uint64_t))

/* What the backend can do (see xesvm::Capabilities in xesvm.hpp). */
typedef struct xesvm_capabilities {
  char backend[16];        /* "sim", "xe"; NUL-terminated */
  int has_engine;          /* runs device work (xesvm_launch) */
  unsigned engine_workers; /* 0 without an engine */
  int has_mechanism;       /* user-space memory management (the runtime is the driver) */
  int host_kernels;        /* xesvm_launch runs xesvm_kernel_fn callbacks */
  int kernel_mode_faults;  /* syscalls touching device-resident memory migrate it back */
  uint64_t device_memory_bytes;
} xesvm_capabilities;

/* A kernel: called once per work item with the device accessor. */
typedef void (*xesvm_kernel_fn)(uint64_t global_id, uint64_t global_size, xesvm_accessor* acc, void* user);

/* Returns the message of the calling thread's last failed call, or "" if its
 * last call succeeded (or it made none). The string stays valid until the
 * thread's next xesvm call. Never fails. */
const char* xesvm_last_error(void);

/* Opens a runtime on a backend URI (NULL: "sim:vram=256M"), as the
 * xesvm::Runtime constructor. XESVM_OK with the new handle in *out; on
 * failure *out is set to NULL (unless out itself is NULL:
 * XESVM_ERROR_INVALID_ARGUMENT) and nothing is open. */
int xesvm_open(const char* uri, xesvm_runtime** out);
/* Closes a runtime as the Runtime destructor does: frees its SVM
 * allocations, brings device data of regions still mirrored back to RAM.
 * NULL is ignored. REQUIRES: no other thread uses rt, no kernel of it runs.
 * Never fails. */
void xesvm_close(xesvm_runtime* rt);

/* Runtime::alloc_shared. XESVM_OK with the pointer in *out; on failure *out
 * is untouched and nothing is allocated. */
int xesvm_alloc_shared(xesvm_runtime* rt, size_t bytes, size_t alignment, void** out);
/* Runtime::free: XESVM_ERROR_INVALID_ARGUMENT for NULL or a pointer
 * xesvm_alloc_shared did not return (nothing changes). REQUIRES: not called
 * from inside a kernel of rt (see Runtime::free for what that does today). */
int xesvm_free(xesvm_runtime* rt, void* ptr);
/* Runtime::mirror: XESVM_ERROR_INVALID_ARGUMENT for a span that is NULL,
 * empty, holds no whole page, overlaps a mirror or is not mapped private
 * anonymous memory; nothing is mirrored then. */
int xesvm_mirror(xesvm_runtime* rt, void* ptr, size_t bytes);
/* Runtime::unmirror: device data comes back to RAM first. Fails with
 * XESVM_ERROR_INVALID_ARGUMENT for a span that is not a mirrored region or
 * when called from inside a kernel of rt; nothing changes then. */
int xesvm_unmirror(xesvm_runtime* rt, void* ptr, size_t bytes);
/* Like xesvm_unmirror, but the contents are not wanted (the memory is about
 * to be freed): device frames are freed, nothing is copied back
 * (Runtime::discard). Fails as xesvm_unmirror, and for alloc_shared
 * memory; nothing changes then. */
int xesvm_discard(xesvm_runtime* rt, void* ptr, size_t bytes);
/* Runtime::advise. XESVM_OK with *applied (may be NULL) set to 1 if the
 * backend applied all of the advice, 0 if it could not (what it can is
 * applied). XESVM_ERROR_INVALID_ARGUMENT for a NULL advice, a preferred
 * location that is not an XESVM_LOCATION_* value, or a span with no SVM
 * page; no advice is recorded then and *applied is untouched. */
int xesvm_advise(xesvm_runtime* rt, void* ptr, size_t bytes, const xesvm_advice* advice, int* applied);
/* Moves the pages covering [ptr, ptr+bytes) to `where` now. XESVM_OK with
 * *moved (may be NULL) = bytes of the span this call moved. Fails with
 * XESVM_ERROR_INVALID_ARGUMENT for another location or memory that is not
 * SVM (nothing moved), XESVM_ERROR_OUT_OF_MEMORY when device memory cannot be
 * had: not all-or-nothing, the ranges before the one that failed stay on
 * the device, the rest where they were (save what pressure eviction moved to
 * RAM), every byte intact; *moved is then not written (xesvm_residency tells
 * where the bytes are). */
int xesvm_prefetch(xesvm_runtime* rt, void* ptr, size_t bytes, xesvm_location where, uint64_t* moved);
/* Evicts device-resident data of [ptr, ptr+bytes) to RAM. XESVM_OK with the
 * pages moved and the pages skipped (held by another operation through every
 * retry; still on the device, intact), each pointer may be NULL. Fails with
 * XESVM_ERROR_INVALID_ARGUMENT for memory that is not SVM, nothing moved. */
int xesvm_evict(xesvm_runtime* rt, void* ptr, size_t bytes, uint64_t* pages_evicted, uint64_t* pages_skipped);
/* Runtime::residency: XESVM_OK with the device-resident bytes of the whole
 * pages covering the span in *device_bytes (required). Moves nothing. Fails
 * only for a NULL runtime, pointer or output, bytes == 0 or a wrapping span
 * (XESVM_ERROR_INVALID_ARGUMENT). */
int xesvm_residency(xesvm_runtime* rt, const void* ptr, size_t bytes, uint64_t* device_bytes);
/* Residency with what the backend cannot tell: *device, *system and *unknown
 * (each may be NULL) add up to the whole pages covering the span. On xe the
 * kernel reports no per-page placement: bytes it cannot place are unknown,
 * never counted as system or device. */
int xesvm_residency_ex(xesvm_runtime* rt, const void* ptr, size_t bytes, uint64_t* device, uint64_t* system,
                       uint64_t* unknown);

/* Device copy and fill (Runtime::copy / Runtime::fill in xesvm.hpp): start
 * the work and return, in *out, a completion the caller owns. On failure
 * nothing is in flight and *out is untouched. REQUIRES: the spans stay
 * mapped until the completion is waited for or destroyed; copy spans do not
 * overlap; fill: dst and bytes multiples of pattern_size (1, 2 or 4). */
int xesvm_copy(xesvm_runtime* rt, void* dst, const void* src, size_t bytes, xesvm_completion** out);
int xesvm_fill(xesvm_runtime* rt, void* dst, const void* pattern, size_t pattern_size, size_t bytes,
               xesvm_completion** out);
/* Waits up to timeout_ns (< 0: the default of 60 s) for the work. XESVM_OK
 * when it completed; XESVM_ERROR_BUSY on timeout (wait again);
 * XESVM_ERROR_DEVICE_LOST when the device faulted on memory that is not SVM
 * (xesvm_last_error() names the address or the spans). */
int xesvm_completion_wait(xesvm_completion* c, int64_t timeout_ns);
/* Frees a completion, waiting for its work first (at most 60 s) if it was
 * not waited for. NULL is ignored. */
void xesvm_completion_destroy(xesvm_completion* c);
/* Runtime::launch with a C kernel function; `user` is passed through.
 * XESVM_OK when every work item finished without a failure. Fails with
 * XESVM_ERROR_INVALID_ARGUMENT for a NULL kernel (nothing runs), the error of
 * Runtime::launch, or the first
 * failure of a device access inside the kernel (xesvm_read, xesvm_write,
 * xesvm_atomic_add_u32 returned an error there, e.g. XESVM_ERROR_DEVICE_LOST
 * for non-SVM memory), even if the kernel ignored that return code; the
 * other work items still run. */
int xesvm_launch(xesvm_runtime* rt, uint64_t global_size, xesvm_kernel_fn kernel, void* user);
/* Fills the first `size` bytes of *out with the counters and writes
 * nothing beyond them; pass sizeof(xesvm_stats) (the xesvm_get_stats macro
 * below does). A caller built against a later header, whose struct has
 * more fields, passes a larger size: the fields this library does not know
 * read 0. Fails (XESVM_ERROR_INVALID_ARGUMENT) if size is smaller than
 * XESVM_STATS_SIZE_0_1_0 or not a multiple of 8. */
int xesvm_get_stats_sized(xesvm_runtime* rt, xesvm_stats* out, size_t size);
/* The entry point of 0.1.0: fills the 0.1.0 layout only (binaries built
 * against it have no room for more). Callers of this header reach
 * xesvm_get_stats_sized through the macro below, which passes the size of
 * their struct; (xesvm_get_stats)(rt, out) names the 0.1.0 function. */
int(xesvm_get_stats)(xesvm_runtime* rt, xesvm_stats* out);
#define xesvm_get_stats(rt, out) xesvm_get_stats_sized((rt), (out), sizeof *(out))
/* Fills *out with what the backend can do (Runtime::capabilities); the
 * backend name is truncated to 15 bytes. Fails only for a NULL runtime or
 * out (XESVM_ERROR_INVALID_ARGUMENT). */
int xesvm_get_capabilities(xesvm_runtime* rt, xesvm_capabilities* out);

/* Device accessor, for use inside a kernel only: acc is the one the kernel
 * was called with and is invalid after it returns. Each call is the
 * DeviceAccessor method of the same name (xesvm.hpp): XESVM_OK when the
 * access completed; XESVM_ERROR_DEVICE_LOST for an address that is not SVM
 * memory, or the access's other error. A failed access is also recorded
 * for the launch: xesvm_launch fails with the first one even if the kernel
 * ignores the code. XESVM_ERROR_INVALID_ARGUMENT for a NULL acc or buffer
 * (nothing is accessed, and that is not recorded for the launch). */
/* Copies n bytes from GPU address src to dst (kernel-private memory). */
int xesvm_read(xesvm_accessor* acc, uint64_t src, void* dst, size_t n);
/* Copies n bytes from src (kernel-private memory) to GPU address dst. */
int xesvm_write(xesvm_accessor* acc, uint64_t dst, const void* src, size_t n);
/* Atomic fetch-add on the naturally aligned 32-bit word at addr; the old
 * value in *old (may be NULL). */
int xesvm_atomic_add_u32(xesvm_accessor* acc, uint64_t addr, uint32_t v, uint32_t* old);

#ifdef __cplusplus
}
#endif

#endif /* XESVM_XESVM_H */
