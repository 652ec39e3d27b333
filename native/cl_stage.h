/* cl_stage.h - the chronicle's column kernels around staging: checking a
 * float column against its precision (the rules of chronicle/precision.py,
 * the same as the compiled stager's per-record check), copying a column
 * (strided or not) into a staging window, scanning a window's timestamps,
 * and finding the values fixed point keeps as exceptions.  (The exact form's
 * ordered bits are in cl_floatbits.h.)
 *
 * Loops without early exits, so the compiler vectorises them; an error is
 * located by a second pass over the one chunk that has it.
 *
 * Ownership: the caller owns every pointer; the kernels read `v[0..n)` (or
 * `v[0], v[stride], ...`, strides in elements) and write `out[0..n)`, and
 * allocate nothing.  Inputs and outputs must not overlap.
 */
#ifndef CL_STAGE_H
#define CL_STAGE_H

#include <stddef.h>
#include <stdint.h>

/* |value| / scale must stay below this for fixed point (chronicle/precision.py FIXED_LIMIT). */
#define CL_STAGE_FIXED_LIMIT 9.2e18
#define CL_STAGE_F32_MAX 3.4028234663852886e38

/* Whether one value can be stored: `inv` is 0 for exact (the float itself:
 * `f32` reads back as float32, which must neither overflow nor turn a
 * non-zero value into 0), else 1/scale of fixed point (|v| / scale below
 * CL_STAGE_FIXED_LIMIT, and inside float32's range for an `f32` field);
 * NaN and the infinities are stored exactly unless `finite_only` (format 1). */
static inline int cl_stage_storable(double v, double inv, int f32, int finite_only)
{
    double a = v < 0 ? -v : v;
    float f;
    if (!(a <= 1.79769313486231570815e308)) return !finite_only;   /* NaN or an infinity */
    if (inv == 0.0) {
        if (!f32) return 1;
        f = (float)v;
        return (f <= 3.40282346638528859812e38f && f >= -3.40282346638528859812e38f) && !(f == 0.0f && v != 0.0);
    }
    return !(a * inv >= CL_STAGE_FIXED_LIMIT || (f32 && a > CL_STAGE_F32_MAX));
}

/* The index of the first value that cl_stage_storable refuses, or n. */
size_t cl_stage_first_bad_f64(const double *v, ptrdiff_t stride, size_t n, double inv, int f32, int finite_only);
/* The same for float32 values (read back as float32). */
size_t cl_stage_first_bad_f32(const float *v, ptrdiff_t stride, size_t n, double inv, int finite_only);

/* out[i] = (double)v[i * stride]. */
void cl_stage_widen_f32(const float *v, ptrdiff_t stride, size_t n, double *out);
void cl_stage_copy_f64(const double *v, ptrdiff_t stride, size_t n, double *out);

/* Timestamps about to be staged after a window's last one (*last; *sorted
 * says whether the window is in order so far): returns the index of the first
 * one below `floor` (when has_floor), or n; the ones before it update *last
 * and *sorted. */
size_t cl_stage_scan_ts(const uint64_t *ts, size_t n, int has_floor, uint64_t floor, uint64_t *last, int *sorted);

/* The values fixed point keeps as exceptions, beside the integers: NaN, the
 * infinities and -0.0.  Writes their indices to at[0..count) (at holds n
 * entries) and returns the count. */
size_t cl_stage_exceptions(const double *v, size_t n, uint32_t *at);

#endif
