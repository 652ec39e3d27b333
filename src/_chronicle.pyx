# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, embedsignature=True
"""Compiled staging for the chronicle writer: one cycle record per call, checked
and stored into typed columns without building Python objects, each window
ordered by (timestamp, arrival) when it is sealed.  Knows nothing of files:
full windows go to a sink.  Also the column kernels of the writer's encoding
(fixed point's exceptions, a dictionary's order of first use), which release the GIL.
"""

cimport numpy as cnp
from cpython.object cimport PyObject_GenericSetAttr
from cpython.float cimport PyFloat_AsDouble, PyFloat_AS_DOUBLE, PyFloat_CheckExact
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_SIZE, PyTuple_GET_ITEM
from libc.math cimport isfinite
from libc.string cimport memcpy
from libc.stdint cimport int16_t, uint8_t, uint32_t, uint64_t, int64_t

import numpy as np

from chronoledger import errors as _errors

from cnative cimport *

cnp.import_array()

DEF_PHASE_MAX = 64

_KEYS = ("timestamp", "phase", "loss_value", "coherence", "tensor_signature.0",
         "tensor_signature.1", "tensor_signature.2", "action_code", "seed_state")


_MAX_SPARE = 8          # window buffer sets kept for reuse (the writer queues at most a few)
# Window buffer sets that closed stagers left, for the next stager of the same
# window size in this process (a script that writes run after run): fresh
# buffers are new mappings whose pages the kernel faults in and zeroes, about
# 2 ms per 4 MB set on this project's VM, most of a 1 M-record extend.  At
# most _POOL_MAX sets are kept (16 MiB with the default 65,536-record window).
_POOL = []
_POOL_MAX = 4
_FLOAT_KEYS = ("loss_value", "coherence", "tensor_signature.0", "tensor_signature.1", "tensor_signature.2")


cdef double _FIXED_LIMIT = 9.2e18
cdef double _F32_MAX = 3.4028234663852886e38
cdef uint64_t _ABS = 0x7FFFFFFFFFFFFFFF
cdef uint64_t _F32_TINY_BITS = 0x36A0000000000000      # 2**-149 as a double: float32's least subnormal
cdef uint64_t _F32_MAX_BITS = 0x47EFFFFFE0000000       # float32's largest value as a double


cdef extern from *:
    """
    #include <limits.h>
    /* An exact int in 0 .. 2**64 - 1 as a u64, without raising: 1 on success,
     * 0 for anything else (the caller's slow path says what is wrong).
     * PyLong_AsUnsignedLong reads the digits in a plain loop; 3.11's
     * ...LongLong goes through a byte array, several times slower. */
    static int cl_py_u64(PyObject *o, uint64_t *out)
    {
    #if ULONG_MAX >= 0xFFFFFFFFFFFFFFFFull
        unsigned long r;
        if (!PyLong_CheckExact(o)) return 0;
        r = PyLong_AsUnsignedLong(o);
        if (r == (unsigned long)-1 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
    #else
        unsigned long long r;
        if (!PyLong_CheckExact(o)) return 0;
        r = PyLong_AsUnsignedLongLong(o);
        if (r == (unsigned long long)-1 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
    #endif
        *out = (uint64_t)r;
        return 1;
    }
    """
    int cl_py_u64(object o, uint64_t *out)


cdef extern from *:
    """
    #if defined(__linux__)
    #include <fcntl.h>
    /* Starts writing the range back to the disk without waiting for it, so
     * the fsync at close finds little left to do (0 or an errno). */
    static int cl_start_writeback(int fd, long long offset, long long length)
    {
        return sync_file_range(fd, (off64_t)offset, (off64_t)length, SYNC_FILE_RANGE_WRITE) == 0 ? 0 : errno;
    }
    #else
    static int cl_start_writeback(int fd, long long offset, long long length)
    {
        (void)fd; (void)offset; (void)length;
        return -1;
    }
    #endif
    """
    int cl_start_writeback(int fd, long long offset, long long length) nogil


cdef inline uint64_t _bits(double v) noexcept nogil:
    cdef uint64_t b
    memcpy(&b, &v, 8)
    return b


cdef inline bint _surely_storable(double v, uint64_t lo, uint64_t span) noexcept nogil:
    """The per-record check's common case, one subtraction and one comparison:
    |v| in a range of values its precision holds for certain ([2**-149,
    float32 max] for exact float32, [0, a bound well inside int64 and
    float32] for fixed point).  NaN, the infinities, zero for exact float32
    and anything near a limit fall to cl_stage_storable."""
    return (_bits(v) & _ABS) - lo < span


