#include "cl_quant.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CL_QUANT_X86 1
#include <immintrin.h>
#endif

static int valid_scale(double inv_scale)
{
    return inv_scale > 0.0 && inv_scale <= 1.79769313486231570815e308;
}

#define round_half_even cl_round_half_even
#define in_range cl_quant_in_range

#ifdef CL_QUANT_X86
/* AVX2: four products at a time.  _mm256_round_pd with an explicit
 * round-to-nearest-even immediate ignores the MXCSR rounding mode, so the
 * result equals round_half_even() bit for bit.  A rounded value is an exact
 * integer below 2^51 in magnitude, so adding 1.5 * 2^52 and reinterpreting
 * the bits converts it to int64 without any rounding; larger magnitudes (and
 * NaN, infinities) take the scalar path. */
#define MAGIC 6755399441055744.0 /* 1.5 * 2^52 */
__attribute__((target("avx2")))
static inline int quantize4(__m256d x, int64_t *out)
{
    const __m256d limit = _mm256_set1_pd(2251799813685248.0); /* 2^51 */
    const __m256d magic = _mm256_set1_pd(MAGIC);
    const __m256d absmask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7FFFFFFFFFFFFFFFLL));
    __m256d r = _mm256_round_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256d small = _mm256_cmp_pd(_mm256_and_pd(r, absmask), limit, _CMP_LT_OQ);
    if (_mm256_movemask_pd(small) != 0xF) return 0;
    _mm256_storeu_si256((__m256i *)out, _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(r, magic)),
                                                         _mm256_castpd_si256(magic)));
    return 1;
}

/* Both return how many leading elements they converted (a multiple of 4);
 * the scalar loop finishes the rest. */
__attribute__((target("avx2")))
static size_t quantize_f64_avx2(const double *in, size_t n, double inv_scale, int64_t *out)
{
    const __m256d scale = _mm256_set1_pd(inv_scale);
    size_t i = 0;
    while (i + 4 <= n && quantize4(_mm256_mul_pd(_mm256_loadu_pd(in + i), scale), out + i)) i += 4;
    _mm256_zeroupper();   /* spare the SSE code that follows the AVX-SSE transition penalty */
    return i;
}

__attribute__((target("avx2")))
static size_t quantize_f32_avx2(const float *in, size_t n, double inv_scale, int64_t *out)
{
    const __m256d scale = _mm256_set1_pd(inv_scale);
    size_t i = 0;
    while (i + 4 <= n && quantize4(_mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(in + i)), scale), out + i)) i += 4;
    _mm256_zeroupper();
    return i;
}

static int simd_state = -1;   /* -1 not yet detected, 0 off, 1 AVX2 */

static int use_avx2(void)
{
    if (simd_state < 0) {
        __builtin_cpu_init();
        simd_state = __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return simd_state;
}
#endif

int cl_quant_simd(int enable)
{
#ifdef CL_QUANT_X86
    int before = use_avx2();
    if (enable == 0) simd_state = 0;
    else if (enable > 0) { __builtin_cpu_init(); simd_state = __builtin_cpu_supports("avx2") ? 1 : 0; }
    return before;
#else
    (void)enable;
    return 0;
#endif
}

/* The main loop has no early exit so the compiler can vectorise it: an
 * unstorable product is replaced by 0 and remembered in `ok`; only then does
 * a second pass look for the first bad index.  The output is then written
 * up to that index, as the header promises. */
#define QUANTIZE_BODY(T, SIMD)                                              \
    size_t i = 0;                                                          \
    int ok = 1;                                                            \
    if (!valid_scale(inv_scale)) return CL_ERR_ARG;                        \
    SIMD;                                                                  \
    for (; i < n; i++) {                                                   \
        double x = (double)in[i] * inv_scale;                              \
        int good = in_range(x);                                            \
        ok &= good;                                                        \
        out[i] = round_half_even(good ? x : 0.0);                          \
    }                                                                      \
    if (ok) return CL_OK;                                                  \
    for (i = 0; i < n; i++) {                                              \
        if (!in_range((double)in[i] * inv_scale)) {                        \
            *bad_index = i;                                                \
            return CL_ERR_RANGE;                                           \
        }                                                                  \
    }                                                                      \
    return CL_OK

cl_status cl_quantize_f64(const double *in, size_t n, double inv_scale,
                          int64_t *out, size_t *bad_index)
{
#ifdef CL_QUANT_X86
    QUANTIZE_BODY(double, if (use_avx2()) i = quantize_f64_avx2(in, n, inv_scale, out));
#else
    QUANTIZE_BODY(double, (void)0);
#endif
}

cl_status cl_quantize_f32(const float *in, size_t n, double inv_scale,
                          int64_t *out, size_t *bad_index)
{
#ifdef CL_QUANT_X86
    QUANTIZE_BODY(float, if (use_avx2()) i = quantize_f32_avx2(in, n, inv_scale, out));
#else
    QUANTIZE_BODY(float, (void)0);
#endif
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
