# cython: language_level=3, boundscheck=False, wraparound=False, embedsignature=True
"""Many rows into an apsw connection through one prepared statement, given
as columns (native/cl_sqlbulk.h says why and how SQLite is reached).

Use it through :func:`chronoledger.sqlite.insert_columns`, which falls back
to ``executemany`` where this module cannot be bound.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memset

cimport numpy as cnp

from cnative cimport *

import numpy as np

from chronoledger import errors as _errors

cnp.import_array()

#: The entry point SQLite calls when apsw loads this file as an extension.
ENTRY_POINT = "cl_sqlbulk_entry"
_INT64_MAX = 2 ** 63 - 1


def bound() -> bool:
    """Whether SQLite's function table is known (see :func:`bind`)."""
    return cl_sqlbulk_bound() != 0


def sqlite_version_number() -> int:
    """The bound SQLite's version number (3054001 for 3.54.1), 0 if unbound."""
    return cl_sqlbulk_version()


def bind() -> bool:
    """Get SQLite's function table, once per process: this module is loaded
    as a SQLite extension into a private in-memory apsw connection (so no
    caller's connection has its extension-loading setting changed).  The
    table is the library's, shared by every apsw connection.  False if it
    cannot be done (a SQLite built without extension loading, or older than
    3.45)."""
    if cl_sqlbulk_bound():
        return True
    import apsw

    try:
        private = apsw.Connection(":memory:")
        try:
            private.enable_load_extension(True)
            private.load_extension(__file__, ENTRY_POINT)
        finally:
            private.close()
    except Exception:
        return False
    return cl_sqlbulk_bound() != 0


cdef class _Columns:
    """The C view of a batch of columns, and every object it points into."""
    cdef cl_sqlcol *cols
    cdef int ncols
    cdef list keep
    cdef list buffers

    def __cinit__(self, int ncols):
        self.cols = <cl_sqlcol *>PyMem_Malloc(max(ncols, 1) * sizeof(cl_sqlcol))
        if self.cols == NULL:
            raise MemoryError()
        memset(self.cols, 0, max(ncols, 1) * sizeof(cl_sqlcol))
        self.ncols = ncols
        self.keep = []
        self.buffers = []

    def __dealloc__(self):
        PyMem_Free(self.cols)

    cdef void *alloc(self, size_t size) except NULL:
        # numpy owns the scratch memory: freed with this object, never leaked on an error
        buf = np.empty(max(size, 1), dtype=np.uint8)
        self.buffers.append(buf)
        return cnp.PyArray_DATA(buf)

    cdef int fill(self, int j, object value, Py_ssize_t n) except -1:
        cdef cl_sqlcol *col = &self.cols[j]
        cdef cnp.ndarray arr
        cdef bytes b
        if value is None:
            col.kind = CL_SQLCOL_NULL
        elif isinstance(value, str):
            b = (<str>value).encode("utf-8")
            self.keep.append(b)
            col.kind = CL_SQLCOL_CONST_TEXT
            col.ct = b
            col.ct_len = len(b)
        elif isinstance(value, bytes):
            self.keep.append(value)
            col.kind = CL_SQLCOL_CONST_BLOB
            col.ct = <bytes>value
            col.ct_len = len(<bytes>value)
        elif isinstance(value, (int, np.integer)):
            col.kind = CL_SQLCOL_CONST_I64
            try:
                col.ci = int(value)
            except OverflowError:
                raise OverflowError(f"column {j}: {value} does not fit SQLite's 64-bit integers") from None
        elif isinstance(value, (float, np.floating)):
            col.kind = CL_SQLCOL_CONST_F64
            col.cf = float(value)
        elif isinstance(value, np.ndarray) and (<cnp.ndarray>value).dtype.kind in "biuf":
            arr = value
            if arr.ndim != 1 or arr.shape[0] != n:
                raise ValueError(f"column {j}: {n} values wanted, got an array of shape {value.shape}")
            if arr.dtype.kind == "f":
                arr = np.ascontiguousarray(arr, dtype=np.float64)
                col.kind = CL_SQLCOL_F64
                col.f64 = <const double *>cnp.PyArray_DATA(arr)
            else:
                if arr.dtype.kind == "u" and n and arr.max() > _INT64_MAX:
                    raise OverflowError(f"column {j}: row {int(np.argmax(arr > _INT64_MAX))} does not fit SQLite's "
                                        f"64-bit integers")
                arr = np.ascontiguousarray(arr, dtype=np.int64)
                col.kind = CL_SQLCOL_I64
                col.i64 = <const int64_t *>cnp.PyArray_DATA(arr)
            self.keep.append(arr)
        elif isinstance(value, (list, tuple, np.ndarray)):
            self.fill_sequence(j, tuple(value.tolist() if isinstance(value, np.ndarray) else value), n)
        else:
            raise TypeError(f"column {j}: a {type(value).__name__} is neither a value nor a column of values")
        return 0

    cdef int fill_sequence(self, int j, tuple values, Py_ssize_t n) except -1:
        # Each row keeps its own type, as executemany would bind it.  The tuple
        # holds every item for the whole call: texts and blobs are bound by pointer.
        cdef cl_sqlcol *col = &self.cols[j]
        cdef Py_ssize_t r, size
        cdef uint8_t *tag
        cdef int64_t *ints
        cdef double *floats
        cdef const char **text
        cdef int64_t *lens
        cdef object v
        if len(values) != n:
            raise ValueError(f"column {j}: {n} values wanted, got {len(values)}")
        self.keep.append(values)
        tag = <uint8_t *>self.alloc(n)
        ints = <int64_t *>self.alloc(n * sizeof(int64_t))
        floats = <double *>self.alloc(n * sizeof(double))
        text = <const char **>self.alloc(n * sizeof(char *))
        lens = <int64_t *>self.alloc(n * sizeof(int64_t))
        for r in range(n):
            v = values[r]
            if v is None:
                tag[r] = CL_SQLVAL_NULL
            elif isinstance(v, str):
                text[r] = PyUnicode_AsUTF8AndSize(v, &size)
                lens[r] = size
                tag[r] = CL_SQLVAL_TEXT
            elif isinstance(v, (int, np.integer, np.bool_)):
                try:
                    ints[r] = int(v)
                except OverflowError:
                    raise OverflowError(f"column {j}: row {r} ({v}) does not fit SQLite's 64-bit integers") from None
                tag[r] = CL_SQLVAL_I64
            elif isinstance(v, (float, np.floating)):
                floats[r] = v
                tag[r] = CL_SQLVAL_F64
            elif isinstance(v, bytes):
                text[r] = <bytes>v
                lens[r] = len(<bytes>v)
                tag[r] = CL_SQLVAL_BLOB
            else:
                raise TypeError(f"column {j}: row {r} is a {type(v).__name__}, which SQLite cannot store")
        col.kind = CL_SQLCOL_MIXED
        col.tag = tag
        col.i64 = ints
        col.f64 = floats
        col.text = text
        col.text_len = lens
        return 0


