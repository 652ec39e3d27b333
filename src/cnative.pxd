# Declarations of the C99 kernels in native/; nothing else belongs here.
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t


cdef extern from "cl_status.h" nogil:
    ctypedef enum cl_status:
        CL_OK
        CL_ERR_NOMEM
        CL_ERR_ARG
        CL_ERR_RANGE
        CL_ERR_CORRUPT
        CL_ERR_TRUNCATED
        CL_ERR_ORDER
        CL_ERR_UNSUPPORTED
        CL_ERR_SMALL
        CL_ERR_SQLITE
        CL_STATUS_COUNT


cdef extern from "cl_crc64.h" nogil:
    ctypedef enum cl_crc64_impl:
        CL_CRC64_AUTO
        CL_CRC64_TABLE
        CL_CRC64_PCLMUL
        CL_CRC64_VPCLMUL
    void cl_crc64_init()
    uint64_t cl_crc64(uint64_t crc, const void *data, size_t length)
    cl_status cl_crc64_with(cl_crc64_impl impl, uint64_t crc, const void *data,
                            size_t length, uint64_t *out)
    int cl_crc64_supported(cl_crc64_impl impl)
    cl_crc64_impl cl_crc64_best()
    const char *cl_crc64_impl_name(cl_crc64_impl impl)


cdef extern from "cl_quant.h" nogil:
    cl_status cl_quantize_f64(const double *inp, size_t n, double inv_scale,
                              int64_t *out, size_t *bad_index)
    cl_status cl_quantize_f32(const float *inp, size_t n, double inv_scale,
                              int64_t *out, size_t *bad_index)
    cl_status cl_dequantize_f64(const int64_t *inp, size_t n, double inv_scale, double *out)
    cl_status cl_dequantize_f32(const int64_t *inp, size_t n, double inv_scale, float *out)
    int cl_quant_simd(int enable)
    int cl_quantize_one(double v, double inv_scale, int64_t *out)


cdef extern from "cl_appendbuf.h" nogil:
    ctypedef struct cl_appendbuf:
        pass
    ctypedef struct cl_appendbuf_stats:
        size_t window
        size_t pending
        size_t ready
        uint64_t count
        uint64_t windows
        int has_floor
        uint64_t floor
    cl_status cl_appendbuf_new(size_t window, cl_appendbuf **out)
    void cl_appendbuf_free(cl_appendbuf *b)
    cl_status cl_appendbuf_push(cl_appendbuf *b, uint64_t ts, const uint64_t *payload,
                                uint64_t *floor, int *sealed)
    cl_status cl_appendbuf_push_many(cl_appendbuf *b, const uint64_t *ts,
                                     const uint64_t *payload, size_t n,
                                     size_t *n_done, uint64_t *floor)
    cl_status cl_appendbuf_seal(cl_appendbuf *b)
    cl_status cl_appendbuf_peek(cl_appendbuf *b, uint64_t *ts_out, uint64_t *payload_out,
                                size_t cap, size_t *n_out)
    cl_status cl_appendbuf_consume(cl_appendbuf *b, size_t n)
    void cl_appendbuf_get_stats(cl_appendbuf *b, cl_appendbuf_stats *out)
    cl_status cl_appendbuf_set_floor(cl_appendbuf *b, int has_floor, uint64_t floor)


cdef extern from "cl_stage.h" nogil:
    int cl_stage_storable(double v, double inv, int f32, int finite_only)
    size_t cl_stage_first_bad_f64(const double *v, ptrdiff_t stride, size_t n, double inv, int f32, int finite_only)
    size_t cl_stage_first_bad_f32(const float *v, ptrdiff_t stride, size_t n, double inv, int finite_only)
    void cl_stage_widen_f32(const float *v, ptrdiff_t stride, size_t n, double *out)
    void cl_stage_copy_f64(const double *v, ptrdiff_t stride, size_t n, double *out)
    size_t cl_stage_scan_ts(const uint64_t *ts, size_t n, int has_floor, uint64_t floor, uint64_t *last, int *sorted)
    size_t cl_stage_exceptions(const double *v, size_t n, uint32_t *at)


