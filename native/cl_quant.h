/* cl_quant.h - fixed-point quantization of float columns.
 *
 * q = round_half_even(v * inv_scale), computed in IEEE double with no fused
 * multiply-add, so every machine produces the same integers for the same
 * input.  The rounding is done by hand (not with nearbyint/rint) because those
 * follow the caller's floating-point rounding mode, which a host program may
 * have changed.
 *
 * Ownership: the caller owns every pointer; the kernels read `in[0..n)` and
 * write `out[0..n)` and allocate nothing.  `in` and `out` must not overlap.
 */
#ifndef CL_QUANT_H
#define CL_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include "cl_status.h"

/* Quantize n doubles.  inv_scale is 1/scale (1e6 for the default 1e-6) and
 * must be finite and > 0.  On NaN, infinity, or a product outside int64 the
 * kernel sets *bad_index to the first offending element and returns
 * CL_ERR_RANGE; out[] is then partly written and meaningless. */
cl_status cl_quantize_f64(const double *in, size_t n, double inv_scale,
                          int64_t *out, size_t *bad_index);
cl_status cl_quantize_f32(const float *in, size_t n, double inv_scale,
                          int64_t *out, size_t *bad_index);

/* Dequantize: out[i] = q[i] / inv_scale (correctly rounded division, so the
 * value printed for q = 1234567 at scale 1e-6 is exactly 1.234567). */
cl_status cl_dequantize_f64(const int64_t *in, size_t n, double inv_scale, double *out);
cl_status cl_dequantize_f32(const int64_t *in, size_t n, double inv_scale, float *out);

/* Turns the SIMD path (AVX2 on x86-64, chosen at run time) off (0) or back
 * on where the CPU has it (1); -1 only asks.  Returns the previous state.
 * Both paths give identical integers; this exists so tests can check that. */
int cl_quant_simd(int enable);

#endif
