/* cl_codec.h - integer column codec: delta / delta-of-delta, zigzag, blocked
 * bit-packing with an escape-coded high part, and run-length coding.
 *
 * A column of n 64-bit integers (int64 or uint64; arithmetic wraps mod 2^64,
 * so every bit pattern round-trips) is turned into up to four byte streams.
 * The caller (the Cython layer) may pass some streams through zstd and then
 * writes the header with cl_codec_write_header; docs/FORMAT.md gives the
 * exact layout.  Modes:
 *
 *   RAW     stream 0: the n values, 8 bytes little-endian each.
 *   BLOCKS  residuals r = zigzag(delta^order(v) - bias), m = n - order of them,
 *           in blocks of 128 (the last padded with zeros).  Each block has a
 *           bit width k chosen from the block mean; the low k bits of every
 *           residual are bit-packed, the high part (r >> k, small) is one
 *           byte each, with 255 escaping to a varint.
 *           stream 0 K    one byte per block: k (0..61)
 *           stream 1 LOW  per block, 16*k bytes: 128 k-bit fields, LSB first
 *           stream 2 HIGH m bytes: min(r >> k, 255)
 *           stream 3 ESC  for each 255 in HIGH, ULEB128 of (r >> k) - 255
 *           The high part is where the distribution's shape lives, so it is
 *           the stream worth entropy-coding (zstd); LOW is close to uniform.
 *   RLE     stream 0 RUNVAL  per run, ULEB128 of zigzag(value) (order 0) or of
 *                            zigzag(value - previous run's value) (order 1)
 *           stream 1 RUNLEN  per run, ULEB128 of (length - 1)
 *   SPARSE  a default value and the exceptions to it (an optional field
 *           that is mostly absent):
 *           stream 0 GAPS  per exception, ULEB128 of the count of default
 *                          values since the previous exception
 *           stream 1 VALS  per exception, ULEB128 of zigzag(value - default)
 *
 * Ownership: the caller owns every buffer.  Encoders write at most
 * cl_codec_bounds() bytes per stream and allocate nothing.  Decoders treat all
 * input as untrusted: every length is checked before use, and a failure
 * reports the stream and the byte offset inside it.
 */
#ifndef CL_CODEC_H
#define CL_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include "cl_status.h"

#define CL_CODEC_VERSION 1
#define CL_CODEC_BLOCK 128
#define CL_CODEC_STREAMS 4
#define CL_CODEC_MAX_N ((uint64_t)1 << 40)   /* refuse absurd counts in headers */

enum { CL_MODE_RAW = 0, CL_MODE_BLOCKS = 1, CL_MODE_RLE = 2, CL_MODE_SPARSE = 3 };
enum { CL_STREAM_RAW = 0, CL_STREAM_ZSTD = 1 };

typedef struct cl_codec_plan {
    uint8_t mode;          /* CL_MODE_* */
    uint8_t order;         /* BLOCKS: 0, 1 or 2; RLE: 0 or 1 */
    uint8_t is_unsigned;   /* informational: which dtype to give back ... */
    uint8_t width_log2;    /* ... and its width: 1 << width_log2 bytes (0..3) */
    uint64_t n;            /* values in the column */
    uint64_t first[2];     /* BLOCKS: v[0] (order >= 1) and v[1]-v[0] (order 2) */
    uint64_t bias;         /* BLOCKS: subtracted from every delta before zigzag;
                              SPARSE: the default value */
    uint64_t runs;         /* RLE: number of runs; SPARSE: number of exceptions */
    uint8_t nstreams;
    uint8_t codec[CL_CODEC_STREAMS];        /* CL_STREAM_* as stored */
    uint64_t raw_len[CL_CODEC_STREAMS];     /* bytes of each stream before zstd */
    uint64_t stored_len[CL_CODEC_STREAMS];  /* bytes of each stream as stored */
} cl_codec_plan;

/* Worst-case bytes of each raw stream for an n-value column, any mode. */
void cl_codec_bounds(size_t n, size_t bounds[CL_CODEC_STREAMS]);

