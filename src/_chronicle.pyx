# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, embedsignature=True
"""Compiled staging for the chronicle writer: one cycle record per call, checked
and stored into typed columns without building Python objects, ordered by the
core's append buffer.  Knows nothing of files: full windows go to a sink.
"""

cimport numpy as cnp
from cpython.float cimport PyFloat_AsDouble, PyFloat_AS_DOUBLE, PyFloat_CheckExact
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_SIZE, PyTuple_GET_ITEM
from libc.math cimport isfinite, fabs, isinf
from libc.string cimport memcpy
from libc.stdint cimport int16_t, uint8_t, uint32_t, uint64_t, int64_t

import numpy as np

from chronoledger import errors as _errors
from chronoledger.chronicle import precision as _precision

from cnative cimport *

cnp.import_array()

DEF_PHASE_MAX = 64

_KEYS = ("timestamp", "phase", "loss_value", "coherence", "tensor_signature.0",
         "tensor_signature.1", "tensor_signature.2", "action_code", "seed_state")


_MAX_SPARE = 8          # window buffer sets kept for reuse (the writer queues at most a few)
_FLOAT_KEYS = ("loss_value", "coherence", "tensor_signature.0", "tensor_signature.1", "tensor_signature.2")


cdef double _FIXED_LIMIT = 9.2e18
cdef double _F32_MAX = 3.4028234663852886e38


cdef inline bint _storable(double v, double scale, double inv, bint f32, bint finite_only) noexcept nogil:
    """Whether ``v`` can be stored (chronicle.precision's rules): exact
    float32 (scale 0) neither overflows nor turns a non-zero value into 0;
    fixed point stays inside int64 (and float32's range for a float32 field)."""
    cdef double a
    cdef float f
    if not isfinite(v):
        return not finite_only
    if scale == 0.0:
        if not f32:
            return True
        f = <float>v
        return not isinf(f) and not (f == 0.0 and v != 0.0)
    a = fabs(v) * inv
    # fixed point rounds every value to the scale, tiny ones to 0: the choice a scale makes
    return not (a >= _FIXED_LIMIT or (f32 and fabs(v) > _F32_MAX))


cdef class _FloatSource:
    """One float column of an extend() batch: float32 or float64, contiguous
    or a strided view (a column of an (n, 3) array), checked and copied a
    chunk at a time."""
    cdef object arr
    cdef str name
    cdef bint f32
    cdef const float[:] v32
    cdef const double[:] v64

    def __cinit__(self, values, str name, size_t n):
        arr = np.asarray(values)
        if arr.dtype != np.float32 and arr.dtype != np.float64:
            arr = arr.astype(np.float64)
        if arr.ndim != 1 or <size_t>arr.shape[0] != n:
            raise ValueError("CycleStager.extend: %s must be 1-D with %d values" % (name, n))
        self.arr = arr
        self.name = name
        self.f32 = arr.dtype == np.float32
        if self.f32:
            self.v32 = arr
        else:
            self.v64 = arr

    cdef int check(self, size_t n, double scale, bint finite_only, object path) except -1:
        """Raise ValidationError naming the first value that would not be stored as itself."""
        cdef size_t i, bad = n
        cdef double inv = 1.0 / scale if scale > 0.0 else 0.0
        with nogil:
            for i in range(n):
                if not _storable(self.v32[i] if self.f32 else self.v64[i], scale, inv, True, finite_only):
                    bad = i
                    break
        if bad == n:
            return 0
        value = float(self.arr[bad])
        if finite_only and not (value - value == 0.0):          # NaN or an infinity
            raise _errors.ValidationError(
                "%s: column %r: element %d is %r: this chronicle is in format 1 (fixed point), which cannot "
                "store NaN or infinity" % (path, self.name, bad, value))
        _precision.check_value(value, scale if scale > 0.0 else None, True,
                               "%s: column %r: element %d" % (path, self.name, bad))
        raise _errors.ValidationError("%s: column %r: element %d = %r cannot be stored"
                                      % (path, self.name, bad, value))

    cdef void copy(self, size_t start, size_t n, double *out) noexcept nogil:
        cdef size_t i
        if self.f32:
            for i in range(n):
                out[i] = self.v32[start + i]
        else:
            for i in range(n):
                out[i] = self.v64[start + i]


