#include "cl_quant.h"

/* 2^63 as a double: products in [-2^63, 2^63) convert to int64 exactly. */
#define CL_TWO63 9223372036854775808.0

static int valid_scale(double inv_scale)
{
    return inv_scale > 0.0 && inv_scale <= 1.79769313486231570815e308;
}

/* Round half to even of a finite x in [-2^63, 2^63).  trunc is exact, so is
 * x - trunc(x); for |x| >= 2^52 x is already an integer and d == 0, so the
 * +-1 adjustment can never overflow. */
static inline int64_t round_half_even(double x)
{
    int64_t r = (int64_t)x;
    double d = x - (double)r;
    int64_t odd = r & 1;
    r += (int64_t)(d > 0.5) - (int64_t)(d < -0.5);
    r += (int64_t)(d == 0.5) * odd - (int64_t)(d == -0.5) * odd;
    return r;
}

static inline int in_range(double x)
{
    /* false for NaN as well */
    return x >= -CL_TWO63 && x < CL_TWO63;
}

cl_status cl_quantize_f64(const double *in, size_t n, double inv_scale,
                          int64_t *out, size_t *bad_index)
{
    size_t i;
    if (!valid_scale(inv_scale)) return CL_ERR_ARG;
    for (i = 0; i < n; i++) {
        double x = in[i] * inv_scale;
        if (!in_range(x)) {
            *bad_index = i;
            return CL_ERR_RANGE;
        }
        out[i] = round_half_even(x);
    }
    return CL_OK;
}

cl_status cl_quantize_f32(const float *in, size_t n, double inv_scale,
                          int64_t *out, size_t *bad_index)
{
    size_t i;
    if (!valid_scale(inv_scale)) return CL_ERR_ARG;
    for (i = 0; i < n; i++) {
        double x = (double)in[i] * inv_scale;
        if (!in_range(x)) {
            *bad_index = i;
            return CL_ERR_RANGE;
        }
        out[i] = round_half_even(x);
    }
    return CL_OK;
}

cl_status cl_dequantize_f64(const int64_t *in, size_t n, double inv_scale, double *out)
{
    size_t i;
    if (!valid_scale(inv_scale)) return CL_ERR_ARG;
    for (i = 0; i < n; i++) out[i] = (double)in[i] / inv_scale;
    return CL_OK;
}

cl_status cl_dequantize_f32(const int64_t *in, size_t n, double inv_scale, float *out)
{
    size_t i;
    if (!valid_scale(inv_scale)) return CL_ERR_ARG;
    for (i = 0; i < n; i++) out[i] = (float)((double)in[i] / inv_scale);
    return CL_OK;
}
