#include "cl_codec.h"

#include <string.h>

/* ---- little-endian loads and stores, whatever the host byte order ---- */

static inline uint64_t load_le64(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
#else
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
#endif
}

static inline void store_le64(uint8_t *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, 8);
#else
    int i;
    for (i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
#endif
}

static inline uint64_t zigzag(uint64_t d) { return (d << 1) ^ (uint64_t)-(int64_t)(d >> 63); }
static inline uint64_t unzigzag(uint64_t z) { return (z >> 1) ^ (uint64_t)-(int64_t)(z & 1); }

static inline int bitlen(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return x ? 64 - __builtin_clzll(x) : 0;
#else
    int n = 0;
    while (x) { n++; x >>= 1; }
    return n;
#endif
}

static inline size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t i = 0;
    while (v >= 0x80) { p[i++] = (uint8_t)(v | 0x80); v >>= 7; }
    p[i++] = (uint8_t)v;
    return i;
}

/* Reads a ULEB128 of at most 10 bytes from p[*pos..len); 0 on success. */
static inline int get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = *pos;
    int shift = 0;
    for (;;) {
        uint8_t b;
        if (i >= len) return CL_ERR_TRUNCATED;
        b = p[i++];
        if (shift == 63 && b > 1) return CL_ERR_CORRUPT;   /* more than 64 bits */
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) break;
        shift += 7;
        if (shift > 63) return CL_ERR_CORRUPT;
    }
    *pos = i;
    *out = v;
    return CL_OK;
}

static size_t residual_count(uint64_t n, unsigned order) { return n > order ? (size_t)(n - order) : 0; }
static size_t block_count(size_t m) { return (m + CL_CODEC_BLOCK - 1) / CL_CODEC_BLOCK; }

void cl_codec_bounds(size_t n, size_t bounds[CL_CODEC_STREAMS])
{
    size_t nb = block_count(n);
    bounds[0] = 10 * n + 8;                 /* RAW values, K bytes or RUNVAL varints */
    bounds[1] = nb * 16 * 61 > 10 * n ? nb * 16 * 61 : 10 * n;  /* LOW or RUNLEN */
    bounds[1] += 8;
    bounds[2] = n + 8;                      /* HIGH */
    bounds[3] = 10 * n + 8;                 /* ESC */
}

void cl_codec_sample(const uint64_t *v, size_t n, size_t *taken, size_t *runs,
                     uint64_t *mode_value, size_t *mode_count)
{
    size_t step = n > CL_CODEC_SAMPLE ? n / CL_CODEC_SAMPLE : 1, k = 0, i, r = 0, votes = 0, count = 0;
    uint64_t cand = 0, prev = 0;
    /* Boyer-Moore majority vote: the only value that can hold more than half
     * of the sample, found in one pass without sorting; a sparse column needs
     * its default to hold three quarters. */
    for (i = 0; i < n && k < CL_CODEC_SAMPLE; i += step, k++) {
        uint64_t x = v[i];
        r += k == 0 || x != prev;
        prev = x;
        if (votes == 0) { cand = x; votes = 1; }
        else votes += x == cand ? 1 : (size_t)-1;
    }
    for (i = 0, k = 0; i < n && k < CL_CODEC_SAMPLE; i += step, k++) count += v[i] == cand;
    *taken = k;
    *runs = r;
    *mode_value = cand;
    *mode_count = count;
}

size_t cl_codec_count_runs(const uint64_t *v, size_t n)
{
    size_t i, runs = n ? 1 : 0;
    for (i = 1; i < n; i++) runs += v[i] != v[i - 1];
    return runs;
}

/* The residual at index i (0 <= i < m) for the given order and bias. */
static inline uint64_t residual(const uint64_t *v, size_t i, unsigned order, uint64_t bias)
{
    uint64_t d;
    switch (order) {
    case 0: d = v[i]; break;
    case 1: d = v[i + 1] - v[i]; break;
    default: d = (v[i + 2] - v[i + 1]) - (v[i + 1] - v[i]); break;
    }
    return zigzag(d - bias);
}

/* Width of the bit-packed low part of a block: about log2(mean) - 2, which
 * leaves the high parts small (mostly 0..15) and shaped like the residual
 * distribution, so zstd's entropy stage can code them near their entropy.
 * A width from the block maximum would waste bits on every outlier. */
static inline unsigned block_width(const uint64_t *zz, size_t cnt)
{
    uint64_t q = 0, r = 0;
    size_t j;
    int w;
    /* floor(sum / 128) without 128-bit arithmetic */
    for (j = 0; j < cnt; j++) { q += zz[j] >> 7; r += zz[j] & 127; }
    q += r >> 7;
    w = bitlen(q) - 3;
    return w > 0 ? (unsigned)w : 0;
}

