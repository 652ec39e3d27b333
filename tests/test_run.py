"""chronicle.run: ``Run.log`` from a training loop, resume and rewind, and
examples/train_loop.py end to end."""

import importlib.util
import math
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import chronoledger as cl
from chronoledger.chronicle import Chronicle, Run
from chronoledger.errors import ChronoledgerError, ConfigError, ExistsError, OrderError, ValidationError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train_loop.py"


def records(path):
    with Chronicle.open(path) as ch:
        return list(ch)


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


# --- logging ----------------------------------------------------------------------------------

def test_the_package_root_gives_run_lazily():
    assert cl.Run is Run
    code = "import sys, chronoledger; assert 'chronoledger.chronicle' not in sys.modules; print(chronoledger.Run)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "chronoledger.chronicle.run.Run" in out.stdout


def test_log_maps_keys_to_fields_and_metrics(tmp_path):
    p = tmp_path / "runs" / "exp1.cmeta"                  # the folder is created
    with Run(p, config={"lr": 0.01}) as run:
        assert run.path == p and run.step is None
        run.log({"loss": 0.5, "acc": 0.1, "lr": 1e-8}, step=0, seed=42)
        run.log({"loss_value": 0.25, "coherence": 0.75, "tensor_signature": np.array([0.5, -1.0, 2.0])}, step=1,
                phase="validate")
        assert run.step == 1
    a, b = records(p)
    assert (a.timestamp, a.phase, a.loss_value, a.seed_state) == (0, "train", 0.5, 42)
    # metrics are float64, exact: the very bits logged
    assert bits(a.metrics["acc"]) == bits(0.1) and bits(a.metrics["lr"]) == bits(1e-8)
    assert set(a.metrics) == {"acc", "lr"}                # loss is a field, not a metric
    # what was not logged is NaN ("not logged")
    assert math.isnan(a.coherence) and all(math.isnan(x) for x in a.tensor_signature)
    assert (b.phase, b.loss_value, b.coherence, b.tensor_signature, b.metrics, b.seed_state) == \
        ("validate", 0.25, 0.75, (0.5, -1.0, 2.0), {}, 0)


def test_a_record_without_a_loss_has_nan_loss(tmp_path):
    with Run(tmp_path / "r.cmeta") as run:
        run.log({"val_acc": 0.9}, step=3)
    (r,) = records(tmp_path / "r.cmeta")
    assert math.isnan(r.loss_value) and math.isnan(r.coherence) and r.metrics == {"val_acc": 0.9}


def test_numbers_from_numpy_and_tensors_are_accepted(tmp_path):
    class Tensor:                                          # what torch / jax scalars offer
        def item(self):
            return 1.5

    with Run(tmp_path / "r.cmeta") as run:
        run.log({"loss": np.float32(0.5), "a": np.float64(0.1), "b": np.array(2.0), "c": np.array([3.0]),
                 "d": Tensor(), "e": 7, "f": np.int64(8)}, step=np.int64(0))
    (r,) = records(tmp_path / "r.cmeta")
    assert r.loss_value == 0.5
    assert r.metrics == {"a": 0.1, "b": 2.0, "c": 3.0, "d": 1.5, "e": 7.0, "f": 8.0}


@pytest.mark.parametrize("data, match", [
    ({"acc": "0.5"}, "'acc' must be a number"),
    ({"acc": True}, "'acc' must be a number"),
    ({"acc": [1.0, 2.0]}, "'acc' must be"),
    ({"acc": np.array([1.0, 2.0])}, "'acc' must be one number"),
    ({"loss": 0.5, "loss_value": 0.5}, "'loss' or 'loss_value', not both"),
    ({"tensor_signature": (1.0, 2.0)}, "three numbers"),
    ({"": 1.0}, "metric name"),
    ({"loss": 1e-50}, "too small for float32"),            # exact float32 cannot hold it: refused, not 0
])
def test_bad_values_are_refused_at_the_call_naming_the_key(tmp_path, data, match):
    with Run(tmp_path / "r.cmeta") as run:
        run.log({"loss": 1.0}, step=0)
        with pytest.raises(ValidationError, match=match):
            run.log(data, step=1)
        run.log({"loss": 2.0}, step=1)                     # nothing of the refused call was kept
    assert [(r.timestamp, r.loss_value, r.metrics) for r in records(tmp_path / "r.cmeta")] == \
        [(0, 1.0, {}), (1, 2.0, {})]


@pytest.mark.parametrize("step", [-1, 1.5, "3", True, 2**64])
def test_a_step_is_a_u64(tmp_path, step):
    with Run(tmp_path / "r.cmeta") as run:
        with pytest.raises(ValidationError, match="a step is an int"):
            run.log({"loss": 1.0}, step=step)


