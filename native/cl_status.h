/* cl_status.h - the one status enum every chronoledger kernel returns.
 *
 * Kernels never allocate Python objects and never raise: they return a
 * cl_status and write results through out-pointers.  The Cython layer turns a
 * status into an exception with one table-driven function, shared by every
 * extension (python/chronoledger/errors.py: status_error, which holds these
 * numbers; tests/test_errors.py checks they agree), so every code here has
 * exactly one Python exception class.
 */
#ifndef CL_STATUS_H
#define CL_STATUS_H

typedef enum cl_status {
    CL_OK = 0,
    CL_ERR_NOMEM = 1,       /* an allocation failed                        -> MemoryError */
    CL_ERR_ARG = 2,         /* a caller passed an invalid argument         -> ValueError */
    CL_ERR_RANGE = 3,       /* NaN, infinity or a value outside int64      -> QuantizationError */
    CL_ERR_CORRUPT = 4,     /* untrusted bytes are malformed               -> CorruptDataError */
    CL_ERR_TRUNCATED = 5,   /* untrusted bytes end before they should      -> TruncatedError */
    CL_ERR_ORDER = 6,       /* a timestamp older than the last flushed one -> OrderError */
    CL_ERR_UNSUPPORTED = 7, /* the CPU or build lacks what is asked for    -> UnsupportedError */
    CL_ERR_SMALL = 8,       /* an output buffer is too small (caller bug)  -> ValueError */
    CL_ERR_SQLITE = 9,      /* SQLite refused (code in an out-param)       -> apsw's class for the code (_sqlbulk),
                               which chronoledger.sqlite.sqlite_error maps */
    CL_STATUS_COUNT = 10
} cl_status;

#endif
