# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, embedsignature=True
"""The compiled core of chronoledger: CRC-64/XZ, fixed-point quantization,
integer column codecs and the ordered append buffer.

Inputs are taken through the buffer protocol without copying; outputs are
numpy arrays; the GIL is released around pure C loops on large inputs.  Users
import these through :mod:`chronoledger.core`.
"""

cimport numpy as cnp
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_CheckExact
from libc.stdint cimport uint8_t, uint64_t, int64_t
from libc.math cimport isnan, isinf

import threading

import numpy as np

from chronoledger import errors as _errors

from cnative cimport *

cnp.import_array()
cl_crc64_init()
cl_quant_simd(-1)

# Above this many bytes the GIL is released around the CRC loop; below it the
# release/reacquire (about 100 ns) would cost more than it frees.
cdef enum:
    GIL_RELEASE_BYTES = 32768


# ---------------------------------------------------------------------------
# status -> exception: the one table is chronoledger.errors.status_error, shared by
# every extension; CL_OK is tested here in C, so only a failure calls into Python

cdef int raise_status(cl_status st, str what, str why=None, object offset=None) except -1:
    """Raise the exception the table assigns to ``st`` as "what: why"."""
    if st == CL_OK:
        return 0
    raise _errors.status_error(<int>st, what, why, offset)


# ---------------------------------------------------------------------------
# CRC-64/XZ

cdef dict _IMPLS = {"auto": CL_CRC64_AUTO, "table": CL_CRC64_TABLE,
                    "pclmul": CL_CRC64_PCLMUL, "vpclmul": CL_CRC64_VPCLMUL}


cdef inline uint64_t _crc_span(cl_crc64_impl impl, uint64_t crc, const char *p,
                               Py_ssize_t n) except? 0xFFFFFFFFFFFFFFFF:
    cdef uint64_t out = 0
    cdef cl_status st
    if impl == CL_CRC64_AUTO:
        if n >= GIL_RELEASE_BYTES:
            with nogil:
                out = cl_crc64(crc, p, <size_t>n)
            return out
        return cl_crc64(crc, p, <size_t>n)
    if n >= GIL_RELEASE_BYTES:
        with nogil:
            st = cl_crc64_with(impl, crc, p, <size_t>n, &out)
    else:
        st = cl_crc64_with(impl, crc, p, <size_t>n, &out)
    if st != CL_OK:
        raise_status(st, "crc64", "the %r path is not available on this CPU"
                     % cl_crc64_impl_name(impl).decode())
    return out