cdef extern from "cl_codec.h" nogil:
    enum:
        CL_CODEC_VERSION
        CL_CODEC_BLOCK
        CL_CODEC_STREAMS
        CL_CODEC_HEADER_MAX
        CL_MODE_RAW
        CL_MODE_BLOCKS
        CL_MODE_RLE
        CL_MODE_SPARSE
        CL_STREAM_RAW
        CL_STREAM_ZSTD
    ctypedef struct cl_codec_plan:
        uint8_t mode
        uint8_t order
        uint8_t is_unsigned
        uint8_t width_log2
        uint64_t n
        uint64_t first[2]
        uint64_t bias
        uint64_t runs
        uint8_t nstreams
        uint8_t codec[4]
        uint64_t raw_len[4]
        uint64_t stored_len[4]
    void cl_codec_bounds(size_t n, size_t bounds[4])
    void cl_codec_sample(const uint64_t *v, size_t n, size_t *taken, size_t *runs,
                         uint64_t *mode_value, size_t *mode_count)
    size_t cl_codec_count_runs(const uint64_t *v, size_t n)
    cl_status cl_codec_encode_blocks(const uint64_t *v, size_t n, int order, int is_unsigned,
                                     cl_codec_plan *plan, uint8_t **streams)
    cl_status cl_codec_encode_rle(const uint64_t *v, size_t n, int delta, int is_unsigned,
                                  cl_codec_plan *plan, uint8_t **streams)
    size_t cl_codec_count_exceptions(const uint64_t *v, size_t n, uint64_t dflt)
    cl_status cl_codec_encode_sparse(const uint64_t *v, size_t n, uint64_t dflt, int is_unsigned,
                                     cl_codec_plan *plan, uint8_t **streams)
    size_t cl_codec_header_size(const cl_codec_plan *plan)
    cl_status cl_codec_write_header(const cl_codec_plan *plan, uint8_t *out, size_t cap, size_t *length)
    cl_status cl_codec_read_header(const uint8_t *buf, size_t length, cl_codec_plan *plan,
                                   size_t *header_len, size_t *err_offset)
    cl_status cl_codec_decode(const cl_codec_plan *plan, const uint8_t **streams,
                              uint64_t *out, size_t *err_stream, size_t *err_offset)
    cl_status cl_codec_decode_prefix(const cl_codec_plan *plan, const uint8_t **streams, size_t limit,
                              uint64_t *out, size_t *err_stream, size_t *err_offset)
    cl_status cl_codec_decode_range(const cl_codec_plan *plan, const uint8_t **streams, size_t start,
                                    size_t limit, uint64_t *out, size_t *err_stream, size_t *err_offset)


cdef extern from "cl_mutex.h" nogil:
    ctypedef struct cl_mutex:
        pass
    int cl_mutex_init(cl_mutex *m)
    void cl_mutex_destroy(cl_mutex *m)
    void cl_mutex_lock(cl_mutex *m)
    int cl_mutex_trylock(cl_mutex *m)
    void cl_mutex_unlock(cl_mutex *m)


cdef extern from "cl_libyaml.h" nogil:
    ctypedef struct cl_yaml_mark:
        size_t index
        size_t line
        size_t column
    ctypedef enum cl_yaml_event_type:
        CL_YAML_NO_EVENT
        CL_YAML_STREAM_START
        CL_YAML_STREAM_END
        CL_YAML_DOCUMENT_START
        CL_YAML_DOCUMENT_END
        CL_YAML_ALIAS
        CL_YAML_SCALAR
        CL_YAML_SEQUENCE_START
        CL_YAML_SEQUENCE_END
        CL_YAML_MAPPING_START
        CL_YAML_MAPPING_END
    # Only the members read from Cython are declared; the three member types
    # below are never named in C (the header's are anonymous), only accessed.
    ctypedef struct _cl_yaml_scalar:
        unsigned char *anchor
        unsigned char *tag
        unsigned char *value
        size_t length
        int plain_implicit
    ctypedef struct _cl_yaml_collection:
        unsigned char *anchor
        unsigned char *tag
    ctypedef union _cl_yaml_event_data:
        _cl_yaml_scalar scalar
        _cl_yaml_collection sequence_start
        _cl_yaml_collection mapping_start
    ctypedef struct cl_yaml_event:
        cl_yaml_event_type type
        _cl_yaml_event_data data
        cl_yaml_mark start_mark
    ctypedef struct cl_yaml_parser:
        pass
    cl_status cl_libyaml_bind(const char *path, char *version)
    int cl_libyaml_bound()
    cl_status cl_yaml_parser_init(cl_yaml_parser *parser, const unsigned char *input, size_t length)
    int cl_yaml_parse(cl_yaml_parser *parser, cl_yaml_event *event)
    void cl_yaml_event_delete(cl_yaml_event *event)
    void cl_yaml_parser_delete(cl_yaml_parser *parser)


cdef extern from "cl_sqlbulk.h" nogil:
    ctypedef enum cl_sqlcol_kind:
        CL_SQLCOL_NULL
        CL_SQLCOL_I64
        CL_SQLCOL_F64
        CL_SQLCOL_MIXED
        CL_SQLCOL_CONST_I64
        CL_SQLCOL_CONST_F64
        CL_SQLCOL_CONST_TEXT
        CL_SQLCOL_CONST_BLOB
    ctypedef enum cl_sqlval_tag:
        CL_SQLVAL_NULL
        CL_SQLVAL_I64
        CL_SQLVAL_F64
        CL_SQLVAL_TEXT
        CL_SQLVAL_BLOB
    ctypedef struct cl_sqlcol:
        int kind
        const uint8_t *tag
        const int64_t *i64
        const double *f64
        const char *const *text
        const int64_t *text_len
        int64_t ci
        double cf
        const char *ct
        int64_t ct_len
    int cl_sqlbulk_bound()
    int cl_sqlbulk_version()
    cl_status cl_sqlbulk_insert(void *db, const char *sql, const cl_sqlcol *cols, int ncols, int64_t nrows,
                                int64_t *changes, int64_t *failed_row, int *sqlite_code,
                                char *errmsg, size_t errmsg_len)


cdef extern from "cl_floatbits.h" nogil:
    void cl_f64_to_ordered(const double *inp, size_t n, uint64_t *out)
    void cl_f32_to_ordered(const float *inp, size_t n, uint32_t *out)
    void cl_f64_to_ordered32(const double *inp, size_t n, uint32_t *out)
    cl_status cl_ordered_to_f32(const uint64_t *inp, size_t n, float *out, size_t *bad_index)
    void cl_ordered_to_f64(const uint64_t *inp, size_t n, double *out)