cdef void _sure_range(double scale, bint f32, uint64_t *lo, uint64_t *span) noexcept:
    """The range of _surely_storable for a field of ``scale`` (0: exact)."""
    cdef double hi
    if scale == 0.0:
        if f32:
            lo[0] = _F32_TINY_BITS
            span[0] = _F32_MAX_BITS - _F32_TINY_BITS + 1
        else:
            lo[0] = 0
            span[0] = 0x7FF0000000000000       # every finite float64
        return
    hi = _FIXED_LIMIT * scale * 0.999999   # |v| / scale stays below the limit whatever the rounding
    if f32 and hi > _F32_MAX:
        hi = _F32_MAX
    lo[0] = 0
    span[0] = _bits(hi) + 1


cdef class _FloatSource:
    """One float column of an extend() batch: float32 or float64, contiguous
    or a strided view (a column of an (n, 3) array), checked and copied a
    chunk at a time by the kernels of native/cl_stage.c."""
    cdef object arr
    cdef str name
    cdef bint f32
    cdef const char *data
    cdef ptrdiff_t stride          # in elements

    def __cinit__(self, values, str name, size_t n):
        arr = np.asarray(values)
        if arr.dtype != np.float32 and arr.dtype != np.float64:
            arr = arr.astype(np.float64)
        if arr.ndim != 1 or <size_t>arr.shape[0] != n:
            raise ValueError("CycleStager.extend: %s must be 1-D with %d values" % (name, n))
        if n and arr.strides[0] % arr.itemsize:      # a field of a packed record: not a whole number of values
            arr = np.ascontiguousarray(arr)
        self.arr = arr
        self.name = name
        self.f32 = arr.dtype == np.float32
        self.data = <const char *>cnp.PyArray_DATA(<cnp.ndarray>arr)
        self.stride = arr.strides[0] // arr.itemsize if n else 1

    cdef int check(self, size_t n, double scale, bint finite_only, object path, object explain) except -1:
        """Raise ValidationError naming the first value that cannot be stored."""
        cdef size_t bad
        cdef double inv = 1.0 / scale if scale > 0.0 else 0.0
        with nogil:
            if self.f32:
                bad = cl_stage_first_bad_f32(<const float *>self.data, self.stride, n, inv, finite_only)
            else:
                bad = cl_stage_first_bad_f64(<const double *>self.data, self.stride, n, inv, 1, finite_only)
        if bad == n:
            return 0
        value = float(self.arr[bad])
        if finite_only and not (value - value == 0.0):          # NaN or an infinity
            raise _errors.ValidationError(
                "%s: column %r: element %d is %r: this chronicle is in format 1 (fixed point), which cannot "
                "store NaN or infinity" % (path, self.name, bad, value))
        if explain is not None:
            explain(value, scale if scale > 0.0 else None, True, "%s: column %r: element %d" % (path, self.name, bad))
        raise _errors.ValidationError("%s: column %r: element %d = %r cannot be stored"
                                      % (path, self.name, bad, value))

    cdef void copy(self, size_t start, size_t n, double *out) noexcept nogil:
        if self.f32:
            cl_stage_widen_f32(<const float *>self.data + <ptrdiff_t>start * self.stride, self.stride, n, out)
        else:
            cl_stage_copy_f64(<const double *>self.data + <ptrdiff_t>start * self.stride, self.stride, n, out)


cdef object _pooled(size_t window):
    """A window buffer set of ``window`` records from the pool, or None."""
    cdef Py_ssize_t i
    for i in range(len(_POOL) - 1, -1, -1):
        if len(_POOL[i][0]) == window:
            return _POOL.pop(i)
    return None


cdef _pool_put(object arrays):
    if len(_POOL) >= _POOL_MAX:
        _POOL.pop(0)                # the oldest goes
    _POOL.append(arrays)


