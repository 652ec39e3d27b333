"""The chronicle: the five tests of the specification, and the rest of the contract."""

import bisect
import os
import sys
import threading
import warnings

import numpy as np
import pytest

from chronoledger import core, workload
from chronoledger.chronicle import (
    Chronicle,
    CycleRecord,
    EventRecord,
    WriterLockedError,
    compress_records,
    load_chronicle,
    query_range,
    record_cycle,
    save_chronicle,
    verify,
)
from chronoledger.errors import ConfigError, OrderError, ValidationError

from _chronicle_util import PHASES, cycle_fields, write_cycles


def test_chronicle_record_append(tmp_path):
    """Records come out in chronological order; older-than-flushed is refused."""
    p = tmp_path / "a.cmeta"
    with Chronicle.open(p, "w", block_records=4) as ch:
        for ts in [5, 3, 4, 1]:                       # one window, out of order
            ch.append(timestamp=ts, phase="train", loss_value=ts, coherence=0.5)
        with pytest.raises(OrderError, match="older than the last flushed timestamp 5"):
            ch.append(timestamp=4, phase="train", loss_value=0.0, coherence=0.5)
        ch.append(timestamp=5, phase="dream", loss_value=1.0, coherence=0.5)   # equal is fine
        ch.append(timestamp=9, phase="dream", loss_value=1.0, coherence=0.5)
    with Chronicle.open(p) as ch:
        ts = ch.to_numpy()["timestamp"]
    assert ts.tolist() == [1, 3, 4, 5, 5, 9]
    assert np.all(np.diff(ts.astype(np.int64)) >= 0)


def test_chronicle_compression_roundtrip(tmp_path):
    """What is read back is bitwise what the writer holds (the specification's fixed point at 1e-6)."""
    p = tmp_path / "r.cmeta"
    held = []
    with Chronicle.open(p, "w", block_records=64, precision=1e-6) as ch:
        for i in range(500):
            held.append(record_cycle(CycleRecord(**cycle_fields(i)), ch))
    with load_chronicle(p) as ch:
        back = list(ch)
        cols = ch.to_numpy()
    assert back == held                                 # dataclass equality: every float bit for bit
    raw = np.array([cycle_fields(i)["loss_value"] for i in range(500)])
    expect = core.dequantize(core.quantize(raw), dtype=np.float32)
    assert cols["loss_value"].tobytes() == expect.tobytes()


def test_deterministic_replay(tmp_path):
    from chronoledger.chronicle import replay
    from chronoledger.examples import learner
    from chronoledger.examples.recording import record_learner

    p = tmp_path / "learner.cmeta"
    record_learner(p, 600)
    report = replay(p, learner.make_step)
    assert report.ok and report.records == 600 and report.matched == 600

    def drifting(config, seed):                          # a step that differs from cycle 300 on
        step = learner.make_step(config, seed)

        def run(ts, phase, seed_state):
            out = step(ts, phase, seed_state)
            if ts >= 300:
                out = dict(out, loss_value=out["loss_value"] + 1e-3)
            return out
        return run

    bad = replay(p, drifting)
    assert not bad.ok
    assert bad.first_divergence.index == 300 and bad.first_divergence.fields == ["loss_value"]
    assert bad.divergences == 300


def test_file_integrity(tmp_path):
    p = tmp_path / "i.cmeta"
    write_cycles(p, 300)
    assert verify(p).ok
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x10
    p.write_bytes(bytes(data))
    report = verify(p)
    assert not report.ok
    assert any("CRC" in c.detail or "corrupt" in c.detail or "torn" in c.detail for c in report.checks if not c.ok)


def test_query_range(tmp_path):
    p = tmp_path / "q.cmeta"
    write_cycles(p, 1000, block_records=64)
    with Chronicle.open(p) as ch:
        recs = query_range(ch, 250, 600)
        assert [r.timestamp for r in recs] == list(range(250, 600))
        assert recs[0] == CycleRecord(**{**cycle_fields(250), **{k: getattr(recs[0], k) for k in (
            "loss_value", "coherence", "tensor_signature", "metrics")}})
        cols = ch.query_columns(999, 5000)
        assert cols["timestamp"].tolist() == [999]
        assert len(ch.query(2000, 3000)) == 0
        assert len(ch.query(0, 1)) == 1