static double mean_delta(const uint64_t *v, size_t n, unsigned order, int is_unsigned)
{
    double a, b;
    if (order == 0) {
        /* mean of a strided sample of the values */
        size_t step = n > 4096 ? n / 4096 : 1, i, c = 0;
        double s = 0;
        for (i = 0; i < n; i += step, c++) s += is_unsigned ? (double)v[i] : (double)(int64_t)v[i];
        return c ? s / (double)c : 0.0;
    }
    if (order == 1) {
        if (n < 2) return 0.0;
        a = (double)(int64_t)(v[n - 1] - v[0]);
        return a / (double)(n - 1);
    }
    if (n < 3) return 0.0;
    a = (double)(int64_t)(v[n - 1] - v[n - 2]);
    b = (double)(int64_t)(v[1] - v[0]);
    return (a - b) / (double)(n - 2);
}

static uint64_t bias_from_mean(double mean)
{
    double r;
    if (!(mean > -4.0e18 && mean < 4.0e18)) return 0;
    r = mean < 0 ? -(double)(int64_t)(-mean + 0.5) : (double)(int64_t)(mean + 0.5);
    return (uint64_t)(int64_t)r;
}

/* Estimated packed bits of a candidate, over up to 8 evenly spread blocks:
 * the sum of residual bit lengths, a proxy for what the streams will take. */
static double estimate_bits(const uint64_t *v, size_t n, unsigned order, uint64_t bias)
{
    size_t m = residual_count(n, order), nb = block_count(m), step, b, j, cnt = 0;
    double bits = 0;
    if (m == 0) return 0;
    step = nb > 8 ? nb / 8 : 1;
    for (b = 0; b < nb; b += step) {
        size_t lo = b * CL_CODEC_BLOCK, hi = lo + CL_CODEC_BLOCK < m ? lo + CL_CODEC_BLOCK : m;
        for (j = lo; j < hi; j++) bits += bitlen(residual(v, j, order, bias)) + 1;
        cnt += hi - lo;
    }
    return bits / (double)cnt;
}

static void encode_raw(const uint64_t *v, size_t n, cl_codec_plan *plan, uint8_t *const streams[])
{
    size_t i;
    for (i = 0; i < n; i++) store_le64(streams[0] + 8 * i, v[i]);
    plan->mode = CL_MODE_RAW;
    plan->order = 0;
    plan->nstreams = 1;
    plan->raw_len[0] = 8 * (uint64_t)n;
    plan->stored_len[0] = plan->raw_len[0];
}

/* Packs 128 fields of k bits (the caller zero-pads zz past the count), LSB
 * first, into 16k bytes: the generic loop, for any k.  The accumulator stays
 * in a register and every iteration stores it unconditionally at the current
 * word, advancing only when the word is full, so the loop has no
 * unpredictable branch; (x >> 1) >> (63 - fill) is x >> (64 - fill) without
 * the undefined shift by 64 when fill == 0.  Its bit cursor is a dependency
 * chain, though, so the usual widths go through pack64_K below. */
static inline void pack_generic(uint64_t *words, const uint64_t *zz, unsigned k)
{
    uint64_t acc = 0, mask = ((uint64_t)1 << k) - 1;
    unsigned fill = 0;
    size_t j, nw = 0;
    for (j = 0; j < CL_CODEC_BLOCK; j++) {
        uint64_t x = zz[j] & mask;
        unsigned spill = fill + k;
        unsigned full = spill >> 6;             /* 1 when the word is complete */
        acc |= x << fill;
        words[nw] = acc;
        nw += full;
        acc = full ? (x >> 1) >> (63 - fill) : acc;
        fill = spill & 63;
    }
}

/* 64 fields of K bits into K words, K a compile-time constant: unrolled, every
 * shift and word index is a constant and nothing carries from one field to
 * the next but the partial word, so it runs 3-4x faster than pack_generic
 * (0.3-0.5 against 1.0-1.7 ns a field, measured for K = 1..18).  The same
 * bits as pack_generic. */
#define CL_PACK64(K)                                                            \
    static void pack64_##K(const uint64_t *in, uint64_t *w)                    \
    {                                                                          \
        const uint64_t mask = ((uint64_t)1 << (K)) - 1;                        \
        uint64_t acc = 0;                                                      \
        unsigned j;                                                            \
        _Pragma("GCC unroll 64")                                               \
        for (j = 0; j < 64; j++) {                                             \
            const unsigned bit = j * (K), s = bit & 63, wi = bit >> 6;         \
            const uint64_t x = in[j] & mask;                                   \
            acc |= x << s;                                                     \
            if (s + (K) >= 64) {                                               \
                w[wi] = acc;                                                   \
                acc = s ? x >> (64 - s) : 0;                                   \
            }                                                                  \
        }                                                                      \
    }