cdef class CycleStager:
    """Stages cycle records for a chronicle writer.

    ``append`` checks one record and stores it, ``extend`` a checked batch of
    columns; every ``window`` records the window is sealed (ordered by
    (timestamp, arrival): a stable sort of its timestamps, when they are not
    in order already), queued, and ``sink()`` is called; ``take_ready()``
    then gives the queued windows in order as ``(columns, labels, metrics,
    token)``: numpy columns (timestamp u64, phase u32 codes, loss_value,
    coherence, tensor_signature.0..2 float64 as given, action_code int16
    with -1 for none, seed_state u64), the phase names of the codes, and
    metric name -> (float64 values, bool present).

    Every float is checked against its precision as it is staged
    (``fields``: the five cycle fields' scales, 0.0 for exact float32;
    ``metric_default`` / ``metric_named``: the metrics', 0.0 for exact
    float64; ``finite_only`` for a format-1 file, which has no room for NaN
    or infinity; ``explain(value, scale, f32, where)``, if given, raises the
    precision's own message for a refused value, since this module sits
    below the chronicle package and does not import it): what cannot be
    stored is refused now, so encoding a window
    later cannot fail.  Nothing is quantized or transformed here: that is
    the encoder's work, per window, on the writer's background thread.

    Thread-safe.  Staging state changes only while the GIL is held, except
    in ``extend``'s copies, which run without the GIL under a mutex and with
    ``busy`` set.  A record that does not complete a window is therefore
    stored without the mutex when no thread is busy (the GIL alone keeps
    two appenders apart: nothing between the test of ``busy`` and the store
    can release it); otherwise, and to seal, the mutex is taken.  A thread
    waiting for the mutex does not hold the GIL.  The checks (which may run
    Python code) come before any of it.
    """
    cdef cl_mutex lock
    cdef bint lock_ready
    cdef int busy                  # a thread holds the mutex (set and cleared with the GIL held)
    cdef size_t window
    cdef double fscale[5]
    cdef double finv[5]
    cdef uint64_t flo[5]           # _surely_storable's range, per field
    cdef uint64_t fspan[5]
    cdef double metric_default
    cdef dict metric_named
    cdef bint finite_only
    cdef object explain            # raises the precision's own message for a refused value
    cdef bint has_floor
    cdef uint64_t floor
    cdef object sink
    cdef object path
    cdef object last_phase
    cdef uint32_t last_code
    cdef dict phase_codes
    cdef list phase_names
    cdef list row_metrics          # per row: the metrics dict of append(), or None; None until one comes
    cdef dict batch_metrics        # name -> (values, present) copied in by extend()
    cdef object a_ts, a_phase, a_loss, a_coh, a_t0, a_t1, a_t2, a_action, a_seed
    # Raw pointers into the a_* arrays above (which own the memory and stay
    # referenced while these are used): no memoryview checks per record.
    cdef uint64_t *ts
    cdef uint32_t *phase
    cdef double *loss
    cdef double *coh
    cdef double *t0
    cdef double *t1
    cdef double *t2           # as given; checked against their precision
    cdef int16_t *action
    cdef uint64_t *seed
    cdef size_t n
    cdef int in_order              # the window's timestamps are non-decreasing so far
    cdef uint64_t last_ts          # the window's last timestamp (0 when it is empty)
    cdef bint closed
    cdef list ready
    cdef list spare                # window buffer sets given back by recycle()

    def __cinit__(self, size_t window, object sink, object floor=None, str path="", tuple fields=(0.0,) * 5,
                  double metric_default=0.0, dict metric_named=None, bint finite_only=False, object explain=None):
        cdef int k
        if window == 0:
            raise ValueError("CycleStager: window must be > 0")
        if len(fields) != 5:
            raise ValueError("CycleStager: fields holds the scales of the 5 cycle floats")
        for k in range(5):
            self.fscale[k] = float(fields[k])
            if not (self.fscale[k] >= 0.0 and isfinite(self.fscale[k])):
                raise ValueError("CycleStager: a scale must be finite and >= 0 (0: exact), got %r" % (fields[k],))
            self.finv[k] = 1.0 / self.fscale[k] if self.fscale[k] > 0.0 else 0.0
            _sure_range(self.fscale[k], True, &self.flo[k], &self.fspan[k])
        if not (metric_default >= 0.0 and isfinite(metric_default)):
            raise ValueError("CycleStager: metric_default must be finite and >= 0, got %r" % metric_default)
        self.metric_default = metric_default
        self.metric_named = dict(metric_named or {})
        self.finite_only = finite_only
        self.explain = explain
        if cl_mutex_init(&self.lock) != 0:
            raise MemoryError("CycleStager: cannot allocate a lock")
        self.lock_ready = True
        self.window = window
        self.sink = sink
        self.path = path
        self.has_floor = floor is not None
        self.floor = floor if floor is not None else 0
        self.phase_codes = {}
        self.phase_names = []
        self.ready = []
        self.spare = []
        self._alloc()

    def __dealloc__(self):
        # no thread can reach the stager any more: an empty window's buffers
        # (the one allocated by the last seal) go to the pool
        if self.closed and self.n == 0 and self.a_ts is not None and _POOL is not None:
            _pool_put((self.a_ts, self.a_phase, self.a_loss, self.a_coh, self.a_t0, self.a_t1, self.a_t2,
                       self.a_action, self.a_seed))
        if self.lock_ready:
            cl_mutex_destroy(&self.lock)
            self.lock_ready = False

    cdef inline void _acquire(self):
        if not cl_mutex_trylock(&self.lock):
            with nogil:              # the holder may need the GIL to finish
                cl_mutex_lock(&self.lock)
        self.busy = 1

    cdef inline void _release(self):
        self.busy = 0
        cl_mutex_unlock(&self.lock)

    cdef _alloc(self):
        # Reusing a window's buffers matters: fresh ones are new mappings whose
        # pages the kernel faults in and zeroes, which costs more than staging.
        pooled = self.spare.pop() if self.spare else _pooled(self.window)
        if pooled is not None:
            (self.a_ts, self.a_phase, self.a_loss, self.a_coh, self.a_t0, self.a_t1, self.a_t2,
             self.a_action, self.a_seed) = pooled
        else:
            self.a_ts = np.empty(self.window, np.uint64)
            self.a_phase = np.empty(self.window, np.uint32)
            self.a_loss = np.empty(self.window, np.float64)
            self.a_coh = np.empty(self.window, np.float64)
            self.a_t0 = np.empty(self.window, np.float64)
            self.a_t1 = np.empty(self.window, np.float64)
            self.a_t2 = np.empty(self.window, np.float64)
            self.a_action = np.empty(self.window, np.int16)
            self.a_seed = np.empty(self.window, np.uint64)
        self.ts = <uint64_t *>cnp.PyArray_DATA(self.a_ts)
        self.phase = <uint32_t *>cnp.PyArray_DATA(self.a_phase)
        self.loss = <double *>cnp.PyArray_DATA(self.a_loss)
        self.coh = <double *>cnp.PyArray_DATA(self.a_coh)
        self.t0 = <double *>cnp.PyArray_DATA(self.a_t0)
        self.t1 = <double *>cnp.PyArray_DATA(self.a_t1)
        self.t2 = <double *>cnp.PyArray_DATA(self.a_t2)
        self.action = <int16_t *>cnp.PyArray_DATA(self.a_action)
        self.seed = <uint64_t *>cnp.PyArray_DATA(self.a_seed)
        self.row_metrics = None
        self.batch_metrics = {}
        self.n = 0
        self.in_order = 1
        self.last_ts = 0

    # --- checks (may run Python code; done before the lock) ---------------------
    cdef int _bad(self, str what) except -1:
        raise _errors.ValidationError("%s: %s" % (self.path, what))

    cdef double _f_slow(self, object v, str name, double scale, bint f32) except? -1.0:
        cdef double f = 0.0
        try:
            f = PyFloat_AsDouble(v)
        except TypeError:
            self._bad("%s must be a number, got %r" % (name, v))
        if cl_stage_storable(f, 1.0 / scale if scale > 0.0 else 0.0, f32, self.finite_only):
            return f
        if self.finite_only and not isfinite(f):
            self._bad("%s = %r cannot be stored: this chronicle is in format 1 (fixed point), which has no "
                      "NaN or infinity" % (name, v))
        if self.explain is not None:
            self.explain(f, scale if scale > 0.0 else None, f32, "%s: %s" % (self.path, name))
        self._bad("%s = %r cannot be stored" % (name, v))
        return f

    cdef inline double _f(self, object v, str name, int k) except? -1.0:
        # a float checked against its field's precision as it is recorded
        cdef double d
        if PyFloat_CheckExact(v):
            d = PyFloat_AS_DOUBLE(v)
            if _surely_storable(d, self.flo[k], self.fspan[k]) or \
                    cl_stage_storable(d, self.finv[k], 1, self.finite_only):
                return d
        return self._f_slow(v, name, self.fscale[k], True)

    cdef inline uint32_t _phase(self, object phase) except? 0xFFFFFFFF:
        if phase is self.last_phase:       # the same str object as last time: no hashing
            return self.last_code
        code = self._phase_lookup(phase)
        self.last_phase = phase
        self.last_code = code
        return code

    cdef uint32_t _phase_lookup(self, object phase) except? 0xFFFFFFFF:
        code = self.phase_codes.get(phase)
        if code is not None:
            return code
        if type(phase) is not str or not phase or len((<str>phase).encode()) > DEF_PHASE_MAX:
            self._bad("phase must be a non-empty str of at most 64 bytes, got %r" % (phase,))
        # codes only grow, and a list append and a dict insert under the GIL
        # are each atomic, so a racing thread at worst adds a duplicate name
        code = len(self.phase_names)
        self.phase_names.append(phase)
        self.phase_codes[phase] = code
        return code

    cdef inline uint64_t _u64(self, object v, str name) except? 0xFFFFFFFFFFFFFFFF:
        cdef uint64_t r
        if cl_py_u64(v, &r):
            return r
        return self._u64_slow(v, name)

    cdef uint64_t _u64_slow(self, object v, str name) except? 0xFFFFFFFFFFFFFFFF:
        # ints only: a float timestamp or seed would be silently truncated
        if type(v) is not int and (isinstance(v, bool) or not isinstance(v, np.integer)):
            self._bad("%s %r is not a u64" % (name, v))
        try:
            return v
        except (OverflowError, TypeError):
            self._bad("%s %r is not a u64" % (name, v))
        return 0

    cdef dict _check_metrics(self, object metrics):
        if not isinstance(metrics, dict):
            self._bad("metrics must be a dict of name -> float, got %r" % (metrics,))
        out = {}
        cdef double scale, d
        for k, v in (<dict>metrics).items():
            if type(k) is not str or not k or len((<str>k).encode()) > 200:
                self._bad("metric name %r must be a non-empty str of at most 200 bytes" % (k,))
            scale = self.metric_named.get(k, self.metric_default) if self.metric_named else self.metric_default
            if PyFloat_CheckExact(v):
                d = PyFloat_AS_DOUBLE(v)
                if not cl_stage_storable(d, 1.0 / scale if scale > 0.0 else 0.0, False, self.finite_only):
                    d = self._f_slow(v, "metric %r" % (k,), scale, False)
            else:
                d = self._f_slow(v, "metric %r" % (k,), scale, False)
            out[k] = d
        return out

    def append(self, timestamp, phase, loss_value, coherence, tensor_signature=None, action_code=None,
               seed_state=0, metrics=None):
        """Check and stage one cycle record; returns True when it completed a window."""
        cdef uint64_t ts, seed
        cdef double loss, coh, x0 = 0.0, x1 = 0.0, x2 = 0.0
        cdef int16_t action = -1
        cdef uint32_t code
        cdef size_t row
        if self.closed:
            raise _errors.ChronoledgerError("%s: the chronicle writer is closed" % self.path)
        ts = self._u64(timestamp, "timestamp")
        code = self._phase(phase)
        loss = self._f(loss_value, "loss_value", 0)
        coh = self._f(coherence, "coherence", 1)
        if tensor_signature is not None:
            if PyTuple_Check(tensor_signature) and PyTuple_GET_SIZE(tensor_signature) == 3:
                x0 = self._f(<object>PyTuple_GET_ITEM(tensor_signature, 0), "tensor_signature[0]", 2)
                x1 = self._f(<object>PyTuple_GET_ITEM(tensor_signature, 1), "tensor_signature[1]", 3)
                x2 = self._f(<object>PyTuple_GET_ITEM(tensor_signature, 2), "tensor_signature[2]", 4)
            else:
                try:
                    v0, v1, v2 = tensor_signature
                except (TypeError, ValueError):
                    self._bad("tensor_signature must hold 3 floats, got %r" % (tensor_signature,))
                x0 = self._f(v0, "tensor_signature[0]", 2)
                x1 = self._f(v1, "tensor_signature[1]", 3)
                x2 = self._f(v2, "tensor_signature[2]", 4)
        if action_code is not None:
            if isinstance(action_code, bool) or not isinstance(action_code, (int, np.integer)) \
                    or not 0 <= action_code <= 255:
                self._bad("action_code must be None or an int 0..255, got %r" % (action_code,))
            action = <int16_t>(<long>action_code)
        seed = self._u64(seed_state, "seed_state")
        if metrics:
            metrics = self._check_metrics(metrics)
        else:
            metrics = None
        # The common case: nothing from here to the return can release the
        # GIL, no thread holds the mutex, and the record does not seal.
        row = self.n
        if not self.busy and row + 1 < self.window and not (self.has_floor and ts < self.floor) \
                and (metrics is None or self.row_metrics is not None):
            if metrics is not None:
                self.row_metrics[row] = metrics
            self._put(row, ts, code, loss, coh, x0, x1, x2, action, seed)
            return False
        return self._append_locked(ts, code, loss, coh, x0, x1, x2, action, seed, metrics)

    cdef inline void _put(self, size_t row, uint64_t ts, uint32_t code, double loss, double coh, double x0,
                          double x1, double x2, int16_t action, uint64_t seed) noexcept:
        """Store one checked record at ``row`` (the next free one) and advance."""
        self.ts[row] = ts
        self.phase[row] = code
        self.loss[row] = loss
        self.coh[row] = coh
        self.t0[row] = x0
        self.t1[row] = x1
        self.t2[row] = x2
        self.action[row] = action
        self.seed[row] = seed
        if ts < self.last_ts:
            self.in_order = 0
        self.last_ts = ts
        self.n = row + 1

    cdef int _append_locked(self, uint64_t ts, uint32_t code, double loss, double coh, double x0, double x1,
                             double x2, int16_t action, uint64_t seed, object metrics) except -1:
        cdef bint sealed = False
        cdef size_t row
        self._acquire()
        try:
            if self.has_floor and ts < self.floor:
                raise _errors.OrderError("%s: timestamp %d is older than the last flushed timestamp %d"
                                         % (self.path, ts, self.floor))
            row = self.n
            if metrics is not None:
                if self.row_metrics is None:
                    self.row_metrics = [None] * self.window
                self.row_metrics[row] = metrics
            self._put(row, ts, code, loss, coh, x0, x1, x2, action, seed)
            if self.n == self.window:
                self._seal_locked()
                sealed = True
        finally:
            self._release()
        if sealed:
            self.sink()
        return sealed

    cdef _seal_locked(self):
        """Queue the staged window; called with the lock held.  Ordering its
        records, when their timestamps are not in order, is left to
        columns_of(), on the thread that encodes the window: only the
        window's largest timestamp (the new floor) is found here."""
        cdef size_t n = self.n
        cdef uint64_t last = 0
        if n and self.in_order:
            last = self.ts[n - 1]
        elif n:
            last = int(self.a_ts[:n].max())
        arrays = (self.a_ts, self.a_phase, self.a_loss, self.a_coh, self.a_t0, self.a_t1, self.a_t2,
                  self.a_action, self.a_seed)
        self.ready.append(((arrays, self.row_metrics, self.batch_metrics, list(self.phase_names),
                            bool(self.in_order), n), n, last))
        if n:
            self.has_floor = True
            self.floor = last
        self._alloc()

    def take_ready(self):
        """Remove and return the sealed windows, oldest first, as ``(window,
        records, largest timestamp)``; ``columns_of(window)`` gives each
        one's columns.  Quick: the work of ordering and assembling a window
        is left to the thread that encodes it."""
        self._acquire()
        raws = self.ready
        self.ready = []
        self._release()
        return raws

    def columns_of(self, window):
        """A sealed window (of :meth:`take_ready`) as ``(columns, labels,
        metrics, token)``: its columns ordered by (timestamp, arrival), a
        stable sort when they were not in order, gathered into a reused
        buffer set.  The columns are views of the stager's buffers: hand
        ``token`` to :meth:`recycle` once they are no longer used, so later
        windows reuse the memory."""
        cdef size_t i, k
        arrays, row_metrics, batch_metrics, names, in_order, k = window
        order = None
        token = arrays
        if in_order:
            columns = {key: a[:k] for key, a in zip(_KEYS, arrays)}
        else:
            order = np.argsort(arrays[0][:k], kind="stable")     # (timestamp, arrival)
            try:
                token = self.spare.pop()
            except IndexError:
                token = tuple(np.empty(len(a), a.dtype) for a in arrays)
            columns = {key: np.take(a[:k], order, out=dst[:k]) for key, a, dst in zip(_KEYS, arrays, token)}
            self.recycle(arrays)
        # extend()'s metric columns belong to this window alone: append()'s
        # values are written into them (or new ones), then ordered
        metrics = dict(batch_metrics)
        if row_metrics is not None:
            for i in range(k):
                d = row_metrics[i]
                if d is None:
                    continue
                for name, value in (<dict>d).items():
                    col = metrics.get(name)
                    if col is None:
                        col = metrics[name] = (np.zeros(k, np.float64), np.zeros(k, bool))
                    col[0][i] = value
                    col[1][i] = True
        idx = slice(0, k) if order is None else order
        metrics = {name: (v[idx], p[idx]) for name, (v, p) in metrics.items()}
        return columns, names, metrics, token

    def recycle(self, token):
        """Give back a window's buffers (the ``token`` of :meth:`take_ready`)
        once nothing uses its columns any more."""
        if token is None:
            return
        # A list append under the GIL: no mutex, so the encoder thread never
        # waits here for an appender.
        if self.closed:
            _pool_put(token)
        elif len(self.spare) < _MAX_SPARE:
            self.spare.append(token)

    def extend(self, dict cols, list names, dict metrics=None):
        """Stage a batch whose shapes and types the caller has checked:
        ``cols`` holds timestamp (u64), phase (integer codes into ``names``),
        loss_value, coherence, tensor_signature.0..2 (1-D float32 or float64
        arrays, strided views allowed), action_code (int16), seed_state (u64);
        ``metrics`` maps metric names to (float64 values, bool present), the
        values checked by the caller against their precision.

        Every float is checked against its precision before anything is
        staged (a ValidationError names the column and the index), then
        copied straight into the staging windows: no column-sized
        temporaries, whose fresh pages would cost more than the work.
        Records are taken in order; an OrderError names the first one refused
        (the ones before it are kept)."""
        cdef size_t total, done = 0, take_n, r, c, k
        cdef uint64_t last, flo
        cdef int in_order, has_floor
        cdef bint sealed
        if self.closed:
            raise _errors.ChronoledgerError("%s: the chronicle writer is closed" % self.path)
        # Everything is converted and checked before the lock is taken.
        cdef const uint64_t[::1] ts = np.ascontiguousarray(cols["timestamp"], dtype=np.uint64)
        total = ts.shape[0]
        if total == 0:
            return
        remap = np.array([self._phase_lookup(nm) for nm in names], dtype=np.uint32)
        codes = cols["phase"]
        if not len(names):
            codes = np.zeros(total, np.uint32)
        elif not np.array_equal(remap, np.arange(len(remap))):   # else the codes are ours already
            codes = remap[np.asarray(codes, dtype=np.intp)]
        cdef const uint32_t[::1] ph = np.ascontiguousarray(codes, dtype=np.uint32)
        cdef const int16_t[::1] ac = np.ascontiguousarray(cols["action_code"], dtype=np.int16)
        cdef const uint64_t[::1] se = np.ascontiguousarray(cols["seed_state"], dtype=np.uint64)
        floats = [_FloatSource(cols[key], key, total) for key in _FLOAT_KEYS]
        cdef _FloatSource f0 = floats[0], f1 = floats[1], f2 = floats[2], f3 = floats[3], f4 = floats[4]
        for c in range(5):
            (<_FloatSource>floats[c]).check(total, self.fscale[c], self.finite_only, self.path, self.explain)
        extra = [(name, np.ascontiguousarray(v[0], dtype=np.float64), np.ascontiguousarray(v[1], dtype=bool))
                 for name, v in (metrics or {}).items()]
        while done < total:
            sealed = False
            self._acquire()
            try:
                if done == 0 and self.has_floor and int(np.min(ts)) < self.floor:
                    tsa = np.asarray(ts)
                    i = int(np.argmax(tsa < self.floor))
                    raise _errors.OrderError("%s: timestamp[%d] = %d is older than the last flushed timestamp %d"
                                             % (self.path, i, int(tsa[i]), self.floor))
                r = self.n
                take_n = min(self.window - r, total - done)
                last, in_order, has_floor, flo = self.last_ts, self.in_order, self.has_floor, self.floor
                with nogil:          # other threads wait on the lock without the GIL
                    k = cl_stage_scan_ts(&ts[done], take_n, has_floor, flo, &last, &in_order)
                    f0.copy(done, k, &self.loss[r])
                    f1.copy(done, k, &self.coh[r])
                    f2.copy(done, k, &self.t0[r])
                    f3.copy(done, k, &self.t1[r])
                    f4.copy(done, k, &self.t2[r])
                    memcpy(&self.ts[r], &ts[done], k * 8)
                    memcpy(&self.phase[r], &ph[done], k * 4)
                    memcpy(&self.action[r], &ac[done], k * 2)
                    memcpy(&self.seed[r], &se[done], k * 8)
                self.last_ts, self.in_order = last, in_order
                for name, v, p in extra:
                    col = self.batch_metrics.get(name)
                    if col is None:
                        col = self.batch_metrics[name] = (np.zeros(self.window, np.float64),
                                                          np.zeros(self.window, bool))
                    col[0][r:r + k] = v[done:done + k]
                    col[1][r:r + k] = p[done:done + k]
                self.n = r + k
                if k < take_n:
                    raise _errors.OrderError("%s: timestamp[%d] = %d is older than the last flushed "
                                             "timestamp %d" % (self.path, done + k, ts[done + k], self.floor))
                done += k
                if self.n == self.window:
                    self._seal_locked()
                    sealed = True
            finally:
                self._release()
            if sealed:
                self.sink()

    def flush(self):
        """Seal and queue what is staged (fewer than a window)."""
        cdef bint sealed = False
        self._acquire()
        try:
            if self.n:
                self._seal_locked()
                sealed = True
        finally:
            self._release()
        if sealed:
            self.sink()

    def set_floor(self, floor):
        """Accept records from ``floor`` on (None: any), as after a rewind;
        only when nothing is staged or sealed and not taken."""
        self._acquire()
        try:
            if self.n or self.ready:
                raise ValueError("CycleStager.set_floor: records are staged; flush them first")
            self.has_floor = floor is not None
            self.floor = 0 if floor is None else floor
        finally:
            self._release()

    def close(self):
        """Refuse further records (what is staged stays until flushed); the
        spare buffers go to the process's pool for the next stager."""
        self.closed = True
        while self.spare:
            _pool_put(self.spare.pop())

    @property
    def pending(self):
        """Records staged and not yet sealed."""
        return self.n

    @property
    def pending_max(self):
        """The newest timestamp staged and not yet sealed, or None."""
        self._acquire()
        try:
            return int(np.max(self.a_ts[:self.n])) if self.n else None
        finally:
            self._release()

    @property
    def last_flushed(self):
        """The newest timestamp sealed so far, or None."""
        return self.floor if self.has_floor else None