# --- one record per step and phase ----------------------------------------------------------------

def test_calls_for_the_same_step_merge_into_one_record(tmp_path):
    with Run(tmp_path / "r.cmeta") as run:
        for step in range(5):
            run.log({"loss": 1.0 / (step + 1)}, step=step, seed=step + 100)
            if step % 2 == 0:
                run.log({"val_acc": 0.5 + step / 10}, step=step)     # later in the same step
                run.log({"coherence": 0.25}, step=step, seed=step + 100)
    recs = records(tmp_path / "r.cmeta")
    assert [r.timestamp for r in recs] == [0, 1, 2, 3, 4]
    assert [r.metrics for r in recs] == [{"val_acc": 0.5}, {}, {"val_acc": 0.7}, {}, {"val_acc": 0.9}]
    assert [r.seed_state for r in recs] == [100, 101, 102, 103, 104]
    assert [r.coherence for r in recs if not math.isnan(r.coherence)] == [0.25] * 3


def test_a_value_logged_twice_for_a_step_is_refused_not_replaced(tmp_path):
    with Run(tmp_path / "r.cmeta") as run:
        run.log({"loss": 1.0, "acc": 0.5}, step=0, seed=1)
        with pytest.raises(ValidationError, match="'acc' logged already"):
            run.log({"acc": 0.6, "other": 1.0}, step=0)
        with pytest.raises(ValidationError, match="'loss'"):
            run.log({"loss_value": 2.0}, step=0)
        with pytest.raises(ValidationError, match="'seed'"):
            run.log({}, step=0, seed=2)
        run.log({"other": 1.0}, step=0, seed=1)
    (r,) = records(tmp_path / "r.cmeta")
    assert (r.loss_value, r.metrics, r.seed_state) == (1.0, {"acc": 0.5, "other": 1.0}, 1)


def test_each_phase_of_a_step_is_its_own_record(tmp_path):
    with Run(tmp_path / "r.cmeta") as run:
        run.log({"loss": 1.0}, step=0)
        run.log({"loss": 0.9}, step=0, phase="validate")
        run.log({"acc": 0.5}, step=0)                       # back to train: merges with the first
        run.log({"loss": 0.8}, step=1)
    assert [(r.timestamp, r.phase, r.loss_value, r.metrics) for r in records(tmp_path / "r.cmeta")] == [
        (0, "train", 1.0, {"acc": 0.5}), (0, "validate", pytest.approx(0.9), {}), (1, "train", pytest.approx(0.8), {})]


def test_steps_never_go_back(tmp_path):
    with Run(tmp_path / "r.cmeta") as run:
        run.log({"loss": 1.0}, step=5)
        run.log({"loss": 1.0}, step=7)
        with pytest.raises(OrderError, match=r"step 6 comes before step 7.*rewind=S"):
            run.log({"loss": 1.0}, step=6)
        assert run.step == 7
    assert [r.timestamp for r in records(tmp_path / "r.cmeta")] == [5, 7]


def test_a_flushed_step_is_complete(tmp_path):
    p = tmp_path / "r.cmeta"
    with Run(p) as run:
        run.log({"loss": 1.0}, step=0)
        run.flush()
        assert len(records(p)) == 1                         # on disk while the run is open
        with pytest.raises(OrderError, match=r"step 0 \(train\) is written already"):
            run.log({"acc": 1.0}, step=0)
        run.log({"acc": 1.0}, step=0, phase="validate")     # a phase not written yet is a new record
    assert [(r.timestamp, r.phase) for r in records(p)] == [(0, "train"), (0, "validate")]


def test_flush_secs_writes_earlier_steps_while_logging(tmp_path):
    p = tmp_path / "r.cmeta"
    with Run(p, flush_secs=0) as run:
        for step in range(3):
            run.log({"loss": 1.0}, step=step)
        assert [r.timestamp for r in records(p)] == [0, 1]  # step 2 may still grow
    with Run(tmp_path / "s.cmeta", flush_secs=None) as run:
        run.log({"loss": 1.0}, step=0)
        run.log({"loss": 1.0}, step=1)
        assert records(tmp_path / "s.cmeta") == []


def test_close_writes_the_last_step_and_the_run_is_then_closed(tmp_path):
    run = Run(tmp_path / "r.cmeta")
    run.log({"loss": 1.0}, step=0)
    run.log({"loss": 0.5}, step=1)
    run.close()
    run.close()                                             # twice is fine
    assert run.closed and [r.timestamp for r in records(tmp_path / "r.cmeta")] == [0, 1]
    with pytest.raises(ChronoledgerError, match="the run is closed"):
        run.log({"loss": 1.0}, step=2)