cdef class _Job:
    cdef bytes sql
    cdef str text
    cdef _Columns cols
    cdef Py_ssize_t n


cdef _Job _job(str sql, columns, Py_ssize_t n):
    if n < 0:
        raise ValueError(f"n must not be negative, got {n}")
    columns = list(columns)
    cdef _Job job = _Job()
    cdef int j
    job.text = sql
    job.sql = sql.encode("utf-8")
    job.n = n
    job.cols = _Columns(len(columns))
    for j in range(len(columns)):
        job.cols.fill(j, columns[j], n)
    return job


def insert(conn, str sql, columns, Py_ssize_t n) -> int:
    """Run ``sql`` (one statement with one ``?`` per column) once for each of
    ``n`` rows and return how many rows it changed.  A column is a value for
    every row (None, int, float, str; bytes for a blob), a numpy array of
    numbers, or a sequence of str, int or float (None is SQL NULL).  Errors
    from SQLite are apsw's exception classes, with the failing row in the
    message; rows before it stay written, so call it inside a transaction."""
    return insert_many(conn, [(sql, columns, n)])[0]


def insert_many(conn, jobs) -> list:
    """:func:`insert` for each ``(sql, columns, n)`` in turn, with the GIL
    released once for all of them; the changes of each.  Every column is
    checked before any row is written."""
    if not cl_sqlbulk_bound():
        raise _errors.status_error(CL_ERR_UNSUPPORTED, "chronoledger._sqlbulk", "not bound to SQLite; call bind() first")
    cdef list prepared = [_job(sql, columns, n) for sql, columns, n in jobs]     # all checked before any runs
    cdef Py_ssize_t njobs = len(prepared), k
    cdef void *db = <void *><size_t>conn.sqlite3_pointer()
    cdef int64_t *changes = <int64_t *>PyMem_Malloc(max(njobs, 1) * sizeof(int64_t))
    cdef cl_sqlcol **cols = <cl_sqlcol **>PyMem_Malloc(max(njobs, 1) * sizeof(cl_sqlcol *))
    cdef const char **sqls = <const char **>PyMem_Malloc(max(njobs, 1) * sizeof(char *))
    cdef int *ncols = <int *>PyMem_Malloc(max(njobs, 1) * sizeof(int))
    cdef int64_t *nrows = <int64_t *>PyMem_Malloc(max(njobs, 1) * sizeof(int64_t))
    cdef int64_t failed_row = -1
    cdef int code = 0
    cdef char errmsg[512]
    cdef cl_status st = CL_OK
    cdef _Job job
    try:
        if changes == NULL or cols == NULL or sqls == NULL or ncols == NULL or nrows == NULL:
            raise MemoryError()
        for k in range(njobs):
            job = prepared[k]
            changes[k] = 0
            cols[k] = job.cols.cols
            sqls[k] = job.sql
            ncols[k] = job.cols.ncols
            nrows[k] = job.n
        errmsg[0] = 0
        k = 0
        with nogil:
            while k < njobs:
                st = cl_sqlbulk_insert(db, sqls[k], cols[k], ncols[k], nrows[k], &changes[k], &failed_row, &code,
                                       errmsg, sizeof(errmsg))
                if st != CL_OK:
                    break
                k += 1
        if st == CL_OK:
            return [changes[k] for k in range(njobs)]
        raise _error(st, (<_Job>prepared[k]).text, ncols[k], failed_row, code, errmsg.decode("utf-8", "replace"))
    finally:
        PyMem_Free(changes)
        PyMem_Free(cols)
        PyMem_Free(sqls)
        PyMem_Free(ncols)
        PyMem_Free(nrows)


cdef object _error(cl_status st, str sql, int ncols, int64_t row, int code, str message):
    """The exception for a status: SQLite's own failures are apsw's class for
    the result code (as executemany would raise; chronoledger.sqlite.sqlite_error
    maps those), the rest come from the one table, chronoledger.errors.status_error."""
    what = sql.split("(")[0].strip()
    if st == CL_ERR_SQLITE:
        import apsw

        exc = apsw.exception_for(code)
        exc.args = (f"{what}: {f'row {row}' if row >= 0 else 'preparing'}: {message}",)
        return exc
    # the class is the table's; the reason, where this module knows a better one
    why = (f"not one statement that writes rows with {ncols} parameter(s)" if st == CL_ERR_ARG else
           "chronoledger._sqlbulk is not bound to SQLite" if st == CL_ERR_UNSUPPORTED else None)
    return _errors.status_error(st, repr(sql), why)