# ---------------------------------------------------------------------------
# Encoding kernels (the writer's background thread; the GIL is released)

def fixed_exceptions(values):
    """The indices (uint32) of the float64 ``values`` that fixed point keeps
    as exceptions beside its integers: NaN, the infinities and -0.0."""
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError("fixed_exceptions: expected a 1-D array, got shape %s" % (arr.shape,))
    cdef size_t n = arr.shape[0], count = 0
    if n > 0xFFFFFFFF:
        raise ValueError("fixed_exceptions: at most 2**32 values")
    at = np.empty(n, np.uint32)
    if n == 0:
        return at
    cdef const double *src = <const double *>cnp.PyArray_DATA(<cnp.ndarray>arr)
    cdef uint32_t *dst = <uint32_t *>cnp.PyArray_DATA(<cnp.ndarray>at)
    with nogil:
        count = cl_stage_exceptions(src, n, dst)
    return at[:count].copy() if count else at[:0]


def first_use(codes, size_t m):
    """The distinct values of ``codes`` (integer codes below ``m``), in order
    of first use, as uint32: one pass that stops once all ``m`` are seen (a
    dictionary column's canonical order, without sorting the column)."""
    cdef const uint32_t[::1] c = np.ascontiguousarray(codes, dtype=np.uint32)
    cdef size_t n = c.shape[0], i, k = 0, bad = n
    cdef uint32_t v
    seen_arr = np.zeros(m if m else 1, np.uint8)
    order = np.empty(m if m else 1, np.uint32)
    cdef uint8_t *seen = <uint8_t *>cnp.PyArray_DATA(<cnp.ndarray>seen_arr)
    cdef uint32_t *out = <uint32_t *>cnp.PyArray_DATA(<cnp.ndarray>order)
    with nogil:
        for i in range(n):
            v = c[i]
            if v >= m:
                bad = i
                break
            if not seen[v]:
                seen[v] = 1
                out[k] = v
                k += 1
                if k == m:
                    break
    if bad < n:
        raise ValueError("first_use: code %d at index %d is not below %d" % (c[bad], bad, m))
    return order[:k]