CL_PACK64(1)  CL_PACK64(2)  CL_PACK64(3)  CL_PACK64(4)  CL_PACK64(5)  CL_PACK64(6)
CL_PACK64(7)  CL_PACK64(8)  CL_PACK64(9)  CL_PACK64(10) CL_PACK64(11) CL_PACK64(12)
CL_PACK64(13) CL_PACK64(14) CL_PACK64(15) CL_PACK64(16) CL_PACK64(17) CL_PACK64(18)
CL_PACK64(19) CL_PACK64(20) CL_PACK64(21) CL_PACK64(22) CL_PACK64(23) CL_PACK64(24)
CL_PACK64(25) CL_PACK64(26) CL_PACK64(27) CL_PACK64(28) CL_PACK64(29) CL_PACK64(30)
CL_PACK64(31) CL_PACK64(32)
#undef CL_PACK64

typedef void (*pack64_fn)(const uint64_t *, uint64_t *);
static const pack64_fn PACK64[33] = {
    NULL,       pack64_1,  pack64_2,  pack64_3,  pack64_4,  pack64_5,  pack64_6,  pack64_7,
    pack64_8,   pack64_9,  pack64_10, pack64_11, pack64_12, pack64_13, pack64_14, pack64_15,
    pack64_16,  pack64_17, pack64_18, pack64_19, pack64_20, pack64_21, pack64_22, pack64_23,
    pack64_24,  pack64_25, pack64_26, pack64_27, pack64_28, pack64_29, pack64_30, pack64_31,
    pack64_32,
};

/* One block of 128 fields into 16k bytes at out; returns the end. */
static inline uint8_t *pack_block(uint8_t *out, const uint64_t *zz, unsigned k)
{
    uint64_t words[2 * 61 + 1];
    size_t j;
    if (k == 0) return out;
    if (k <= 32) {
        PACK64[k](zz, words);
        PACK64[k](zz + 64, words + k);      /* 64 fields fill exactly k words */
    } else {
        pack_generic(words, zz, k);
    }
    for (j = 0; j < 2 * (size_t)k; j++) store_le64(out + 8 * j, words[j]);
    return out + 16 * (size_t)k;
}

/* Residuals of one block into zz[0..128) (zero-padded); returns their
 * bitwise OR, an upper bound of the largest that vectorises (a max does not
 * without SSE4.2), used to prove a block has no escapes. */
static inline uint64_t block_residuals(const uint64_t *v, size_t lo, size_t cnt, unsigned order,
                                       uint64_t bias, uint64_t *zz)
{
    size_t j;
    uint64_t mx = 0;
    const uint64_t *p = v + lo;
    switch (order) {
    case 0:
        for (j = 0; j < cnt; j++) zz[j] = zigzag(p[j] - bias);
        break;
    case 1:
        for (j = 0; j < cnt; j++) zz[j] = zigzag(p[j + 1] - p[j] - bias);
        break;
    default:
        for (j = 0; j < cnt; j++) zz[j] = zigzag((p[j + 2] - p[j + 1]) - (p[j + 1] - p[j]) - bias);
        break;
    }
    for (j = cnt; j < CL_CODEC_BLOCK; j++) zz[j] = 0;
    for (j = 0; j < CL_CODEC_BLOCK; j++) mx |= zz[j];
    return mx;
}