cdef class CycleStager:
    """Stages cycle records for a chronicle writer.

    ``append`` checks one record and stores it, ``extend`` a checked batch of
    columns; every ``window`` records the window is sealed (sorted by
    (timestamp, arrival) by the core's append buffer), queued, and ``sink()``
    is called; ``take_ready()`` then gives the queued windows in order as
    ``(columns, labels, metrics)``: numpy columns (timestamp u64, phase u32
    codes, loss_value, coherence, tensor_signature.0..2 float64 as given,
    action_code int16 with -1 for none, seed_state u64), the phase names of
    the codes, and metric name -> (float64 values, bool present).

    Every float is checked against its precision as it is staged
    (``fields``: the five cycle fields' scales, 0.0 for exact float32;
    ``metric_default`` / ``metric_named``: the metrics', 0.0 for exact
    float64; ``finite_only`` for a format-1 file, which has no room for NaN
    or infinity): what would not be stored as itself is refused now, so
    encoding a window later cannot fail.

    Thread-safe: the staging state is guarded by a lock that is held only
    while no Python code of the caller runs; a thread waiting for it does not
    hold the GIL.  The checks (which may run Python code) come before it.
    """
    cdef cl_appendbuf *_b
    cdef cl_mutex lock
    cdef bint lock_ready
    cdef size_t window
    cdef double fscale[5]
    cdef double finv[5]
    cdef double metric_default
    cdef dict metric_named
    cdef bint finite_only
    cdef bint has_floor
    cdef uint64_t floor
    cdef object sink
    cdef object path
    cdef object last_phase
    cdef uint32_t last_code
    cdef dict phase_codes
    cdef list phase_names
    cdef list row_metrics          # per row: the metrics dict of append(), or None
    cdef bint any_row_metrics
    cdef dict batch_metrics        # name -> (values, present) copied in by extend()
    cdef object a_ts, a_phase, a_loss, a_coh, a_t0, a_t1, a_t2, a_action, a_seed, a_rows
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
    cdef uint64_t *rows
    cdef size_t n
    cdef bint closed
    cdef list ready
    cdef list spare                # window buffer sets given back by recycle()
    cdef object a_order, a_sorted_ts

    def __cinit__(self, size_t window, object sink, object floor=None, str path="", tuple fields=(0.0,) * 5,
                  double metric_default=0.0, dict metric_named=None, bint finite_only=False):
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
        if not (metric_default >= 0.0 and isfinite(metric_default)):
            raise ValueError("CycleStager: metric_default must be finite and >= 0, got %r" % metric_default)
        self.metric_default = metric_default
        self.metric_named = dict(metric_named or {})
        self.finite_only = finite_only
        cdef cl_status st = cl_appendbuf_new(window, &self._b)
        if st != CL_OK:
            raise _errors.status_error(<int>st, "CycleStager", "cannot allocate the ordering buffer")
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
        self.a_rows = np.empty(window, np.uint64)
        self.rows = <uint64_t *>cnp.PyArray_DATA(self.a_rows)
        self._alloc()

    def __dealloc__(self):
        if self._b is not NULL:
            cl_appendbuf_free(self._b)
            self._b = NULL
        if self.lock_ready:
            cl_mutex_destroy(&self.lock)
            self.lock_ready = False

    cdef inline void _acquire(self):
        if not cl_mutex_trylock(&self.lock):
            with nogil:              # the holder may need the GIL to finish
                cl_mutex_lock(&self.lock)

    cdef inline void _release(self):
        cl_mutex_unlock(&self.lock)

    cdef _alloc(self):
        # Reusing a window's buffers matters: fresh ones are new mappings whose
        # pages the kernel faults in and zeroes, which costs more than staging.
        if self.spare:
            (self.a_ts, self.a_phase, self.a_loss, self.a_coh, self.a_t0, self.a_t1, self.a_t2,
             self.a_action, self.a_seed, self.a_order, self.a_sorted_ts) = self.spare.pop()
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
            self.a_order = np.empty(self.window, np.uint64)
            self.a_sorted_ts = np.empty(self.window, np.uint64)
        self.ts = <uint64_t *>cnp.PyArray_DATA(self.a_ts)
        self.phase = <uint32_t *>cnp.PyArray_DATA(self.a_phase)
        self.loss = <double *>cnp.PyArray_DATA(self.a_loss)
        self.coh = <double *>cnp.PyArray_DATA(self.a_coh)
        self.t0 = <double *>cnp.PyArray_DATA(self.a_t0)
        self.t1 = <double *>cnp.PyArray_DATA(self.a_t1)
        self.t2 = <double *>cnp.PyArray_DATA(self.a_t2)
        self.action = <int16_t *>cnp.PyArray_DATA(self.a_action)
        self.seed = <uint64_t *>cnp.PyArray_DATA(self.a_seed)
        self.row_metrics = [None] * self.window
        self.any_row_metrics = False
        self.batch_metrics = {}
        self.n = 0

    # --- checks (may run Python code; done before the lock) ---------------------
    cdef int _bad(self, str what) except -1:
        raise _errors.ValidationError("%s: %s" % (self.path, what))

    cdef double _f_slow(self, object v, str name, double scale, bint f32) except? -1.0:
        cdef double f = 0.0
        try:
            f = PyFloat_AsDouble(v)
        except TypeError:
            self._bad("%s must be a number, got %r" % (name, v))
        if _storable(f, scale, 1.0 / scale if scale > 0.0 else 0.0, f32, self.finite_only):
            return f
        if self.finite_only and not isfinite(f):
            self._bad("%s = %r cannot be stored: this chronicle is in format 1 (fixed point), which has no "
                      "NaN or infinity" % (name, v))
        _precision.check_value(f, scale if scale > 0.0 else None, f32, "%s: %s" % (self.path, name))
        self._bad("%s = %r cannot be stored" % (name, v))
        return f

    cdef inline double _f(self, object v, str name, int k) except? -1.0:
        # a float checked against its field's precision as it is recorded
        cdef double d
        if PyFloat_CheckExact(v):
            d = PyFloat_AS_DOUBLE(v)
            if _storable(d, self.fscale[k], self.finv[k], True, self.finite_only):
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
                if not _storable(d, scale, 1.0 / scale if scale > 0.0 else 0.0, False, self.finite_only):
                    d = self._f_slow(v, "metric %r" % (k,), scale, False)
            else:
                d = self._f_slow(v, "metric %r" % (k,), scale, False)
            out[k] = d
        return out

    def append(self, timestamp, phase, loss_value, coherence, tensor_signature=None, action_code=None,
               seed_state=0, metrics=None):
        """Check and stage one cycle record; returns True when it completed a window."""
        cdef uint64_t ts, seed, floor = 0
        cdef double loss, coh, x0 = 0.0, x1 = 0.0, x2 = 0.0
        cdef int16_t action = -1
        cdef uint32_t code
        cdef int sealed = 0
        cdef size_t row
        cdef uint64_t payload
        cdef cl_status st
        if self.closed:
            raise _errors.ChronoledgerError("%s: the chronicle writer is closed" % self.path)
        # ints only: a float timestamp or seed would be silently truncated
        if type(timestamp) is not int and (isinstance(timestamp, bool) or not isinstance(timestamp, np.integer)):
            self._bad("timestamp %r is not a u64" % (timestamp,))
        try:
            ts = timestamp
        except (OverflowError, TypeError):
            self._bad("timestamp %r is not a u64" % (timestamp,))
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
        if type(seed_state) is not int and (isinstance(seed_state, bool) or not isinstance(seed_state, np.integer)):
            self._bad("seed_state %r is not a u64" % (seed_state,))
        try:
            seed = seed_state
        except (OverflowError, TypeError):
            self._bad("seed_state %r is not a u64" % (seed_state,))
        if metrics:
            metrics = self._check_metrics(metrics)
        else:
            metrics = None
        self._acquire()
        try:
            if self.has_floor and ts < self.floor:
                raise _errors.OrderError("%s: timestamp %d is older than the last flushed timestamp %d"
                                         % (self.path, ts, self.floor))
            row = self.n
            payload = row
            st = cl_appendbuf_push(self._b, ts, &payload, &floor, &sealed)
            if st == CL_ERR_ORDER:
                raise _errors.OrderError("%s: timestamp %d is older than the last flushed timestamp %d"
                                         % (self.path, ts, floor))
            if st != CL_OK:
                raise _errors.status_error(<int>st, "%s: staging a record" % self.path)
            self.ts[row] = ts
            self.phase[row] = code
            self.loss[row] = loss
            self.coh[row] = coh
            self.t0[row] = x0
            self.t1[row] = x1
            self.t2[row] = x2
            self.action[row] = action
            self.seed[row] = seed
            if metrics is not None:
                self.row_metrics[row] = metrics
                self.any_row_metrics = True
            self.n = row + 1
            if sealed:
                self._seal_locked()
        finally:
            self._release()
        if sealed:
            self.sink()
            return True
        return False

    cdef _seal_locked(self):
        """Queue the sealed window; called with the lock held, after the
        append buffer sealed it.  The gather into sorted columns happens in
        take_ready(), outside the lock."""
        cdef size_t k = 0, n = self.n
        order = self.a_order
        cdef uint64_t[::1] ov = order
        cdef uint64_t[::1] tv = self.a_sorted_ts
        if n:
            cl_appendbuf_peek(self._b, &tv[0], &ov[0], n, &k)
            cl_appendbuf_consume(self._b, k)
        arrays = (self.a_ts, self.a_phase, self.a_loss, self.a_coh, self.a_t0, self.a_t1, self.a_t2,
                  self.a_action, self.a_seed, self.a_order, self.a_sorted_ts)
        self.ready.append((arrays, self.row_metrics if self.any_row_metrics else None, self.batch_metrics,
                           list(self.phase_names), order, k))
        if k:
            self.has_floor = True
            self.floor = tv[k - 1]
        self._alloc()

    def take_ready(self):
        """Remove and return the sealed windows, oldest first, as
        ``(columns, labels, metrics, token)``.  When ``token`` is not None the
        columns are views of the stager's buffers: hand it to :meth:`recycle`
        once they are no longer used, so the next windows reuse the memory."""
        cdef size_t k
        self._acquire()
        raws = self.ready
        self.ready = []
        self._release()
        out = []
        cdef const uint64_t[::1] ov
        cdef size_t j
        cdef bint identity
        for arrays, row_metrics, batch_metrics, names, order, k in raws:
            ov = order
            identity = True
            for j in range(k):
                if ov[j] != j:
                    identity = False
                    break
            idx = slice(0, k) if identity else order[:k].astype(np.intp)
            columns = {key: a[idx] for key, a in zip(_KEYS, arrays)}
            metrics = {name: (v.copy(), p.copy()) for name, (v, p) in batch_metrics.items()}
            for i in range(k if row_metrics is not None else 0):
                d = row_metrics[i]
                if d is None:
                    continue
                for name, value in (<dict>d).items():
                    col = metrics.get(name)
                    if col is None:
                        col = metrics[name] = (np.zeros(self.window, np.float64), np.zeros(self.window, bool))
                    col[0][i] = value
                    col[1][i] = True
            metrics = {name: (v[idx], p[idx]) for name, (v, p) in metrics.items()}
            if identity:
                out.append((columns, names, metrics, arrays))
            else:                       # the columns were gathered into new arrays
                self.recycle(arrays)
                out.append((columns, names, metrics, None))
        return out

    def recycle(self, token):
        """Give back a window's buffers (the ``token`` of :meth:`take_ready`)
        once nothing uses its columns any more."""
        if token is None:
            return
        self._acquire()
        try:
            if len(self.spare) < _MAX_SPARE:
                self.spare.append(token)
        finally:
            self._release()

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
        cdef size_t total, done = 0, take_n, j, r, n_done = 0, c
        cdef uint64_t floor = 0
        cdef cl_status st
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
            (<_FloatSource>floats[c]).check(total, self.fscale[c], self.finite_only, self.path)
        extra = [(name, np.ascontiguousarray(v[0], dtype=np.float64), np.ascontiguousarray(v[1], dtype=bool))
                 for name, v in (metrics or {}).items()]
        cdef double *dest[5]
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
                dest[0] = &self.loss[r]
                dest[1] = &self.coh[r]
                dest[2] = &self.t0[r]
                dest[3] = &self.t1[r]
                dest[4] = &self.t2[r]
                with nogil:          # other threads wait on the lock without the GIL
                    f0.copy(done, take_n, dest[0])
                    f1.copy(done, take_n, dest[1])
                    f2.copy(done, take_n, dest[2])
                    f3.copy(done, take_n, dest[3])
                    f4.copy(done, take_n, dest[4])
                    memcpy(&self.ts[r], &ts[done], take_n * 8)
                    memcpy(&self.phase[r], &ph[done], take_n * 4)
                    memcpy(&self.action[r], &ac[done], take_n * 2)
                    memcpy(&self.seed[r], &se[done], take_n * 8)
                    for j in range(take_n):
                        self.rows[j] = r + j
                for name, v, p in extra:
                    col = self.batch_metrics.get(name)
                    if col is None:
                        col = self.batch_metrics[name] = (np.zeros(self.window, np.float64),
                                                          np.zeros(self.window, bool))
                    col[0][r:r + take_n] = v[done:done + take_n]
                    col[1][r:r + take_n] = p[done:done + take_n]
                st = cl_appendbuf_push_many(self._b, &ts[done], self.rows, take_n, &n_done, &floor)
                if st != CL_OK:
                    self.n = r + n_done
                    if st == CL_ERR_ORDER:
                        raise _errors.OrderError("%s: timestamp[%d] = %d is older than the last flushed "
                                                 "timestamp %d" % (self.path, done + n_done, ts[done + n_done],
                                                                   floor))
                    raise _errors.status_error(<int>st, "%s: staging records" % self.path)
                self.n = r + take_n
                done += take_n
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
        cdef cl_status st
        self._acquire()
        try:
            if self.n:
                st = cl_appendbuf_seal(self._b)
                if st != CL_OK:
                    raise _errors.status_error(<int>st, "%s: sealing staged records" % self.path)
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
            st = cl_appendbuf_set_floor(self._b, floor is not None, 0 if floor is None else floor)
            if st != CL_OK:
                raise ValueError("CycleStager.set_floor: records are pending in the ordering buffer")
            self.has_floor = floor is not None
            self.floor = 0 if floor is None else floor
        finally:
            self._release()

    def close(self):
        """Refuse further records (what is staged stays until flushed)."""
        self.closed = True

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
