"""Ordered append buffer: a state machine against a plain list, and threads."""

import threading

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chronoledger import core
from chronoledger.errors import OrderError

from _reference import ordered


def test_window_is_sorted_by_timestamp_then_arrival():
    buf = core.AppendBuffer(flush_every=6)
    for ts in [5, 3, 5, 1, 3, 5]:
        buf.append(ts)
    ts, payload = buf.take()
    assert ts.tolist() == [1, 3, 3, 5, 5, 5]
    assert payload.tolist() == [3, 1, 4, 0, 2, 5]   # default payload: arrival number
    assert buf.windows == 1 and buf.last_flushed == 5


def test_refuses_records_older_than_the_last_flush():
    buf = core.AppendBuffer(flush_every=3)
    buf.extend(np.array([10, 20, 30], dtype=np.uint64))
    with pytest.raises(OrderError, match="timestamp 29 is older than the last flushed timestamp 30"):
        buf.append(29)
    buf.append(30)                      # equal is allowed
    assert buf.pending == 1 and buf.count == 4


def test_flush_is_deterministic_by_count_not_time():
    seen = []
    buf = core.AppendBuffer(flush_every=4, sink=lambda t, p: seen.append(t.tolist()))
    for ts in [4, 3, 2, 1, 8, 7, 6, 5, 9]:
        buf.append(ts)
    assert seen == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert buf.pending == 1
    buf.flush()
    assert seen[-1] == [9]


def test_extend_keeps_records_before_a_bad_one():
    buf = core.AppendBuffer(flush_every=2)
    with pytest.raises(OrderError, match="index 3"):
        buf.extend([5, 6, 7, 1, 9])
    ts, _ = buf.take()
    assert ts.tolist() == [5, 6]
    assert buf.pending == 1 and buf.count == 3


def test_payloads_and_input_checks():
    buf = core.AppendBuffer(flush_every=10)
    buf.append(1, 99)
    buf.extend(np.array([2, 3], dtype=np.int64), payloads=[7, 8])
    buf.flush()
    assert buf.take()[1].tolist() == [99, 7, 8]
    with pytest.raises(ValueError, match=">= 0"):
        buf.extend([1, -2])
    with pytest.raises(ValueError, match="payloads"):
        buf.extend([1, 2], payloads=[1])
    with pytest.raises(TypeError, match="integers"):
        buf.extend([1.5])
    with pytest.raises(OverflowError):
        buf.append(-1)
    with pytest.raises(ValueError, match="flush_every"):
        core.AppendBuffer(flush_every=0)
    with pytest.raises(TypeError, match="callable"):
        core.AppendBuffer(sink=3)


def test_a_failing_sink_loses_nothing():
    got = []
    fail = [True]

    def sink(ts, payload):
        if fail[0]:
            raise RuntimeError("disk full")
        got.extend(ts.tolist())

    buf = core.AppendBuffer(flush_every=2, sink=sink)
    buf.append(1)
    with pytest.raises(RuntimeError):
        buf.append(2)
    assert buf.ready == 2
    fail[0] = False
    buf.append(3)
    buf.flush()
    assert got == [1, 2, 3]


def test_sink_may_append_to_its_own_buffer():
    got = []
    buf = None

    def sink(ts, payload):
        got.extend(ts.tolist())
        if ts[-1] < 100:
            buf.append(int(ts[-1]) + 100)

    buf = core.AppendBuffer(flush_every=1, sink=sink)
    buf.append(1)
    assert got == [1, 101]


def test_large_batches():
    n = 1_000_003
    rng = np.random.default_rng(0)
    ts = np.sort(rng.integers(0, 10**9, n)).astype(np.uint64)
    buf = core.AppendBuffer(flush_every=65536)
    buf.extend(ts)
    buf.flush()
    out, payload = buf.take()
    assert np.array_equal(out, ts)
    assert np.array_equal(payload, np.arange(n, dtype=np.uint64))