cl_status cl_codec_encode_blocks(const uint64_t *v, size_t n, int order, int is_unsigned,
                                 cl_codec_plan *plan, uint8_t *const streams[CL_CODEC_STREAMS])
{
    unsigned ord, o;
    uint64_t bias = 0;
    size_t m, nb, b, i;
    uint8_t *kp, *lowp, *highp, *escp;
    uint64_t zz[CL_CODEC_BLOCK];

    if (order < -1 || order > 2) return CL_ERR_ARG;
    if ((uint64_t)n > CL_CODEC_MAX_N) return CL_ERR_ARG;
    memset(plan, 0, sizeof(*plan));
    plan->n = n;
    plan->is_unsigned = (uint8_t)(is_unsigned != 0);

    if (order == -1) {
        double best = 1e300;
        ord = 1;
        for (o = 0; o <= 2; o++) {
            uint64_t cand[2];
            int c;
            if (n <= o) continue;
            cand[0] = 0;
            cand[1] = bias_from_mean(mean_delta(v, n, o, is_unsigned));
            for (c = 0; c < (cand[1] ? 2 : 1); c++) {
                /* small penalty per order so ties keep the simpler model */
                double e = estimate_bits(v, n, o, cand[c]) + 0.01 * o;
                if (e < best) { best = e; ord = o; bias = cand[c]; }
            }
        }
        if (n == 0) ord = 0;
        /* 63 estimated bits plus the high byte would not beat raw storage */
        if (best >= 62.0) {
            encode_raw(v, n, plan, streams);
            return CL_OK;
        }
    } else {
        ord = (unsigned)order;
        bias = 0;
        {
            uint64_t cand = bias_from_mean(mean_delta(v, n, ord, is_unsigned));
            if (cand && estimate_bits(v, n, ord, cand) < estimate_bits(v, n, ord, 0)) bias = cand;
        }
    }

    m = residual_count(n, ord);
    nb = block_count(m);
    plan->mode = CL_MODE_BLOCKS;
    plan->order = (uint8_t)ord;
    plan->bias = bias;
    for (i = 0; i < ord && i < n; i++) plan->first[i] = i == 0 ? v[0] : v[1] - v[0];
    kp = streams[0];
    lowp = streams[1];
    highp = streams[2];
    escp = streams[3];
    for (b = 0; b < nb; b++) {
        size_t lo = b * CL_CODEC_BLOCK, cnt = m - lo < CL_CODEC_BLOCK ? m - lo : CL_CODEC_BLOCK, j;
        unsigned k;
        uint64_t mx = block_residuals(v, lo, cnt, ord, bias, zz);
        k = block_width(zz, CL_CODEC_BLOCK);
        *kp++ = (uint8_t)k;
        lowp = pack_block(lowp, zz, k);
        if ((mx >> k) < 255) {          /* no escapes possible in this block: the common case */
            for (j = 0; j < cnt; j++) highp[j] = (uint8_t)(zz[j] >> k);
            highp += cnt;
            continue;
        }
        for (j = 0; j < cnt; j++) {
            uint64_t h = zz[j] >> k;
            if (h >= 255) {
                *highp++ = 255;
                escp += put_varint(escp, h - 255);
            } else {
                *highp++ = (uint8_t)h;
            }
        }
    }
    plan->nstreams = 4;
    plan->raw_len[0] = (uint64_t)(kp - streams[0]);
    plan->raw_len[1] = (uint64_t)(lowp - streams[1]);
    plan->raw_len[2] = (uint64_t)(highp - streams[2]);
    plan->raw_len[3] = (uint64_t)(escp - streams[3]);
    for (i = 0; i < 4; i++) plan->stored_len[i] = plan->raw_len[i];
    return CL_OK;
}

cl_status cl_codec_encode_rle(const uint64_t *v, size_t n, int delta, int is_unsigned,
                              cl_codec_plan *plan, uint8_t *const streams[CL_CODEC_STREAMS])
{
    uint8_t *vp = streams[0], *lp = streams[1];
    uint64_t prev = 0, runs = 0;
    size_t i = 0;
    if ((uint64_t)n > CL_CODEC_MAX_N) return CL_ERR_ARG;
    memset(plan, 0, sizeof(*plan));
    plan->n = n;
    plan->is_unsigned = (uint8_t)(is_unsigned != 0);
    while (i < n) {
        size_t j = i + 1;
        while (j < n && v[j] == v[i]) j++;
        vp += put_varint(vp, zigzag(v[i] - prev));
        lp += put_varint(lp, (uint64_t)(j - i - 1));
        if (delta) prev = v[i];
        runs++;
        i = j;
    }
    plan->mode = CL_MODE_RLE;
    plan->order = delta ? 1 : 0;
    plan->runs = runs;
    plan->nstreams = 2;
    plan->raw_len[0] = (uint64_t)(vp - streams[0]);
    plan->raw_len[1] = (uint64_t)(lp - streams[1]);
    plan->stored_len[0] = plan->raw_len[0];
    plan->stored_len[1] = plan->raw_len[1];
    return CL_OK;
}

size_t cl_codec_count_exceptions(const uint64_t *v, size_t n, uint64_t dflt)
{
    size_t i, c = 0;
    for (i = 0; i < n; i++) c += v[i] != dflt;
    return c;
}

cl_status cl_codec_encode_sparse(const uint64_t *v, size_t n, uint64_t dflt, int is_unsigned,
                                 cl_codec_plan *plan, uint8_t *const streams[CL_CODEC_STREAMS])
{
    uint8_t *gp = streams[0], *vp = streams[1];
    uint64_t count = 0;
    size_t i, next = 0;   /* index just after the previous exception */
    if ((uint64_t)n > CL_CODEC_MAX_N) return CL_ERR_ARG;
    memset(plan, 0, sizeof(*plan));
    plan->n = n;
    plan->is_unsigned = (uint8_t)(is_unsigned != 0);
    for (i = 0; i < n; i++) {
        if (v[i] == dflt) continue;
        gp += put_varint(gp, (uint64_t)(i - next));
        vp += put_varint(vp, zigzag(v[i] - dflt));
        next = i + 1;
        count++;
    }
    plan->mode = CL_MODE_SPARSE;
    plan->runs = count;
    plan->bias = dflt;
    plan->nstreams = 2;
    plan->raw_len[0] = (uint64_t)(gp - streams[0]);
    plan->raw_len[1] = (uint64_t)(vp - streams[1]);
    plan->stored_len[0] = plan->raw_len[0];
    plan->stored_len[1] = plan->raw_len[1];
    return CL_OK;
}