def start_writeback(int fd, long long offset, long long length):
    """Ask the OS to start writing ``length`` bytes of ``fd`` from ``offset``
    back to the disk, and return without waiting (Linux ``sync_file_range``
    with ``SYNC_FILE_RANGE_WRITE``): a later fsync then finds little left to
    write.  A hint, never a promise of durability; returns 0, an errno, or
    -1 where the OS has no such call (then nothing happens)."""
    cdef int r
    with nogil:
        r = cl_start_writeback(fd, offset, length)
    return r


# Reading: records from decoded columns

cdef object _NEW = object.__new__


def build_cycle_records(cls, const uint64_t[::1] timestamp, const uint32_t[::1] phase_codes, list phase_names,
                        const double[::1] loss_value, const double[::1] coherence, const double[::1] t0,
                        const double[::1] t1, const double[::1] t2, const int16_t[::1] action_code,
                        const uint64_t[::1] seed_state, list metrics):
    """A list of ``cls`` (CycleRecord) instances, one per row of the decoded
    columns; ``action_code`` -1 is None; ``metrics`` is a list of one dict
    per row, or None for a fresh empty dict each.

    Why compiled: building records field by field in Python (``tolist`` of
    each column, a tuple per row, then the fields) was half of a 1,000-record
    ``query_range``.  Fields are set with the generic setattr, as a frozen
    dataclass's own ``__init__`` does through ``object.__setattr__``, so the
    instances are the same objects it would make."""
    cdef Py_ssize_t n = timestamp.shape[0], i
    cdef Py_ssize_t m = len(phase_names)
    if (phase_codes.shape[0] != n or loss_value.shape[0] != n or coherence.shape[0] != n or t0.shape[0] != n
            or t1.shape[0] != n or t2.shape[0] != n or action_code.shape[0] != n or seed_state.shape[0] != n
            or (metrics is not None and len(metrics) != n)):
        raise ValueError("build_cycle_records: the columns hold different numbers of rows")
    for i in range(n):
        if phase_codes[i] >= m:
            raise ValueError("build_cycle_records: phase code %d at row %d is not below %d"
                             % (phase_codes[i], i, m))
    out = [None] * n
    new = _NEW
    for i in range(n):
        rec = new(cls)
        PyObject_GenericSetAttr(rec, "timestamp", timestamp[i])
        PyObject_GenericSetAttr(rec, "phase", phase_names[phase_codes[i]])
        PyObject_GenericSetAttr(rec, "loss_value", loss_value[i])
        PyObject_GenericSetAttr(rec, "coherence", coherence[i])
        PyObject_GenericSetAttr(rec, "tensor_signature", (t0[i], t1[i], t2[i]))
        PyObject_GenericSetAttr(rec, "action_code", None if action_code[i] < 0 else action_code[i])
        PyObject_GenericSetAttr(rec, "seed_state", seed_state[i])
        PyObject_GenericSetAttr(rec, "metrics", {} if metrics is None else metrics[i])
        out[i] = rec
    return out
