/* cl_floatbits.h - floats as "ordered bits": the exact bits of a float as an
 * unsigned integer whose order is the float's order (a negative float has
 * every bit flipped, any other its sign bit set).  A bijection, so NaN
 * payloads, the infinities and -0.0 survive bit for bit, and a smooth series
 * of floats becomes a series of integers with small deltas for the codec.
 *
 * Ownership: the caller owns every pointer; the kernels read in[0..n) and
 * write out[0..n), allocate nothing, and in and out must not overlap.
 */
#ifndef CL_FLOATBITS_H
#define CL_FLOATBITS_H

#include <stddef.h>
#include <stdint.h>
#include "cl_status.h"

/* float64 -> 64-bit ordered bits; float32 -> 32-bit ordered bits; and
 * float64 values cast to float32 (as an exact float32 field stores them)
 * -> 32-bit ordered bits, the cast and the transform in one pass. */
void cl_f64_to_ordered(const double *in, size_t n, uint64_t *out);
void cl_f32_to_ordered(const float *in, size_t n, uint32_t *out);
void cl_f64_to_ordered32(const double *in, size_t n, uint32_t *out);

/* Ordered bits -> float32 / float64.  For float32 a value above 2^32 - 1 is
 * not the ordered bits of any float32: CL_ERR_CORRUPT, *bad_index the first. */
cl_status cl_ordered_to_f32(const uint64_t *in, size_t n, float *out, size_t *bad_index);
void cl_ordered_to_f64(const uint64_t *in, size_t n, double *out);

#endif