/* ---- header ---- */

static unsigned streams_for_mode(unsigned mode)
{
    return mode == CL_MODE_RAW ? 1 : mode == CL_MODE_BLOCKS ? 4 : 2;   /* RLE, SPARSE: 2 */
}

size_t cl_codec_header_size(const cl_codec_plan *plan)
{
    uint8_t tmp[CL_CODEC_HEADER_MAX];
    size_t len = 0;
    cl_codec_write_header(plan, tmp, sizeof(tmp), &len);
    return len;
}

cl_status cl_codec_write_header(const cl_codec_plan *plan, uint8_t *out, size_t cap, size_t *len)
{
    uint8_t tmp[CL_CODEC_HEADER_MAX];
    size_t p = 0, i;
    if (plan->mode > CL_MODE_SPARSE || plan->order > (plan->mode == CL_MODE_BLOCKS ? 2 : plan->mode == CL_MODE_RLE ? 1 : 0) || plan->nstreams != streams_for_mode(plan->mode))
        return CL_ERR_ARG;
    tmp[p++] = CL_CODEC_VERSION;
    tmp[p++] = plan->mode;
    tmp[p++] = (uint8_t)((plan->is_unsigned ? 1 : 0) | (plan->width_log2 & 3) << 1);
    tmp[p++] = plan->order;
    p += put_varint(tmp + p, plan->n);
    if (plan->mode == CL_MODE_BLOCKS) {
        for (i = 0; i < plan->order && i < plan->n; i++) { store_le64(tmp + p, plan->first[i]); p += 8; }
        store_le64(tmp + p, plan->bias);
        p += 8;
    } else if (plan->mode == CL_MODE_RLE) {
        p += put_varint(tmp + p, plan->runs);
    } else if (plan->mode == CL_MODE_SPARSE) {
        store_le64(tmp + p, plan->bias);
        p += 8;
        p += put_varint(tmp + p, plan->runs);
    }
    tmp[p++] = plan->nstreams;
    for (i = 0; i < plan->nstreams; i++) {
        tmp[p++] = plan->codec[i];
        p += put_varint(tmp + p, plan->raw_len[i]);
        p += put_varint(tmp + p, plan->stored_len[i]);
    }
    *len = p;
    if (p > cap) return CL_ERR_SMALL;
    memcpy(out, tmp, p);
    return CL_OK;
}

#define FAIL_AT(st, off) do { *err_offset = (off); return (st); } while (0)