class AppendBufferMachine(RuleBasedStateMachine):
    """The buffer must behave exactly like this list-based model."""

    def __init__(self):
        super().__init__()
        self.window = 5
        self.buf = core.AppendBuffer(flush_every=self.window)
        self.pending = []      # (ts, arrival)
        self.ready = []
        self.floor = None
        self.count = 0

    def _push(self, ts):
        if self.floor is not None and ts < self.floor:
            return False
        self.pending.append((ts, self.count))
        self.count += 1
        if len(self.pending) == self.window:
            self._seal()
        return True

    def _seal(self):
        if self.pending:
            out = ordered(self.pending)
            self.ready += out
            self.floor = out[-1][0]
            self.pending = []

    @rule(ts=st.integers(0, 40))
    def append(self, ts):
        ok = self._push(ts)
        if ok:
            self.buf.append(ts)
        else:
            with pytest.raises(OrderError):
                self.buf.append(ts)

    @rule(batch=st.lists(st.integers(0, 40), max_size=12))
    def extend(self, batch):
        bad = None
        for i, ts in enumerate(batch):
            if not self._push(ts):
                bad = i
                break
        if bad is None:
            self.buf.extend(np.array(batch, dtype=np.uint64))
        else:
            with pytest.raises(OrderError, match=f"index {bad}"):
                self.buf.extend(np.array(batch, dtype=np.uint64))

    @rule()
    def flush(self):
        self._seal()
        self.buf.flush()

    @precondition(lambda self: self.ready)
    @rule()
    def take(self):
        ts, payload = self.buf.take()
        assert list(zip(ts.tolist(), payload.tolist())) == self.ready
        self.ready = []

    @invariant()
    def counters_agree(self):
        assert self.buf.pending == len(self.pending)
        assert self.buf.ready == len(self.ready)
        assert self.buf.count == self.count
        assert self.buf.last_flushed == self.floor


TestAppendBufferMachine = AppendBufferMachine.TestCase


def test_threads_appending_at_once_lose_nothing_and_stay_ordered():
    windows = []
    buf = core.AppendBuffer(flush_every=1000, sink=lambda t, p: windows.append((t.copy(), p.copy())))
    per_thread, n_threads = 20_000, 4
    rejected = [0] * n_threads
    barrier = threading.Barrier(n_threads)

    def work(k):
        rng = np.random.default_rng(k)
        barrier.wait()
        for i in range(per_thread):
            # timestamps drift upward with jitter, so records arrive out of order
            ts = i * 10 + int(rng.integers(0, 30))
            try:
                buf.append(ts, k * per_thread + i)
            except OrderError:
                rejected[k] += 1

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    buf.flush()
    ts = np.concatenate([w[0] for w in windows])
    payload = np.concatenate([w[1] for w in windows])
    assert len(ts) + sum(rejected) == per_thread * n_threads
    assert len(set(payload.tolist())) == len(payload)          # each record once
    assert np.all(np.diff(ts.astype(np.int64)) >= 0)             # monotonic across windows
    # sealed by count: a delivery carries whole windows (several, if they were
    # sealed while another thread was delivering)
    assert all(len(w[0]) % 1000 == 0 for w in windows[:-1])


def test_threads_with_batches_and_ties_keep_arrival_order():
    buf = core.AppendBuffer(flush_every=10**7)
    n_threads, batches = 4, 50

    def work(k):
        for b in range(batches):
            buf.extend(np.full(100, 7, dtype=np.uint64), payloads=np.full(100, k * 1000 + b, dtype=np.uint64))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    buf.flush()
    ts, payload = buf.take()
    assert len(ts) == n_threads * batches * 100
    # within one thread, batches come out in the order that thread sent them
    for k in range(n_threads):
        mine = payload[(payload >= k * 1000) & (payload < (k + 1) * 1000)]
        assert np.all(np.diff(mine.astype(np.int64)) >= 0)


def test_take_inside_the_sink_is_refused():
    buf = None

    def sink(ts, payload):
        buf.take()

    buf = core.AppendBuffer(flush_every=1, sink=sink)
    with pytest.raises(RuntimeError, match="inside the sink"):
        buf.append(1)


def test_order_error_survives_a_failing_sink():
    def sink(ts, payload):
        raise RuntimeError("sink down")

    buf = core.AppendBuffer(flush_every=2, sink=sink)
    with pytest.raises(OrderError, match="index 2") as info:
        buf.extend([200, 201, 5, 300])
    assert isinstance(info.value.__context__, RuntimeError)
    assert buf.count == 2 and buf.ready == 2      # the two good records are kept, queued