cdef uint64_t _crc_object(cl_crc64_impl impl, object data, uint64_t crc) except? 0xFFFFFFFFFFFFFFFF:
    cdef Py_buffer view
    cdef uint64_t out
    if PyBytes_CheckExact(data):
        return _crc_span(impl, crc, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
    if isinstance(data, str):
        raise TypeError("crc64: expected a bytes-like object, got str (encode it first)")
    try:
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    except (BufferError, ValueError):
        # Non-contiguous input (a strided view): hash its bytes in C order,
        # which needs one contiguous copy.
        return _crc_object(impl, memoryview(data).tobytes(), crc)
    try:
        out = _crc_span(impl, crc, <const char *>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)
    return out


def crc64(data, uint64_t crc=0):
    """CRC-64/XZ of ``data``, continuing from ``crc`` (0 starts a new CRC).

    ``crc64(b, crc64(a)) == crc64(a + b)``.  ``data`` is anything with the
    buffer protocol (bytes, bytearray, memoryview, numpy array, mmap); it is
    read in place, and the GIL is released for large buffers.  The fastest
    path this CPU offers is used (see :func:`crc64_impl`).
    """
    if PyBytes_CheckExact(data):
        return _crc_span(CL_CRC64_AUTO, crc, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
    return _crc_object(CL_CRC64_AUTO, data, crc)


def crc64_using(str impl, data, uint64_t crc=0):
    """CRC-64/XZ through one named path: "table", "pclmul", "vpclmul" or "auto".

    Raises UnsupportedError if this CPU lacks the instructions of that path.
    Every path gives the same result; this exists so each can be tested.
    """
    if impl not in _IMPLS:
        raise ValueError("crc64_using: unknown path %r (expected one of %s)"
                         % (impl, ", ".join(sorted(_IMPLS))))
    return _crc_object(<cl_crc64_impl>_IMPLS[impl], data, crc)


def crc64_impl():
    """Name of the CRC-64 path this CPU uses: "vpclmul", "pclmul" or "table"."""
    return cl_crc64_impl_name(cl_crc64_best()).decode()


def crc64_paths():
    """The CRC-64 paths this CPU can run, fastest last."""
    return [name for name in ("table", "pclmul", "vpclmul")
            if cl_crc64_supported(<cl_crc64_impl>_IMPLS[name])]


# ---------------------------------------------------------------------------
# fixed-point quantization

cdef object _c_aligned(object arr):
    # The kernels take typed pointers: the data must be C-contiguous and
    # aligned for its type (a view at an odd byte offset is copied once).
    return np.require(arr, requirements=("C", "A"))


cdef double _inverse_scale(double scale) except -1.0:
    if not (scale > 0.0) or isinf(scale):
        raise ValueError("scale must be a finite number > 0, got %r" % scale)
    cdef double inv = 1.0 / scale
    # 1/1e-9 is 999999999.9999999 in binary floating point; a scale meant as
    # 10^-k must multiply by exactly 10^k, so snap near-integers.
    cdef double r = <double>(<long long>(inv + 0.5)) if inv < 9.0e15 else inv
    if inv < 9.0e15 and abs(r - inv) <= 1e-9 * inv:
        inv = r
    if isinf(inv):
        raise ValueError("scale %r is too small: 1/scale overflows" % scale)
    return inv


def quantize(values, double scale=1e-6):
    """Fixed-point quantize floats to int64: round_half_even(value / scale).

    ``values`` is anything numpy can turn into a float array (float32 is read
    as float32, other dtypes as float64); the result has the same shape.  The
    integers are identical on every machine.  NaN, infinity and values whose
    scaled form falls outside int64 raise QuantizationError naming the index
    and the value; nothing is clamped.
    """
    cdef double inv = _inverse_scale(scale)
    arr = np.asarray(values)
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64, copy=False)
    arr = _c_aligned(arr)
    out = np.empty(arr.shape, dtype=np.int64)
    cdef size_t n = arr.size
    cdef size_t bad = 0
    cdef cl_status st
    cdef int64_t[::1] o = out.reshape(-1)
    cdef const double[::1] d
    cdef const float[::1] f
    if n == 0:
        return out
    if arr.dtype == np.float32:
        f = arr.reshape(-1)
        with nogil:
            st = cl_quantize_f32(&f[0], n, inv, &o[0], &bad)
    else:
        d = arr.reshape(-1)
        with nogil:
            st = cl_quantize_f64(&d[0], n, inv, &o[0], &bad)
    if st == CL_ERR_RANGE:
        value = float(arr.reshape(-1)[bad])
        where = str(bad) if arr.ndim == 1 else "%d %s" % (bad, tuple(int(i) for i in np.unravel_index(bad, arr.shape)))
        if value != value:
            why = "NaN has no fixed-point value"
        elif value in (float("inf"), float("-inf")):
            why = "infinity has no fixed-point value"
        else:
            why = "%r / %r is outside the int64 range" % (value, scale)
        raise _errors.QuantizationError("quantize: element %s is %r: %s" % (where, value, why),
                                        index=int(bad), value=value)
    raise_status(st, "quantize")
    return out


def _quant_simd(enable=None):
    """Switch the SIMD quantize path off (False) or on (True); returns the
    previous state.  For tests: both paths must give identical integers."""
    return bool(cl_quant_simd(-1 if enable is None else int(bool(enable))))


def dequantize(q, double scale=1e-6, dtype=np.float64, out=None):
    """Inverse of :func:`quantize`: int64 fixed point back to float64 (or float32).

    ``out``, a writable contiguous array of ``dtype`` and of ``q``'s shape,
    receives the values (and is returned) instead of a new array."""
    cdef double inv = _inverse_scale(scale)
    arr = _c_aligned(np.asarray(q))
    if arr.dtype != np.int64:
        if arr.dtype.kind not in "iu":
            raise TypeError("dequantize: expected an integer array, got dtype %s" % arr.dtype)
        if arr.dtype == np.uint64 and arr.size and int(arr.max()) > 0x7FFFFFFFFFFFFFFF:
            raise ValueError("dequantize: uint64 values above int64 max are not fixed-point values")
        arr = arr.astype(np.int64)
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise TypeError("dequantize: dtype must be float64 or float32, got %s" % dt)
    if out is None:
        out = np.empty(arr.shape, dtype=dt)
    elif (not isinstance(out, np.ndarray) or out.dtype != dt or out.shape != arr.shape
            or not out.flags.c_contiguous or not out.flags.writeable):
        raise TypeError("dequantize: out must be a writable contiguous %s array of shape %s" % (dt, arr.shape))
    cdef size_t n = arr.size
    cdef const int64_t[::1] src
    cdef double[::1] od
    cdef float[::1] of
    if n == 0:
        return out
    src = arr.reshape(-1)
    if dt == np.float64:
        od = out.reshape(-1)
        with nogil:
            cl_dequantize_f64(&src[0], n, inv, &od[0])
    else:
        of = out.reshape(-1)
        with nogil:
            cl_dequantize_f32(&src[0], n, inv, &of[0])
    return out


def to_ordered(values, width=None, out=None):
    """The exact bits of float32 / float64 ``values`` as "ordered bits"
    (native/cl_floatbits.h): unsigned integers in the floats' order, a
    bijection (NaN payloads, infinities and -0.0 kept).  ``width`` 8: uint64
    bits of float64 values (float32 values are widened); 4: uint32 bits of
    each value's float32 (float64 values are cast in the same pass, as an
    exact float32 field stores them); None: the values' own width.  ``out``:
    a writable contiguous array of that dtype and length to write into."""
    arr = np.ascontiguousarray(values)
    if arr.dtype != np.float32 and arr.dtype != np.float64:
        raise TypeError("to_ordered: expected float32 or float64 values, got dtype %s" % arr.dtype)
    if width is None:
        width = 4 if arr.dtype == np.float32 else 8
    if width != 4 and width != 8:
        raise ValueError("to_ordered: width must be 4 or 8, got %r" % (width,))
    if width == 8 and arr.dtype == np.float32:
        arr = arr.astype(np.float64)
    arr = arr.reshape(-1)
    cdef size_t n = arr.shape[0]
    dt = np.dtype(np.uint32 if width == 4 else np.uint64)
    if out is None:
        out = np.empty(n, dt)
    elif (not isinstance(out, np.ndarray) or out.dtype != dt or out.ndim != 1 or <size_t>out.shape[0] != n
            or not out.flags.c_contiguous or not out.flags.writeable):
        raise TypeError("to_ordered: out must be a writable contiguous %s array of %d values" % (dt, n))
    if n == 0:
        return out
    cdef const char *src = <const char *>cnp.PyArray_DATA(<cnp.ndarray>arr)
    cdef char *dst = <char *>cnp.PyArray_DATA(<cnp.ndarray>out)
    cdef bint f32 = arr.dtype == np.float32
    cdef bint w8 = width == 8
    with nogil:
        if w8:
            cl_f64_to_ordered(<const double *>src, n, <uint64_t *>dst)
        elif f32:
            cl_f32_to_ordered(<const float *>src, n, <uint32_t *>dst)
        else:
            cl_f64_to_ordered32(<const double *>src, n, <uint32_t *>dst)
    return out


def from_ordered(bits, dtype=np.float64, out=None):
    """Inverse of :func:`to_ordered`: uint64 ordered bits back to float64
    (or float32: a value above 2**32 - 1 is then CorruptDataError naming its
    index).  ``out``: a writable contiguous array of ``dtype`` to write into."""
    arr = np.ascontiguousarray(bits)
    if arr.dtype != np.uint64:
        if arr.dtype.kind != "u":
            raise TypeError("from_ordered: expected unsigned integers, got dtype %s" % arr.dtype)
        arr = arr.astype(np.uint64)
    arr = arr.reshape(-1)
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise TypeError("from_ordered: dtype must be float64 or float32, got %s" % dt)
    cdef size_t n = arr.shape[0], bad = 0
    if out is None:
        out = np.empty(n, dt)
    elif (not isinstance(out, np.ndarray) or out.dtype != dt or out.ndim != 1 or <size_t>out.shape[0] != n
            or not out.flags.c_contiguous or not out.flags.writeable):
        raise TypeError("from_ordered: out must be a writable contiguous %s array of %d values" % (dt, n))
    cdef const uint64_t[::1] src
    cdef float[::1] o32
    cdef double[::1] o64
    cdef cl_status st = CL_OK
    if n == 0:
        return out
    src = arr
    if dt == np.float32:
        o32 = out
        with nogil:
            st = cl_ordered_to_f32(&src[0], n, &o32[0], &bad)
        if st != CL_OK:
            raise _errors.CorruptDataError("from_ordered: value %d at index %d is not the ordered bits of a "
                                           "float32" % (arr[bad], bad), offset=bad)
    else:
        o64 = out
        with nogil:
            cl_ordered_to_f64(&src[0], n, &o64[0])
    return out


# ---------------------------------------------------------------------------
# ordered append buffer

cdef class AppendBuffer:
    """A thread-safe buffer that hands records out in (timestamp, arrival) order.

    Records are ``(timestamp, payload)`` pairs of unsigned 64-bit integers;
    the payload is the caller's (the chronicle writer uses row numbers) and
    defaults to the record's arrival number.  Every ``flush_every`` records a
    window is sealed: sorted by timestamp, ties kept in arrival order, and
    handed to ``sink(timestamps, payloads)`` (two uint64 arrays) or, without a
    sink, kept until :meth:`take`.  Sealing depends only on the record count,
    so a run is reproducible.  One sink call may carry several windows when
    they were sealed while another thread was delivering; the concatenated
    stream is the same either way.  A record older than the last sealed
    timestamp raises OrderError and is not stored.

    If the sink raises, the exception reaches the caller of append/extend/
    flush, but the record that call appended was stored, and the window
    stays queued and is offered again on the next delivery: nothing is lost,
    and retrying the append would store the record twice.  Deliveries are
    serialised: while a sink runs, another thread's append that completes a
    window waits for it, so a sink must not wait on a thread that appends to
    the same buffer.  A sink may append to its own buffer; it must not call
    take().
    """
    cdef cl_appendbuf *_b
    cdef object _sink
    cdef object _deliver_lock
    cdef bint _delivering

    def __cinit__(self, Py_ssize_t flush_every=4096, sink=None):
        if flush_every <= 0:
            raise ValueError("AppendBuffer: flush_every must be > 0, got %d" % flush_every)
        if sink is not None and not callable(sink):
            raise TypeError("AppendBuffer: sink must be callable or None")
        raise_status(cl_appendbuf_new(<size_t>flush_every, &self._b), "AppendBuffer")
        self._sink = sink
        self._deliver_lock = threading.RLock()

    def __dealloc__(self):
        if self._b is not NULL:
            cl_appendbuf_free(self._b)
            self._b = NULL

    cdef int _order_error(self, uint64_t ts, uint64_t floor, object index) except -1:
        where = "" if index is None else " at index %d" % index
        raise _errors.OrderError(
            "append: timestamp %d%s is older than the last flushed timestamp %d"
            % (ts, where, floor))

    def append(self, uint64_t timestamp, payload=None):
        """Add one record; seals (and delivers) a window every ``flush_every`` records."""
        cdef uint64_t floor = 0, p
        cdef int sealed = 0
        cdef cl_status st
        if payload is None:
            st = cl_appendbuf_push(self._b, timestamp, NULL, &floor, &sealed)
        else:
            p = payload
            st = cl_appendbuf_push(self._b, timestamp, &p, &floor, &sealed)
        if st != CL_OK:
            if st == CL_ERR_ORDER:
                self._order_error(timestamp, floor, None)
            raise_status(st, "append")
        if sealed and self._sink is not None:
            self._deliver()

    def extend(self, timestamps, payloads=None):
        """Add many records from arrays (uint64 timestamps, optional uint64 payloads).

        Records are taken in order.  If one is older than the last flushed
        timestamp, the records before it are kept and OrderError names its index.
        """
        cdef const uint64_t[::1] ts = _as_u64(timestamps, "timestamps")
        cdef const uint64_t[::1] pl
        cdef const uint64_t *pp = NULL
        cdef size_t n = ts.shape[0], done = 0
        cdef uint64_t floor = 0
        cdef cl_status st
        if payloads is not None:
            pl = _as_u64(payloads, "payloads")
            if <size_t>pl.shape[0] != n:
                raise ValueError("extend: %d timestamps but %d payloads" % (n, pl.shape[0]))
            if n:
                pp = &pl[0]
        if n == 0:
            return
        with nogil:
            st = cl_appendbuf_push_many(self._b, &ts[0], pp, n, &done, &floor)
        try:
            if self._sink is not None:
                self._deliver()
        finally:
            # the push's own error wins over a failing sink (which is then
            # its __context__): the caller must learn which records were kept
            if st != CL_OK:
                if st == CL_ERR_ORDER:
                    self._order_error(ts[done], floor, done)
                raise_status(st, "extend")

    def flush(self):
        """Seal the pending records now (fewer than a window) and deliver them."""
        raise_status(cl_appendbuf_seal(self._b), "flush")
        if self._sink is not None:
            self._deliver()

    def set_floor(self, floor):
        """Accept records from ``floor`` on (None: any), as after a rewind;
        only when nothing is pending or waiting to be taken."""
        st = cl_appendbuf_set_floor(self._b, floor is not None, 0 if floor is None else floor)
        if st != CL_OK:
            raise ValueError("AppendBuffer.set_floor: records are pending; flush and take them first")

    def take(self):
        """Remove and return every sealed record as ``(timestamps, payloads)``."""
        with self._deliver_lock:
            if self._delivering:
                raise RuntimeError("AppendBuffer.take: called from inside the sink, "
                                   "which already receives every sealed record")
            ts, pl = self._peek()
            raise_status(cl_appendbuf_consume(self._b, ts.shape[0]), "take")
        return ts, pl

    cdef tuple _peek(self):
        cdef cl_appendbuf_stats s
        cdef size_t n = 0
        cl_appendbuf_get_stats(self._b, &s)
        ts = np.empty(s.ready, dtype=np.uint64)
        pl = np.empty(s.ready, dtype=np.uint64)
        cdef uint64_t[::1] tv = ts
        cdef uint64_t[::1] pv = pl
        if s.ready:
            cl_appendbuf_peek(self._b, &tv[0], &pv[0], s.ready, &n)
        return ts[:n], pl[:n]

    cdef _deliver(self):
        # One deliverer at a time so windows reach the sink in order.  The lock
        # is reentrant so a sink may append to this buffer; what it seals is
        # then delivered by the loop below, not by a nested call.
        with self._deliver_lock:
            if self._delivering:
                return
            self._delivering = True
            try:
                while True:
                    ts, pl = self._peek()
                    if ts.shape[0] == 0:
                        return
                    self._sink(ts, pl)
                    raise_status(cl_appendbuf_consume(self._b, ts.shape[0]), "deliver")
            finally:
                self._delivering = False

    cdef cl_appendbuf_stats _stats(self):
        cdef cl_appendbuf_stats s
        cl_appendbuf_get_stats(self._b, &s)
        return s

    @property
    def flush_every(self):
        """Records per sealed window."""
        return self._stats().window

    @property
    def pending(self):
        """Records appended but not yet sealed."""
        return self._stats().pending

    @property
    def ready(self):
        """Records sealed but not yet taken or delivered."""
        return self._stats().ready

    @property
    def count(self):
        """Records ever accepted."""
        return self._stats().count

    @property
    def windows(self):
        """Windows sealed so far."""
        return self._stats().windows

    @property
    def last_flushed(self):
        """The newest timestamp sealed so far, or None before the first seal."""
        cdef cl_appendbuf_stats s = self._stats()
        return s.floor if s.has_floor else None

    def __len__(self):
        cdef cl_appendbuf_stats s = self._stats()
        return s.pending + s.ready

    def __repr__(self):
        cdef cl_appendbuf_stats s = self._stats()
        return ("AppendBuffer(flush_every=%d, pending=%d, ready=%d, count=%d)"
                % (s.window, s.pending, s.ready, s.count))


cdef object _as_u64(object values, str name):
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError("%s must be one-dimensional, got shape %s" % (name, arr.shape))
    if arr.dtype != np.uint64:
        if arr.size and arr.dtype.kind not in "iu":
            raise TypeError("%s must be integers, got dtype %s" % (name, arr.dtype))
        if arr.size and arr.dtype.kind == "i" and int(arr.min()) < 0:
            raise ValueError("%s must be >= 0, got %d at index %d"
                             % (name, int(arr.min()), int(arr.argmin())))
        arr = arr.astype(np.uint64)
    return _c_aligned(arr)


# ---------------------------------------------------------------------------
# integer column codec

import zstandard as _zstd

_STREAM_NAMES = {
    CL_MODE_RAW: ("VALUES",),
    CL_MODE_BLOCKS: ("K", "LOW", "HIGH", "ESC"),
    CL_MODE_RLE: ("RUNVAL", "RUNLEN"),
    CL_MODE_SPARSE: ("GAPS", "VALS"),
}
_MODE_NAMES = {CL_MODE_RAW: "raw", CL_MODE_BLOCKS: "blocks", CL_MODE_RLE: "rle", CL_MODE_SPARSE: "sparse"}
# Streams that hold the shape of the distribution go through zstd; the raw
# values and the bit-packed low bits are close to uniform, and zstd would only
# spend time on them.
_ZSTD_STREAMS = {
    CL_MODE_RAW: (False,),
    CL_MODE_BLOCKS: (True, False, True, True),
    CL_MODE_RLE: (True, True),
    CL_MODE_SPARSE: (True, True),
}

_zstd_local = threading.local()


cdef object _compressor(int level):
    cache = getattr(_zstd_local, "c", None)
    if cache is None:
        cache = _zstd_local.c = {}
    c = cache.get(level)
    if c is None:
        c = cache[level] = _zstd.ZstdCompressor(level=level)
    return c


cdef object _decompressor():
    d = getattr(_zstd_local, "d", None)
    if d is None:
        d = _zstd_local.d = _zstd.ZstdDecompressor()
    return d


_WIDTH_LOG2 = {1: 0, 2: 1, 4: 2, 8: 3}


cdef list _scratch(size_t bounds[4]):
    # Stream buffers are reused per thread: fresh multi-megabyte arrays would
    # be new mappings whose pages the kernel zeroes on first touch, which cost
    # more than the encoding itself.  The result is copied out by _finish.
    cdef int i
    bufs = getattr(_zstd_local, "scratch", None)
    if bufs is None:
        bufs = _zstd_local.scratch = [np.empty(0, dtype=np.uint8) for i in range(CL_CODEC_STREAMS)]
    for i in range(CL_CODEC_STREAMS):
        if bufs[i].shape[0] < bounds[i]:
            bufs[i] = np.empty(bounds[i], dtype=np.uint8)
    return bufs


cdef object _as_u64_column(object values, bint *is_unsigned, int *width_log2):
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError("encode_column: expected a one-dimensional array, got shape %s" % (arr.shape,))
    kind = arr.dtype.kind
    if kind in "uib":
        width_log2[0] = _WIDTH_LOG2[arr.dtype.itemsize]
    if kind == "u" or kind == "b":
        is_unsigned[0] = True
        arr = arr.astype(np.uint64, copy=False)
    elif kind == "i":
        is_unsigned[0] = False
        arr = arr.astype(np.int64, copy=False).view(np.uint64)
    elif kind == "f":
        raise TypeError("encode_column: got float values; quantize() them to int64 first")
    else:
        raise TypeError("encode_column: expected an integer array, got dtype %s" % arr.dtype)
    return _c_aligned(arr)


cdef bytes _finish(cl_codec_plan *plan, list streams, int level):
    cdef size_t hlen = 0
    cdef unsigned char header[CL_CODEC_HEADER_MAX]
    cdef int i
    zstd_ok = _ZSTD_STREAMS[plan.mode]
    parts = []
    for i in range(plan.nstreams):
        raw = streams[i]
        plan.codec[i] = CL_STREAM_RAW
        plan.stored_len[i] = plan.raw_len[i]
        if level > 0 and zstd_ok[i] and plan.raw_len[i] >= 32:
            packed = _compressor(level).compress(raw)
            if len(packed) < plan.raw_len[i]:
                raw = packed
                plan.codec[i] = CL_STREAM_ZSTD
                plan.stored_len[i] = len(packed)
        parts.append(raw)
    raise_status(cl_codec_write_header(plan, header, CL_CODEC_HEADER_MAX, &hlen), "encode_column")
    return b"".join([(<char *>header)[:hlen]] + parts)


cdef bytes _encode_mode(const uint64_t[::1] v, bint is_unsigned, int width_log2, int mode,
                        int order, int level, uint64_t dflt=0):
    cdef size_t n = v.shape[0]
    cdef size_t bounds[4]
    cdef uint8_t *ptrs[4]
    cdef cl_codec_plan plan
    cdef cl_status st
    cdef const uint64_t *vp = &v[0] if n else NULL
    cdef uint8_t[::1] buf
    cdef int i
    cl_codec_bounds(n, bounds)
    bufs = _scratch(bounds)
    for i in range(CL_CODEC_STREAMS):
        buf = bufs[i]
        ptrs[i] = &buf[0]
    with nogil:
        if mode == CL_MODE_RLE:
            st = cl_codec_encode_rle(vp, n, order, is_unsigned, &plan, ptrs)
        elif mode == CL_MODE_SPARSE:
            st = cl_codec_encode_sparse(vp, n, dflt, is_unsigned, &plan, ptrs)
        else:
            st = cl_codec_encode_blocks(vp, n, order, is_unsigned, &plan, ptrs)
    raise_status(st, "encode_column")
    plan.width_log2 = width_log2
    streams = [memoryview(bufs[i])[:plan.raw_len[i]] for i in range(plan.nstreams)]
    return _finish(&plan, streams, level)


def encode_column(values, order=None, int level=1, rle=None):
    """Encode a 1-D integer array (int64 or uint64 semantics) into bytes.

    ``order`` is the delta order (0 raw values, 1 delta, 2 delta-of-delta) or
    None to pick the one that packs smallest.  ``level`` is the zstd level of
    the entropy stage (0 turns it off).  ``rle`` forces (True) or forbids
    (False) run-length coding; None tries it when the column has few runs.
    Decoding gives back exactly the same integers, whatever they are.
    The byte layout is in docs/FORMAT.md.
    """
    cdef bint is_unsigned = False
    cdef int width_log2 = 3
    cdef int ord_
    if order is None:
        ord_ = -1
    elif order in (0, 1, 2):
        ord_ = order
    else:
        raise ValueError("encode_column: order must be 0, 1, 2 or None, got %r" % (order,))
    if level < 0 or level > 22:
        raise ValueError("encode_column: zstd level must be 0..22, got %d" % level)
    arr = _as_u64_column(values, &is_unsigned, &width_log2)
    cdef const uint64_t[::1] v = arr
    cdef size_t n = v.shape[0]
    cdef size_t runs = 0, exceptions = n
    cdef uint64_t dflt = 0
    cdef size_t taken = 0, sample_runs = 0, mode_count = 0
    if rle is None and n:
        # An evenly spaced sample says cheaply whether the column could be
        # run-length or sparse coded; only then are the exact counts taken.
        # Its most common value is the candidate default of a sparse column.
        cl_codec_sample(&v[0], n, &taken, &sample_runs, &dflt, &mode_count)
        if sample_runs * 2 <= taken:
            with nogil:
                runs = cl_codec_count_runs(&v[0], n)
        else:
            runs = n
        try_rle = runs * 4 <= n
        if (taken - mode_count) * 4 <= taken:
            with nogil:
                exceptions = cl_codec_count_exceptions(&v[0], n, dflt)
    else:
        try_rle = bool(rle)
    best = None
    candidates = []
    sparse = rle is None and exceptions * 8 <= n
    if try_rle:
        # run values as they are (suits a sparse column: 0, c, 0, c) or as
        # deltas (suits slowly changing levels)
        candidates.append((CL_MODE_RLE, 0))
        if not sparse:
            candidates.append((CL_MODE_RLE, 1))
    if sparse:
        candidates.append((CL_MODE_SPARSE, 0))
    # with this few runs or exceptions, blocks of 128 residuals cannot win
    if not rle and not sparse and not (rle is None and runs * 16 <= n):
        candidates.append((CL_MODE_BLOCKS, ord_))
    for mode, o in candidates:
        other = _encode_mode(v, is_unsigned, width_log2, mode, o, level, dflt)
        if best is None or len(other) < len(best):
            best = other
    return best


cdef uint8_t _EMPTY_BYTE = 0
cdef const uint8_t *_EMPTY = &_EMPTY_BYTE


cdef class _ColumnView:
    """A parsed column header over a buffer (internal)."""
    cdef cl_codec_plan plan
    cdef size_t header_len
    cdef size_t total


cdef _ColumnView _parse(const uint8_t[::1] buf, str what):
    cdef _ColumnView cv = _ColumnView()
    cdef size_t err = 0
    cdef size_t n = buf.shape[0]
    cdef cl_status st
    cdef int i
    if n == 0:
        raise _errors.TruncatedError("%s: empty input, expected a column header at byte 0" % what, offset=0)
    st = cl_codec_read_header(&buf[0], n, &cv.plan, &cv.header_len, &err)
    if st != CL_OK:
        why = ("the header ends early (at byte %d)" % err if st == CL_ERR_TRUNCATED
               else "bad header byte at offset %d" % err)
        raise_status(st, what, why, offset=err)
    cv.total = cv.header_len
    for i in range(cv.plan.nstreams):
        cv.total += cv.plan.stored_len[i]
    return cv


def column_size(data):
    """Total bytes of the encoded column at the start of ``data``."""
    return _parse(_as_bytes_view(data), "column_size").total


def column_info(data):
    """Header of an encoded column as a dict: mode, order, n, streams..."""
    cdef _ColumnView cv = _parse(_as_bytes_view(data), "column_info")
    cdef int i
    names = _STREAM_NAMES[cv.plan.mode]
    return {
        "mode": _MODE_NAMES[cv.plan.mode],
        "order": cv.plan.order,
        "dtype": _dtype_of(&cv.plan).name,
        "n": cv.plan.n,
        "bytes": cv.total,
        "streams": [
            {"name": names[i], "codec": "zstd" if cv.plan.codec[i] == CL_STREAM_ZSTD else "raw",
             "raw_bytes": cv.plan.raw_len[i], "stored_bytes": cv.plan.stored_len[i]}
            for i in range(cv.plan.nstreams)
        ],
    }


cdef const uint8_t[::1] _as_bytes_view(object data):
    if isinstance(data, str):
        raise TypeError("expected a bytes-like object, got str")
    mv = memoryview(data)
    if not mv.c_contiguous:
        mv = memoryview(mv.tobytes())
    return mv.cast("B")


def decode_column(data, max_values=None, bint exact=True, out=None, limit=None, bint wide=False, start=None):
    """Decode bytes made by :func:`encode_column` back into an int64 or uint64 array.

    The input is untrusted: any malformation raises CorruptDataError (or
    TruncatedError) naming the byte offset; decoding never reads or writes
    outside its buffers.  ``max_values`` refuses columns that claim more
    values (a guard against absurd allocations); ``exact`` refuses bytes
    left over after the column.  ``out``, a writable contiguous 1-D int64 or
    uint64 array with room for the values, is decoded into (and a view of it
    returned) instead of a new array, so a caller decoding many columns can
    reuse one buffer; 1-, 2- and 4-byte columns are still returned as new
    arrays of their dtype.  ``limit`` decodes only the first ``limit``
    values (as many as there are, at most), reading only the parts of the
    streams they need: a few rows from the start of a long column cost a
    fraction of the whole (``out`` needs room for the values returned only).
    ``wide``: return 1-, 2- and 4-byte columns as the uint64 / int64 values
    decoded (no copy to their narrower dtype, and no check that they fit it).
    ``start`` returns only the values from index ``start`` (up to ``limit``):
    those before it are decoded but not stored, so ``out`` then needs room
    for the values returned only.
    """
    cdef size_t want, first = 0
    cdef const uint8_t[::1] buf = _as_bytes_view(data)
    cdef _ColumnView cv = _parse(buf, "decode_column")
    cdef const uint8_t *ptrs[4]
    cdef size_t starts[4]
    cdef size_t pos = cv.header_len, err_stream = 0, err_off = 0
    cdef cl_status st
    cdef int i
    cdef const uint8_t[::1] sv
    cdef uint64_t[::1] ov
    if exact and cv.total != <size_t>buf.shape[0]:
        raise _errors.CorruptDataError(
            "decode_column: %d bytes after the end of the column at offset %d"
            % (buf.shape[0] - cv.total, cv.total), offset=cv.total)
    if max_values is not None and cv.plan.n > max_values:
        raise _errors.CorruptDataError(
            "decode_column: the header at offset 0 claims %d values, more than the %d allowed"
            % (cv.plan.n, max_values), offset=0)
    names = _STREAM_NAMES[cv.plan.mode]
    keep = []
    for i in range(cv.plan.nstreams):
        starts[i] = pos
        if cv.plan.codec[i] == CL_STREAM_ZSTD:
            frame = buf[pos:pos + cv.plan.stored_len[i]]
            try:
                # exactly one frame that declares exactly raw_len bytes
                declared = _zstd.frame_content_size(frame)
                if declared != cv.plan.raw_len[i]:
                    raise _zstd.ZstdError("the frame declares %s bytes, the header %d"
                                          % ("no size" if declared == -1 else declared, cv.plan.raw_len[i]))
                dobj = _decompressor().decompressobj()
                raw = dobj.decompress(frame)
                if not dobj.eof or dobj.unused_data:
                    raise _zstd.ZstdError("the stream is not exactly one whole frame")
            except _zstd.ZstdError as exc:
                raise _errors.CorruptDataError(
                    "decode_column: stream %s (zstd) at offset %d does not decompress: %s"
                    % (names[i], pos, exc), offset=pos) from None
            if <uint64_t>len(raw) != cv.plan.raw_len[i]:
                raise _errors.CorruptDataError(
                    "decode_column: stream %s at offset %d decompresses to %d bytes, header says %d"
                    % (names[i], pos, len(raw), cv.plan.raw_len[i]), offset=pos)
            keep.append(raw)
            sv = raw if len(raw) else b"\0"
            ptrs[i] = &sv[0]
        else:
            ptrs[i] = &buf[pos] if cv.plan.stored_len[i] else _EMPTY
        pos += cv.plan.stored_len[i]
    if limit is not None and limit < 0:
        raise ValueError("decode_column: limit must be >= 0, got %r" % (limit,))
    if start is not None and start < 0:
        raise ValueError("decode_column: start must be >= 0, got %r" % (start,))
    want = cv.plan.n if limit is None or limit >= cv.plan.n else <size_t>limit
    if start is not None:
        first = want if start >= want else <size_t>start
    cdef size_t room = want - first        # the values stored: those of [first, want)
    if out is not None:
        if (not isinstance(out, np.ndarray) or out.ndim != 1 or out.dtype not in (np.int64, np.uint64)
                or not out.flags.c_contiguous or not out.flags.writeable):
            raise TypeError("decode_column: out must be a writable contiguous 1-D int64 or uint64 array")
        if <uint64_t>out.shape[0] < room:
            raise ValueError("decode_column: out holds %d values, the column %d" % (out.shape[0], room)
                             if room == cv.plan.n else
                             "decode_column: out holds %d values, the %d asked for" % (out.shape[0], room))
        out = out[:room].view(np.uint64)
    else:
        try:
            out = np.empty(room, dtype=np.uint64)
        except MemoryError:
            raise MemoryError("decode_column: the header claims %d values (%.1f GiB); pass max_values= "
                              "to refuse such claims in untrusted input" % (cv.plan.n, cv.plan.n * 8 / 2**30)) from None
    ov = out
    with nogil:
        st = cl_codec_decode_range(&cv.plan, ptrs, first, want, &ov[0] if room else NULL, &err_stream, &err_off)
    if st != CL_OK:
        if cv.plan.codec[err_stream] == CL_STREAM_ZSTD:
            where = "byte %d of the decompressed stream %s (zstd frame at offset %d)" % (
                err_off, names[err_stream], starts[err_stream])
            offset = starts[err_stream]
        else:
            offset = starts[err_stream] + err_off
            where = "offset %d (byte %d of stream %s)" % (offset, err_off, names[err_stream])
        raise_status(st, "decode_column", "malformed data at " + where, offset=offset)
    if not cv.plan.is_unsigned:
        out = out.view(np.int64)
    dt = _dtype_of(&cv.plan)
    if dt.itemsize < 8 and not wide:
        info = np.iinfo(dt)
        if out.size and (out.min() < info.min or out.max() > info.max):
            bad = int(np.argmax((out < info.min) | (out > info.max)))
            raise _errors.CorruptDataError(
                "decode_column: value %d at index %d does not fit the dtype %s declared at offset 2"
                % (out[bad], bad, dt.name), offset=2)
        out = out.astype(dt)
    return out


cdef object _dtype_of(const cl_codec_plan *plan):
    return np.dtype("%s%d" % ("u" if plan.is_unsigned else "i", 1 << plan.width_log2))