cl_status cl_codec_read_header(const uint8_t *buf, size_t len, cl_codec_plan *plan,
                               size_t *header_len, size_t *err_offset)
{
    size_t p = 4, i, start, raw_at[CL_CODEC_STREAMS] = {0, 0, 0, 0};
    uint64_t m, nb, total = 0, n;
    int st;
    memset(plan, 0, sizeof(*plan));
    if (len < 4) FAIL_AT(CL_ERR_TRUNCATED, len);
    if (buf[0] != CL_CODEC_VERSION) FAIL_AT(CL_ERR_CORRUPT, 0);
    if (buf[1] > CL_MODE_SPARSE) FAIL_AT(CL_ERR_CORRUPT, 1);
    if (buf[2] > 7) FAIL_AT(CL_ERR_CORRUPT, 2);
    if (buf[3] > 2 || (buf[3] != 0 && (buf[1] == CL_MODE_RAW || buf[1] == CL_MODE_SPARSE)) || (buf[3] > 1 && buf[1] == CL_MODE_RLE))
        FAIL_AT(CL_ERR_CORRUPT, 3);
    plan->mode = buf[1];
    plan->is_unsigned = buf[2] & 1;
    plan->width_log2 = buf[2] >> 1;
    plan->order = buf[3];
    start = p;
    if ((st = get_varint(buf, len, &p, &n)) != CL_OK) FAIL_AT((cl_status)st, st == CL_ERR_TRUNCATED ? len : start);
    if (n > CL_CODEC_MAX_N || n > SIZE_MAX / 16) FAIL_AT(CL_ERR_CORRUPT, start);
    plan->n = n;
    if (plan->mode == CL_MODE_BLOCKS) {
        for (i = 0; i < plan->order && i < n; i++) {
            if (len - p < 8) FAIL_AT(CL_ERR_TRUNCATED, len);
            plan->first[i] = load_le64(buf + p);
            p += 8;
        }
        if (len - p < 8) FAIL_AT(CL_ERR_TRUNCATED, len);
        plan->bias = load_le64(buf + p);
        p += 8;
    } else if (plan->mode == CL_MODE_RLE) {
        start = p;
        if ((st = get_varint(buf, len, &p, &plan->runs)) != CL_OK) FAIL_AT((cl_status)st, st == CL_ERR_TRUNCATED ? len : start);
        if (plan->runs > n || (plan->runs == 0) != (n == 0)) FAIL_AT(CL_ERR_CORRUPT, start);
    } else if (plan->mode == CL_MODE_SPARSE) {
        if (len - p < 8) FAIL_AT(CL_ERR_TRUNCATED, len);
        plan->bias = load_le64(buf + p);
        p += 8;
        start = p;
        if ((st = get_varint(buf, len, &p, &plan->runs)) != CL_OK) FAIL_AT((cl_status)st, st == CL_ERR_TRUNCATED ? len : start);
        if (plan->runs > n) FAIL_AT(CL_ERR_CORRUPT, start);
    }
    if (p >= len) FAIL_AT(CL_ERR_TRUNCATED, len);
    if (buf[p] != streams_for_mode(plan->mode)) FAIL_AT(CL_ERR_CORRUPT, p);
    plan->nstreams = buf[p++];
    for (i = 0; i < plan->nstreams; i++) {
        if (p >= len) FAIL_AT(CL_ERR_TRUNCATED, len);
        if (buf[p] > CL_STREAM_ZSTD) FAIL_AT(CL_ERR_CORRUPT, p);
        plan->codec[i] = buf[p++];
        raw_at[i] = start = p;
        if ((st = get_varint(buf, len, &p, &plan->raw_len[i])) != CL_OK) FAIL_AT((cl_status)st, st == CL_ERR_TRUNCATED ? len : start);
        start = p;
        if ((st = get_varint(buf, len, &p, &plan->stored_len[i])) != CL_OK) FAIL_AT((cl_status)st, st == CL_ERR_TRUNCATED ? len : start);
        if (plan->codec[i] == CL_STREAM_RAW && plan->stored_len[i] != plan->raw_len[i]) FAIL_AT(CL_ERR_CORRUPT, start);
        if (plan->stored_len[i] > len) FAIL_AT(CL_ERR_TRUNCATED, len);
    }
    /* raw lengths must be what the mode and counts allow */
    m = residual_count(n, plan->order);
    nb = block_count((size_t)m);
    switch (plan->mode) {
    case CL_MODE_RAW:
        if (plan->raw_len[0] != 8 * n) FAIL_AT(CL_ERR_CORRUPT, raw_at[0]);
        break;
    case CL_MODE_BLOCKS:
        if (plan->raw_len[0] != nb) FAIL_AT(CL_ERR_CORRUPT, raw_at[0]);
        if (plan->raw_len[1] > nb * 16 * 61) FAIL_AT(CL_ERR_CORRUPT, raw_at[1]);
        if (plan->raw_len[2] != m) FAIL_AT(CL_ERR_CORRUPT, raw_at[2]);
        if (plan->raw_len[3] > 10 * m) FAIL_AT(CL_ERR_CORRUPT, raw_at[3]);
        break;
    default:   /* RLE and SPARSE: one varint per run or exception in each stream */
        if (plan->raw_len[0] > 10 * plan->runs) FAIL_AT(CL_ERR_CORRUPT, raw_at[0]);
        if (plan->raw_len[1] > 10 * plan->runs) FAIL_AT(CL_ERR_CORRUPT, raw_at[1]);
        break;
    }
    for (i = 0; i < plan->nstreams; i++) total += plan->stored_len[i];
    if (total > len - p) FAIL_AT(CL_ERR_TRUNCATED, len);
    *header_len = p;
    return CL_OK;
}

/* ---- decoding ---- */

#define FAIL_IN(st, s, off) do { *err_stream = (s); *err_offset = (off); return (st); } while (0)

static inline void unpack_block(const uint8_t *in, unsigned k, uint64_t *out)
{
    uint64_t words[2 * 61 + 1];
    uint64_t mask = ((uint64_t)1 << k) - 1;
    size_t j, w;
    if (k == 0) {
        memset(out, 0, CL_CODEC_BLOCK * sizeof(uint64_t));
        return;
    }
    for (w = 0; w < 2 * (size_t)k; w++) words[w] = load_le64(in + 8 * w);
    words[2 * k] = 0;
    for (j = 0; j < CL_CODEC_BLOCK; j++) {
        size_t pos = j * k, wi = pos >> 6;
        unsigned off = (unsigned)(pos & 63);
        out[j] = ((words[wi] >> off) | ((words[wi + 1] << 1) << (63 - off))) & mask;
    }
}

