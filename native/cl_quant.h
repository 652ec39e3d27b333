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

/* The scalar kernel, inline for callers that quantize one value at a time
 * (the chronicle's per-record append); the column kernels use the same
 * functions, so one value or a column give the same integer. */

/* 2^63 as a double: products in [-2^63, 2^63) convert to int64 exactly. */
#define CL_TWO63 9223372036854775808.0

/* Round half to even of a finite x in [-2^63, 2^63).  trunc is exact, so is
 * x - trunc(x); for |x| >= 2^52 x is already an integer and d == 0, so the
 * +-1 adjustment can never overflow. */
static inline int64_t cl_round_half_even(double x)
{
    int64_t r = (int64_t)x;
    double d = x - (double)r;
    int64_t odd = r & 1;
    r += (int64_t)(d > 0.5) - (int64_t)(d < -0.5);
    r += (int64_t)(d == 0.5) * odd - (int64_t)(d == -0.5) * odd;
    return r;
}

static inline int cl_quant_in_range(double x)
{
    /* false for NaN as well */
    return x >= -CL_TWO63 && x < CL_TWO63;
}

/* One value: 1 and *out on success, 0 if v * inv_scale is NaN, infinite or
 * outside int64.  inv_scale must be valid (as for cl_quantize_f64). */
static inline int cl_quantize_one(double v, double inv_scale, int64_t *out)
{
    double x = v * inv_scale;
    if (!cl_quant_in_range(x)) return 0;
    *out = cl_round_half_even(x);
    return 1;
}

/* Dequantize: out[i] = q[i] / inv_scale (correctly rounded division, so the
 * value printed for q = 1234567 at scale 1e-6 is exactly 1.234567). */
cl_status cl_dequantize_f64(const int64_t *in, size_t n, double inv_scale, double *out);
cl_status cl_dequantize_f32(const int64_t *in, size_t n, double inv_scale, float *out);

/* Turns the SIMD path (AVX2 on x86-64, chosen at run time) off (0) or back
 * on where the CPU has it (1); -1 only asks.  Returns the previous state.
 * Both paths give identical integers; this exists so tests can check that. */
int cl_quant_simd(int enable);

#endif
