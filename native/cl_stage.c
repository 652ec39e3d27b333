#include "cl_stage.h"

#include <string.h>

#define CHUNK 1024

/* The refusal of cl_stage_storable without branches (for the vectorised pass). */
static inline int bad_f64(double v, double inv, int f32, int finite_only)
{
    double a = v < 0 ? -v : v;
    int finite = a <= 1.79769313486231570815e308;
    int bad;
    if (inv == 0.0) {
        float f = (float)(finite ? v : 0.0);
        bad = f32 & ((f > 3.40282346638528859812e38f) | (f < -3.40282346638528859812e38f) |
                     ((f == 0.0f) & (v != 0.0)));
    } else {
        bad = (a * inv >= CL_STAGE_FIXED_LIMIT) | (f32 & (a > CL_STAGE_F32_MAX));
    }
    return (finite & bad) | (!finite & finite_only);
}

size_t cl_stage_first_bad_f64(const double *v, ptrdiff_t stride, size_t n, double inv, int f32, int finite_only)
{
    size_t i, j;
    if (inv == 0.0 && !f32 && !finite_only) return n;       /* every float64 is itself */
    for (i = 0; i < n; i += CHUNK) {
        size_t end = i + CHUNK < n ? i + CHUNK : n;
        int any = 0;
        if (stride == 1) {
            for (j = i; j < end; j++) any |= bad_f64(v[j], inv, f32, finite_only);
        } else {
            for (j = i; j < end; j++) any |= bad_f64(v[(ptrdiff_t)j * stride], inv, f32, finite_only);
        }
        if (any) {
            for (j = i; j < end; j++)
                if (!cl_stage_storable(v[(ptrdiff_t)j * stride], inv, f32, finite_only)) return j;
        }
    }
    return n;
}

size_t cl_stage_first_bad_f32(const float *v, ptrdiff_t stride, size_t n, double inv, int finite_only)
{
    size_t i, j;
    if (inv == 0.0 && !finite_only) return n;                /* every float32 is itself */
    for (i = 0; i < n; i += CHUNK) {
        size_t end = i + CHUNK < n ? i + CHUNK : n;
        int any = 0;
        if (stride == 1) {
            for (j = i; j < end; j++) any |= bad_f64((double)v[j], inv, 1, finite_only);
        } else {
            for (j = i; j < end; j++) any |= bad_f64((double)v[(ptrdiff_t)j * stride], inv, 1, finite_only);
        }
        if (any) {
            for (j = i; j < end; j++)
                if (!cl_stage_storable((double)v[(ptrdiff_t)j * stride], inv, 1, finite_only)) return j;
        }
    }
    return n;
}

void cl_stage_widen_f32(const float *v, ptrdiff_t stride, size_t n, double *out)
{
    size_t i;
    if (stride == 1) {
        for (i = 0; i < n; i++) out[i] = (double)v[i];
    } else {
        for (i = 0; i < n; i++) out[i] = (double)v[(ptrdiff_t)i * stride];
    }
}

void cl_stage_copy_f64(const double *v, ptrdiff_t stride, size_t n, double *out)
{
    size_t i;
    if (stride == 1) {
        memcpy(out, v, n * sizeof(double));
    } else {
        for (i = 0; i < n; i++) out[i] = v[(ptrdiff_t)i * stride];
    }
}

size_t cl_stage_scan_ts(const uint64_t *ts, size_t n, int has_floor, uint64_t floor, uint64_t *last, int *sorted)
{
    size_t i, j, k = n;
    uint64_t prev = *last;
    int down = 0;
    if (has_floor) {
        for (i = 0; i < n; i += CHUNK) {
            size_t end = i + CHUNK < n ? i + CHUNK : n;
            int below = 0;
            for (j = i; j < end; j++) below |= ts[j] < floor;
            if (below) {
                for (j = i; ts[j] >= floor; j++) {}
                k = j;
                break;
            }
        }
    }
    if (k == 0) return 0;
    down = ts[0] < prev;
    for (i = 1; i < k; i++) down |= ts[i] < ts[i - 1];
    if (down) *sorted = 0;
    *last = ts[k - 1];
    return k;
}

size_t cl_stage_exceptions(const double *v, size_t n, uint32_t *at)
{
    size_t i, j, c = 0;
    for (i = 0; i < n; i += CHUNK) {
        size_t end = i + CHUNK < n ? i + CHUNK : n;
        int any = 0;
        for (j = i; j < end; j++) {
            uint64_t b;
            memcpy(&b, &v[j], 8);
            /* exponent all ones (NaN, infinity), or exactly -0.0 */
            any |= ((b & 0x7FF0000000000000ull) == 0x7FF0000000000000ull) | (b == 0x8000000000000000ull);
        }
        if (!any) continue;
        for (j = i; j < end; j++) {
            uint64_t b;
            memcpy(&b, &v[j], 8);
            if ((b & 0x7FF0000000000000ull) == 0x7FF0000000000000ull || b == 0x8000000000000000ull)
                at[c++] = (uint32_t)j;
        }
    }
    return c;
}