static cl_status decode_blocks(const cl_codec_plan *plan, const uint8_t *const s[], size_t start, size_t limit,
                               uint64_t *out, size_t *err_stream, size_t *err_offset)
{
    size_t n = (size_t)plan->n, m = residual_count(plan->n, plan->order), nb = block_count(m);
    size_t b, lowpos = 0, escpos = 0, i = 0, nb_used;
    /* the residuals the values below `limit` need (all of them when limit >= n) */
    size_t m_used = limit >= n ? m : residual_count((uint64_t)limit, plan->order);
    size_t lim = limit < n ? limit : n;
    uint64_t need = 0, prev = 0, prevd = 0, bias = plan->bias;
    const uint8_t *K = s[0], *LOW = s[1], *HIGH = s[2], *ESC = s[3];
    uint64_t low[CL_CODEC_BLOCK];
    unsigned order = plan->order;

    for (b = 0; b < nb; b++) {
        if (K[b] > 61) FAIL_IN(CL_ERR_CORRUPT, 0, b);
        need += 16 * (uint64_t)K[b];
    }
    if (need != plan->raw_len[1]) FAIL_IN(CL_ERR_CORRUPT, 1, need < plan->raw_len[1] ? need : plan->raw_len[1]);
    /* the first `order` values come from the header */
    if (order >= 1 && n >= 1) { prev = plan->first[0]; if (start == 0 && lim > 0) out[0] = prev; }
    if (order >= 2 && n >= 2) { prevd = plan->first[1]; prev += prevd; if (start <= 1 && lim > 1) out[1 - start] = prev; }
    nb_used = block_count(m_used);
    for (b = 0; b < nb_used; b++) {
        /* K is checked again where it is used: the input may be shared
         * memory that another thread or process changes while we decode
         * (the GIL is released), and k drives the indexing below. */
        unsigned k = K[b];
        size_t cnt = m - i < CL_CODEC_BLOCK ? m - i : CL_CODEC_BLOCK, j;
        size_t first = i + order;       /* the value index that low[0] ends in */
        const uint8_t *hp = HIGH + i;
        if (k > 61 || 16 * (uint64_t)k > plan->raw_len[1] - lowpos) FAIL_IN(CL_ERR_CORRUPT, 0, b);
        unpack_block(LOW + lowpos, k, low);
        lowpos += 16 * (size_t)k;
        if (k <= 56 && !memchr(hp, 255, cnt)) {
            /* the common case: no escapes, and h << k cannot overflow */
            for (j = 0; j < cnt; j++) low[j] = unzigzag(((uint64_t)hp[j] << k) | low[j]) + bias;
        } else {
            for (j = 0; j < cnt; j++) {
                uint64_t h = hp[j];
                if (h == 255) {
                    uint64_t extra;
                    size_t at = escpos;
                    cl_status st = (cl_status)get_varint(ESC, (size_t)plan->raw_len[3], &escpos, &extra);
                    if (st != CL_OK) FAIL_IN(st, 3, at);
                    h = 255 + extra;
                    if (h < 255 || (k && (h >> (64 - k)))) FAIL_IN(CL_ERR_CORRUPT, 3, at);
                } else if (k > 56 && (h >> (64 - k))) {
                    FAIL_IN(CL_ERR_CORRUPT, 2, i + j);
                }
                low[j] = unzigzag((h << k) | low[j]) + bias;
            }
        }
        /* low[] now holds the deltas of this block; integrate them */
        if (start == 0 && lim == n) {
            /* a whole column: each block straight into out */
            if (order == 0) {
                memcpy(out + i, low, cnt * sizeof(uint64_t));
            } else if (order == 1) {
                uint64_t *o = out + i + 1;
                for (j = 0; j < cnt; j++) { prev += low[j]; o[j] = prev; }
            } else {
                uint64_t *o = out + i + 2;
                for (j = 0; j < cnt; j++) { prevd += low[j]; prev += prevd; o[j] = prev; }
            }
        } else if (first + cnt <= start) {
            /* before the range: only the running sums */
            if (order == 1) {
                for (j = 0; j < cnt; j++) prev += low[j];
            } else if (order == 2) {
                for (j = 0; j < cnt; j++) { prevd += low[j]; prev += prevd; }
            }
        } else {
            /* in the range: out[v - start] for the values v in [start, lim) */
            size_t lo = first < start ? start - first : 0, hi = first + cnt < lim ? cnt : lim - first;
            if (order == 1) {
                for (j = 0; j < cnt; j++) { prev += low[j]; low[j] = prev; }
            } else if (order == 2) {
                for (j = 0; j < cnt; j++) { prevd += low[j]; prev += prevd; low[j] = prev; }
            }
            if (hi > lo) memcpy(out + (first + lo - start), low + lo, (hi - lo) * sizeof(uint64_t));
        }
        i += cnt;
    }
    if (nb_used == nb && escpos != plan->raw_len[3]) FAIL_IN(CL_ERR_CORRUPT, 3, escpos);
    return CL_OK;
}