def test_a_program_that_never_closes_its_run_keeps_the_last_step(tmp_path):
    p = tmp_path / "r.cmeta"
    code = (f"import chronoledger as cl\nrun = cl.Run({str(p)!r})\n"
            f"for i in range(3):\n    run.log({{'loss': 1.0 / (i + 1)}}, step=i)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert [r.timestamp for r in records(p)] == [0, 1, 2]


# --- config, tags, notes, precision ----------------------------------------------------------------

def test_config_tags_and_notes_are_kept_and_versioned(tmp_path):
    p = tmp_path / "r.cmeta"
    with Run(p, config={"lr": 0.1, "layers": (2, 3)}) as run:
        assert run.config == {"lr": 0.1, "layers": [2, 3]}
        assert run.set_config({"lr": 0.05, "layers": [2, 3]}, reason="plateau") == 1
        run.tag("baseline", "resnet")
        run.tag(remove=["resnet"])
        run.note("lowered the learning rate")
        run.log({"loss": 1.0}, step=0)
        assert run.config == {"lr": 0.05, "layers": [2, 3]}
    with Chronicle.open(p) as ch:
        assert [(v["version"], v["config"]["lr"], v["reason"]) for v in ch.config_history] == \
            [(0, 0.1, None), (1, 0.05, "plateau")]
        assert ch.tags == ["baseline"]
        assert [n["text"] for n in ch.notes] == ["lowered the learning rate"]


def test_precision_passes_through_and_is_checked_at_the_call(tmp_path):
    p = tmp_path / "r.cmeta"
    with Run(p, precision={"loss_value": 1e-3, "metrics.lr": "exact", "metrics": 1e-2}) as run:
        run.log({"loss": 0.12345, "acc": 0.456, "lr": 1e-8}, step=0)
        with pytest.raises(ValidationError, match="'acc'.*too large for fixed point"):
            run.log({"acc": 1e300}, step=1)
    (r,) = records(p)
    assert r.loss_value == float(np.float32(0.123)) and r.metrics["acc"] == pytest.approx(0.46, abs=1e-12)
    assert r.metrics["lr"] == 1e-8
    with Chronicle.open(p) as ch:
        assert ch.precision.field("loss_value") == 1e-3
    with pytest.raises(ConfigError, match="precision is fixed"):
        Run(p, resume=True, precision=1e-6)


def test_the_default_is_exact(tmp_path):
    with Run(tmp_path / "r.cmeta") as run:
        run.log({"loss": 0.1, "m": 0.1}, step=0)
    (r,) = records(tmp_path / "r.cmeta")
    assert r.loss_value == float(np.float32(0.1)) and bits(r.metrics["m"]) == bits(0.1)


# --- existing files: refuse, resume, rewind, overwrite ---------------------------------------------

def test_a_new_run_never_replaces_an_existing_file(tmp_path):
    p = tmp_path / "r.cmeta"
    with Run(p) as run:
        run.log({"loss": 1.0}, step=0)
        run.log({"loss": 1.0}, step=1)
    before = p.read_bytes()
    with pytest.raises(ExistsError, match=r"2 records, last step 1.*resume=True.*overwrite=True"):
        Run(p, config={"lr": 1})
    assert p.read_bytes() == before
    with Run(p, overwrite=True) as run:
        run.log({"loss": 2.0}, step=0)
    assert [(r.timestamp, r.loss_value) for r in records(p)] == [(0, 2.0)]


def test_conflicting_options_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="pass one"):
        Run(tmp_path / "r.cmeta", resume=True, overwrite=True)
    with pytest.raises(ConfigError, match="pass resume=True as well"):
        Run(tmp_path / "r.cmeta", rewind=3)
    assert not (tmp_path / "r.cmeta").exists()


def test_resume_appends_and_steps_go_on(tmp_path):
    p = tmp_path / "r.cmeta"
    with Run(p, resume=True, config={"lr": 0.1}) as run:      # missing: created, as a new run
        run.log({"loss": 1.0}, step=0)
        run.log({"loss": 0.5}, step=1)
    with Run(p, resume=True, config={"lr": 0.1}) as run:      # the same config: no new version
        assert run.step == 1 and run.config == {"lr": 0.1}
        with pytest.raises(OrderError, match="step 1 .* written already"):
            run.log({"acc": 1.0}, step=1)
        with pytest.raises(OrderError, match="comes before"):
            run.log({"loss": 1.0}, step=0)
        run.log({"loss": 0.25}, step=2)
        assert len(run.config_history) == 1
    with Run(p, resume=True, config={"lr": 0.01}) as run:     # a different config: a new version, kept
        assert [(v["config"], v["reason"]) for v in run.config_history] == \
            [({"lr": 0.1}, None), ({"lr": 0.01}, "resumed")]
    assert [r.timestamp for r in records(p)] == [0, 1, 2]


