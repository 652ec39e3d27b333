/* cl_floatbits.c - see cl_floatbits.h. */
#include <string.h>
#include "cl_floatbits.h"

static inline uint32_t bits32(float f) { uint32_t b; memcpy(&b, &f, 4); return b; }
static inline uint64_t bits64(double d) { uint64_t b; memcpy(&b, &d, 8); return b; }

/* Branch-free, so the loops vectorise: the sign bit spread over the word
 * flips every bit of a negative float, and the sign bit of any other. */
static inline uint32_t order32(uint32_t b) { return b ^ ((uint32_t)((int32_t)b >> 31) | 0x80000000u); }
static inline uint64_t order64(uint64_t b) { return b ^ ((uint64_t)((int64_t)b >> 63) | 0x8000000000000000ull); }

void cl_f32_to_ordered(const float *in, size_t n, uint32_t *out)
{
    size_t i;
    for (i = 0; i < n; i++) out[i] = order32(bits32(in[i]));
}

void cl_f64_to_ordered32(const double *in, size_t n, uint32_t *out)
{
    size_t i;
    for (i = 0; i < n; i++) out[i] = order32(bits32((float)in[i]));
}

void cl_f64_to_ordered(const double *in, size_t n, uint64_t *out)
{
    size_t i;
    for (i = 0; i < n; i++) out[i] = order64(bits64(in[i]));
}

cl_status cl_ordered_to_f32(const uint64_t *in, size_t n, float *out, size_t *bad_index)
{
    size_t i;
    uint64_t over = 0;
    for (i = 0; i < n; i++) over |= in[i];
    if (over >> 32) {
        for (i = 0; i < n && !(in[i] >> 32); i++) {}
        *bad_index = i;
        return CL_ERR_CORRUPT;
    }
    for (i = 0; i < n; i++) {
        uint32_t o = (uint32_t)in[i];
        uint32_t b = (o & 0x80000000u) ? (o & 0x7FFFFFFFu) : ~o;
        memcpy(&out[i], &b, 4);
    }
    return CL_OK;
}

void cl_ordered_to_f64(const uint64_t *in, size_t n, double *out)
{
    size_t i;
    for (i = 0; i < n; i++) {
        uint64_t o = in[i];
        uint64_t b = (o >> 63) ? (o & ~((uint64_t)1 << 63)) : ~o;
        memcpy(&out[i], &b, 8);
    }
}