/* RLE and SPARSE read every run (they are few) and write the values in [start, lim). */
static cl_status decode_rle(const cl_codec_plan *plan, const uint8_t *const s[], size_t start, size_t lim,
                            uint64_t *out, size_t *err_stream, size_t *err_offset)
{
    size_t vpos = 0, lpos = 0, i = 0, r;
    uint64_t value = 0, n = plan->n;
    for (r = 0; r < plan->runs; r++) {
        uint64_t dz, extra, len, j, lo, hi;
        size_t at = vpos;
        cl_status st = (cl_status)get_varint(s[0], (size_t)plan->raw_len[0], &vpos, &dz);
        if (st != CL_OK) FAIL_IN(st, 0, at);
        at = lpos;
        st = (cl_status)get_varint(s[1], (size_t)plan->raw_len[1], &lpos, &extra);
        if (st != CL_OK) FAIL_IN(st, 1, at);
        if (extra >= n - i) FAIL_IN(CL_ERR_CORRUPT, 1, at);   /* run past the end */
        len = extra + 1;
        value = (plan->order ? value : 0) + unzigzag(dz);
        lo = i > start ? i : start;
        hi = i + len < lim ? i + len : lim;
        for (j = lo; j < hi; j++) out[j - start] = value;
        i += (size_t)len;
    }
    if (i != n) FAIL_IN(CL_ERR_CORRUPT, 1, lpos);
    if (vpos != plan->raw_len[0]) FAIL_IN(CL_ERR_CORRUPT, 0, vpos);
    if (lpos != plan->raw_len[1]) FAIL_IN(CL_ERR_CORRUPT, 1, lpos);
    return CL_OK;
}

static cl_status decode_sparse(const cl_codec_plan *plan, const uint8_t *const s[], size_t start, size_t lim,
                               uint64_t *out, size_t *err_stream, size_t *err_offset)
{
    size_t gpos = 0, vpos = 0, i = 0, r, j, n = (size_t)plan->n;
    uint64_t dflt = plan->bias;
    for (j = start; j < lim; j++) out[j - start] = dflt;
    for (r = 0; r < plan->runs; r++) {
        uint64_t gap, dz;
        size_t at = gpos;
        cl_status st = (cl_status)get_varint(s[0], (size_t)plan->raw_len[0], &gpos, &gap);
        if (st != CL_OK) FAIL_IN(st, 0, at);
        if (gap >= (uint64_t)(n - i)) FAIL_IN(CL_ERR_CORRUPT, 0, at);   /* past the end */
        at = vpos;
        st = (cl_status)get_varint(s[1], (size_t)plan->raw_len[1], &vpos, &dz);
        if (st != CL_OK) FAIL_IN(st, 1, at);
        i += (size_t)gap;
        if (i >= start && i < lim) out[i - start] = dflt + unzigzag(dz);
        i++;
    }
    if (gpos != plan->raw_len[0]) FAIL_IN(CL_ERR_CORRUPT, 0, gpos);
    if (vpos != plan->raw_len[1]) FAIL_IN(CL_ERR_CORRUPT, 1, vpos);
    return CL_OK;
}

cl_status cl_codec_decode(const cl_codec_plan *plan, const uint8_t *const streams[CL_CODEC_STREAMS],
                          uint64_t *out, size_t *err_stream, size_t *err_offset)
{
    return cl_codec_decode_prefix(plan, streams, (size_t)plan->n, out, err_stream, err_offset);
}

cl_status cl_codec_decode_prefix(const cl_codec_plan *plan, const uint8_t *const streams[CL_CODEC_STREAMS],
                                 size_t limit, uint64_t *out, size_t *err_stream, size_t *err_offset)
{
    return cl_codec_decode_range(plan, streams, 0, limit, out, err_stream, err_offset);
}

cl_status cl_codec_decode_range(const cl_codec_plan *plan, const uint8_t *const streams[CL_CODEC_STREAMS],
                                size_t start, size_t limit, uint64_t *out, size_t *err_stream, size_t *err_offset)
{
    size_t i, lim = limit < plan->n ? limit : (size_t)plan->n;
    if (start > lim) start = lim;
    switch (plan->mode) {
    case CL_MODE_RAW:
        for (i = start; i < lim; i++) out[i - start] = load_le64(streams[0] + 8 * i);
        return CL_OK;
    case CL_MODE_BLOCKS:
        return decode_blocks(plan, streams, start, limit, out, err_stream, err_offset);
    case CL_MODE_RLE:
        return decode_rle(plan, streams, start, lim, out, err_stream, err_offset);
    case CL_MODE_SPARSE:
        return decode_sparse(plan, streams, start, lim, out, err_stream, err_offset);
    default:
        FAIL_IN(CL_ERR_CORRUPT, 0, 0);
    }
}