@pytest.mark.parametrize("precision", [None, 1e-6])
@pytest.mark.parametrize("spacing", ["uniform", "bursty"])
def test_query_range_is_the_slice_of_every_record(tmp_path, precision, spacing):
    """query_range and query_columns give exactly the records a filter over
    every record gives, for ranges anywhere in the blocks: where the block's
    time span guesses the rows well (uniform times) and where it does not
    (bursts, repeated times), in both float modes, with NaN, infinities,
    absent action codes and metrics that come and go."""
    rng = np.random.default_rng(7 if spacing == "uniform" else 8)
    n = 6000
    if spacing == "uniform":
        times = np.arange(n) * 10 + rng.integers(0, 5, n)
    else:       # most records in short bursts, a long quiet stretch, repeated timestamps
        times = np.sort(np.concatenate([rng.integers(0, 1000, n // 2), rng.integers(900_000, 900_050, n // 2)]))
    p = tmp_path / "q.cmeta"
    with Chronicle.open(p, "w", block_records=2048, precision=precision) as ch:
        for i, t in enumerate(times.tolist()):
            f = cycle_fields(i)
            if i % 97 == 0:
                f["loss_value"] = [float("nan"), float("inf"), float("-inf")][i % 3]
            ch.append(**{**f, "timestamp": t})
    with Chronicle.open(p) as ch:
        every = list(ch)
        stamps = [r.timestamp for r in every]
        bounds = sorted(set(rng.choice(stamps, 24).tolist() + [0, stamps[-1], stamps[-1] + 1, stamps[len(stamps) // 2]]))
        for start in bounds[::4]:
            for end in bounds[::2]:
                want = every[bisect.bisect_left(stamps, start):max(0, bisect.bisect_left(stamps, end))] \
                    if start < end else []
                got = ch.query_range(start, end)
                assert [r.timestamp for r in got] == [r.timestamp for r in want], (start, end)
                assert repr(got) == repr(want), (start, end)           # NaN compares unequal; its repr does not
                cols = ch.query_columns(start, end)
                assert cols["timestamp"].tolist() == [r.timestamp for r in want]
                assert cols["seed_state"].tolist() == [r.seed_state for r in want]


def test_read_block_takes_any_row_slice_as_python_does_and_rows_in_results_are_their_own(tmp_path):
    p = tmp_path / "s.cmeta"
    with Chronicle.open(p, "w", block_records=300) as ch:
        for i in range(600):
            ch.append(timestamp=i * 10, phase="t", loss_value=float(i), coherence=0.5, seed_state=i)
    with Chronicle.open(p) as ch:
        rd = ch._reader
        for sl in (slice(5, 3), slice(-10, None), slice(-10, -2), slice(0, 500), slice(None, None, 2),
                   slice(290, 310), slice(100, 101)):
            cols = rd.read_block(0, rows=sl)
            want = np.arange(300)[sl]
            assert cols["timestamp"].tolist() == (want * 10).tolist(), sl
            assert cols["loss_value"].tolist() == want.astype(np.float32).tolist(), sl
        # the first window of a block is decoded into a reused buffer: what rows_in returns is a copy
        a, b, first = rd.rows_in(0, 500, 600)
        kept = first.tolist()
        rd.rows_in(1, 3000, 3100)
        assert first.tolist() == kept == list(range(500, 600, 10)) and (a, b) == (50, 60)


def test_reopen_for_append_continues(tmp_path):
    p = tmp_path / "c.cmeta"
    write_cycles(p, 150, mode="w")
    write_cycles(p, 150, mode="a", start=150)
    with Chronicle.open(p) as ch:
        assert len(ch) == 300
        assert ch.to_numpy()["timestamp"].tolist() == list(range(300))
    assert verify(p).ok
    with pytest.raises(OrderError):
        write_cycles(p, 1, mode="a", start=5)
    with pytest.raises(ConfigError, match="precision is fixed when a chronicle is created"):
        Chronicle.open(p, "a", scale=1e-3)
    with pytest.raises(ConfigError, match="cycle chronicle"):
        Chronicle.open(p, "a", schema="event")


def test_second_writer_is_refused(tmp_path):
    p = tmp_path / "w.cmeta"
    with Chronicle.open(p, "w"):
        with pytest.raises(WriterLockedError, match="another writer"):
            Chronicle.open(p, "a")
        with Chronicle.open(p) as reader:          # readers are always welcome
            assert len(reader) == 0
    with Chronicle.open(p, "a"):                    # the lock went with the first writer
        pass


def test_threads_appending_at_once_lose_nothing(tmp_path):
    p = tmp_path / "t.cmeta"
    n_threads, per = 4, 2500
    clock = iter(range(10**9))
    lock = threading.Lock()
    refused = [0]

    with Chronicle.open(p, "w", block_records=512) as ch:
        def work(k):
            for i in range(per):
                with lock:
                    ts = next(clock)
                try:
                    ch.append(timestamp=ts, phase=PHASES[k % 3], loss_value=float(k), coherence=0.5,
                              seed_state=k * per + i)
                except OrderError:
                    refused[0] += 1
        threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with Chronicle.open(p) as ch:
        cols = ch.to_numpy()
    assert len(cols["timestamp"]) + refused[0] == n_threads * per
    assert len(set(cols["seed_state"].tolist())) == len(cols["seed_state"])
    assert np.all(np.diff(cols["timestamp"].astype(np.int64)) >= 0)


def test_extend_numpy_columns_with_labels(tmp_path):
    c = workload.generate(70_000, "ms")
    cols = {"timestamp": c["timestamp"], "phase": c["phase"], "loss_value": c["loss"],
            "coherence": c["coherence"], "tensor_signature": c["tensor_signature"],
            "action_code": np.where(c["action_present"], c["action_code"].astype(np.int16), -1), "seed_state": c["seed_state"],
            "metrics.lr": np.where(np.arange(70_000) % 2 == 0, 0.01, np.nan)}
    p = tmp_path / "e.cmeta"
    with Chronicle.open(p, "w", block_records=16384) as ch:
        ch.extend(cols, labels={"phase": list(workload.PHASES)})
    with Chronicle.open(p) as ch:
        back = ch.to_numpy()
    assert np.array_equal(back["timestamp"], c["timestamp"])
    assert back["phase"].tolist()[:5] == [workload.PHASES[x] for x in c["phase"][:5]]
    assert np.array_equal(core.quantize(back["tensor_signature.1"]), core.quantize(c["tensor_signature"][:, 1]))
    assert np.array_equal(back["action_code"] >= 0, c["action_present"])
    assert np.array_equal(np.isnan(back["metrics.lr"]), np.arange(70_000) % 2 == 1)
    assert np.array_equal(back["seed_state"], c["seed_state"])


def test_windows_out_of_order_with_mixed_metrics_across_writers_that_reuse_buffers(tmp_path):
    """A window whose timestamps arrive out of order, with metrics from both
    extend() and append() (one name given by both), is ordered by (timestamp,
    arrival) when it is encoded; writers one after another reuse the window
    buffers of the ones before (the process's pool) and never show a record
    of another file."""
    rng = np.random.default_rng(3)
    for k, n in enumerate((700, 1000, 300, 1000)):      # full and partial windows, buffers reused in between
        # out of order within each window of 256 arrivals (a window never goes below the one before)
        ts = np.concatenate([rng.permutation(np.arange(a, min(a + 256, n))) for a in range(0, n, 256)])
        ts = ts.astype(np.uint64) + np.uint64(10_000 * k)
        cols = {"timestamp": ts[: n // 2], "phase": np.zeros(n // 2, np.int64), "loss_value": ts[: n // 2] * 0.5,
                "coherence": np.full(n // 2, 0.25), "tensor_signature": np.zeros((n // 2, 3)),
                "action_code": np.full(n // 2, -1, np.int16), "seed_state": ts[: n // 2] + np.uint64(k),
                "metrics.both": np.where(ts[: n // 2] % 2 == 0, 1.0, np.nan)}
        p = tmp_path / f"w{k}.cmeta"
        with Chronicle.open(p, "w", block_records=256) as ch:
            ch.extend(cols, labels={"phase": ["train"]})
            for t in ts[n // 2:].tolist():
                ch.append(timestamp=t, phase="eval", loss_value=t * 0.5, coherence=0.25, seed_state=t + k,
                          metrics={"both": 2.0, "only_append": float(t)} if t % 3 == 0 else {})
        with Chronicle.open(p) as ch:
            got = ch.to_numpy()
        order = np.argsort(ts, kind="stable")
        want = ts[order]
        assert np.array_equal(got["timestamp"], want), k
        assert np.array_equal(got["seed_state"], want + np.uint64(k)), k
        assert np.array_equal(got["loss_value"], (want * 0.5).astype(np.float32)), k
        first = order < n // 2                      # the records extend() gave
        assert got["phase"].tolist() == ["train" if f else "eval" for f in first]
        both = np.where(first, np.where(want % 2 == 0, 1.0, np.nan), np.where(want % 3 == 0, 2.0, np.nan))
        assert np.array_equal(got["metrics.both"], both, equal_nan=True), k
        only = np.where(~first & (want % 3 == 0), want.astype(np.float64), np.nan)
        assert np.array_equal(got["metrics.only_append"], only, equal_nan=True), k


def test_extend_takes_float32_float64_and_strided_columns_across_reused_windows(tmp_path):
    """Batches quantize straight into the staging windows, whose buffers are
    reused once a block is written: every block must still hold its own
    records, whatever the float dtype or layout the caller passed."""
    rng = np.random.default_rng(7)
    n, window = 10_000, 512
    sig64 = rng.normal(size=(n, 3))
    sig32 = sig64.astype(np.float32)
    loss = rng.normal(size=n)
    p = tmp_path / "s.cmeta"
    with Chronicle.open(p, "w", block_records=window) as ch:
        for lo, hi, sig in [(0, 3_000, sig64), (3_000, 3_001, sig32), (3_001, n, sig32)]:
            ch.extend({"timestamp": np.arange(lo, hi, dtype=np.uint64), "phase": np.zeros(hi - lo, np.int64),
                       "loss_value": loss[lo:hi].astype(np.float32) if sig is sig32 else loss[lo:hi],
                       "coherence": np.ascontiguousarray(sig[lo:hi, 0])[::-1][::-1],
                       "tensor_signature": sig[lo:hi], "seed_state": np.arange(lo, hi, dtype=np.uint64)},
                      labels={"phase": ["train"]})
            ch.append(timestamp=hi - 1, phase="dream", loss_value=0.25, coherence=0.5, seed_state=10**6 + hi)
    with Chronicle.open(p) as ch:
        back = ch.to_numpy()
        assert len(ch.reader().blocks) > 15         # many windows went through the reused buffers
    batch = back["phase"] == "train"
    assert int(batch.sum()) == n
    assert back["seed_state"][batch].tolist() == list(range(n))
    held_sig = np.concatenate([sig64[:3_000], sig32[3_000:].astype(np.float64)]).astype(np.float32)
    held_loss = np.concatenate([loss[:3_000], loss[3_000:].astype(np.float32).astype(np.float64)]).astype(np.float32)
    for j in range(3):                  # each float32 field holds the float32 of what was given, bit for bit
        assert back[f"tensor_signature.{j}"][batch].tobytes() == held_sig[:, j].tobytes()
    assert back["coherence"][batch].tobytes() == held_sig[:, 0].tobytes()
    assert back["loss_value"][batch].tobytes() == held_loss.tobytes()
    assert back["seed_state"][~batch].tolist() == [10**6 + 3_000, 10**6 + 3_001, 10**6 + n]


@pytest.mark.parametrize("precision", [None, 1e-6], ids=["exact", "fixed"])
def test_append_and_extend_store_alike(tmp_path, precision):
    """One value at a time (append) and a column at a time (extend) must
    store the same floats: the same float32, or the same integers at the
    scale, halves included."""
    rng = np.random.default_rng(11)
    halves = (np.arange(-50, 50) + 0.5) * 1e-6
    vals = np.concatenate([halves[np.abs(halves) > 1e-6], rng.normal(size=400) * 10,
                           np.array([2.5e-6, -2.5e-6, 1.5e-6, 1e12, -7.25e-6, np.nan, np.inf, -np.inf, -0.0])])
    n = len(vals)
    sig = np.stack([vals, vals[::-1], vals * 3], axis=1)
    held = {}
    for mode in ("append", "extend"):
        p = tmp_path / f"{mode}.cmeta"
        with Chronicle.open(p, "w", block_records=64, precision=precision) as ch:
            if mode == "append":
                for i in range(n):
                    ch.append(timestamp=i, phase="train", loss_value=float(vals[i]), coherence=float(vals[-1 - i]),
                              tensor_signature=tuple(float(x) for x in sig[i]))
            else:
                ch.extend({"timestamp": np.arange(n, dtype=np.uint64), "phase": np.zeros(n, np.int64),
                           "loss_value": vals, "coherence": vals[::-1], "tensor_signature": sig,
                           "seed_state": np.zeros(n, np.uint64)}, labels={"phase": ["train"]})
        with Chronicle.open(p) as ch:
            held[mode] = ch.to_numpy()
    for name in ("loss_value", "coherence", "tensor_signature.0", "tensor_signature.1", "tensor_signature.2"):
        assert held["append"][name].tobytes() == held["extend"][name].tobytes(), name
    finite = np.isfinite(vals) & ~((vals == 0) & np.signbit(vals))     # NaN, infinities and -0.0 stay as they are
    if precision is None:
        expect = vals.astype(np.float32)
    else:                           # fixed point, read as float32; NaN and the infinities as they were
        expect = core.dequantize(core.quantize(np.where(finite, vals, 0.0)), dtype=np.float32)
        expect[~finite] = vals[~finite].astype(np.float32)
    assert held["extend"]["loss_value"].tobytes() == expect.tobytes()


def test_extend_error_names_the_column_and_index_and_stores_nothing(tmp_path):
    n = 200_000
    sig = np.zeros((n, 3))
    sig[150_123, 2] = 1e-50                    # not zero, but zero as float32
    cols = {"timestamp": np.arange(n, dtype=np.uint64), "phase": np.zeros(n, np.int64),
            "loss_value": np.ones(n), "coherence": np.ones(n), "tensor_signature": sig,
            "seed_state": np.zeros(n, np.uint64)}
    p = tmp_path / "x.cmeta"
    with Chronicle.open(p, "w", block_records=1024) as ch:
        ch.append(timestamp=0, phase="train", loss_value=1.0, coherence=1.0)
        with pytest.raises(ValidationError, match=r"'tensor_signature\.2': element 150123 = 1e-50 is too small "
                                                  r"for float32: it would be stored as 0"):
            ch.extend(cols, labels={"phase": ["train"]})
        with pytest.raises(ValidationError, match=r"'loss_value': element 7 = 1e\+300 is too large for float32"):
            ch.extend({**cols, "tensor_signature": np.zeros((n, 3)), "loss_value": np.where(np.arange(n) == 7, 1e300, 0.0)},
                      labels={"phase": ["train"]})
        texts = np.zeros(n, dtype=object)
        texts[3] = "x"
        with pytest.raises(ValidationError, match=r"'metrics\.lr' must be numeric, got dtype object"):
            ch.extend({**cols, "tensor_signature": np.zeros((n, 3)), "metrics.lr": texts}, labels={"phase": ["train"]})
    with Chronicle.open(p) as ch:
        assert len(ch) == 1
    q = tmp_path / "fixed.cmeta"
    with Chronicle.open(q, "w", precision={"loss_value": 1e-6, "metrics": 1e-6}) as ch:
        with pytest.raises(ValidationError, match=r"'loss_value': element 5 = 1e\+40 is too large for fixed point "
                                                  r"at scale 1e-06"):
            ch.extend({**cols, "tensor_signature": np.zeros((n, 3)), "loss_value": np.where(np.arange(n) == 5, 1e40, 1.0)},
                      labels={"phase": ["train"]})
        with pytest.raises(ValidationError, match=r"'metrics\.lr': element 9 = 1e\+20 is too large for fixed point"):
            ch.extend({**cols, "tensor_signature": np.zeros((n, 3)), "metrics.lr": np.where(np.arange(n) == 9, 1e20, 1.0)},
                      labels={"phase": ["train"]})
    with Chronicle.open(q) as ch:
        assert len(ch) == 0


def test_bad_input_is_refused_and_loses_nothing(tmp_path):
    p = tmp_path / "b.cmeta"
    with Chronicle.open(p, "w", block_records=10) as ch:
        ch.append(**cycle_fields(0))
        for bad, match in [(dict(loss_value=1e-50), "loss_value = 1e-50 is too small for float32"),
                           (dict(coherence=1e39), "coherence = 1e\\+39 is too large for float32"),
                           (dict(loss_value="a"), "loss_value must be a number"),
                           (dict(phase=""), "phase"), (dict(phase=7), "phase"),
                           (dict(action_code=300), "action_code"), (dict(seed_state=-1), "seed_state"),
                           (dict(timestamp=-5), "timestamp"), (dict(tensor_signature=(1.0, 2.0)), "tensor"),
                           (dict(metrics={"x": "high"}), "metric 'x' must be a number")]:
            with pytest.raises(ValidationError, match=match):
                ch.append(**{**cycle_fields(1), **bad})
        with pytest.raises(ValidationError, match=r"timestamp\[1\]|phase\[1\]"):
            ch.extend({"timestamp": np.array([5, 6]), "phase": np.array(["train", ""], dtype=object),
                       "loss_value": np.ones(2), "coherence": np.ones(2), "tensor_signature": np.zeros((2, 3)),
                       "seed_state": np.zeros(2, dtype=np.uint64)})
        with pytest.raises(ValidationError, match="loss_value"):
            ch.extend({"timestamp": np.array([5, 6]), "phase": np.array(["a", "b"], dtype=object),
                       "loss_value": np.array([1.0, 1e39]), "coherence": np.ones(2),
                       "tensor_signature": np.zeros((2, 3)), "seed_state": np.zeros(2, dtype=np.uint64)})
        ch.append(**cycle_fields(1))
    with Chronicle.open(p) as ch:
        assert [r.timestamp for r in ch] == [0, 1]


def test_a_record_given_by_keywords_names_the_field_it_lacks(tmp_path):
    p = tmp_path / "k.cmeta"
    with Chronicle.open(p, "w") as ch:
        with pytest.raises(ValidationError, match=r"append: the cycle record lacks coherence \(its fields: ") as info:
            ch.append(timestamp=1, phase="train", loss_value=0.5)
        assert info.value.problems == [(None, "coherence", "missing")]
        with pytest.raises(ValidationError, match="lacks phase; lacks coherence; has no field los"):
            ch.append(timestamp=1, los=0.5, loss_value=0.5)
        ch.append(timestamp=1, phase="train", loss_value=0.5, coherence=0.25)
    with Chronicle.open(tmp_path / "e.cmeta", "w", schema="event") as ch:
        with pytest.raises(ValidationError, match="the event record lacks event_type"):
            ch.append(timestamp=1, payload={})
    with Chronicle.open(p) as ch:
        assert len(ch) == 1


def test_event_log_roundtrip(tmp_path):
    p = tmp_path / "events.cmeta"
    with Chronicle.open(p, "w", schema="event", block_records=3) as ch:
        ch.append(EventRecord(10, "turn", {"role": "user", "text": "héllo"}, {"tokens": 5}))
        ch.append(timestamp=11, event_type="tool", payload={"name": "search", "args": [1, 2]})
        ch.append(timestamp=12, event_type="turn", payload={"role": "assistant", "text": "hi"},
                  values={"tokens": 2, "latency_ms": 35.5})
        with pytest.raises(ValidationError, match="JSON object"):
            ch.append(timestamp=13, event_type="turn", payload=[1, 2])
        with pytest.raises(ValidationError, match="payload is not JSON-serialisable: "):
            ch.append(timestamp=13, event_type="turn", payload={"x": object()})
        with pytest.raises(ValidationError, match="event log"):
            ch._writer.append_cycle(**cycle_fields(14))
    with Chronicle.open(p) as ch:
        events = list(ch)
        assert ch.schema == "event"
    assert events[0] == EventRecord(10, "turn", {"role": "user", "text": "héllo"}, {"tokens": 5.0})
    assert events[1].values == {} and events[1].payload["args"] == [1, 2]
    assert events[2].values == {"tokens": 2.0, "latency_ms": 35.5}


def test_spec_functions_and_header_fields(tmp_path):
    p = tmp_path / "s.cmeta"
    ch = Chronicle.open(p, "w", config={"lr": 0.1}, initial_seed=99, metadata={"run": "a"})
    for i in range(10):
        record_cycle(CycleRecord(**cycle_fields(i)), ch)
    save_chronicle(ch)                         # a footer mid-run; a reader needs no scan
    stats = compress_records(ch)
    assert stats["records"] == 10 and 0 < stats["bytes_per_record"] < 400     # ten records carry the header
    for i in range(10, 20):
        ch.append(**cycle_fields(i))
    ch.close()
    with load_chronicle(p) as r:
        assert len(r) == 20 and r.config == {"lr": 0.1} and r.initial_seed == 99
        assert r.metadata["user"] == {"run": "a"}
    assert verify(p).ok


def test_durability_flush_fsyncs_every_block(tmp_path, monkeypatch):
    import os

    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    with Chronicle.open(tmp_path / "d.cmeta", "w", block_records=10, durability="flush") as ch:
        before = len(calls)
        for i in range(30):
            ch.append(**cycle_fields(i))
        ch.flush()                                 # blocks are written in the background; wait for them
        assert len(calls) - before == 3
    with Chronicle.open(tmp_path / "o.cmeta", "w", block_records=10) as ch:
        before = len(calls)
        for i in range(30):
            ch.append(**cycle_fields(i))
        ch.flush()
        assert len(calls) == before                # durability "os": none until close
    assert len(calls) > before                     # ... and at close
    with Chronicle.open(tmp_path / "n.cmeta", "w", block_records=10, durability="none") as ch:
        before = len(calls)
        for i in range(30):
            ch.append(**cycle_fields(i))
        ch.save()
    assert len(calls) == before                    # durability "none": never
    with Chronicle.open(tmp_path / "n.cmeta") as ch:
        assert len(ch) == 30
    with pytest.raises(ValueError, match="durability"):
        Chronicle.open(tmp_path / "bad.cmeta", "w", durability="sometimes")


def test_pandas_and_arrow(tmp_path):
    p = tmp_path / "pa.cmeta"
    write_cycles(p, 50)
    with Chronicle.open(p) as ch:
        df = ch.to_pandas()
        table = ch.to_arrow()
    assert len(df) == 50 and df["phase"].iloc[0] == "train"
    assert table.num_rows == 50
    assert table.column("action_code").null_count == sum(cycle_fields(i)["action_code"] is None for i in range(50))


def test_without_the_arrow_extra_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    from chronoledger.errors import ChronoledgerError, MissingDependencyError

    p = tmp_path / "pa.cmeta"
    write_cycles(p, 5)
    for name in ("pyarrow", "pyarrow.parquet", "pandas"):
        monkeypatch.setitem(sys.modules, name, None)          # as if not installed: import fails
    out = tmp_path / "out.parquet"
    with Chronicle.open(p) as ch:
        for call, package in ((ch.to_arrow, "pyarrow"), (ch.to_pandas, "pandas"), (lambda: ch.to_parquet(out), "pyarrow")):
            with pytest.raises(MissingDependencyError) as info:
                call()
            assert isinstance(info.value, ChronoledgerError) and isinstance(info.value, ImportError)
            assert f"needs {package}, which is not installed: pip install 'chronoledger[arrow]'" in str(info.value)
    assert not out.exists()


def test_to_parquet_replaces_the_file_whole(tmp_path):
    import pyarrow.parquet as pq

    p, out = tmp_path / "pq.cmeta", tmp_path / "out.parquet"
    write_cycles(p, 70)
    out.write_bytes(b"an older export")
    with Chronicle.open(p) as ch:
        assert ch.to_parquet(out) == 70
        want = ch.to_numpy()
    table = pq.read_table(out)
    assert table.num_rows == 70 and table.column("timestamp").to_pylist() == want["timestamp"].tolist()
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []


def test_writer_modes(tmp_path):
    p = tmp_path / "m.cmeta"
    write_cycles(p, 5)
    with pytest.raises(FileExistsError, match="already exists"):
        Chronicle.open(p, "x")
    write_cycles(p, 3, mode="w")                     # w truncates
    with Chronicle.open(p) as ch:
        assert len(ch) == 3
        with pytest.raises(Exception, match="read-only"):
            ch.append(**cycle_fields(9))
    with pytest.raises(ValueError, match="mode"):
        Chronicle.open(p, "rw")


def test_reading_while_writing(tmp_path):
    p = tmp_path / "live.cmeta"
    with Chronicle.open(p, "w", block_records=50) as ch:
        for i in range(120):
            ch.append(**cycle_fields(i))
        ch.flush()
        for i in range(120, 130):
            ch.append(**cycle_fields(i))              # staged, not yet written
        with Chronicle.open(p) as reader:            # no footer yet: blocks found by scanning
            assert len(reader) == 120
        assert len(ch.query(0, 10**9)) == 130        # the writer flushes for its own reads
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Chronicle.open(p) as reader:
            assert len(reader) == 130


def test_event_log_batches_mix_with_single_events(tmp_path):
    p = tmp_path / "ev.cmeta"
    with Chronicle.open(p, "w", schema="event", block_records=4) as ch:
        ch.append(timestamp=1, event_type="a", payload={"x": 1})
        ch.extend({"timestamp": np.array([2, 3, 4, 5, 6]),
                   "event_type": np.array(["b", "c", "b", "c", "d"], dtype=object),
                   "payload": np.array(['{"k": 1}', {"k": 2}, "{}", "{}", "{}"], dtype=object),
                   "values.tokens": np.array([1.0, np.nan, 3.0, np.nan, 5.0])})
        ch.append(timestamp=7, event_type="e", values={"tokens": 9})
        with pytest.raises(ValidationError, match=r"payload\[0\]"):
            ch.extend({"timestamp": np.array([8]), "event_type": np.array(["x"], dtype=object),
                       "payload": np.array(["not json"], dtype=object)})
    with Chronicle.open(p) as ch:
        events = list(ch)
    assert [e.timestamp for e in events] == [1, 2, 3, 4, 5, 6, 7]
    assert events[2] == EventRecord(3, "c", {"k": 2}, {})
    assert events[5].values == {"tokens": 5.0} and events[6].values == {"tokens": 9.0}


@pytest.mark.parametrize("schema", ["cycle", "event"])
def test_a_batch_that_would_break_the_order_stores_nothing(tmp_path, schema):
    p = tmp_path / "b.cmeta"
    ts = np.r_[np.arange(10, 18), 5].astype(np.uint64)         # two whole blocks, then an older record
    n = len(ts)
    if schema == "cycle":
        cols = {"timestamp": ts, "phase": np.zeros(n, np.int64), "loss_value": np.ones(n),
                "coherence": np.ones(n), "tensor_signature": np.zeros((n, 3)), "seed_state": np.arange(n)}
        labels = {"phase": ["train"]}
    else:
        cols = {"timestamp": ts, "event_type": np.array(["a"] * n, dtype=object)}
        labels = None
    with Chronicle.open(p, "w", schema=schema, block_records=4) as ch:
        with pytest.raises(OrderError, match=r"timestamp\[8\] = 5 .*nothing of this batch was stored"):
            ch.extend(cols, labels)
        assert len(ch) == 0
        ch.extend({k: v[:8] for k, v in cols.items()}, labels)    # the good part alone is fine
    with Chronicle.open(p) as ch:
        assert ch.to_numpy()["timestamp"].tolist() == list(range(10, 18))
    assert verify(p).ok


def test_flush_returns_while_other_threads_keep_appending(tmp_path):
    p = tmp_path / "busy.cmeta"
    stop = threading.Event()
    with Chronicle.open(p, "w", block_records=64) as ch:
        rec = ch.append_cycle
        clock = iter(range(10**9))

        def hammer():
            while not stop.is_set():
                try:
                    rec(next(clock), "train", 0.5, 0.5)
                except OrderError:
                    pass

        threads = [threading.Thread(target=hammer) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            for _ in range(20):
                ch.flush()                    # must not wait for windows queued after it began
        finally:
            stop.set()
            for t in threads:
                t.join()
    assert verify(p).ok
    with Chronicle.open(p) as ch:
        ts = ch.to_numpy()["timestamp"].astype(np.int64)
    assert np.all(np.diff(ts) >= 0)


def test_metrics_named_like_fixed_columns_and_late_metrics(tmp_path):
    p = tmp_path / "m.cmeta"
    n = 12
    with Chronicle.open(p, "w", block_records=4) as ch:
        ch.extend({"timestamp": np.arange(n), "phase": np.zeros(n, np.int64), "loss_value": np.ones(n),
                   "coherence": np.ones(n), "tensor_signature": np.zeros((n, 3)), "seed_state": np.arange(n),
                   "metrics.phase": np.arange(n) * 0.5, "metrics.timestamp": np.full(n, 2.0)},
                  labels={"phase": ["train"]})
        for i in range(n, n + 8):
            ch.append_cycle(i, "train", 1.0, 1.0, None, None, i, {"late": float(i)} if i >= 16 else None)
    with Chronicle.open(p) as ch:
        cols = ch.to_numpy()
        late = ch.to_numpy(["metrics.late"])["metrics.late"]
        q = ch.query_columns(14, 18, ["metrics.late"])["metrics.late"]
    assert cols["metrics.phase"][:n].tolist() == (np.arange(n) * 0.5).tolist()
    assert cols["phase"][0] == "train" and cols["metrics.timestamp"][0] == 2.0
    assert len(late) == n + 8 and np.isnan(late[:16]).all() and late[16:].tolist() == [16.0, 17.0, 18.0, 19.0]
    assert len(q) == 4 and np.isnan(q[:2]).all() and q[2:].tolist() == [16.0, 17.0]


def test_float_timestamps_and_seeds_are_refused(tmp_path):
    with Chronicle.open(tmp_path / "f.cmeta", "w") as ch:
        for bad in (dict(timestamp=1.7), dict(timestamp=True), dict(seed_state=2.9)):
            with pytest.raises(ValidationError, match="u64"):
                ch.append(**{**cycle_fields(1), **bad})
        ch.append_cycle(np.uint64(5), "train", 0.5, 0.5, None, None, np.int64(9))
    with Chronicle.open(tmp_path / "f.cmeta") as ch:
        assert [(r.timestamp, r.seed_state) for r in ch] == [(5, 9)]


def test_a_file_that_cannot_be_opened_is_a_storage_error_naming_it(tmp_path):
    from chronoledger.errors import ExistsError, MissingFileError, StorageError
    with pytest.raises(MissingFileError, match=r"nope\.cmeta: no such chronicle"):
        Chronicle.open(tmp_path / "nope.cmeta")
    with pytest.raises(MissingFileError, match="the folder .*nodir does not exist"):
        Chronicle.open(tmp_path / "nodir" / "x.cmeta", "w")
    with pytest.raises(StorageError, match="cannot be read"):
        Chronicle.open(tmp_path)
    with Chronicle.open(tmp_path / "a.cmeta", "w"):
        pass
    with pytest.raises(ExistsError, match="already exists"):
        Chronicle.open(tmp_path / "a.cmeta", "x")
    with pytest.raises(FileNotFoundError):          # still the builtin's subclass, for code written against it
        Chronicle.open(tmp_path / "nope.cmeta")