def test_resume_with_rewind_drops_the_records_after_the_checkpoint(tmp_path):
    p = tmp_path / "r.cmeta"
    with Run(p) as run:
        for step in range(10):
            run.log({"loss": 1.0, "attempt": 1}, step=step)
    with pytest.raises(OrderError, match=r"rewind=S"):          # resuming without rewind: an OrderError
        with Run(p, resume=True) as run:
            run.log({"loss": 1.0}, step=5)
    with Run(p, resume=True, rewind=4) as run:
        assert run.step == 4
        with pytest.raises(OrderError, match="written already"):
            run.log({"loss": 1.0}, step=4)                      # the checkpoint's step is kept
        for step in range(5, 12):
            run.log({"loss": 0.5, "attempt": 2}, step=step)
    recs = records(p)
    assert [r.timestamp for r in recs] == list(range(12))       # one per step, no duplicates
    assert [r.metrics["attempt"] for r in recs] == [1] * 5 + [2] * 7
    with Chronicle.open(p) as ch:
        (rw,) = [e for e in ch.history if e["op"] == "rewind"]
        assert (rw["to"], rw["dropped"]) == (4, 5)


def test_rewind_mid_run_drops_what_is_after_the_step_including_the_pending_one(tmp_path):
    p = tmp_path / "r.cmeta"
    with Run(p) as run:
        for step in range(6):
            run.log({"loss": float(step)}, step=step)
        assert run.rewind(3) == 1                              # step 4; step 5 was still being merged
        assert run.step == 3
        with pytest.raises(OrderError, match="written already"):
            run.log({"acc": 1.0}, step=3)                       # the kept step is complete
        run.log({"loss": 40.0}, step=4)
    assert [(r.timestamp, r.loss_value) for r in records(p)] == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0)]


def test_resume_keeps_what_is_fixed_at_creation(tmp_path):
    p = tmp_path / "r.cmeta"
    with Run(p, initial_seed=7) as run:
        run.log({"loss": 1.0}, step=0)
    with pytest.raises(ValidationError, match="initial seed"):
        Run(p, resume=True, initial_seed=8)
    with Run(p, resume=True, initial_seed=7) as run:           # the writer lock was released above
        run.log({"loss": 1.0}, step=1)
    assert len(records(p)) == 2


# --- examples/train_loop.py ----------------------------------------------------------------------

def _load_example():
    spec = importlib.util.spec_from_file_location("train_loop_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_training_loop_example_crashes_resumes_plots_and_exports(tmp_path):
    if not EXAMPLE.exists():
        pytest.skip("examples/ is not beside the tests")
    pytest.importorskip("matplotlib")
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out_dir = tmp_path / "out"
    out = subprocess.run([sys.executable, str(EXAMPLE), str(out_dir)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "simulated crash at step 130" in out.stdout
    run_path = out_dir / "run.cmeta"
    with Chronicle.open(run_path) as ch:
        cols = ch.to_numpy()
        history = ch.history
        assert ch.config["name"] == "linear-sgd"
    # one record per step, no duplicates after the rewind
    assert cols["timestamp"].tolist() == list(range(200))
    assert set(cols["phase"].tolist()) == {"train"}
    # the rewind to the checkpoint of step 99 is in the history, with the records it dropped (100..129)
    assert [(e["op"], e["to"], e["dropped"]) for e in history] == [("rewind", 99, 30)]
    # evaluation merged into its step's record; coherence not logged: NaN
    val = cols["metrics.val_loss"]
    assert np.flatnonzero(~np.isnan(val)).tolist() == list(range(0, 200, 10))
    assert np.isnan(cols["coherence"]).all() and not np.isnan(cols["loss_value"]).any()
    # the resumed run logged what an uninterrupted run logs, bit for bit
    example = _load_example()
    example.train(tmp_path / "straight")
    with Chronicle.open(tmp_path / "straight" / "run.cmeta") as ch:
        straight = ch.to_numpy()
    assert straight.keys() == cols.keys()
    for name in cols:
        if cols[name].dtype == object:
            assert cols[name].tolist() == straight[name].tolist(), name
        else:
            assert cols[name].tobytes() == straight[name].tobytes(), name
    # the picture
    png = out_dir / "loss.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    # TensorBoard's own reader sees the loss at every step
    acc = EventAccumulator(str(out_dir / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    loss = acc.Scalars("train/loss_value")
    assert [e.step for e in loss] == list(range(200))
    assert np.array([e.value for e in loss], dtype=np.float32).tobytes() == cols["loss_value"].tobytes()
    assert [e.step for e in acc.Scalars("train/metrics.val_loss")] == list(range(0, 200, 10))
    assert "train/coherence" not in acc.Tags()["scalars"]      # not logged: not exported