/* Looks at up to CL_CODEC_SAMPLE evenly spaced values of v[0..n): how many
 * were taken, how many runs they form, and their majority value (the one
 * that holds more than half of them, if any; otherwise an arbitrary one) and
 * its count.  The encoder uses this to decide whether RLE or SPARSE is worth
 * trying before it counts exactly. */
#define CL_CODEC_SAMPLE 1024
void cl_codec_sample(const uint64_t *v, size_t n, size_t *taken, size_t *runs,
                     uint64_t *mode_value, size_t *mode_count);

/* Number of runs of equal values (0 for n == 0). */
size_t cl_codec_count_runs(const uint64_t *v, size_t n);

/* Encode in BLOCKS mode (or RAW, when packing would not beat 8 bytes a
 * value).  order -1 picks the order and bias that give the smallest estimate;
 * 0..2 forces the order.  Fills plan (codec[] = RAW, stored_len = raw_len) and
 * streams[i][0..plan->raw_len[i]). */
cl_status cl_codec_encode_blocks(const uint64_t *v, size_t n, int order, int is_unsigned,
                                 cl_codec_plan *plan, uint8_t *const streams[CL_CODEC_STREAMS]);

/* Encode in RLE mode; delta selects order 1 for the run values. */
cl_status cl_codec_encode_rle(const uint64_t *v, size_t n, int delta, int is_unsigned,
                              cl_codec_plan *plan, uint8_t *const streams[CL_CODEC_STREAMS]);

/* Values in v[0..n) that differ from dflt. */
size_t cl_codec_count_exceptions(const uint64_t *v, size_t n, uint64_t dflt);

/* Encode in SPARSE mode around the default value dflt. */
cl_status cl_codec_encode_sparse(const uint64_t *v, size_t n, uint64_t dflt, int is_unsigned,
                                 cl_codec_plan *plan, uint8_t *const streams[CL_CODEC_STREAMS]);

/* Bytes the header of plan takes (at most CL_CODEC_HEADER_MAX). */
#define CL_CODEC_HEADER_MAX 128
size_t cl_codec_header_size(const cl_codec_plan *plan);
cl_status cl_codec_write_header(const cl_codec_plan *plan, uint8_t *out, size_t cap, size_t *len);

/* Parse and check a header from untrusted bytes.  On success *header_len is
 * where the first stream starts; the streams follow back to back and their
 * stored lengths add up to no more than len - *header_len.  On failure
 * *err_offset is the offset of the bad byte. */
cl_status cl_codec_read_header(const uint8_t *buf, size_t len, cl_codec_plan *plan,
                               size_t *header_len, size_t *err_offset);

/* Decode from raw (already decompressed) streams whose lengths are
 * plan->raw_len[i].  out receives plan->n values.  On failure *err_stream and
 * *err_offset name the stream and the byte offset inside it. */
cl_status cl_codec_decode(const cl_codec_plan *plan, const uint8_t *const streams[CL_CODEC_STREAMS],
                          uint64_t *out, size_t *err_stream, size_t *err_offset);

/* As cl_codec_decode, for the first min(limit, plan->n) values only (out
 * needs room for those).  The parts of the BLOCKS streams past what those
 * values need are not read, so damage there is not noticed (a full decode
 * notices it). */
cl_status cl_codec_decode_prefix(const cl_codec_plan *plan, const uint8_t *const streams[CL_CODEC_STREAMS],
                                 size_t limit, uint64_t *out, size_t *err_stream, size_t *err_offset);

/* The values [start, min(limit, plan->n)) only, into out[0 ..): out needs
 * room for exactly those.  The values before `start` are still decoded (a
 * delta-coded column is a running sum) but never stored, so a few rows from
 * the middle of a long column touch little memory. */
cl_status cl_codec_decode_range(const cl_codec_plan *plan, const uint8_t *const streams[CL_CODEC_STREAMS],
                                size_t start, size_t limit, uint64_t *out, size_t *err_stream, size_t *err_offset);

#endif
