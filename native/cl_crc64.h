/* cl_crc64.h - CRC-64/XZ (ECMA-182 polynomial, reflected) over byte buffers.
 *
 * Parameters: width 64, poly 0x42F0E1EBA9EA3693, reflected in and out,
 * init and xorout 0xFFFFFFFFFFFFFFFF; check("123456789") = 0x995DC9BBDF1939FA.
 * These match xz/liblzma, Go's crc64.ECMA table and fastcrc.crc64.xz, so
 * checksums written by chronoledger can be verified by ordinary tools.
 *
 * The result is a finished CRC, and it is also the value to pass back as
 * `crc` to continue: crc(crc(0, a), b) == crc(0, a + b).  That lets callers
 * checksum a record that arrives in pieces without concatenating it.
 *
 * Ownership: the caller owns `data` and `out` and keeps them valid for the
 * duration of the call only; nothing is retained, nothing is allocated.
 * The only global state is the one-time CPU detection, so every function is
 * safe to call from several threads at once (without the GIL) once
 * cl_crc64_init() has returned.
 *
 * Every implementation returns bit-identical results; they differ only in
 * speed.  The SIMD paths are chosen at run time from CPUID, never at build
 * time, so one wheel runs on any x86-64 and the other architectures get the
 * portable table path.
 */
#ifndef CL_CRC64_H
#define CL_CRC64_H

#include <stddef.h>
#include <stdint.h>

#include "cl_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cl_crc64_impl {
    CL_CRC64_AUTO = 0,    /* whatever cl_crc64() would pick for this length */
    CL_CRC64_TABLE = 1,   /* slicing-by-16 tables; every CPU */
    CL_CRC64_PCLMUL = 2,  /* x86 PCLMULQDQ + SSE4.1 carry-less folding */
    CL_CRC64_VPCLMUL = 3  /* x86 AVX-512 VPCLMULQDQ folding */
} cl_crc64_impl;

/* Detects the CPU once.  Idempotent.  Called at module import (under the
 * GIL) so that later calls from threads without the GIL never race on the
 * detection; the other functions also detect lazily if it was skipped. */
void cl_crc64_init(void);

/* CRC of data[0..len) continuing from `crc` (0 starts a new CRC), using the
 * fastest path for this CPU and this length.  `data` may be NULL only when
 * len == 0, in which case `crc` is returned unchanged.  Never fails. */
uint64_t cl_crc64(uint64_t crc, const void *data, size_t len);

/* Same as cl_crc64() but forces one implementation, for tests and
 * benchmarks.  Writes the CRC to *out and returns CL_OK; returns
 * CL_ERR_ARG for an unknown impl, a NULL out, or NULL data with len > 0,
 * and CL_ERR_UNSUPPORTED if this CPU (or build) lacks the implementation.
 * *out is written only on CL_OK.  A forced SIMD implementation still uses
 * the narrower path for inputs too short for its vectors. */
cl_status cl_crc64_with(cl_crc64_impl impl, uint64_t crc, const void *data,
                        size_t len, uint64_t *out);

/* 1 if cl_crc64_with(impl, ...) can run here, else 0.  TABLE and AUTO are
 * always 1; unknown values are 0. */
int cl_crc64_supported(cl_crc64_impl impl);

/* The widest implementation usable on this CPU (TABLE, PCLMUL or VPCLMUL);
 * cl_crc64() uses it for long inputs. */
cl_crc64_impl cl_crc64_best(void);

/* "table", "pclmul", "vpclmul" or "auto"; "unknown" for anything else.
 * The string is static: the caller must not free or modify it. */
const char *cl_crc64_impl_name(cl_crc64_impl impl);

#ifdef __cplusplus
}
#endif

#endif /* CL_CRC64_H */
